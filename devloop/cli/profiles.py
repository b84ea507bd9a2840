"""`devloop profiles list|show`: the profiles devloop can find, and one profile's YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from devloop.cli.options import FlagCommand, FlagGroup, JsonOpt
from devloop.cli.options import finish as _finish

profiles_app = typer.Typer(help="List the profiles devloop can find, or show one.", no_args_is_help=True, cls=FlagGroup)


@profiles_app.command("list", cls=FlagCommand)
def profiles_list(json_mode: JsonOpt = False) -> None:
    """List the profiles devloop can find and where each comes from."""
    from devloop.commands.profiles import list_profiles
    from devloop.output.report import Reporter

    _finish(Reporter(json_mode=json_mode), lambda: list_profiles(Path.cwd()))


@profiles_app.command("show", cls=FlagCommand)
def profiles_show(
    name: Annotated[str, typer.Argument(metavar="NAME|FILE", help="Profile name or file.")] = "kubeless",
    json_mode: JsonOpt = False,
) -> None:
    """Print a profile's YAML and where it was found."""
    from devloop.commands.profiles import show_profile
    from devloop.output.report import Reporter

    _finish(Reporter(json_mode=json_mode), lambda: show_profile(name, Path.cwd()))
