"""The typer app: options -> a command function -> its typed result or error -> the reporter,
and the exit code. Nothing here writes output: report.py does, views.py says how it reads.

This is the only module that imports typer. Command modules are imported inside each
command so that `devloop --help` loads none of kubernetes, docker or watchdog.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from devloop.base.errors import DevloopError

if TYPE_CHECKING:
    from devloop.base.results import Result


def _untyped(params: list[Any]) -> list[Any]:
    # A flag takes no value: typer would show `<bool>` beside it (--help and the completion
    # options too), which reads as if it wanted one.
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class _Command(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return _untyped(super().get_params(ctx))


class _Group(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return _untyped(super().get_params(ctx))


app = typer.Typer(
    name="devloop",
    help="The whole Kubernetes developer loop on minikube in one command: "
    "cluster, addons, namespace, image builds in minikube's Docker daemon, "
    "manifests with the built images, safe cleanup of custom resources, rollout.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    cls=_Group,
)
profiles_app = typer.Typer(help="List the profiles devloop can find, or show one.", no_args_is_help=True, cls=_Group)
app.add_typer(profiles_app, name="profiles")


def _print_version(asked: bool) -> None:
    if asked:
        import devloop

        typer.echo(f"devloop {devloop.__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print devloop's version and exit."),
    ] = False,
) -> None:
    # eager: --version answers before typer looks for a command
    pass


class Strategy(StrEnum):
    """How manifests reach the cluster (typer validates the value and lists both in --help)."""

    apply = "apply"
    recreate = "recreate"


ProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--profile",
        "-p",
        envvar="DEVLOOP_PROFILE",
        metavar="NAME|FILE",
        help="Profile name or YAML file. Looked up as a path, ./profiles/NAME.yaml, "
        "~/.config/devloop/profiles/NAME.yaml, then the bundled profiles. [default: kubeless]",
    ),
]
WorkspaceOpt = Annotated[
    Path,
    typer.Option(
        "--workspace",
        "-w",
        envvar="DEVLOOP_WORKSPACE",
        metavar="DIR",
        help="Where the checkouts named by the profile's component dirs live.",
    ),
]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Stream build and minikube output.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object per line: events, then the result.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print each command and API call instead of running it.")]
KubeconfigOpt = Annotated[
    str | None,
    typer.Option(
        "--kubeconfig",
        envvar="KUBECONFIG",
        metavar="FILE[:FILE...]",
        help="Kubeconfig files, merged as kubectl does (the context is always the minikube profile's).",
    ),
]
StrategyOpt = Annotated[
    Strategy, typer.Option("--strategy", help="recreate: clean, delete and create; apply: server-side apply.")
]
# One devloop changes a minikube profile at a time (devloop.base.lock); 0 refuses at once.
WAIT_LOCK_HELP = (
    "When another devloop is changing this minikube profile, wait up to SECONDS for it "
    "(a countdown names it), then fail; 0 fails at once."
)
WaitLockOpt = Annotated[float, typer.Option("--wait-lock", metavar="SECONDS", min=0, help=WAIT_LOCK_HELP)]


def _flag(name: str, help: str) -> Any:
    return typer.Option(name, help=help)


def _run(
    command: Callable[..., Result],
    *,
    profile: str | None,
    workspace: Path,
    verbose: bool,
    json_mode: bool,
    dry_run: bool = False,
    kubeconfig: str | None = None,
    lock: bool = False,
    wait_lock: float = 0.0,
    **kwargs: Any,
) -> None:
    """Load the profile, make the Session, run the command and hand its result to the reporter.

    `lock`: the command changes the cluster, so it holds the minikube profile's lock (waiting up to
    `wait_lock` seconds for another devloop); a dry run changes nothing and takes no lock."""
    from devloop.base import signals
    from devloop.output.report import Reporter

    reporter = Reporter(json_mode=json_mode, verbose=verbose)
    # SIGTERM and SIGHUP end a command as Ctrl-C does (130/143/129); a second one ends it at once.
    signals.install(announce=_announce)

    def run() -> Result:
        from devloop.profile.lookup import load_profile
        from devloop.session import Session

        loaded = load_profile(profile, cwd=Path.cwd())
        # The whole KUBECONFIG: the kube adapter merges its files as kubectl does.
        session = Session(
            profile=loaded,
            workspace=workspace.resolve(),
            reporter=reporter,
            dry_run=dry_run,
            kubeconfig=kubeconfig or None,
        )
        if lock and not dry_run:
            from devloop.base.lock import hold_for

            with hold_for(session, wait=wait_lock):
                return command(session, **kwargs)
        return command(session, **kwargs)

    _finish(reporter, run)


def _announce(text: str) -> None:
    # Straight to fd 2: this runs in a signal handler, which must not re-enter a buffered stream.
    import os

    try:
        os.write(2, f"{text}\n".encode())
    except OSError:
        pass  # the terminal is gone (SIGHUP)


def _finish(reporter: Any, run: Callable[[], Result]) -> None:
    try:
        result = run()
    except DevloopError as exc:
        reporter.error(exc)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt as exc:
        from devloop.base.signals import exit_code

        reporter.interrupted(exit_code(exc))
        raise typer.Exit(exit_code(exc)) from None
    reporter.result(result)
    if result.exit_code:
        raise typer.Exit(result.exit_code)


# -- commands ----------------------------------------------------------------------------------
@app.command(cls=_Command)
def up(
    profile: ProfileOpt = None,
    workspace: WorkspaceOpt = Path("."),
    fresh: Annotated[bool, _flag("--fresh", "Delete the minikube profile first.")] = False,
    strategy: StrategyOpt = Strategy.apply,
    force_build: Annotated[bool, _flag("--force-build", "Rebuild images even if up to date.")] = False,
    dry_run: DryRunOpt = False,
    verbose: VerboseOpt = False,
    json_mode: JsonOpt = False,
    kubeconfig: KubeconfigOpt = None,
    wait_lock: WaitLockOpt = 60.0,
) -> None:
    """Bring the whole loop up once: cluster, addons, namespace, builds, manifests, rollout."""
    from devloop.commands.up import up as command

    _run(
        command,
        lock=True,
        wait_lock=wait_lock,
        profile=profile,
        workspace=workspace,
        verbose=verbose,
        json_mode=json_mode,
        dry_run=dry_run,
        kubeconfig=kubeconfig,
        fresh=fresh,
        strategy=strategy.value,
        force_build=force_build,
    )


@app.command(cls=_Command)
def watch(
    profile: ProfileOpt = None,
    workspace: WorkspaceOpt = Path("."),
    no_initial: Annotated[bool, _flag("--no-initial", "Skip the first `up`; only react to changes.")] = False,
    debounce: Annotated[
        int, typer.Option("--debounce", metavar="MS", help="Quiet window that closes a batch of changes.")
    ] = 300,
    max_wait: Annotated[
        int, typer.Option("--max-wait", metavar="MS", help="Longest a batch waits while changes keep coming.")
    ] = 5000,
    poll: Annotated[bool, _flag("--poll", "Poll the file system instead of inotify (network mounts, VMs).")] = False,
    no_live_update: Annotated[
        bool,
        _flag("--no-live-update", "Always build and roll out images, even for components with a live_update block."),
    ] = False,
    strategy: StrategyOpt = Strategy.apply,
    verbose: VerboseOpt = False,
    json_mode: JsonOpt = False,
    kubeconfig: KubeconfigOpt = None,
    wait_lock: WaitLockOpt = 600.0,
) -> None:
    """`up`, then rebuild and redeploy the components whose files change, until Ctrl-C."""
    from devloop.commands.watch import watch as command

    _run(
        command,
        profile=profile,
        workspace=workspace,
        verbose=verbose,
        json_mode=json_mode,
        kubeconfig=kubeconfig,
        initial=not no_initial,
        debounce_ms=debounce,
        max_wait_ms=max_wait,
        poll=poll,
        strategy=strategy.value,
        live_update=not no_live_update,
        wait_lock=wait_lock,
    )


@app.command(cls=_Command)
def reset(
    profile: ProfileOpt = None,
    workspace: WorkspaceOpt = Path("."),
    dry_run: DryRunOpt = False,
    verbose: VerboseOpt = False,
    json_mode: JsonOpt = False,
    kubeconfig: KubeconfigOpt = None,
    wait_lock: WaitLockOpt = 60.0,
) -> None:
    """Delete and recreate the minikube profile, then enable addons and create the namespace."""
    from devloop.commands.reset import reset as command

    _run(
        command,
        lock=True,
        wait_lock=wait_lock,
        profile=profile,
        workspace=workspace,
        verbose=verbose,
        json_mode=json_mode,
        dry_run=dry_run,
        kubeconfig=kubeconfig,
    )


@app.command(cls=_Command)
def build(
    components: Annotated[
        list[str] | None, typer.Argument(metavar="[COMPONENT]...", help="Components to build (default: all).")
    ] = None,
    profile: ProfileOpt = None,
    workspace: WorkspaceOpt = Path("."),
    force: Annotated[bool, _flag("--force", "Rebuild even when the image for these sources exists.")] = False,
    dry_run: DryRunOpt = False,
    verbose: VerboseOpt = False,
    json_mode: JsonOpt = False,
    kubeconfig: KubeconfigOpt = None,
    wait_lock: WaitLockOpt = 60.0,
) -> None:
    """Build images into minikube's Docker daemon; skip those whose sources did not change."""
    from devloop.commands.build import build as command

    _run(
        command,
        lock=True,
        wait_lock=wait_lock,
        profile=profile,
        workspace=workspace,
        verbose=verbose,
        json_mode=json_mode,
        dry_run=dry_run,
        kubeconfig=kubeconfig,
        components=components or (),
        force=force,
    )


