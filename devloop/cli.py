"""The typer app: options -> a command function -> its result or error, and the exit code.

This is the only module that imports typer. Command modules are imported inside each
command so that `devloop --help` loads none of kubernetes, docker or watchdog.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from devloop.errors import DevloopError

app = typer.Typer(
    name="devloop",
    help="The whole Kubernetes developer loop on minikube in one command: "
    "cluster, addons, namespace, image builds in minikube's Docker daemon, "
    "manifests with the built images, safe cleanup of custom resources, rollout.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
profiles_app = typer.Typer(help="List the profiles devloop can find, or show one.", no_args_is_help=True)
app.add_typer(profiles_app, name="profiles")

ProfileOpt = Annotated[
    Optional[str],
    typer.Option("--profile", "-p", envvar="DEVLOOP_PROFILE",
                 help="Profile name or YAML file. Looked up as a path, ./profiles/NAME.yaml, "
                 "~/.config/devloop/profiles/NAME.yaml, then the bundled profiles. [default: kubeless]"),
]
WorkspaceOpt = Annotated[
    Path, typer.Option("--workspace", "-w", envvar="DEVLOOP_WORKSPACE",
                       help="Where the checkouts named by the profile's component dirs live.")
]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Stream build and minikube output.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object per line: events, then the result.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print each command and API call instead of running it.")]
KubeconfigOpt = Annotated[
    Optional[str], typer.Option("--kubeconfig", envvar="KUBECONFIG", help="Kubeconfig file (the context is always the minikube profile's).")
]
StrategyOpt = Annotated[str, typer.Option("--strategy", help="recreate: clean, delete and create; apply: server-side apply.")]


def _fail(exc: DevloopError, json_mode: bool) -> None:
    if json_mode:
        sys.stdout.write(json.dumps({"event": "error", "message": exc.message, "hint": exc.hint,
                                     "exit_code": exc.exit_code, "kind": type(exc).__name__}) + "\n")
    else:
        from rich.console import Console
        from rich.markup import escape

        err = Console(stderr=True, highlight=False, soft_wrap=True)
        err.print(f"[red bold]error:[/red bold] {escape(exc.message)}")
        if exc.hint:
            err.print(f"  [yellow]hint:[/yellow] {escape(exc.hint)}")
    raise typer.Exit(exc.exit_code)


def _run(
    command: Callable[..., dict],
    *,
    profile: str | None,
    workspace: Path,
    verbose: bool,
    json_mode: bool,
    dry_run: bool = False,
    kubeconfig: str | None = None,
    render: Callable[[dict, Any], None] | None = None,
    **kwargs: Any,
) -> None:
    from devloop.report import Reporter

    reporter = Reporter(json_mode=json_mode, verbose=verbose)
    try:
        from devloop.profile import load_profile
        from devloop.session import Session

        loaded = load_profile(profile, cwd=Path.cwd())
        session = Session(
            profile=loaded,
            workspace=workspace.resolve(),
            reporter=reporter,
            dry_run=dry_run,
            kubeconfig=(kubeconfig.split(":")[0] if kubeconfig else None) or None,
        )
        result = command(session, **kwargs)
    except DevloopError as exc:
        _fail(exc, json_mode)
    except KeyboardInterrupt:
        if json_mode:
            sys.stdout.write(json.dumps({"event": "interrupted", "exit_code": 130}) + "\n")
        else:
            reporter.err.print("[yellow]interrupted[/yellow]")
        raise typer.Exit(130) from None
    _finish(result, reporter, json_mode, render)


def _finish(result: dict, reporter: Any, json_mode: bool, render: Callable[[dict, Any], None] | None) -> None:
    if json_mode:
        payload = {k: v for k, v in result.items() if k != "yaml"}
        payload["timings"] = [{"step": t.step, "status": t.status, "seconds": round(t.seconds, 3)} for t in reporter.timings]
        sys.stdout.write(json.dumps({"event": "result", **payload}, default=str) + "\n")
    elif render is not None:
        render(result, reporter)
    code = result.get("exit_code", 0)
    if code:
        raise typer.Exit(code)


def _summary(result: dict, reporter: Any) -> None:
    total = sum(t.seconds for t in reporter.timings)
    built = result.get("built") or []
    reporter.err.print(
        f"[bold green]done[/bold green] in {total:.1f}s"
        + (f"; built {', '.join(built)}" if built else "; nothing to build")
    )


def _up_summary(result: dict, reporter: Any) -> None:
    _summary(result, reporter)
    reporter.err.print("  next: `devloop watch` to rebuild and redeploy on every save, `devloop status`, `devloop logs COMPONENT`")


# -- commands ----------------------------------------------------------------------------------
@app.command()
def up(
    profile: ProfileOpt = None,
    workspace: WorkspaceOpt = Path("."),
    fresh: Annotated[bool, typer.Option("--fresh", help="Delete the minikube profile first.")] = False,
    strategy: StrategyOpt = "apply",
    force_build: Annotated[bool, typer.Option("--force-build", help="Rebuild images even if up to date.")] = False,
    dry_run: DryRunOpt = False,
    verbose: VerboseOpt = False,
    json_mode: JsonOpt = False,
    kubeconfig: KubeconfigOpt = None,
) -> None:
    """Bring the whole loop up once: cluster, addons, namespace, builds, manifests, rollout."""
    from devloop.commands.up import up as command

    _check_strategy(strategy)
    _run(command, profile=profile, workspace=workspace, verbose=verbose, json_mode=json_mode, dry_run=dry_run,
         kubeconfig=kubeconfig, render=_up_summary, fresh=fresh, strategy=strategy, force_build=force_build)


@app.command()
def watch(
    profile: ProfileOpt = None,
    workspace: WorkspaceOpt = Path("."),
    no_initial: Annotated[bool, typer.Option("--no-initial", help="Skip the first `up`; only react to changes.")] = False,
    debounce: Annotated[int, typer.Option("--debounce", metavar="MS", help="Quiet window that closes a batch of changes.")] = 300,
    max_wait: Annotated[int, typer.Option("--max-wait", metavar="MS", help="Longest a batch waits while changes keep coming.")] = 5000,
    poll: Annotated[bool, typer.Option("--poll", help="Poll the file system instead of inotify (network mounts, VMs).")] = False,
    strategy: StrategyOpt = "apply",
    verbose: VerboseOpt = False,
    json_mode: JsonOpt = False,
    kubeconfig: KubeconfigOpt = None,
) -> None:
    """`up`, then rebuild and redeploy the components whose files change, until Ctrl-C."""
    from devloop.commands.watch import watch as command

    _check_strategy(strategy)
    _run(command, profile=profile, workspace=workspace, verbose=verbose, json_mode=json_mode, kubeconfig=kubeconfig,
         render=None, initial=not no_initial, debounce_ms=debounce, max_wait_ms=max_wait, poll=poll, strategy=strategy)


@app.command()
def reset(
    profile: ProfileOpt = None,
    workspace: WorkspaceOpt = Path("."),
    dry_run: DryRunOpt = False,
    verbose: VerboseOpt = False,
    json_mode: JsonOpt = False,
    kubeconfig: KubeconfigOpt = None,
) -> None:
    """Delete and recreate the minikube profile, then enable addons and create the namespace."""
    from devloop.commands.reset import reset as command

    _run(command, profile=profile, workspace=workspace, verbose=verbose, json_mode=json_mode, dry_run=dry_run,
         kubeconfig=kubeconfig, render=lambda r, rep: rep.err.print(f"[bold green]reset[/bold green] {r['cluster']}; next: `devloop up`"))


@app.command()
def build(
    components: Annotated[Optional[list[str]], typer.Argument(help="Components to build (default: all).")] = None,
    profile: ProfileOpt = None,
    workspace: WorkspaceOpt = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Rebuild even when the image for these sources exists.")] = False,
    dry_run: DryRunOpt = False,
    verbose: VerboseOpt = False,
    json_mode: JsonOpt = False,
    kubeconfig: KubeconfigOpt = None,
) -> None:
    """Build images into minikube's Docker daemon; skip those whose sources did not change."""
    from devloop.commands.build import build as command

    def show(result: dict, reporter: Any) -> None:
        for item in result["components"]:
            state = "built" if item["built"] else "up to date"
            typer.echo(f"{item['component']}\t{item['tag']}\t{state}")

    _run(command, profile=profile, workspace=workspace, verbose=verbose, json_mode=json_mode, dry_run=dry_run,
         kubeconfig=kubeconfig, render=show, components=components or (), force=force)


