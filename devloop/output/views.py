"""How results, errors and watch progress read to people. Pure functions: they return text and
never write it; the Reporter (report.py) decides where it goes.

A `Text` has `out`, plain text for stdout (what scripts pipe: YAML, tab-separated lists, the
status report), and `err`, rich-markup lines for stderr (summaries and hints).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.markup import escape

from devloop.base import results as r

_DOCTOR_MARKS = {"ok": "[green]✓[/green]", "warn": "[yellow]![/yellow]", "fail": "[red]✗[/red]"}


@dataclass
class Text:
    out: str = ""
    err: list[str] = field(default_factory=list)


def for_people(result: r.Result, total_seconds: float) -> Text:
    if isinstance(result, r.UpResult):
        return Text(
            err=[
                _done(result.cycle.built, total_seconds),
                "  next: `devloop watch` to rebuild and redeploy on every save, `devloop status`, "
                "`devloop logs COMPONENT`",
            ]
        )
    if isinstance(result, r.ApplyResult):
        return Text(err=[_done(result.cycle.built, total_seconds)])
    if isinstance(result, r.ResetResult):
        return Text(err=[f"[bold green]reset[/bold green] {escape(result.cluster)}; next: `devloop up`"])
    if isinstance(result, r.BuildResult):
        return Text(
            out=_lines(f"{o.component}\t{o.tag}\t{'built' if o.built else 'up to date'}" for o in result.components)
        )
    if isinstance(result, r.CleanResult):
        return Text(err=[f"cleaned {result.deleted} objects; {len(result.stripped)} had finalizers removed"])
    if isinstance(result, r.DownResult):
        return Text(err=[f"down: {result.cleaned} custom resources cleaned, {result.deleted_objects} objects deleted"])
    if isinstance(result, r.RenderResult):
        return Text(out=result.yaml)
    if isinstance(result, r.StatusResult):
        return Text(out=_lines(status_lines(result.report)))
    if isinstance(result, r.DoctorResult):
        return Text(err=doctor_lines(result.checks))
    if isinstance(result, r.ProfilesListResult):
        return Text(out=_lines(f"{p.name}\t{p.origin}\t{p.path}" for p in result.profiles))
    if isinstance(result, r.ProfileShowResult):
        return Text(out=result.text, err=[escape(f"# {result.path}")])
    return Text()  # watch and logs said everything while they ran


def _lines(lines: Any) -> str:
    return "".join(f"{line}\n" for line in lines)


def _done(built: list[str], total_seconds: float) -> str:
    return f"[bold green]done[/bold green] in {total_seconds:.1f}s" + (
        f"; built {', '.join(built)}" if built else "; nothing to build"
    )


def error_lines(message: str, hint: str | None) -> list[str]:
    lines = [f"[red bold]error:[/red bold] {escape(message)}"]
    if hint:
        lines.append(f"  [yellow]hint:[/yellow] {escape(hint)}")
    return lines


def doctor_lines(checks: list[r.Check]) -> list[str]:
    lines = []
    for check in checks:
        lines.append(f"{_DOCTOR_MARKS[check.status]} {escape(check.name)}: {escape(check.detail)}")
        if check.fix:
            lines.append(f"    fix: {escape(check.fix)}")
    return lines


def log_line(label: str | None, line: str) -> str:
    return f"{label} {line}\n" if label else f"{line}\n"


# -- watch ---------------------------------------------------------------------------------------
def watch_changed(description: str, targets: list[str]) -> str:
    return f"[bold]changed[/bold] {escape(description)}  [dim]→ {', '.join(targets)}[/dim]"


def watch_watching(dirs: int, mode: str) -> str:
    return f"[dim]watching {dirs} directories ({mode}); Ctrl-C to stop[/dim]"


def watch_cycle_done(seconds: float, built: list[str]) -> str:
    what = f"built {', '.join(built)}" if built else "nothing to build"
    return f"[bold green]up to date[/bold green] in {seconds:.1f}s; {what}"


def watch_live_done(seconds: float, components: list[str]) -> str:
    return (
        f"[bold green]live-updated[/bold green] {', '.join(components)} in {seconds:.1f}s (no image build, no rollout)"
    )


def watch_cycle_failed(message: str, hint: str | None) -> list[str]:
    return [*error_lines(message, hint), "[dim]still watching: the next change retries[/dim]"]


# -- status --------------------------------------------------------------------------------------
def status_lines(result: dict) -> list[str]:
    """Plain lines (no markup) for the terminal."""
    lines = []
    c = result["cluster"]
    lines.append(
        f"cluster    {result['context']}: {c.get('state') or 'unknown'}"
        + (f" ({c['error']})" if "error" in c else "")
        + (f" — {c['detail']}" if c.get("detail") else "")
    )
    t = result.get("image_transfer")
    if t:
        lines.append(f"images     {t['mode']} (cluster.image_transfer: {t['setting']}): {t['why']}")
    d = result["docker_env"]
    if "DOCKER_HOST" in d:
        verdict = (
            "matches the profile"
            if d.get("matches")
            else f"does NOT match (expected daemon {d.get('expected_daemon')})"
        )
        lines.append(f"docker-env {d['DOCKER_HOST']} daemon {d.get('daemon', '?')}: {verdict}")
        if not d.get("shell_matches"):
            lines.append(
                "           this shell's DOCKER_HOST is "
                + (d.get("shell_DOCKER_HOST") or "unset")
                + f"; `eval $(minikube -p {result['context']} docker-env)` to build by hand"
            )
    elif "skipped" in d:
        lines.append(f"docker-env {d['skipped']}")
    else:
        lines.append(f"docker-env unavailable: {d.get('error')}")
    lines.append("components")
    for comp in result["components"]:
        if "error" in comp:
            lines.append(f"  {comp['name']}: {comp['error']}")
            continue
        built = {True: "built", False: "not built", None: "build state unknown"}[comp.get("built")]
        lines.append(f"  {comp['name']}: {comp['state']}")
        lines.append(f"      sources {comp['tag']} ({built}); running: {', '.join(comp['running']) or 'nothing'}")
        if comp.get("live"):
            lines.append(f"      {comp['live']}")
    deps = result["deployments"]
    lines.append("deployments" + (f": {deps.get('error')}" if isinstance(deps, dict) else ""))
    if isinstance(deps, list):
        for dep in deps:
            ready = f" {dep.get('ready', 0)}/{dep.get('replicas', '?')} ready" if dep["state"] != "missing" else ""
            lines.append(f"  {dep['namespace']}/{dep['name']}: {dep['state']}{ready}")
            lines += [f"      {p}" for p in dep.get("pods", [])]
    cleanup = result["cleanup"]
    if isinstance(cleanup, list):
        if cleanup:
            lines.append(
                "custom resources "
                + ", ".join(f"{x['resource']}: {x.get('count', 'error: ' + str(x.get('error')))}" for x in cleanup)
            )
    for s in result["stuck"]:
        where = f"{s['namespace']}/{s['name']}" if s.get("namespace") else s["name"]
        lines.append(
            f"STUCK {s['kind']} {where} deleting since {s['deleting_since']}, finalizers {s['finalizers']}"
            + (f"; {'; '.join(s['conditions'])}" if s.get("conditions") else "")
        )
    if result["stuck"]:
        lines.append("      `devloop clean` removes custom resources whose finalizers would hang")
    lines += verify_lines(result.get("verify") or {})
    return lines


def verify_lines(verify: dict) -> list[str]:
    """The `verify` section of `devloop status`: the last result of each check, a failure with its log tail."""
    import time

    checks = verify.get("checks") or []
    if not checks and not verify.get("note"):
        return []
    if not checks:
        return [f"verify     {verify['note']}"]
    at = verify.get("at")
    when = time.strftime("%H:%M:%S", time.localtime(at)) if isinstance(at, (int, float)) else "?"
    failed = [c for c in checks if c.get("status") == "failed"]
    head = f"{len(checks) - len(failed)} of {len(checks)} passed"
    lines = [f"verify     {head} (after the {verify.get('trigger') or 'deploy'} at {when})"]
    for c in checks:
        mark = {"ok": "ok", "failed": "FAILED"}.get(c.get("status"), c.get("status"))
        lines.append(f"  {c.get('name')}: {mark} in {c.get('seconds', 0):.1f}s: {c.get('target')}")
        if c.get("status") == "failed":
            lines.append(f"      {c.get('message')}")
            lines += [f"      {line}" for line in c.get("log_tail") or []]
        elif c.get("answer"):
            ready = f", {c['after_ready']:.1f}s after the pods were ready" if c.get("after_ready") is not None else ""
            lines.append(f"      {c['answer']}{ready}")
    if verify.get("not_run"):
        lines.append(f"  not run yet: {', '.join(verify['not_run'])}")
    return lines