@app.command(cls=_Command)
def apply(
    profile: ProfileOpt = None,
    workspace: WorkspaceOpt = Path("."),
    strategy: StrategyOpt = Strategy.recreate,
    dry_run: DryRunOpt = False,
    verbose: VerboseOpt = False,
    json_mode: JsonOpt = False,
    kubeconfig: KubeconfigOpt = None,
    wait_lock: WaitLockOpt = 60.0,
) -> None:
    """Clean custom resources and re-apply the manifests with the images of the current sources."""
    from devloop.commands.apply import apply as command

    _run(
        command,
        lock=True,
        wait_lock=wait_lock,
        profile=profile,
        workspace=workspace,
        verbose=verbose,
        json_mode=json_mode,
        dry_run=dry_run,
        kubeconfig=kubeconfig,
        strategy=strategy.value,
    )


@app.command(cls=_Command)
def clean(
    profile: ProfileOpt = None,
    workspace: WorkspaceOpt = Path("."),
    strip_finalizers: Annotated[
        bool,
        _flag(
            "--strip-finalizers/--no-strip-finalizers",
            "Remove finalizers that still hold objects after the grace period.",
        ),
    ] = True,
    dry_run: DryRunOpt = False,
    verbose: VerboseOpt = False,
    json_mode: JsonOpt = False,
    kubeconfig: KubeconfigOpt = None,
    wait_lock: WaitLockOpt = 60.0,
) -> None:
    """Delete the profile's custom resources in all namespaces, stripping finalizers that would hang."""
    from devloop.commands.clean import clean as command

    _run(
        command,
        lock=True,
        wait_lock=wait_lock,
        profile=profile,
        workspace=workspace,
        verbose=verbose,
        json_mode=json_mode,
        dry_run=dry_run,
        kubeconfig=kubeconfig,
        strip_finalizers=strip_finalizers,
    )


