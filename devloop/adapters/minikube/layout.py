"""The platform's layout as minikube set it up, for `devloop doctor`: which of the node's ports the host reaches
through a forward, where docker-env points and why. Read from what is on disk (config.json, the kubeconfig,
docker-env's answer devloop recorded); nothing here connects anywhere, least of all to the node's address.

For the docker and podman drivers config.json's node address is always the container's own (kic.go:294-297),
reachable from the host only with a rootful Docker Engine on Linux. Everywhere else (Docker Desktop, macOS,
Windows, WSL, rootless, a remote DOCKER_HOST: driver.go:243-263 NeedsPortForward) minikube publishes the
node's ports on 127.0.0.1 (`--publish=127.0.0.1::8443` and the same for 22, 2376, 5000 and 32443, oci.go) and
writes the forwarded ports only in the kubeconfig (8443) and docker-env's answer (2376). minikube's own choice
shows in the kubeconfig: a loopback server for a node with another address means it forwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from devloop.adapters.minikube.home import ProfileConfig

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_KIC_DRIVERS = frozenset({"docker", "podman"})
API_PORT = 8443  # constants.APIServerPort, the in-node port
DOCKERD_PORT = 2376


@dataclass(frozen=True)
class LayoutLine:
    name: str
    status: str  # ok | warn
    detail: str
    fix: str = ""


def _host_port(url: str) -> tuple[str, int] | None:
    try:
        parts = urlsplit(url if "://" in url else f"tcp://{url}")
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return parts.hostname, port or (443 if parts.scheme == "https" else 0)


def forwarded(config: ProfileConfig, server: str) -> bool | None:
    """Whether minikube forwards the node's ports to the host's loopback (None: cannot tell: no node address or
    no server)."""
    node = config.primary
    where = _host_port(server)
    if node is None or not node.ip or where is None:
        return None
    return where[0] in _LOOPBACK and node.ip not in _LOOPBACK


def layout_lines(
    config: ProfileConfig, server: str | None, docker_env: dict[str, str] | None, docker_env_why: str
) -> list[LayoutLine]:
    """The ports line and the docker-env line. `server` is the kube context's API server URL; `docker_env` is
    docker-env's answer as the read-only path knows it (None, and why, when it does not)."""
    node = config.primary
    node_text = f"{node.ip}:{node.port or API_PORT}" if node and node.ip else ""
    lines: list[LayoutLine] = []
    is_forwarded = forwarded(config, server or "")
    api = _host_port(server or "")
    if is_forwarded is None:
        missing = []
        if not node_text:
            missing.append("config.json names no node address yet (saved before the host got one)")
        if not server:
            missing.append("the kube context names no API server")
        elif api is None:
            missing.append(f"the kube context's server {server!r} is not a URL")
        lines.append(LayoutLine("ports", "warn", "not known: " + "; ".join(missing), "`devloop up` writes both"))
    elif is_forwarded:
        assert api is not None
        engine = _host_port(docker_env.get("DOCKER_HOST", "")) if docker_env else None
        engine_text = (
            f"{DOCKERD_PORT} -> {engine[0]}:{engine[1]}"
            if engine
            else f"{DOCKERD_PORT} -> a port only docker-env knows (not recorded yet)"
        )
        lines.append(
            LayoutLine(
                "ports",
                "ok",
                f"forwarded: the node's address {node_text} is the {config.driver} container's own, which this host "
                "does not reach (minikube forwards on Docker Desktop, macOS, Windows, WSL, rootless and remote "
                f"Docker), so its ports are published on 127.0.0.1: {API_PORT} -> {api[0]}:{api[1]} (the "
                f"kubeconfig's server), {engine_text}; config.json keeps {node_text}",
            )
        )
    else:
        lines.append(
            LayoutLine(
                "ports",
                "ok",
                f"not forwarded: the host reaches the node at its own address {node_text} (the kubeconfig's server "
                f"{server}); with the {config.driver} driver that is a rootful Docker Engine on Linux",
            )
        )
    lines.append(_docker_env_line(config, docker_env, docker_env_why, is_forwarded))
    return lines


def _docker_env_line(
    config: ProfileConfig, env: dict[str, str] | None, why: str, is_forwarded: bool | None
) -> LayoutLine:
    if env is None:
        return LayoutLine("docker-env points at", "ok", f"not known without minikube: {why}", "")
    host = env.get("DOCKER_HOST", "")
    where = _host_port(host)
    node = config.primary
    if where is not None and where[0] in _LOOPBACK:
        reason = f"the node's dockerd ({DOCKERD_PORT}) forwarded to the host's loopback, as minikube does here"
    elif where is not None and node is not None and where[0] == node.ip:
        reason = (
            "the node's own address: the host reaches it"
            if config.driver not in _KIC_DRIVERS or is_forwarded is False
            else "the node's own address"
        )
    else:
        reason = "an address minikube gave"
    return LayoutLine("docker-env points at", "ok", f"{host}: {reason} ({why})")
