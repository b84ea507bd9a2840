"""Live update or full image build, and why: decided from content, not from which events fired.

A component's inputs split in two: its `live_update.inputs` (the sources of the files to sync)
and the rest (Dockerfile, Makefile, scripts, anything else). The rest gets its own fingerprint;
when it equals the one taken when the running image was deployed, everything that changed since
is a live update input, so building the binary and syncing it reproduces what the image build
would put in the container. Any other change takes the image build.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from devloop.adapters.containers import docker_id


@dataclass(frozen=True)
class Baseline:
    """What a component's pods run, as of the last full cycle: the image tag and the fingerprint of
    its non-live inputs then."""

    tag: str
    rest_digest: str


@dataclass(frozen=True)
class Target:
    """One running container of the component: where files go."""

    namespace: str
    pod: str
    container: str
    container_id: str  # docker ID

    @property
    def where(self) -> str:
        return f"{self.namespace}/{self.pod}/{self.container}"


def rest_component(component: Any) -> Any:
    """The component with its live_update inputs ignored: its fingerprint moves only when something
    the fast build does not cover changes."""
    anchored = ["/" + PurePosixPath(item).as_posix().strip("/") for item in component.live_update.inputs]
    return component.model_copy(update={"ignore": [*component.ignore, *anchored]})


def outside_live_inputs(component: Any, changed: list[Path], workspace: Path) -> list[str]:
    """Of the changed files (absolute), those under the component but outside its live inputs;
    only used to say *which* change forced the image build."""
    base = (Path(workspace) / component.dir).resolve()
    roots = [PurePosixPath(i).as_posix().strip("/") for i in component.live_update.inputs]
    out = []
    for path in changed:
        try:
            rel = Path(path).resolve().relative_to(base).as_posix()
        except ValueError:
            continue
        if not any(rel == r or rel.startswith(r + "/") for r in roots):
            out.append(rel)
    return out


def targets_of(pods: list[dict], image: str) -> tuple[list[Target], list[str]]:
    """The running containers whose pod spec names `image`, and the problems that rule a live update
    out (a pod being deleted or not running, a container not running)."""
    targets: list[Target] = []
    problems: list[str] = []
    for pod in pods:
        meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
        names = [c.get("name") for c in spec.get("containers") or [] if c.get("image") == image]
        if not names:
            continue
        where = f"{meta.get('namespace')}/{meta.get('name')}"
        if meta.get("deletionTimestamp"):
            problems.append(f"pod {where} is being deleted")
            continue
        statuses = {s.get("name"): s for s in status.get("containerStatuses") or []}
        for name in names:
            st = statuses.get(name) or {}
            cid = docker_id(str(st.get("containerID") or ""))
            if "running" not in (st.get("state") or {}) or not cid:
                problems.append(f"container {name} of pod {where} is not running")
                continue
            targets.append(Target(str(meta.get("namespace")), str(meta.get("name")), str(name), cid))
    return targets, problems


def containers_of(pods: list[dict], image: str) -> dict[str, str]:
    """Container ID -> `namespace/pod` of every container (running or not) that a pod not being deleted
    runs from `image`. A container restarted in place (`docker restart`, what a live update does) keeps
    its ID; one the kubelet made anew from the image, or one in a recreated pod, has another."""
    out: dict[str, str] = {}
    for pod in pods:
        meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
        if meta.get("deletionTimestamp"):
            continue
        names = {c.get("name") for c in spec.get("containers") or [] if c.get("image") == image}
        for st in status.get("containerStatuses") or []:
            cid = docker_id(str(st.get("containerID") or ""))
            if st.get("name") in names and cid:
                out[cid] = f"{meta.get('namespace')}/{meta.get('name')}"
    return out
