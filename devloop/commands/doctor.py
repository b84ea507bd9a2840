"""`devloop doctor`: tools, versions, context, workspace and limits; what to fix for each problem."""

from __future__ import annotations

import shlex
import shutil
from typing import TYPE_CHECKING

from devloop.base.errors import DevloopError
from devloop.base.results import Check, DoctorResult
from devloop.session import Session
from devloop.watch.watcher import inotify_limit

if TYPE_CHECKING:
    from devloop.adapters.minikube.versions import MinikubeVersion


def _tool(name: str, why: str) -> Check:
    path = shutil.which(name)
    if path:
        return Check(f"{name} on PATH", "ok", path)
    return Check(f"{name} on PATH", "fail", f"`{name}` is not on PATH ({why})", f"install {name}")


# Shell builtins a build command may start a step with (the command runs through `sh -c`): not programs on PATH.
_BUILTINS = frozenset(
    {
        "cd",
        "export",
        "set",
        "unset",
        ".",
        "source",
        "true",
        "false",
        ":",
        "echo",
        "test",
        "[",
        "umask",
        "eval",
        "exec",
        "command",
        "alias",
        "shift",
        "exit",
        "return",
        "wait",
    }
)


# Reserved words of the shell: the word after one starts a command (`if test -f x; then make; fi`).
_KEYWORDS = frozenset(
    {"if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done", "case", "esac", "{", "}", "!", "time"}
)


def build_programs(command: str) -> set[str]:
    """The programs a build command runs: the first word of each step (`a && b; c | d`), past VAR=value
    assignments and the builtins above (`exec prog` and `command prog` name prog)."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    programs: set[str] = set()
    first = True
    for token in lexer:
        if token and set(token) <= set("&|;()"):
            first = True
            continue
        if not first:
            continue
        if "=" in token and not token.startswith("=") and token.split("=", 1)[0].isidentifier():
            continue  # an assignment before the program
        if token in ("exec", "command") or token in _KEYWORDS:
            continue  # the next word is the program
        first = False
        if token not in _BUILTINS:
            programs.add(token)
    return programs


def doctor(session: Session) -> DoctorResult:
    session.read_only = True  # no `minikube docker-env` here: it restarts dockerd (see adapters/engine_endpoint.py)
    checks: list[Check] = [Check("profile", "ok", f"{session.profile.name} ({session.profile.source})")]
    checks.append(_tool("minikube", "devloop drives the cluster through it"))
    build_tools = sorted({p for c in session.profile.components if c.build.strip() for p in build_programs(c.build)})
    for tool in build_tools:
        checks.append(_tool(tool, "a component's build command starts with it"))

    for component in session.profile.components:
        path = session.workspace / component.dir
        if path.is_dir():
            checks.append(Check(f"workspace {component.name}", "ok", str(path)))
        else:
            checks.append(
                Check(
                    f"workspace {component.name}",
                    "fail",
                    f"{path} does not exist",
                    f"check out the sources there, or pass --workspace DIR (now {session.workspace})",
                )
            )

    limit = inotify_limit()
    if limit is not None:
        status = "ok" if limit >= 65536 else "warn"
        checks.append(
            Check(
                "inotify watches",
                status,
                f"fs.inotify.max_user_watches = {limit}",
                ""
                if status == "ok"
                else "sysctl -w fs.inotify.max_user_watches=524288 (watch falls back to polling otherwise)",
            )
        )

    if shutil.which(session.minikube_binary):
        checks.extend(_cluster_checks(session))
    result = DoctorResult(checks=checks)
    result.exit_code = 0 if result.ok else 1
    return result


def _cluster_checks(session: Session) -> list[Check]:
    checks: list[Check] = []
    cluster = session.profile.cluster
    try:
        version = session.minikube.version()
        checks.append(Check("minikube version", "ok", version.version))
        checks.extend(_start_checks(session, version))
    except DevloopError as exc:
        checks.append(Check("minikube version", "fail", exc.message, exc.hint or ""))
    mode, why = session.image_transfer()
    checks.append(
        Check(
            "image transfer",
            "ok",
            f"{mode}: {why}",
            "" if cluster.image_transfer != "auto" else "set `cluster.image_transfer` to choose",
        )
    )
    try:
        status = session.minikube.status()
    except DevloopError as exc:
        checks.append(Check("cluster", "fail", exc.message, exc.hint or ""))
        return checks
    if not status.running:
        checks.append(
            Check("cluster", "warn", f"minikube profile {cluster.profile} is {status.state}", "run `devloop up`")
        )
        return checks + _layout_checks(session)
    checks.append(Check("cluster", "ok", f"minikube profile {cluster.profile} is running"))
    checks.extend(_layout_checks(session))
    checks.append(_runtime_check(session))
    try:
        session.guard_context()
        checks.append(Check("kube context", "ok", _context_detail(session)))
    except DevloopError as exc:
        checks.append(Check("kube context", "fail", exc.message, exc.hint or ""))
    if mode == "docker-env":
        checks.extend(_engine_checks(session))
    return checks


def _start_checks(session: Session, version: MinikubeVersion) -> list[Check]:
    """What devloop adds to `minikube start` (--force, --docker-env) and the checks --force skips."""
    from devloop.loop.steps import start_plan

    try:
        plan = start_plan(session)
    except DevloopError as exc:
        return [Check("minikube start", "fail", exc.message, exc.hint or "")]
    out = [Check("minikube start", "ok", note) for note in plan.notes]
    out += [Check("minikube start", "warn", warning, "see the message") for warning in plan.warnings]
    if plan.force:
        out.append(
            Check(
                "resources under --force",
                "ok" if not plan.warnings else "warn",
                "CPUs and memory checked by devloop (minikube skips them when forced)",
            )
        )
    return out or [Check("minikube start", "ok", f"nothing added for minikube {version.version}")]


def _layout_checks(session: Session) -> list[Check]:
    """The platform's layout (issue 18): which ports minikube forwards, where docker-env points and why, the
    feature gates minikube added itself. From disk only: config.json, the kubeconfig, docker-env's recorded
    answer; no connection to the node's address (which the host may not reach)."""
    from devloop.adapters.kube import context_info
    from devloop.adapters.minikube.engine_endpoint import read_only_docker_env
    from devloop.adapters.minikube.layout import layout_lines

    try:
        config = session.minikube.profile_config()
    except DevloopError:
        return []
    if config is None:
        return []
    try:
        server = str(context_info(session.context, session.loaded_kubeconfig()).get("server") or "")
    except DevloopError:
        server = ""
    try:
        env, why = read_only_docker_env(session.context, session.cache_dir)
    except DevloopError as exc:
        env, why = None, exc.message
    checks = [Check(line.name, line.status, line.detail, line.fix) for line in layout_lines(config, server, env, why)]
    checks.append(_gates_check(session, config.feature_gates))
    return checks


