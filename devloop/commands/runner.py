"""Runs one command: load the profile, make the Session, hold the profile's lock when the command changes the
cluster, and hand the typed result or error to the Reporter. Returns the exit code; the CLI exits with it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devloop.base.errors import DevloopError

if TYPE_CHECKING:
    from devloop.base.results import Result
    from devloop.output.report import Reporter


def run_command(
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
) -> int:
    """Load the profile, make the Session, run the command and hand its result to the reporter.

    `lock`: the command changes the cluster, so it holds the minikube profile's lock (waiting up to
    `wait_lock` seconds for another devloop); a dry run changes nothing and takes no lock."""
    from devloop.base import signals
    from devloop.output.report import Reporter

    reporter = Reporter(json_mode=json_mode, verbose=verbose)
    # SIGTERM and SIGHUP end a command as Ctrl-C does (130/143/129); a second one ends it at once.
    signals.install(announce=announce)

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

    return finish(reporter, run)


def announce(text: str) -> None:
    # Straight to fd 2: this runs in a signal handler, which must not re-enter a buffered stream.
    import os

    try:
        os.write(2, f"{text}\n".encode())
    except OSError:
        pass  # the terminal is gone (SIGHUP)


def finish(reporter: Reporter, run: Callable[[], Result]) -> int:
    """The command's exit code, after the reporter has shown its result or error."""
    try:
        result = run()
    except DevloopError as exc:
        reporter.error(exc)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        from devloop.base.signals import exit_code

        reporter.interrupted(exit_code(exc))
        return exit_code(exc)
    reporter.result(result)
    return result.exit_code