@app.command(cls=_Command)
def down(
    profile: ProfileOpt = None,
    workspace: WorkspaceOpt = Path("."),
    delete_namespace: Annotated[bool, _flag("--delete-namespace", "Also delete the profile's namespace.")] = False,
    dry_run: DryRunOpt = False,
    verbose: VerboseOpt = False,
    json_mode: JsonOpt = False,
    kubeconfig: KubeconfigOpt = None,
    wait_lock: WaitLockOpt = 60.0,
) -> None:
    """Clean custom resources, then delete everything the manifests made."""
    from devloop.commands.down import down as command

    _run(
        command,
        lock=True,
        wait_lock=wait_lock,
        profile=profile,
        workspace=workspace,
        verbose=verbose,
        json_mode=json_mode,
        dry_run=dry_run,
        kubeconfig=kubeconfig,
        delete_namespace=delete_namespace,
    )


@app.command(cls=_Command)
def render(
    profile: ProfileOpt = None,
    workspace: WorkspaceOpt = Path("."),
    verbose: VerboseOpt = False,
    json_mode: JsonOpt = False,
) -> None:
    """Print the manifests as they would be applied (image tags from the current sources)."""
    from devloop.commands.render import render as command

    _run(command, profile=profile, workspace=workspace, verbose=verbose, json_mode=json_mode)


