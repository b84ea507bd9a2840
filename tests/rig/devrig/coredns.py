"""Cluster DNS for a profile, as minikube's kubeadm sets it up: CoreDNS v1.8.0 in kube-system behind kube-dns.

Asked for, not default: a profile created with `DEVRIG_COREDNS=1` (it needs the node network, the default
`DEVRIG_NETWORK=netns`, since Services are what make it work) and the binary `scripts/build-rig --with-coredns`
builds from CoreDNS's Go module (static) into `$DEVRIG_CACHE/coredns/v1.8.0/coredns`.

What the profile gets is what kubeadm v1.21 deploys (cmd/kubeadm/app/phases/addons/dns/manifests.go): the
ServiceAccount, ClusterRole and ClusterRoleBinding `coredns`/`system:coredns`, the ConfigMap `coredns` with a
Corefile, the Deployment `coredns` (image `k8s.gcr.io/coredns/coredns:v1.8.0`, built here FROM scratch with the
binary: no registry is reachable) and the Service `kube-dns` at 10.96.0.10 (the tenth address of minikube's
service CIDR 10.96.0.0/12), and the kubelet's `clusterDNS: [10.96.0.10]`, `clusterDomain: cluster.local`.

The Corefile is kubeadm's without `forward . /etc/resolv.conf` and `loop`: the pods' upstream (the node's
resolv.conf) is 127.0.0.1, where nothing answers (nothing leaves the profile's namespace), and `loop` would see
CoreDNS forwarding to itself. So cluster names resolve (`<svc>.<ns>.svc.cluster.local`) and any other name fails
at once (SERVFAIL), as before. minikube's `host.minikube.internal` hosts entry is left out: the profile's
namespace has no link to the host.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from . import RigError, RigMissing, paths
from .kapi import Api

VERSION = "v1.8.0"  # minikube (kubeadm) for Kubernetes 1.21
IMAGE = f"k8s.gcr.io/coredns/coredns:{VERSION}"
CLUSTER_DNS = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
NS = "kube-system"
LABEL = "devrig.coredns"
COREFILE = """.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    cache 30
    reload
    loadbalance
}
"""


def binary() -> Path:
    return paths.cache_dir() / "coredns" / VERSION / "coredns"


def requested() -> bool:
    return os.environ.get("DEVRIG_COREDNS") == "1"


def require() -> None:
    if not os.access(binary(), os.X_OK):
        raise RigMissing(
            f"DEVRIG_COREDNS=1 needs CoreDNS {VERSION} at {binary()}: run scripts/build-rig --with-coredns"
        )


def ensure_image(has_image: Callable[[str], bool], cli_env: dict[str, str], engine_name: str) -> None:
    if has_image(IMAGE):
        return
    require()
    with tempfile.TemporaryDirectory(prefix="devrig-coredns-") as ctx:
        Path(ctx, "coredns").write_bytes(binary().read_bytes())
        os.chmod(Path(ctx, "coredns"), 0o755)
        Path(ctx, "Dockerfile").write_text(
            f'FROM scratch\nCOPY coredns /coredns\nLABEL {LABEL}="CoreDNS {VERSION} built from its Go module by '
            f'scripts/build-rig --with-coredns"\nEXPOSE 53 53/udp\nENTRYPOINT ["/coredns"]\n'
        )
        result = subprocess.run(
            [str(paths.docker_cli()), "build", "-q", "-t", IMAGE, ctx],
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=180,
        )
    if result.returncode != 0:
        raise RigError(f"building {IMAGE} in the {engine_name!r} engine failed: {result.stderr or result.stdout}")


def manifests() -> list[tuple[str, dict]]:
    """(collection path, object) for each object kubeadm's CoreDNS addon makes, in creation order."""
    labels = {"k8s-app": "kube-dns"}
    return [
        (
            f"/api/v1/namespaces/{NS}/serviceaccounts",
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "coredns", "namespace": NS}},
        ),
        (
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": "system:coredns"},
                "rules": [
                    {
                        "apiGroups": [""],
                        "resources": ["endpoints", "services", "pods", "namespaces"],
                        "verbs": ["list", "watch"],
                    },
                    {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]},
                    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
                ],
            },
        ),
        (
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "system:coredns"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:coredns"},
                "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": NS}],
            },
        ),
        (
            f"/api/v1/namespaces/{NS}/configmaps",
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "coredns", "namespace": NS},
                "data": {"Corefile": COREFILE},
            },
        ),
        (
            f"/apis/apps/v1/namespaces/{NS}/deployments",
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "coredns", "namespace": NS, "labels": labels},
                "spec": {
                    "replicas": 1,  # minikube scales kubeadm's two down to one
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "priorityClassName": "system-cluster-critical",
                            "serviceAccountName": "coredns",
                            "dnsPolicy": "Default",
                            "tolerations": [
                                {"key": "CriticalAddonsOnly", "operator": "Exists"},
                                {"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"},
                                {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
                            ],
                            "nodeSelector": {"kubernetes.io/os": "linux"},
                            "volumes": [
                                {
                                    "name": "config-volume",
                                    "configMap": {
                                        "name": "coredns",
                                        "items": [{"key": "Corefile", "path": "Corefile"}],
                                    },
                                }
                            ],
                            "containers": [
                                {
                                    "name": "coredns",
                                    "image": IMAGE,
                                    "imagePullPolicy": "IfNotPresent",
                                    "args": ["-conf", "/etc/coredns/Corefile"],
                                    "resources": {
                                        "limits": {"memory": "170Mi"},
                                        "requests": {"cpu": "100m", "memory": "70Mi"},
                                    },
                                    "volumeMounts": [
                                        {"name": "config-volume", "mountPath": "/etc/coredns", "readOnly": True}
                                    ],
                                    "ports": [
                                        {"containerPort": 53, "name": "dns", "protocol": "UDP"},
                                        {"containerPort": 53, "name": "dns-tcp", "protocol": "TCP"},
                                        {"containerPort": 9153, "name": "metrics", "protocol": "TCP"},
                                    ],
                                    "livenessProbe": {
                                        "httpGet": {"path": "/health", "port": 8080, "scheme": "HTTP"},
                                        "initialDelaySeconds": 60,
                                        "timeoutSeconds": 5,
                                        "successThreshold": 1,
                                        "failureThreshold": 5,
                                    },
                                    "readinessProbe": {
                                        "httpGet": {"path": "/ready", "port": 8181, "scheme": "HTTP"},
                                        "periodSeconds": 1,
                                    },
                                    "securityContext": {
                                        "allowPrivilegeEscalation": False,
                                        "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["all"]},
                                        "readOnlyRootFilesystem": True,
                                    },
                                }
                            ],
                        },
                    },
                },
            },
        ),
        (
            f"/api/v1/namespaces/{NS}/services",
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": "kube-dns",
                    "namespace": NS,
                    "labels": {**labels, "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS"},
                    "annotations": {"prometheus.io/port": "9153", "prometheus.io/scrape": "true"},
                },
                "spec": {
                    "clusterIP": CLUSTER_DNS,
                    "selector": labels,
                    "ports": [
                        {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                        {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                        {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153},
                    ],
                },
            },
        ),
    ]


def deploy(api: Api) -> int:
    """Create the objects that are not there yet (an existing one is left as it is); return how many were made."""
    made = 0
    for path, obj in manifests():
        if api.create(path, obj) is not None:
            made += 1
    return made


def ready(api: Api) -> bool:
    dep = api.get(f"/apis/apps/v1/namespaces/{NS}/deployments/coredns")
    return bool(dep and (dep.get("status") or {}).get("readyReplicas", 0) >= 1)
