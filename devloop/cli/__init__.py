"""The typer app: options -> a command function -> its typed result or error -> the reporter, and the exit code.
Nothing here writes output: devloop.output.report does, devloop.output.views says how it reads.

The CLI is the only layer that imports typer (devloop.cli.options holds the shared option types). Command modules
are imported inside each command so that `devloop --help` loads none of kubernetes, docker or watchdog.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from devloop.cli.options import (
    DryRunOpt,
    FlagCommand,
    FlagGroup,
    JsonOpt,
    KubeconfigOpt,
    ProfileOpt,
    Strategy,
    StrategyOpt,
    VerboseOpt,
    WaitLockOpt,
    WorkspaceOpt,
    flag,
)
from devloop.cli.options import (
    run_command as _run,
)

app = typer.Typer(
    name="devloop",
    help="The whole Kubernetes developer loop on minikube in one command: "
    "cluster, addons, namespace, image builds in minikube's Docker daemon, "
    "manifests with the built images, safe cleanup of custom resources, rollout.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    cls=FlagGroup,
)


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


# -- commands ----------------------------------------------------------------------------------
@app.command(cls=FlagCommand)
def up(
    profile: ProfileOpt = None,
    workspace: WorkspaceOpt = Path("."),
    fresh: Annotated[bool, flag("--fresh", "Delete the minikube profile first.")] = False,
    strategy: StrategyOpt = Strategy.apply,
    force_build: Annotated[bool, flag("--force-build", "Rebuild images even if up to date.")] = False,
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


@app.command(cls=FlagCommand)
def watch(
    profile: ProfileOpt = None,
    workspace: WorkspaceOpt = Path("."),
    no_initial: Annotated[bool, flag("--no-initial", "Skip the first `up`; only react to changes.")] = False,
    debounce: Annotated[
        int, typer.Option("--debounce", metavar="MS", help="Quiet window that closes a batch of changes.")
    ] = 300,
    max_wait: Annotated[
        int, typer.Option("--max-wait", metavar="MS", help="Longest a batch waits while changes keep coming.")
    ] = 5000,
    poll: Annotated[bool, flag("--poll", "Poll the file system instead of inotify (network mounts, VMs).")] = False,
    no_live_update: Annotated[
        bool,
        flag("--no-live-update", "Always build and roll out images, even for components with a live_update block."),
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


@app.command(cls=FlagCommand)
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


@app.command(cls=FlagCommand)
def build(
    components: Annotated[
        list[str] | None, typer.Argument(metavar="[COMPONENT]...", help="Components to build (default: all).")
    ] = None,
    profile: ProfileOpt = None,
    workspace: WorkspaceOpt = Path("."),
    force: Annotated[bool, flag("--force", "Rebuild even when the image for these sources exists.")] = False,
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


@app.command(cls=FlagCommand)
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


@app.command(cls=FlagCommand)
def clean(
    profile: ProfileOpt = None,
    workspace: WorkspaceOpt = Path("."),
    strip_finalizers: Annotated[
        bool,
        flag(
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


@app.command(cls=FlagCommand)
def down(
    profile: ProfileOpt = None,
    workspace: WorkspaceOpt = Path("."),
    delete_namespace: Annotated[bool, flag("--delete-namespace", "Also delete the profile's namespace.")] = False,
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


@app.command(cls=FlagCommand)
def render(
    profile: ProfileOpt = None,
    workspace: WorkspaceOpt = Path("."),
    verbose: VerboseOpt = False,
    json_mode: JsonOpt = False,
) -> None:
    """Print the manifests as they would be applied (image tags from the current sources)."""
    from devloop.commands.render import render as command

    _run(command, profile=profile, workspace=workspace, verbose=verbose, json_mode=json_mode)


@app.command(cls=FlagCommand)
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


@app.command(cls=FlagCommand)
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


@app.command(cls=FlagCommand)
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


from devloop.cli.profiles import profiles_app  # noqa: E402 -- after app: its commands need the shared options

app.add_typer(profiles_app, name="profiles")


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
