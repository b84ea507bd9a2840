"""Is the profile's cluster running? Told from minikube's own files and one request to its API server.

`minikube status` inspects the driver's container or VM and the kubelet on every call (0.5 s on the
test cluster's stand-in, seconds on a loaded machine). When minikube's config.json names the node, the
kube context passes the guard (config.json's endpoint, minikube's CA, the node minikube labelled with
the profile's name) and that primary node is Ready, the cluster runs: that is all `up` and `status`
need to know. Anything else (no config, no answer, a node not Ready) returns None and the caller asks
minikube, which also explains what is wrong. `up --fresh` and starts always go through minikube.
"""

from __future__ import annotations

from typing import Any

from devloop.base.errors import DevloopError

# A running API server answers in milliseconds and a stopped one refuses at once; only an address with
# nothing behind it (a VM that is gone) waits this long before minikube is asked.
PROBE_TIMEOUT = 3.0


def running(session: Any) -> Any | None:
    """A ClusterStatus saying Running, or None when only minikube can tell."""
    from devloop.adapters.minikube.cli import ClusterStatus

    if session.dry_run:
        return None  # a plan: ask the double
    try:
        config = session.minikube.profile_config()
        if config is None or config.endpoint is None:
            return None
        kube = session.kube()  # the context guard runs first
        probe = getattr(kube, "minikube_primary_node", None)
        node = probe(timeout=PROBE_TIMEOUT) if probe is not None else None
    except DevloopError:
        session.forget_cluster_state()  # whatever the guard kept belongs to a cluster that did not answer
        return None
    if not node or node.get("profile") != config.profile or not node.get("ready"):
        return None
    return ClusterStatus(
        "Running", name=config.profile, host="Running", kubelet="Running", apiserver="Running", kubeconfig="Configured"
    )
