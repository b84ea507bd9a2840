"""devrig: the test rig's process manager.

Boots, per minikube profile, a real Kubernetes control plane (etcd, kube-apiserver, controller-manager,
scheduler), a Docker engine like minikube's and a real kubelet node, all in a network namespace of the profile's
own (``devrig-<id>``, node 192.168.49.2 for the first) that the host reaches only through loopback forwarders;
``DEVRIG_NETWORK=loopback`` keeps the old layout on host loopback ports (tests/rig/README.md, "The network").
Entry point: :class:`devrig.machine.Machine`.
"""


class RigError(Exception):
    """A rig part failed; the message says what and where to look (log file)."""


class RigMissing(RigError):
    """A rig binary is not built/installed; the message says how to get it."""


class RigTimeout(RigError):
    """A bounded wait ran out; the message names what was awaited."""
