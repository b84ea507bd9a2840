"""`devloop profiles list|show`."""

from __future__ import annotations

from pathlib import Path

from devloop.base.results import ProfileEntry, ProfileShowResult, ProfilesListResult
from devloop.profile import lookup


def list_profiles(cwd: Path) -> ProfilesListResult:
    return ProfilesListResult(
        profiles=[
            ProfileEntry(name=name, path=str(path), origin=origin) for name, path, origin in lookup.list_profiles(cwd)
        ]
    )


def show_profile(ref: str, cwd: Path) -> ProfileShowResult:
    loaded = lookup.load_profile(ref, cwd=cwd)
    assert loaded.source is not None  # load_profile records the file it read
    return ProfileShowResult(name=loaded.name, path=str(loaded.source), text=Path(loaded.source).read_text())