@app.command()
def apply(
    profile: ProfileOpt = None,
    workspace: WorkspaceOpt = Path("."),
    strategy: StrategyOpt = "recreate",
    dry_run: DryRunOpt = False,
    verbose: VerboseOpt = False,
    json_mode: JsonOpt = False,
    kubeconfig: KubeconfigOpt = None,
) -> None:
    """Clean custom resources and re-apply the manifests with the images of the current sources."""
    from devloop.commands.apply import apply as command

    _check_strategy(strategy)
    _run(command, profile=profile, workspace=workspace, verbose=verbose, json_mode=json_mode, dry_run=dry_run,
         kubeconfig=kubeconfig, render=_summary, strategy=strategy)


@app.command()
def clean(
    profile: ProfileOpt = None,
    workspace: WorkspaceOpt = Path("."),
    strip_finalizers: Annotated[bool, typer.Option("--strip-finalizers/--no-strip-finalizers",
                                                   help="Remove finalizers that still hold objects after the grace period.")] = True,
    dry_run: DryRunOpt = False,
    verbose: VerboseOpt = False,
    json_mode: JsonOpt = False,
    kubeconfig: KubeconfigOpt = None,
) -> None:
    """Delete the profile's custom resources in all namespaces, stripping finalizers that would hang."""
    from devloop.commands.clean import clean as command

    def show(result: dict, reporter: Any) -> None:
        reporter.err.print(f"cleaned {result['deleted']} objects; {len(result['stripped'])} had finalizers removed")

    _run(command, profile=profile, workspace=workspace, verbose=verbose, json_mode=json_mode, dry_run=dry_run,
         kubeconfig=kubeconfig, render=show, strip_finalizers=strip_finalizers)


