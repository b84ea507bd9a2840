"""docker-env's answer without running `minikube docker-env`, for the commands that must stay read-only.

`minikube docker-env` is not a query: it restarts an inactive dockerd (docker-env.go:345, 394-399), and
with the containerd runtime it starts nerdctld and an ssh-agent (:318-341). `status` and `doctor` must not
change the cluster, so they take the answer from disk:

1. docker-env's last answer to devloop, kept while the profile's config.json is the one it was read with
   (minikube_home.DockerEnvCache: a start rewrites config.json, which drops it);
2. else, where no port is forwarded (the docker driver on Linux, rootful), what docker-env computes:
   `tcp://<node IP>:2376` with `<home>/certs` (docker-env.go:349, 369, 553-554; constants.go:51);
3. else nothing, and the caller says so (a forwarded port is only known to `docker container inspect`).
"""

from __future__ import annotations

from pathlib import Path

from devloop.adapters.minikube.home import DockerEnvCache, read_profile_config

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
DOCKERD_PORT = 2376


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
    node = config.primary
    certs = config.docker_cert_dir
    if (
        config.driver == "docker"
        and node is not None
        and node.ip
        and node.ip not in _LOOPBACK
        and (certs / "cert.pem").is_file()
    ):
        env = {
            "DOCKER_TLS_VERIFY": "1",
            "DOCKER_HOST": f"tcp://{node.ip}:{DOCKERD_PORT}",
            "DOCKER_CERT_PATH": str(certs),
            "MINIKUBE_ACTIVE_DOCKERD": profile,
        }
        return env, f"derived from {config.path} (the node's address, port {DOCKERD_PORT}, {certs})"
    return None, (
        "not asked: `minikube docker-env` restarts dockerd (and with containerd starts helpers), so "
        "read-only commands do not run it, and this profile's engine port is forwarded (not on disk); "
        "`devloop up` records it"
    )


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
