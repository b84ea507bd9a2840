"""A network per profile, as a minikube node has: one network namespace the rig creates and deletes.

Inside it (never in the host's namespace):
  eth0   a bridge carrying the node address, e.g. 192.168.49.2/24 (no dummy link type on these kernels)
  cni0   a bridge carrying the pod gateway 10.244.<i>.1/24; pods hang off routed veth pairs (cni/devrig-cni)
  lo     up; etcd and the control plane's private ports listen here
  net.ipv4.ip_forward = 1 (Service traffic is DNATed by kube-proxy and forwarded between pods)
There is no default route and no link to the host: a packet for any address outside the namespace fails
at once with "network unreachable".  The host reaches the node only through forwarders (devrig/forward.py)
listening on 127.0.0.1, as the docker driver publishes the node's ports on macOS.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import RigError

NETNS_DIR = Path("/run/netns")  # where `ip netns add` keeps the namespace (a bind mount of its nsfs file)
CLONE_NEWNET = 0x40000000
# minikube's docker driver gives its networks 192.168.49.0/24, then 192.168.58.0/24, ... (step 9)
FIRST_NODE_NET, NODE_NET_STEP = 49, 9
APISERVER_PORT, DOCKER_PORT = 8443, 2376


@dataclass(frozen=True)
class NodeNetwork:
    name: str  # the namespace's name under /run/netns
    index: int  # the profile's network index (node subnet and pod subnet derive from it)

    @property
    def path(self) -> Path:
        return NETNS_DIR / self.name

    @property
    def node_ip(self) -> str:
        return f"192.168.{FIRST_NODE_NET + NODE_NET_STEP * self.index}.2"

    @property
    def pod_cidr(self) -> str:
        return f"10.244.{self.index}.0/24"

    @property
    def pod_gateway(self) -> str:
        return f"10.244.{self.index}.1"

    def exists(self) -> bool:
        return self.path.exists()

    def prefix(self) -> list[str]:
        """argv prefix running a command inside the namespace (and nothing else changed)."""
        return ["nsenter", f"--net={self.path}", "--"]

    def ensure(self) -> None:
        """Create and configure the namespace unless it is there (idempotent: each step checks first)."""
        if not self.name.startswith("devrig-"):
            # the CNI plugin trusts only /run/netns/devrig-* as a node namespace (cni/devrig-cni, routed mode)
            raise RigError(f"node network namespace names start with 'devrig-', not {self.name!r}")
        if not self.exists():
            _run(["ip", "netns", "add", self.name], f"creating network namespace {self.name}")
        script = f"""
set -e
ip link set lo up
ip link show eth0 >/dev/null 2>&1 || ip link add eth0 type bridge
ip -4 addr show dev eth0 | grep -q ' {self.node_ip}/24 ' || ip addr add {self.node_ip}/24 dev eth0
ip link set eth0 up
ip link show cni0 >/dev/null 2>&1 || ip link add cni0 type bridge
ip -4 addr show dev cni0 | grep -q ' {self.pod_gateway}/24 ' || ip addr add {self.pod_gateway}/24 dev cni0
ip link set cni0 up
echo 1 > /proc/sys/net/ipv4/ip_forward
"""
        self.check_not_host()
        _run([*self.prefix(), "sh", "-c", script], f"configuring network namespace {self.name}")

    def check_not_host(self) -> None:
        """Refuse to touch a namespace that is the host's (the path must be a namespace of its own)."""
        try:
            own = ns_inode(self.path)
        except (OSError, ValueError) as exc:
            raise RigError(f"cannot read the network namespace {self.path} ({exc}); refusing to configure it")
        if own in host_namespaces():
            raise RigError(f"{self.path} is the host's network namespace; refusing to configure it")

    def delete(self) -> None:
        if self.exists():
            _run(["ip", "netns", "delete", self.name], f"deleting network namespace {self.name}")

    def members(self) -> set[int]:
        """PIDs of live processes in this namespace."""
        try:
            own = ns_inode(self.path)
        except OSError:
            return set()
        out = set()
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if ns_inode(f"/proc/{entry}/ns/net") == own:
                        out.add(int(entry))
                except (OSError, ValueError):
                    continue
        return out


def ns_inode(path: str | Path) -> int:
    """A namespace file's inode number: /proc/1/ns/* may refuse stat() here, but readlink() still answers."""
    try:
        return os.stat(path).st_ino
    except PermissionError:
        link = os.readlink(path)  # e.g. "net:[4026531833]"
        return int(link[link.index("[") + 1 : -1])


def host_namespaces() -> set[int]:
    """The rig's own network namespace (the host's) and init's, where init's is readable at all."""
    found = {ns_inode("/proc/self/ns/net")}
    try:
        found.add(ns_inode("/proc/1/ns/net"))
    except (OSError, ValueError):
        pass  # hidden from us here (a sandboxed init); our own namespace is the host's
    return found


def same_namespace(a: str | Path, b: str | Path) -> bool:
    return ns_inode(a) == ns_inode(b)


def _run(argv: list[str], what: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise RigError(f"{what} failed ({' '.join(argv[:4])} ...): {result.stderr.strip() or result.stdout.strip()}")


_libc = ctypes.CDLL(None, use_errno=True)


def setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns(CLONE_NEWNET): {os.strerror(err)}")


@contextlib.contextmanager
def entered(path: str | Path):
    """Run the block with the calling thread in the network namespace at `path`.

    A network namespace is a per-thread attribute and a socket keeps the namespace it was made in, so a
    socket created inside the block talks inside the namespace for the rest of its life.
    """
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(str(path), os.O_RDONLY)
    try:
        setns(target)
        try:
            yield
        finally:
            setns(home)
    finally:
        os.close(target)
        os.close(home)


def connect(path: str | Path | None, host: str, port: int, timeout: float = 3) -> socket.socket:
    """A TCP connection to host:port as seen from the namespace at `path` (None: this namespace)."""
    if path is None:
        return socket.create_connection((host, port), timeout=timeout)
    with entered(path):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect((host, port))
    except OSError:
        sock.close()
        raise
    return sock
