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
3. else, for the docker driver, what docker-env computes where the ports are forwarded: the host port the
   user's own Docker published for the node container's 2376/tcp (`docker container inspect`, read-only,
   through a local engine: _inspected), used only when the container is running and labelled with the
   profile; the caller checks the daemon behind it is the profile's before using it;
4. else nothing, and the caller says so. For the docker and podman drivers config.json's node IP is always
   the container's own address (kic.go:294-297, saved by machine.go:138-152), also where the host cannot
   reach it and minikube forwards the ports to 127.0.0.1 instead (Docker Desktop, macOS, Windows, WSL,
   rootless, a remote DOCKER_HOST: driver.go:243-263, NeedsPortForward, decided from `docker info`, not
   on disk). docker-env then prints the forwarded port (docker-env.go:350-352), which only
   `docker container inspect` knows (step 3); qemu's builtin network forwards its engine port the same way
   (:355-356).
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
    inspected = _inspected(profile, config)
    if inspected is not None:
        return inspected
    return _derived(profile, config)


# How long the user's own Docker engine gets to answer `docker container inspect` (a local socket answers in
# milliseconds); then docker-env is asked instead.
INSPECT_TIMEOUT = 1.0
_NAME_LABEL = "name.minikube.sigs.k8s.io"  # minikube's label on a node container: the profile (kic.go)


def _inspected(profile: str, config: ProfileConfig) -> tuple[dict[str, str], str] | None:
    """docker-env's answer for the docker driver computed as minikube computes it where it forwards the
    engine's port (docker-env.go:350-352, oci.ForwardedPort): the host port the user's Docker published for
    the node container's 2376/tcp, on 127.0.0.1. Read-only (GET /containers/<profile>/json) and only through a
    local engine (a unix socket or a loopback tcp DOCKER_HOST); the container must be running and carry
    minikube's label naming this profile. None when any of that does not hold: docker-env is asked then.
    Whoever uses the answer still checks the daemon behind it is named after the profile (Session.docker)."""
    if config.driver != "docker" or len(config.nodes) > 1:
        return None  # podman has its own CLI; docker-env refuses several nodes
    from devloop.adapters.host import user_docker_env

    engine = user_docker_env()
    if engine is None:
        return None
    container = _inspect_container(engine, profile)
    if not isinstance(container, dict):
        return None
    labels = (container.get("Config") or {}).get("Labels") or {}
    if labels.get(_NAME_LABEL) != profile or not (container.get("State") or {}).get("Running"):
        return None
    bindings = ((container.get("NetworkSettings") or {}).get("Ports") or {}).get(f"{DOCKERD_PORT}/tcp") or []
    ports = [
        str(b.get("HostPort"))
        for b in bindings
        if isinstance(b, dict) and b.get("HostIp") in ("127.0.0.1", "0.0.0.0", "") and str(b.get("HostPort")).isdigit()
    ]
    certs = config.docker_cert_dir
    if not ports or not (certs / "cert.pem").is_file():
        return None
    env = {
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_HOST": f"tcp://127.0.0.1:{ports[0]}",
        "DOCKER_CERT_PATH": str(certs),
        "MINIKUBE_ACTIVE_DOCKERD": profile,
    }
    return env, (
        f"the port Docker published for the node container's {DOCKERD_PORT}/tcp (docker container inspect "
        f"{profile} through {engine['DOCKER_HOST']}, as minikube's docker-env finds it)"
    )


def _inspect_container(engine: dict[str, str], name: str) -> object:
    """`docker container inspect NAME` through a local engine (unix socket or loopback tcp), or None."""
    import http.client
    import json
    from urllib.parse import quote, urlsplit

    host = engine.get("DOCKER_HOST", "")
    parts = urlsplit(host)
    conn: http.client.HTTPConnection
    if parts.scheme == "unix":

        class _Unix(http.client.HTTPConnection):
            def connect(self) -> None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(INSPECT_TIMEOUT)
                try:
                    sock.connect(parts.path)
                except OSError:
                    sock.close()
                    raise
                self.sock = sock

        conn = _Unix("localhost", timeout=INSPECT_TIMEOUT)
    elif parts.scheme == "tcp" and parts.hostname in _LOOPBACK and parts.port:
        if engine.get("DOCKER_TLS_VERIFY") or engine.get("DOCKER_CERT_PATH"):
            return None  # a TLS engine of the user's: docker-env then (its files are not ours to read here)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=INSPECT_TIMEOUT)
    else:
        return None
    try:
        conn.request("GET", f"/containers/{quote(name, safe='')}/json")
        response = conn.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()
    if response.status != 200:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


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
