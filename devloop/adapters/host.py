"""The machine a minikube node is carved out of: its CPUs and memory, and the user's own Docker engine.

minikube checks `--cpus`/`--memory` against what the driver reports: for the docker driver, `docker info`'s
NCPU and MemTotal of the engine the driver uses (start.go validateCPUCount/validateRequestedMemorySize);
`--force` turns those refusals into warnings (start.go:2051-2057), so devloop checks them itself then.
Read-only: only `GET /info` is asked of the engine.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from devloop.base.errors import DevloopError

_DEFAULT_SOCKET = "/var/run/docker.sock"
# An engine that does not answer quickly is treated as absent; the machine's own numbers are used then.
_INFO_TIMEOUT = 5


@dataclass(frozen=True)
class HostResources:
    cpus: int
    memory_mb: int
    source: str  # where the numbers come from, for messages


def user_docker_env(environ: Mapping[str, str] | None = None) -> dict[str, str] | None:
    """The user's own Docker engine (not minikube's), as DOCKER_* variables, or None when there is none.

    A shell that ran `eval $(minikube docker-env)` points DOCKER_HOST at a minikube node; minikube keeps
    the previous values in MINIKUBE_EXISTING_DOCKER_* (docker-env.go), and those are the user's engine."""
    env = os.environ if environ is None else environ
    prefix = "MINIKUBE_EXISTING_" if env.get("MINIKUBE_ACTIVE_DOCKERD") else ""
    host = env.get(prefix + "DOCKER_HOST", "")
    if not host:
        if not Path(_DEFAULT_SOCKET).exists():
            return None
        return {"DOCKER_HOST": f"unix://{_DEFAULT_SOCKET}"}
    out = {"DOCKER_HOST": host}
    for key in ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
        if env.get(prefix + key):
            out[key] = env[prefix + key]
    return out


def engine_resources(env: Mapping[str, str]) -> HostResources | None:
    """NCPU and MemTotal from `docker info` of the engine `env` names; None when it does not answer."""
    from devloop.adapters.docker_engine import DockerEngine

    try:
        with DockerEngine(env, timeout=_INFO_TIMEOUT) as engine:
            info = engine.info()
    except DevloopError:
        return None
    cpus, memory = info.get("NCPU"), info.get("MemTotal")
    if not isinstance(cpus, int) or not isinstance(memory, int) or cpus < 1 or memory < 1:
        return None
    return HostResources(
        cpus=cpus, memory_mb=memory // (1024 * 1024), source=f"the Docker engine at {env['DOCKER_HOST']} (docker info)"
    )


def machine_resources() -> HostResources:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    memory_mb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_mb = int(line.split()[1]) // 1024
                break
    except (OSError, ValueError, IndexError):
        memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    return HostResources(cpus=cpus, memory_mb=memory_mb, source="this machine")


def driver_resources(driver: str, environ: Mapping[str, str] | None = None) -> HostResources:
    """What minikube's driver would check against: the Docker engine for the docker driver when it answers,
    else this machine."""
    if driver == "docker":
        env = user_docker_env(environ)
        found = engine_resources(env) if env else None
        if found is not None:
            return found
    return machine_resources()


__all__ = ["HostResources", "driver_resources", "engine_resources", "machine_resources", "user_docker_env"]
