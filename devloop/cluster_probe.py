"""Is the profile's cluster running? Told from minikube's own files and one request to its API server.

`minikube status` inspects the driver's container or VM and the kubelet on every call (0.5 s on the
test cluster's stand-in, more on a real machine). When minikube's config.json names the node, the
kube context points at that node with minikube's CA (the context guard), and the API server answers
`/readyz` and reports the node Ready through that context, the cluster runs: that is all `up` and
`status` need to know, for two requests. Anything else (no config, another server, no answer, a
node not Ready) returns None and the caller asks minikube, which also explains what is wrong.
"""

from __future__ import annotations

from typing import Any

from devloop.errors import DevloopError

# A running API server answers in milliseconds; a stopped one refuses at once. Only a machine that
# is gone (a VM's address with nothing behind it) would wait this long before minikube is asked.
PROBE_TIMEOUT = 3.0


def running(session: Any) -> Any | None:
    """A ClusterStatus saying Running, or None when only minikube can tell."""
    from devloop.adapters.minikube import ClusterStatus

    read_config = getattr(session.minikube, "profile_config", None)
    if read_config is None:
        return None  # a stand-in adapter without minikube's files: ask it
    try:
        config = read_config()
        if config is None or config.endpoint is None:
            return None
        kube = session.kube()  # the context guard runs first, against config.json and the CA
        if not kube.api_ready(timeout=PROBE_TIMEOUT):
            return None
        node = kube.node_ready(config.profile, timeout=PROBE_TIMEOUT)
    except DevloopError:
        return None
    if node is not True:
        return None
    return ClusterStatus("Running", name=config.profile, host="Running", kubelet="Running", apiserver="Running",
                         kubeconfig="Configured")
