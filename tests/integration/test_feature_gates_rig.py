"""Feature gates on the rig's real v1.21.14 control plane, and devloop's `--strategy apply` on an API server
with ServerSideApply off (the gate the bundled Kubeless profile turns off): it answers the apply patch with
415, and the Kube adapter falls back to creating or merging (a JSON merge patch), saying so once."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path

import pytest

from devloop.adapters.kube import Kube, NotFound
from devloop.base.waits import wait_for
from devrig.machine import Machine

pytestmark = pytest.mark.rig


def _machine(info) -> Machine:
    return Machine(info.name, Path(info.state_dir).parent.parent)


def _cmdline(pidfile: Path) -> str:
    pid = pidfile.read_text().split()[0]
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


@pytest.fixture(scope="module")
def ssa_off(adapter_machine):
    """The shared adapter machine, restarted with the gate off for this module, then with no gates again."""
    machine = _machine(adapter_machine)
    machine.boot(timeout=300, feature_gates="ServerSideApply=false")
    try:
        yield adapter_machine
    finally:
        machine.boot(timeout=300, feature_gates="")


@pytest.fixture
def kube(ssa_off, kube_target):
    with Kube(context=kube_target.context, kubeconfig=str(kube_target.kubeconfig)) as client:
        yield client


@pytest.fixture
def namespace(kube):
    name = f"dl-gates-{uuid.uuid4().hex[:6]}"
    kube.ensure_namespace(name)
    yield name
    with contextlib.suppress(NotFound):
        kube.transport.request("DELETE", f"/api/v1/namespaces/{name}")


def test_the_four_components_run_with_the_gate(ssa_off):
    run_dir = Path(ssa_off.run_dir)
    for part in ("apiserver", "controller-manager", "scheduler", "kubelet"):
        assert "--feature-gates=ServerSideApply=false" in _cmdline(run_dir / f"{part}.pid"), part
    # minikube gives kube-proxy no gates (its KubeProxyConfiguration has none)
    proxy = run_dir / "kube-proxy.pid"
    if proxy.exists():
        assert "--feature-gates" not in _cmdline(proxy)


def test_apply_strategy_falls_back_to_create_or_merge(kube, namespace):
    said: list[str] = []
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cfg", "namespace": namespace},
        "data": {"a": "1"},
    }
    assert kube.server_side_apply(cm, on_fallback=said.append) is True  # created
    assert len(said) == 1 and "415" in said[0] and "ServerSideApply" in said[0]
    stored = kube.get(cm)
    assert stored["data"] == {"a": "1"}
    # the gate's point: the API server keeps no managedFields (what the 2017 json-iterator cannot read)
    assert "managedFields" not in stored["metadata"]
    assert kube.server_side_apply(cm, on_fallback=said.append) is False  # same content: no change
    assert kube.server_side_apply({**cm, "data": {"a": "2"}}, on_fallback=said.append) is True  # merged
    assert kube.get(cm)["data"] == {"a": "2"}
    assert len(said) == 1  # said once

    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    assert kube.server_side_apply(svc) is True
    cluster_ip = kube.get(svc)["spec"]["clusterIP"]
    # the manifest has no clusterIP: the allocated one stays, and the ports list is the manifest's
    changed = {**svc, "spec": {**svc["spec"], "ports": [{"port": 81, "targetPort": 8080}]}}
    assert kube.server_side_apply(changed) is True
    after = kube.get(svc)["spec"]
    assert after["clusterIP"] == cluster_ip and after["ports"][0]["port"] == 81


def test_the_fallback_keeps_what_others_set(kube, namespace):
    """What the Deployment controller and `rollout restart` set stays, as with server-side apply: dropping it
    would bump the generation and roll the pods out again on every apply."""
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": namespace},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "d"}},
            "template": {
                "metadata": {"labels": {"app": "d"}},
                "spec": {"containers": [{"name": "c", "image": "k8s.gcr.io/pause:3.4.1"}]},
            },
        },
    }
    assert kube.server_side_apply(deploy) is True
    kube.restart_deployment(namespace, "d")
    stamped = kube.get(deploy)["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
    # the Deployment controller has taken the restart in (its revision annotation, observedGeneration) before
    # the apply, so whatever changes next is the apply's doing
    wait_for(
        lambda: (
            (d := kube.get(deploy))["metadata"].get("annotations", {}).get("deployment.kubernetes.io/revision") == "2"
            and d.get("status", {}).get("observedGeneration") == 2
        ),
        timeout=60,
        interval=0.2,
        describe="the Deployment controller to observe the restart",
    )
    assert kube.server_side_apply(deploy) is False
    after = kube.get(deploy)
    assert after["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] == stamped
    assert after["metadata"]["generation"] == 2  # created, restarted: the apply changed nothing


def test_a_cluster_known_to_lack_server_side_apply_is_merged_into_without_asking(kube, namespace):
    """The profile started it with ServerSideApply=false (the bundled one does): no refused first write, no notice."""
    said: list[str] = []
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "known", "namespace": namespace},
        "data": {"a": "1"},
    }
    assert kube.server_side_apply(cm, on_fallback=said.append, known_off=True) is True
    assert kube.server_side_apply({**cm, "data": {"a": "2"}}, on_fallback=said.append, known_off=True) is True
    assert kube.get(cm)["data"] == {"a": "2"} and said == []
    assert kube.objects._client_side is False  # no write was refused with 415 on the way
