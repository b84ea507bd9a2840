"""The rig's machine layer against the real parts: control plane, engine over TCP+TLS, kubelet node, kwok.

One machine per module (booted once); a user of the rig sees: a Ready node named localhost, images built
through docker-env run as pods, logs/exec work, the pull-policy trap is real, fake nodes take pods.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from devrig import testing as rt
from support import require_rig, wait_until

pytestmark = [pytest.mark.rig, pytest.mark.slow]

PROFILE = "rigone"


@pytest.fixture(scope="module")
def booted(tmp_path_factory):
    require_rig(root=True, busybox=True)
    home = tmp_path_factory.mktemp("rig-home") / ".minikube"
    machine, info, seconds = rt.boot_machine(PROFILE, home)
    print(f"\nboot of {PROFILE!r} (apiserver ready, default SA, node Ready): {seconds:.1f}s")
    yield machine, info
    t0 = time.monotonic()
    machine.destroy()
    print(f"\ndestroy of {PROFILE!r}: {time.monotonic() - t0:.1f}s")


def test_boot_reports_every_part_running(booted):
    machine, info = booted
    state = machine.state()
    assert (state.host, state.apiserver, state.kubelet) == ("running", "running", "running")
    assert info.apiserver_url == f"https://127.0.0.1:{info.apiserver_port}"
    assert info.docker_host.startswith("tcp://127.0.0.1:")
    assert {p.name for p in info.docker_cert_path.iterdir()} >= {"ca.pem", "cert.pem", "key.pem"}


def test_boot_again_is_idempotent(booted):
    machine, info = booted
    # The recorded daemons (pid + start time), not every descendant: the kubelet and dockerd
    # spawn short-lived helpers (runc, probes) at any moment.
    daemons_before = machine._load()["procs"]
    again = machine.boot()
    assert again == info
    assert machine._load()["procs"] == daemons_before  # nothing was restarted


def test_node_is_ready_and_version_is_v1_21(booted):
    _, info = booted
    nodes = rt.kubectl_json(info, "get", "nodes")["items"]
    real = [n for n in nodes if n["metadata"]["name"] == "localhost"]
    assert real, [n["metadata"]["name"] for n in nodes]
    ready = {c["type"]: c["status"] for c in real[0]["status"]["conditions"]}["Ready"]
    assert ready == "True"
    assert real[0]["status"]["nodeInfo"]["kubeletVersion"] == "v1.21.14"
    assert real[0]["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("docker://")
    server = json.loads(rt.kubectl(info, "version", "-o", "json").stdout)["serverVersion"]
    assert server["gitVersion"] == "v1.21.14"


def test_engine_is_named_after_the_profile_over_tls(booted):
    _, info = booted
    # this host's CA bundle variables are passed on as they are (never unset): TLS to the engine must
    # work with them in place, as it does for a user who has them set
    bundles = {k: os.environ.get(k) for k in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
    env = rt.docker_env(info)
    assert {k: env.get(k) for k in bundles} == bundles
    assert rt.docker(info, "info", "--format", "{{.Name}}").stdout.strip() == PROFILE
    assert {k: os.environ.get(k) for k in bundles} == bundles


def test_image_built_over_tls_runs_as_pod_with_logs_and_exec(booted, tmp_path):
    _, info = booted
    image = rt.build_hello_image(info, "rigtest/hello:v1", "b1234", tmp_path)
    rt.apply(info, rt.pod_manifest("hello", image))
    pod = rt.wait_pod_phase(info, "hello", "Running", timeout=90)
    assert pod["status"]["podIP"].startswith("10.244.")
    logs = wait_until(
        lambda: "build-id=b1234" in rt.kubectl(info, "logs", "hello").stdout, 30, "the hello pod's log line"
    )
    assert logs
    out = rt.kubectl(info, "exec", "hello", "--", "/bin/busybox", "echo", "exec-ok").stdout
    assert out.strip() == "exec-ok"


def test_latest_image_with_default_pull_policy_fails_to_pull(booted, tmp_path):
    _, info = booted
    image = rt.build_hello_image(info, "rigtest/latest:latest", "blatest", tmp_path)
    rt.apply(info, rt.pod_manifest("pulltrap", image, pull_policy=None))

    def waiting_reason():
        pod = rt.kubectl_json(info, "get", "pod", "pulltrap")
        for status in pod.get("status", {}).get("containerStatuses", []):
            reason = status.get("state", {}).get("waiting", {}).get("reason")
            if reason in ("ErrImagePull", "ImagePullBackOff"):
                return reason
        return None

    assert wait_until(waiting_reason, 90, "pod pulltrap to fail pulling its :latest image")


def test_fake_nodes_take_pods_nobody_built(booted):
    require_rig(kwok=True, root=True, busybox=True)
    machine, info = booted
    info = machine.boot(fake_nodes=2)
    assert info.fake_nodes == ["kwok-node-0", "kwok-node-1"]
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "fakeapp"},
        "spec": {
            "replicas": 4,
            "selector": {"matchLabels": {"app": "fakeapp"}},
            "template": {
                "metadata": {"labels": {"app": "fakeapp"}},
                "spec": {
                    "containers": [{"name": "c", "image": "example.invalid/nobody-built-this:1"}],
                    "nodeSelector": {"type": "kwok"},
                    "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}],
                },
            },
        },
    }
    rt.apply(info, json.dumps(deployment))
    rt.kubectl(info, "rollout", "status", "deployment/fakeapp", "--timeout=90s", timeout=100)
    pods = rt.kubectl_json(info, "get", "pods", "-l", "app=fakeapp")["items"]
    assert {p["spec"]["nodeName"] for p in pods} <= {"kwok-node-0", "kwok-node-1"}
    # the taint keeps ordinary pods on the real node, where the kubelet (not kwok) really runs them
    rt.apply(info, rt.pod_manifest("plain", "k8s.gcr.io/pause:3.4.1"))
    plain = rt.wait_pod_phase(info, "plain", "Running", timeout=60)
    assert plain["spec"]["nodeName"] == "localhost"
    assert plain["status"]["podIP"].startswith("10.244.")
    assert rt.node_ready(rt.kubectl_json(info, "get", "node", "localhost"))
