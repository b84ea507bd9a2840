"""`devloop doctor`: tools, versions, context, workspace and limits; what to fix for each problem."""

from __future__ import annotations

import shlex
import shutil

from devloop.errors import DevloopError
from devloop.results import Check, DoctorResult
from devloop.session import Session
from devloop.watcher import inotify_limit


def _tool(name: str, why: str) -> Check:
    path = shutil.which(name)
    if path:
        return Check(f"{name} on PATH", "ok", path)
    return Check(f"{name} on PATH", "fail", f"`{name}` is not on PATH ({why})", f"install {name}")


def doctor(session: Session) -> DoctorResult:
    checks: list[Check] = [Check("profile", "ok", f"{session.profile.name} ({session.profile.source})")]
    checks.append(_tool("minikube", "devloop drives the cluster through it"))
    build_tools = sorted({shlex.split(c.build)[0] for c in session.profile.components if c.build.strip()})
    for tool in build_tools:
        checks.append(_tool(tool, "a component's build command starts with it"))

    for component in session.profile.components:
        path = session.workspace / component.dir
        if path.is_dir():
            checks.append(Check(f"workspace {component.name}", "ok", str(path)))
        else:
            checks.append(Check(f"workspace {component.name}", "fail", f"{path} does not exist",
                                f"check out the sources there, or pass --workspace DIR (now {session.workspace})"))

    limit = inotify_limit()
    if limit is not None:
        status = "ok" if limit >= 65536 else "warn"
        checks.append(Check("inotify watches", status, f"fs.inotify.max_user_watches = {limit}",
                            "" if status == "ok" else "sysctl -w fs.inotify.max_user_watches=524288 (watch falls back to polling otherwise)"))

    if shutil.which(session.minikube_binary):
        checks.extend(_cluster_checks(session))
    result = DoctorResult(checks=checks)
    result.exit_code = 0 if result.ok else 1
    return result


def _cluster_checks(session: Session) -> list[Check]:
    from devloop.adapters.minikube import needs_force

    checks: list[Check] = []
    cluster = session.profile.cluster
    try:
        version = session.minikube.version()
        force = needs_force(version, cluster.kubernetes_version,
                                       allow_force=cluster.allow_unsupported_kubernetes)
        note = " (will pass --force)" if force else ""
        checks.append(Check("minikube version", "ok", f"{version.version}{note}"))
    except DevloopError as exc:
        checks.append(Check("minikube version", "fail", exc.message, exc.hint or ""))
    try:
        status = session.minikube.status()
    except DevloopError as exc:
        checks.append(Check("cluster", "fail", exc.message, exc.hint or ""))
        return checks
    if not status.running:
        checks.append(Check("cluster", "warn", f"minikube profile {cluster.profile} is {status.state}",
                            "run `devloop up`"))
        return checks
    checks.append(Check("cluster", "ok", f"minikube profile {cluster.profile} is running"))
    try:
        session.guard_context()
        checks.append(Check("kube context", "ok", f"context {session.context} points at minikube's API server"))
    except DevloopError as exc:
        checks.append(Check("kube context", "fail", exc.message, exc.hint or ""))
    try:
        name = session.docker().daemon_name()
        if name == session.context:
            checks.append(Check("docker-env", "ok", f"{session.docker_env().get('DOCKER_HOST')} (daemon {name})"))
        else:
            checks.append(Check("docker-env", "fail", f"docker-env leads to daemon {name!r}, not {session.context!r}",
                                "run `devloop reset`"))
    except DevloopError as exc:
        checks.append(Check("docker-env", "fail", exc.message, exc.hint or ""))
    return checks