@app.command()
def down(
    profile: ProfileOpt = None,
    workspace: WorkspaceOpt = Path("."),
    delete_namespace: Annotated[bool, typer.Option("--delete-namespace", help="Also delete the profile's namespace.")] = False,
    dry_run: DryRunOpt = False,
    verbose: VerboseOpt = False,
    json_mode: JsonOpt = False,
    kubeconfig: KubeconfigOpt = None,
) -> None:
    """Clean custom resources, then delete everything the manifests made."""
    from devloop.commands.down import down as command

    def show(result: dict, reporter: Any) -> None:
        reporter.err.print(f"down: {result['cleaned']} custom resources cleaned, {result['deleted_objects']} objects deleted")

    _run(command, profile=profile, workspace=workspace, verbose=verbose, json_mode=json_mode, dry_run=dry_run,
         kubeconfig=kubeconfig, render=show, delete_namespace=delete_namespace)


@app.command()
def render(
    profile: ProfileOpt = None,
    workspace: WorkspaceOpt = Path("."),
    verbose: VerboseOpt = False,
    json_mode: JsonOpt = False,
) -> None:
    """Print the manifests as they would be applied (image tags from the current sources)."""
    from devloop.commands.render import render as command

    _run(command, profile=profile, workspace=workspace, verbose=verbose, json_mode=json_mode,
         render=lambda result, reporter: sys.stdout.write(result["yaml"]))


@app.command()
def status(
    profile: ProfileOpt = None,
    workspace: WorkspaceOpt = Path("."),
    verbose: VerboseOpt = False,
    json_mode: JsonOpt = False,
    kubeconfig: KubeconfigOpt = None,
) -> None:
    """Cluster, docker-env target, images built vs running, rollouts, custom resources, stuck objects."""
    from devloop.commands.status import format_status, status as command

    def show(result: dict, reporter: Any) -> None:
        for line in format_status(result):
            typer.echo(line)

    _run(command, profile=profile, workspace=workspace, verbose=verbose, json_mode=json_mode, kubeconfig=kubeconfig,
         render=show)


