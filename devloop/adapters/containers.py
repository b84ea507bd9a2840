"""Files into running containers of minikube's engine, and their restart: what live update needs.

Through the same DockerEngine (docker-env, TLS, never the process environment) the builds use.
A container ID comes from the pod's status (`docker://<id>`), so only the kubelet's own
containers are touched.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from devloop.base.errors import ClusterError

if TYPE_CHECKING:
    from devloop.adapters.protocols import ContainerAPI


class SyncFailed(ClusterError):
    """Copying into, or restarting, a container failed; live update falls back to the image build."""


@dataclass(frozen=True)
class ContainerState:
    id: str
    running: bool
    started_at: str
    restarting: bool = False


def docker_id(container_id: str) -> str | None:
    """`docker://abc…` (a pod status' containerID) -> `abc…`; None for other runtimes."""
    scheme, sep, rest = container_id.partition("://")
    return rest if sep and scheme == "docker" and rest else None


def archive(files: Mapping[Path, str]) -> bytes:
    """A tar, rooted at `/`, holding each local file at its container path (mode kept: binaries
    stay executable; owner root, as an image's ADD makes it)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for local, target in files.items():
            info = tar.gettarinfo(str(local), arcname=str(PurePosixPath(target)).lstrip("/"))
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            with open(local, "rb") as fh:
                tar.addfile(info, fh)
    return buf.getvalue()


def _api(engine: Any) -> ContainerAPI:
    return engine.client.api


def state(engine: Any, container: str) -> ContainerState | None:
    import docker.errors

    try:
        data = _api(engine).inspect_container(container)
    except docker.errors.NotFound:
        return None
    except Exception as exc:  # noqa: BLE001 - requests and docker errors alike
        raise SyncFailed(f"cannot inspect container {container[:12]} in minikube's engine: {exc}") from None
    st = data.get("State") or {}
    return ContainerState(
        str(data.get("Id", container)),
        bool(st.get("Running")),
        str(st.get("StartedAt", "")),
        bool(st.get("Restarting")),
    )


def put_files(engine: Any, container: str, payload: bytes) -> None:
    try:
        ok = _api(engine).put_archive(container, "/", payload)
    except Exception as exc:  # noqa: BLE001
        raise SyncFailed(f"copying into container {container[:12]} failed: {_short(exc)}") from None
    if not ok:
        raise SyncFailed(f"copying into container {container[:12]} failed (the engine refused the archive)")


def restart(engine: Any, container: str, *, timeout: float = 30) -> ContainerState:
    """`docker restart -t 0`, then wait until it runs again (a new StartedAt); the container keeps
    its ID, so the kubelet sees the same container and the pod stays where it is."""
    before = state(engine, container)
    if before is None:
        raise SyncFailed(f"container {container[:12]} is gone (its pod was deleted or recreated)")
    try:
        _api(engine).restart(container, timeout=0)
    except Exception as exc:  # noqa: BLE001
        raise SyncFailed(f"restarting container {container[:12]} failed: {_short(exc)}") from None
    from devloop.base.errors import WaitTimeout
    from devloop.base.waits import wait_for

    def running_again() -> ContainerState | None:
        now = state(engine, container)
        return now if now is not None and now.running and now.started_at != before.started_at else None

    try:
        after = wait_for(
            running_again,
            timeout=timeout,
            interval=0.02,
            describe=f"container {container[:12]} did not run again within {timeout:g}s after its restart",
        )
    except WaitTimeout as exc:
        raise SyncFailed(exc.message) from None
    assert after is not None  # wait_for hands back only a truthy answer
    return after


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 300 else text[:300] + "…"


__all__ = ["ContainerState", "SyncFailed", "archive", "docker_id", "put_files", "restart", "state"]
