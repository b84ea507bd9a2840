"""docker-env's answer without running `minikube docker-env`, for the commands that must stay read-only.

`minikube docker-env` is not a query: it restarts an inactive dockerd (docker-env.go:345, 394-399), and
with the containerd runtime it starts nerdctld and an ssh-agent (:318-341). `status` and `doctor` must not
change the cluster, so they take the answer from disk:

1. docker-env's last answer to devloop, kept while the profile's config.json is the one it was read with
   (minikube_home.DockerEnvCache: a start rewrites config.json, which drops it);
2. else, for a VM driver (kvm2, hyperkit, qemu on a socket network, ...), what docker-env computes:
   `tcp://<node IP>:2376` with `<home>/certs` (docker-env.go:349, 369, 553-554; constants.go:51), used only
   if that address accepts a TCP connection within GUESS_CONNECT_TIMEOUT (a VM that is gone leaves an
   address with nothing behind it, and the engine client would wait a minute on it);
3. else nothing, and the caller says so. For the docker and podman drivers config.json's node IP is always
   the container's own address (kic.go:294-297, saved by machine.go:138-152), also where the host cannot
   reach it and minikube forwards the ports to 127.0.0.1 instead (Docker Desktop, macOS, Windows, WSL,
   rootless, a remote DOCKER_HOST: driver.go:243-263, NeedsPortForward, decided from `docker info`, not
   on disk). docker-env then prints the forwarded port (docker-env.go:350-352), which only
   `docker container inspect` knows; qemu's builtin network forwards its engine port the same way (:355-356).
"""

from __future__ import annotations

import socket
from pathlib import Path

from devloop.adapters.minikube.home import DockerEnvCache, ProfileConfig, read_profile_config

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
DOCKERD_PORT = 2376
# A node's dockerd on a reachable address accepts in milliseconds; a guessed address gets this long, not the
# engine client's minute, before the caller is told why there is no engine.
GUESS_CONNECT_TIMEOUT = 1.5
# minikube's kic drivers: the node IP on disk is the container's, whether or not the host can reach it
_KIC_DRIVERS = frozenset({"docker", "podman"})
_NO_DOCKERD_DRIVERS = frozenset({"none", "mock", ""})  # docker-env refuses the none driver
_QEMU_DRIVERS = frozenset({"qemu", "qemu2"})
_QEMU_FORWARDING_NETWORKS = frozenset({"builtin", "user"})  # pkg/network IsBuiltinQEMU


def read_only_docker_env(profile: str, cache_dir: Path) -> tuple[dict[str, str] | None, str]:
    """(env, where it came from), or (None, why there is none)."""
    config = read_profile_config(profile)
    if config is None:
        return None, f"minikube has no profile {profile!r}"
    if config.container_runtime not in ("", "docker"):
        return None, (
            f"profile {profile!r} runs the {config.container_runtime} runtime: there is no dockerd to "
            "build into (devloop loads images instead)"
        )
    cached = DockerEnvCache(cache_dir, profile).get(config.key)
    if cached:
        return cached, "docker-env's answer from devloop's last run (the profile's config.json is unchanged since)"
    return _derived(profile, config)


def _not_on_disk(config: ProfileConfig) -> str | None:
    """Why config.json cannot say where docker-env points, or None when it can (a VM's own address)."""
    run_it = (
        "`minikube docker-env` knows, but it restarts dockerd (and with containerd starts helpers), so read-only "
        "commands do not run it; `devloop up` asks it and records the answer"
    )
    if config.driver in _KIC_DRIVERS:
        return (
            f"the {config.driver} driver may forward the engine's port to 127.0.0.1 (Docker Desktop, macOS, WSL, "
            "rootless, a remote DOCKER_HOST), and config.json keeps only the container's own address, so it does "
            f"not tell where dockerd answers; {run_it}"
        )
    if config.driver in _QEMU_DRIVERS and config.network in _QEMU_FORWARDING_NETWORKS:
        return f"qemu's {config.network} network forwards the engine's port (not on disk); {run_it}"
    if config.driver in _NO_DOCKERD_DRIVERS:
        return f"the {config.driver or 'unknown'} driver has no docker-env; {run_it}"
    return None


def _derived(profile: str, config: ProfileConfig) -> tuple[dict[str, str] | None, str]:
    why = _not_on_disk(config)
    if why is not None:
        return None, why
    node = config.primary
    certs = config.docker_cert_dir
    if node is None or not node.ip or node.ip in _LOOPBACK:
        return None, f"config.json names no address for the node (saved before the {config.driver} host got one)"
    if not (certs / "cert.pem").is_file():
        return None, f"minikube's Docker client certificates are not in {certs}"
    try:
        socket.create_connection((node.ip, DOCKERD_PORT), timeout=GUESS_CONNECT_TIMEOUT).close()
    except OSError as exc:
        return None, (
            f"the node's address from config.json, {node.ip}:{DOCKERD_PORT}, did not accept a connection within "
            f"{GUESS_CONNECT_TIMEOUT:g} s ({exc}); the {config.driver} machine may be stopped or gone"
        )
    env = {
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_HOST": f"tcp://{node.ip}:{DOCKERD_PORT}",
        "DOCKER_CERT_PATH": str(certs),
        "MINIKUBE_ACTIVE_DOCKERD": profile,
    }
    return env, f"derived from {config.path} (the {config.driver} node's address, port {DOCKERD_PORT}, {certs})"


def remember_docker_env(profile: str, cache_dir: Path, env: dict[str, str]) -> None:
    """Keep docker-env's answer for the read-only commands, keyed by the config.json it belongs to."""
    config = read_profile_config(profile)
    if config is not None:
        DockerEnvCache(cache_dir, profile).put(config.key, env)


def _confirmed_path(profile: str, cache_dir: Path) -> Path:
    return Path(cache_dir) / "context-guard" / f"{profile}.json"


def confirmed_server(profile: str, cache_dir: Path) -> str | None:
    """The API server URL `minikube status` last confirmed (Kubeconfig: Configured) for this profile, if its
    config.json is still the one it was confirmed with; else None."""
    import json

    config = read_profile_config(profile)
    try:
        data = json.loads(_confirmed_path(profile, cache_dir).read_text())
    except (OSError, ValueError):
        return None
    if config is None or not isinstance(data, dict) or data.get("key") != config.key:
        return None
    return str(data.get("server") or "") or None


def remember_confirmed_server(profile: str, cache_dir: Path, server: str) -> None:
    import json
    import os
    import tempfile

    config = read_profile_config(profile)
    if config is None:
        return
    path = _confirmed_path(profile, cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".guard-", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump({"key": config.key, "server": server}, fh)
    os.replace(tmp, path)