@app.command()
def logs(
    component: Annotated[Optional[str], typer.Argument(help="Component whose containers to show (default: all).")] = None,
    profile: ProfileOpt = None,
    workspace: WorkspaceOpt = Path("."),
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines until Ctrl-C.")] = False,
    tail: Annotated[Optional[int], typer.Option("--tail", help="Only the last N lines of each container.")] = None,
    verbose: VerboseOpt = False,
    json_mode: JsonOpt = False,
    kubeconfig: KubeconfigOpt = None,
) -> None:
    """Logs of the containers running a component's image; `-f` follows them."""
    from devloop.commands.logs import logs as command

    def on_line(label: str | None, line: str) -> None:
        if json_mode:
            sys.stdout.write(json.dumps({"event": "log", "container": label, "line": line}) + "\n")
        else:
            sys.stdout.write(f"{label} {line}\n" if label else f"{line}\n")
        sys.stdout.flush()

    _run(command, profile=profile, workspace=workspace, verbose=verbose, json_mode=json_mode, kubeconfig=kubeconfig,
         render=None, component=component, follow=follow, tail=tail, on_line=on_line)


@app.command()
def doctor(
    profile: ProfileOpt = None,
    workspace: WorkspaceOpt = Path("."),
    verbose: VerboseOpt = False,
    json_mode: JsonOpt = False,
    kubeconfig: KubeconfigOpt = None,
) -> None:
    """Check tools, versions, the kube context, docker-env, the workspace and limits; say what to fix."""
    from devloop.commands.doctor import doctor as command

    def show(result: dict, reporter: Any) -> None:
        from rich.markup import escape

        marks = {"ok": "[green]✓[/green]", "warn": "[yellow]![/yellow]", "fail": "[red]✗[/red]"}
        for check in result["checks"]:
            reporter.err.print(f"{marks[check['status']]} {escape(check['name'])}: {escape(check['detail'])}")
            if check["fix"]:
                reporter.err.print(f"    fix: {escape(check['fix'])}")

    def run(session: Any) -> dict:
        result = command(session)
        result["exit_code"] = 0 if result["ok"] else 1
        return result

    _run(run, profile=profile, workspace=workspace, verbose=verbose, json_mode=json_mode, kubeconfig=kubeconfig, render=show)


@profiles_app.command("list")
def profiles_list(json_mode: JsonOpt = False) -> None:
    """List the profiles devloop can find and where each comes from."""
    from devloop.commands.profiles import list_profiles

    try:
        result = list_profiles(Path.cwd())
    except DevloopError as exc:
        _fail(exc, json_mode)
    if json_mode:
        sys.stdout.write(json.dumps({"event": "result", **result}) + "\n")
        return
    for item in result["profiles"]:
        typer.echo(f"{item['name']}\t{item['origin']}\t{item['path']}")


@profiles_app.command("show")
def profiles_show(
    name: Annotated[str, typer.Argument(help="Profile name or file.")] = "kubeless",
    json_mode: JsonOpt = False,
) -> None:
    """Print a profile's YAML and where it was found."""
    from devloop.commands.profiles import show_profile

    try:
        result = show_profile(name, Path.cwd())
    except DevloopError as exc:
        _fail(exc, json_mode)
    if json_mode:
        sys.stdout.write(json.dumps({"event": "result", **result}) + "\n")
        return
    typer.echo(f"# {result['path']}", err=True)
    sys.stdout.write(result["text"])


def _check_strategy(strategy: str) -> None:
    if strategy not in ("apply", "recreate"):
        raise typer.BadParameter(f"expected 'recreate' or 'apply', got {strategy!r}", param_hint="--strategy")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        # The API clients leave a large heap behind; skipping it in the interpreter's last
        # collection makes every command end up to a second sooner.
        import gc

        gc.freeze()


if __name__ == "__main__":
    main()
