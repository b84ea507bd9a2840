"""Cluster DNS on the rig (DEVRIG_COREDNS=1, devrig/coredns.py): CoreDNS v1.8.0 from its Go module behind
kube-dns 10.96.0.10, and the kubelet's clusterDNS, as minikube's kubeadm sets them. A pod resolves Service names,
reaches a Service by name, and any other name fails at once (no upstream: nothing leaves the namespace).

Needs the CoreDNS binary (`scripts/build-rig --with-coredns`): skipped without it, since it is built only when
asked for."""

from __future__ import annotations

import json
import os

import pytest

from devrig import coredns, paths
from devrig import testing as rt
from support import require_rig, wait_until

pytestmark = [pytest.mark.rig, pytest.mark.slow]

PROFILE = "rigdns"


@pytest.fixture(scope="module")
def booted(tmp_path_factory):
    require_rig(root=True)
    if not os.access(paths.k8s_bin(paths.DEFAULT_KUBERNETES_VERSION, "kube-proxy"), os.X_OK):
        pytest.skip(f"kube-proxy is not built; {paths.BUILD_HINT}")
    if not os.access(coredns.binary(), os.X_OK):
        pytest.skip(f"CoreDNS is built only when asked: scripts/build-rig --with-coredns ({coredns.binary()})")
    home = tmp_path_factory.mktemp("rig-dns") / ".minikube"
    saved = {k: os.environ.get(k) for k in ("DEVRIG_NETWORK", "DEVRIG_COREDNS")}
    os.environ.update(DEVRIG_NETWORK="netns", DEVRIG_COREDNS="1")
    try:
        machine, info, seconds = rt.boot_machine(PROFILE, home, timeout=240)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    print(f"\nboot of {PROFILE!r} with CoreDNS: {seconds:.1f}s")
    yield machine, info
    machine.destroy()


def test_kube_dns_is_kubeadms_service_and_coredns_runs(booted):
    _, info = booted
    svc = rt.kubectl_json(info, "-n", "kube-system", "get", "service", "kube-dns")
    assert svc["spec"]["clusterIP"] == coredns.CLUSTER_DNS
    assert sorted((p["port"], p["protocol"]) for p in svc["spec"]["ports"]) == [(53, "TCP"), (53, "UDP"), (9153, "TCP")]
    dep = rt.kubectl_json(info, "-n", "kube-system", "get", "deployment", "coredns")
    assert dep["status"].get("readyReplicas") == 1
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == coredns.IMAGE
    corefile = rt.kubectl_json(info, "-n", "kube-system", "get", "configmap", "coredns")["data"]["Corefile"]
    assert "kubernetes cluster.local" in corefile and "forward" not in corefile and "loop" not in corefile


def test_a_pod_resolves_and_reaches_services_by_name_and_nothing_else(booted):
    _, info = booted
    script = (
        "cat /etc/resolv.conf; getent hosts kubernetes.default.svc.cluster.local; getent hosts kube-dns.kube-system;"
        " if getent hosts deb.debian.org; then echo outside=resolved; else echo outside=failed; fi;"
        " curl -sk -o /dev/null -w 'code=%{http_code}\\n' https://kubernetes.default.svc.cluster.local/version;"
        " sleep 3600"
    )
    manifest = json.loads(rt.pod_manifest("dnsprobe", "bitnami/minideb:jessie"))
    manifest["spec"]["containers"][0]["command"] = ["sh", "-c", script]
    rt.apply(info, json.dumps(manifest))
    rt.wait_pod_phase(info, "dnsprobe", "Running", timeout=90)
    out = wait_until(
        lambda: (lambda t: t if "code=" in t else None)(rt.kubectl(info, "logs", "dnsprobe").stdout),
        60,
        "the probe pod's lookups",
    )
    assert f"nameserver {coredns.CLUSTER_DNS}" in out
    assert "search default.svc.cluster.local svc.cluster.local cluster.local" in out
    assert "10.96.0.1       kubernetes.default.svc.cluster.local" in out
    assert f"{coredns.CLUSTER_DNS}      kube-dns.kube-system.svc.cluster.local" in out
    assert "outside=failed" in out
    assert "code=200" in out