@app.command(cls=_Command)
def status(
    profile: ProfileOpt = None,
    workspace: WorkspaceOpt = Path("."),
    verbose: VerboseOpt = False,
    json_mode: JsonOpt = False,
    kubeconfig: KubeconfigOpt = None,
) -> None:
    """Cluster, docker-env target, images built vs running, rollouts, custom resources, stuck objects."""
    from devloop.commands.status import status as command

    _run(command, profile=profile, workspace=workspace, verbose=verbose, json_mode=json_mode, kubeconfig=kubeconfig)


@app.command(cls=_Command)
def logs(
    component: Annotated[
        str | None, typer.Argument(metavar="[COMPONENT]", help="Component whose containers to show (default: all).")
    ] = None,
    profile: ProfileOpt = None,
    workspace: WorkspaceOpt = Path("."),
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines until Ctrl-C.")] = False,
    tail: Annotated[
        int | None, typer.Option("--tail", metavar="N", help="Only the last N lines of each container.")
    ] = None,
    verbose: VerboseOpt = False,
    json_mode: JsonOpt = False,
    kubeconfig: KubeconfigOpt = None,
) -> None:
    """Logs of the containers running a component's image; `-f` follows them."""
    from devloop.commands.logs import logs as command

    _run(
        command,
        profile=profile,
        workspace=workspace,
        verbose=verbose,
        json_mode=json_mode,
        kubeconfig=kubeconfig,
        component=component,
        follow=follow,
        tail=tail,
    )


@app.command(cls=_Command)
def doctor(
    profile: ProfileOpt = None,
    workspace: WorkspaceOpt = Path("."),
    verbose: VerboseOpt = False,
    json_mode: JsonOpt = False,
    kubeconfig: KubeconfigOpt = None,
) -> None:
    """Check tools, versions, the kube context, docker-env, the workspace and limits; say what to fix."""
    from devloop.commands.doctor import doctor as command

    _run(command, profile=profile, workspace=workspace, verbose=verbose, json_mode=json_mode, kubeconfig=kubeconfig)


@profiles_app.command("list", cls=_Command)
def profiles_list(json_mode: JsonOpt = False) -> None:
    """List the profiles devloop can find and where each comes from."""
    from devloop.commands.profiles import list_profiles
    from devloop.output.report import Reporter

    _finish(Reporter(json_mode=json_mode), lambda: list_profiles(Path.cwd()))


@profiles_app.command("show", cls=_Command)
def profiles_show(
    name: Annotated[str, typer.Argument(metavar="NAME|FILE", help="Profile name or file.")] = "kubeless",
    json_mode: JsonOpt = False,
) -> None:
    """Print a profile's YAML and where it was found."""
    from devloop.commands.profiles import show_profile
    from devloop.output.report import Reporter

    _finish(Reporter(json_mode=json_mode), lambda: show_profile(name, Path.cwd()))


def main() -> None:
    try:
        app()
    except KeyboardInterrupt as exc:
        from devloop.base.signals import exit_code

        sys.exit(exit_code(exc))
    finally:
        # The API clients leave a large heap behind; skipping it in the interpreter's last
        # collection makes every command (and Ctrl-C in watch and logs -f) end up to a second sooner.
        import gc

        gc.freeze()


if __name__ == "__main__":
    main()
