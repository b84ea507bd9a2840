"""`devloop logs [COMPONENT] [-f]`: the output of the containers running a component's image.

The containers are found from the manifests: every container of a manifest Deployment whose
live image is the component's (its devloop-built tag, any earlier dev tag, or the upstream
image it `replaces`), in every pod of that Deployment. Lines are prefixed with
`pod/container` when more than one container is shown. With `follow`, one reader per
container streams until interrupted.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from devloop.base.errors import ClusterError, DevloopError
from devloop.base.results import LogsResult
from devloop.session import Session


@dataclass(frozen=True)
class Target:
    namespace: str
    pod: str
    container: str
    image: str
    component: str

    @property
    def label(self) -> str:
        return f"{self.pod}/{self.container}"


def logs(
    session: Session,
    component: str | None = None,
    *,
    follow: bool = False,
    tail: int | None = None,
    on_line: Callable[[str | None, str], None] | None = None,
) -> LogsResult:
    """Write each log line through `on_line(label, line)` (default: the reporter's `log_line`);
    `label` ("pod/container") is None when only one container is shown. Returns which containers
    were shown."""
    names = _component_names(session, component)
    kube = session.kube()
    targets = find_targets(session, kube, names)
    if not targets:
        which = component or "any component"
        raise ClusterError(
            f"no running container uses the image of {which}",
            hint="`devloop status` shows what the cluster runs; `devloop up` deploys the components",
        )
    readers = [(t, _reader(kube, t, follow=follow, tail=tail)) for t in targets]
    _show(readers, follow, on_line or session.reporter.log_line)
    return LogsResult(containers=[dict(t.__dict__) for t in targets], follow=follow)


def _show(
    readers: list[tuple[Target, Iterator[str]]], follow: bool, on_line: Callable[[str | None, str], None]
) -> None:
    if len(readers) == 1:
        for line in readers[0][1]:
            on_line(None, line)  # one container: its lines as they are
    elif not follow:
        for target, lines in readers:
            for line in lines:
                on_line(target.label, line)
    else:
        _merge(readers, on_line)


def _component_names(session: Session, component: str | None) -> list[str]:
    return [c.name for c in session.profile.select_components([component] if component else None)]


def find_targets(session: Session, kube: Any, names: list[str]) -> list[Target]:
    """Containers of the manifests' Deployments that run one of these components' images."""
    from devloop.adapters.kube import is_deleting, meta_of, spec_of, workload_selector
    from devloop.manifests import render
    from devloop.profile.lookup import normalize_repo, parse_image_ref

    repos: dict[str, str] = {}
    for c in session.profile.components:
        if c.name not in names:
            continue
        for ref in (c.image, *c.replaces):
            parsed = parse_image_ref(ref)
            repos[parsed.repo if parsed else normalize_repo(ref)] = c.name
    targets: list[Target] = []
    for obj in render.load_manifests(session.profile, session.workspace):
        if obj.get("kind") != "Deployment":
            continue
        meta = meta_of(obj)
        ns = meta.get("namespace") or session.profile.namespace or "default"
        dep = kube.deployment(ns, meta["name"])
        if dep is None:
            continue
        for pod in kube.pods(ns, workload_selector(dep)):
            if is_deleting(pod):
                continue  # a terminating pod of the previous rollout
            spec = spec_of(pod)
            for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
                parsed = parse_image_ref(c.get("image", ""))
                if parsed and parsed.repo in repos:
                    targets.append(Target(ns, meta_of(pod)["name"], c["name"], c["image"], repos[parsed.repo]))
    return targets


def _reader(kube: Any, t: Target, *, follow: bool, tail: int | None) -> Iterator[str]:
    return kube.pod_logs(t.namespace, t.pod, t.container, follow=follow, tail_lines=tail)


def _merge(readers: list[tuple[Target, Iterator[str]]], on_line: Callable[[str | None, str], None]) -> None:
    """Follow several streams at once; lines keep their order within each container."""
    q: queue.Queue = queue.Queue(maxsize=1000)
    done = object()

    def pump(target: Target, lines: Iterator[str]) -> None:
        try:
            for line in lines:
                q.put((target.label, line))
        except DevloopError as exc:
            q.put((target.label, f"[devloop: {exc.message}]"))
        except Exception as exc:  # noqa: BLE001 - a dropped stream ends that container's lines only
            q.put((target.label, f"[devloop: log stream ended: {exc}]"))
        finally:
            q.put((target.label, done))

    for target, lines in readers:
        threading.Thread(target=pump, args=(target, lines), daemon=True, name=f"logs {target.label}").start()
    open_streams = len(readers)
    while open_streams:
        try:
            label, line = q.get(timeout=1.0)  # wakes for Ctrl-C between lines
        except queue.Empty:
            continue
        if line is done:
            open_streams -= 1
            continue
        on_line(label, line)