def _gates_check(session: Session, saved: str) -> Check:
    from devloop.loop.start_plan import MINIKUBE_OWN_GATES, minikube_added_gates

    added = minikube_added_gates(dict(session.profile.cluster.feature_gates), saved)
    if not added:
        return Check(
            "gates minikube added",
            "ok",
            "none (when it creates a profile minikube adds "
            + " and ".join(
                f"{name}={'true' if value else 'false'} where {why}"
                for name, (value, why) in MINIKUBE_OWN_GATES.items()
            )
            + ")",
        )
    said = ", ".join(f"{name}={value} ({MINIKUBE_OWN_GATES[name][1]})" for name, value in sorted(added.items()))
    return Check(
        "gates minikube added",
        "ok",
        f"{said}; devloop passes them again on every start it drives, since --feature-gates replaces the saved "
        "ones (the profile's feature_gates win only on their own names)",
    )


def _runtime_check(session: Session) -> Check:
    want = session.profile.cluster.container_runtime
    try:
        config = session.minikube.profile_config()
    except DevloopError:
        config = None
    have = config.container_runtime if config is not None else ""
    if have and have != want:
        return Check(
            "container runtime",
            "fail",
            f"the cluster runs {have}, the profile asks for {want}",
            "`devloop reset` recreates the cluster with the profile's runtime",
        )
    return Check("container runtime", "ok", have or want)


def _context_detail(session: Session) -> str:
    from urllib.parse import urlsplit

    from devloop.adapters.kube import context_info

    server = context_info(session.context, session.loaded_kubeconfig())["server"]
    endpoint = session.minikube.api_endpoint()
    parts = urlsplit(server)
    if endpoint and (parts.hostname, parts.port or 443) != (endpoint[0], int(endpoint[1])):
        return (
            f"context {session.context} reaches the API server through the forwarded port {server} "
            f"(node {endpoint[0]}:{endpoint[1]}); minikube confirms it (Kubeconfig: Configured)"
        )
    return f"context {session.context} points at minikube's API server {server}"


def _engine_checks(session: Session) -> list[Check]:
    from devloop.adapters.minikube.versions import parse_semver

    try:
        engine = session.docker()
    except DevloopError as exc:
        return [Check("docker-env", "warn", exc.message, exc.hint or "")]
    checks = []
    try:
        name = engine.daemon_name()
        where = session.docker_env().get("DOCKER_HOST")
        if name == session.context:
            checks.append(Check("docker-env", "ok", f"{where} (daemon {name})"))
        else:
            checks.append(
                Check(
                    "docker-env",
                    "fail",
                    f"docker-env leads to daemon {name!r}, not {session.context!r}",
                    "run `devloop reset`",
                )
            )
    except DevloopError as exc:
        checks.append(Check("docker-env", "fail", exc.message, exc.hint or ""))
    server = getattr(engine, "server_version", {}) or {}
    low, high = str(server.get("MinAPIVersion", "?")), str(server.get("ApiVersion", "?"))
    k8s = parse_semver(session.profile.cluster.kubernetes_version or "")
    dockershim = k8s is not None and k8s < (1, 24, 0)
    floor = parse_semver(low + ".0") if low != "?" else None
    if dockershim and floor is not None and floor > (1, 41, 0):
        checks.append(
            Check(
                "engine API",
                "fail",
                f"the node's Docker {server.get('Version', '')} serves API {low}-{high}; "
                "Kubernetes < 1.24 needs 1.41 (dockershim)",
                "`devloop reset`: devloop recreates it with --docker-env DOCKER_MIN_API_VERSION=1.24",
            )
        )
    else:
        checks.append(
            Check(
                "engine API",
                "ok",
                f"Docker {server.get('Version', '?')} serves API {low}-{high}"
                + ("; dockershim's 1.41 is inside" if dockershim else ""),
            )
        )
    return checks
