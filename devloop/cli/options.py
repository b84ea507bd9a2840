"""The command line's shared options: the option types every command takes, and the command classes that show a
flag without a `<bool>` value. Part of the CLI layer, the only one that imports typer."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

if TYPE_CHECKING:
    from devloop.base.results import Result
    from devloop.output.report import Reporter


def _untyped(params: list[Any]) -> list[Any]:
    # A flag takes no value: typer would show `<bool>` beside it (--help and the completion
    # options too), which reads as if it wanted one.
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class FlagCommand(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return _untyped(super().get_params(ctx))


class FlagGroup(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return _untyped(super().get_params(ctx))


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


def flag(name: str, help: str) -> Any:
    return typer.Option(name, help=help)


def run_command(command: Callable[..., Result], **options: Any) -> None:
    from devloop.commands.runner import run_command

    code = run_command(command, **options)
    if code:
        raise typer.Exit(code)


def finish(reporter: Reporter, run: Callable[[], Result]) -> None:
    from devloop.commands.runner import finish

    code = finish(reporter, run)
    if code:
        raise typer.Exit(code)
