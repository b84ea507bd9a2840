"""Fake nodes through kwok, beside the real node.

kwok only manages Nodes annotated `kwok.x-k8s.io/node: fake` (never --manage-all-nodes: it would fake the
real node's pods too).  Fake nodes are labelled `type: kwok` and tainted `kwok.x-k8s.io/node=fake:NoSchedule`,
so only pods that tolerate that taint (and usually select `type: kwok`) land there:

    tolerations: [{key: kwok.x-k8s.io/node, operator: Exists, effect: NoSchedule}]
    nodeSelector: {type: kwok}
"""

from __future__ import annotations

from pathlib import Path

from . import paths
from .kapi import Api

ANNOTATION = "kwok.x-k8s.io/node"
TAINT = {"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"}
LABEL = {"type": "kwok"}


def node_name(index: int) -> str:
    return f"kwok-node-{index}"


def argv(kubeconfig: Path, server_port: int) -> list[str]:
    return [
        str(paths.kwok_bin()),
        f"--kubeconfig={kubeconfig}",
        "--manage-all-nodes=false",
        f"--manage-nodes-with-annotation-selector={ANNOTATION}=fake",
        f"--server-address=127.0.0.1:{server_port}",
        # fake nodes and pods get addresses nobody dials; keep them on loopback all the same
        "--node-ip=127.0.0.1",
    ]


def node_object(name: str) -> dict:
    capacity = {"cpu": "32", "memory": "256Gi", "pods": "110"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                **LABEL,
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/role": "agent",
            },
        },
        "spec": {"taints": [TAINT]},
        "status": {
            "capacity": capacity,
            "allocatable": capacity,
            "phase": "Running",
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "kubeletVersion": "fake",
                "kubeProxyVersion": "fake",
            },
        },
    }


def ensure_nodes(api: Api, count: int) -> list[str]:
    names = [node_name(i) for i in range(count)]
    for name in names:
        api.create("/api/v1/nodes", node_object(name))
    return names
