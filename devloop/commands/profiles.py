"""`devloop profiles list|show`."""

from __future__ import annotations

from pathlib import Path

from devloop import profile as profile_mod


def list_profiles(cwd: Path) -> dict:
    return {
        "command": "profiles list",
        "profiles": [{"name": name, "path": str(path), "origin": origin} for name, path, origin in profile_mod.list_profiles(cwd)],
    }


def show_profile(ref: str, cwd: Path) -> dict:
    loaded = profile_mod.load_profile(ref, cwd=cwd)
    return {
        "command": "profiles show",
        "name": loaded.name,
        "path": str(loaded.source),
        "text": Path(loaded.source).read_text(),
    }
