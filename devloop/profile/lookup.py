"""Profiles: finding one (the lookup order) and loading it.

`load_profile(NAME or PATH, cwd=...)` is the entry point. The schema lives in
devloop.profile.schema and the error texts in devloop.profile.errors; the names other modules
use from them are re-exported here, so `from devloop.profile.lookup import Profile` keeps working.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import NamedTuple

from pydantic import ValidationError

from devloop.base.errors import ConfigError
from devloop.profile.errors import format_errors, hint_for, load_yaml, type_name, yaml_error_text
from devloop.profile.imageref import ImageRef, normalize_repo, parse_image_ref
from devloop.profile.schema import Cluster, Component, Manifest, Profile, Timeouts

__all__ = [
    "DEFAULT_PROFILE",
    "Cluster",
    "Component",
    "ImageRef",
    "Manifest",
    "Profile",
    "ProfileInfo",
    "Timeouts",
    "bundled_profiles_dir",
    "list_profiles",
    "load_profile",
    "load_profile_file",
    "normalize_repo",
    "parse_image_ref",
    "parse_profile",
    "resolve_profile",
    "user_profiles_dir",
    "yaml_error_text",
]

DEFAULT_PROFILE = "kubeless"


class ProfileInfo(NamedTuple):
    name: str
    path: Path
    origin: str  # "project" (./profiles), "user" (config dir) or "bundled"


def user_profiles_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "devloop" / "profiles"


def bundled_profiles_dir() -> Path:
    # Installed as package data (pyproject: "devloop.profile" = ["bundled/*.yaml"]); a real directory
    # both for editable installs and wheels, so a Path is fine.
    return Path(str(resources.files("devloop.profile") / "bundled"))


def _search_dirs(cwd: Path) -> list[tuple[Path, str]]:
    return [
        (Path(cwd).absolute() / "profiles", "project"),
        (user_profiles_dir(), "user"),
        (bundled_profiles_dir(), "bundled"),
    ]


def list_profiles(cwd: Path) -> list[ProfileInfo]:
    """Every profile name visible from `cwd`, with the file that wins for it (lookup order)."""
    found: dict[str, ProfileInfo] = {}
    for directory, origin in _search_dirs(cwd):
        if not directory.is_dir():
            continue
        for path in sorted(directory.iterdir()):
            if path.suffix in (".yaml", ".yml") and path.is_file() and path.stem not in found:
                found[path.stem] = ProfileInfo(path.stem, path, origin)
    return sorted(found.values(), key=lambda p: p.name)


def _looks_like_path(ref: str) -> bool:
    return "/" in ref or os.sep in ref or ref.endswith((".yaml", ".yml")) or ref.startswith((".", "~"))


def resolve_profile(ref: str | None, *, cwd: Path) -> Path:
    """The file a `--profile` value names (see load_profile for the lookup order)."""
    ref = ref or DEFAULT_PROFILE
    cwd = Path(cwd)
    if _looks_like_path(ref):
        path = Path(ref).expanduser()
        if not path.is_absolute():
            path = cwd / path
        if not path.is_file():
            what = "is a directory, not a file" if path.is_dir() else "does not exist"
            raise ConfigError(f"profile file {path} {what}", hint="pass a profile name or an existing YAML file")
        return path
    tried = []
    for directory, _origin in _search_dirs(cwd):
        for suffix in (".yaml", ".yml"):
            candidate = directory / f"{ref}{suffix}"
            if candidate.is_file():
                return candidate
        tried.append(str(directory / f"{ref}.yaml"))
    available = ", ".join(p.name for p in list_profiles(cwd)) or "none"
    raise ConfigError(
        f"no profile named {ref!r}; looked in: " + ", ".join(tried) + f"; available profiles: {available}",
        hint="`devloop profiles list` shows them; --profile also accepts a path to a YAML file",
    )


def load_profile(ref: str | None = None, *, cwd: Path) -> Profile:
    """Load and validate a profile.

    `ref` is a path (if it looks like one: contains '/', ends in .yaml/.yml) or a NAME looked up
    as ./profiles/NAME.yaml (relative to cwd), then $XDG_CONFIG_HOME/devloop/profiles/NAME.yaml
    (default ~/.config), then the profiles bundled with devloop. Default NAME: "kubeless".
    """
    path = resolve_profile(ref, cwd=cwd)
    return load_profile_file(path)


def load_profile_file(path: Path) -> Profile:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read profile: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: profile is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return parse_profile(text, path)


def parse_profile(text: str, path: Path) -> Profile:
    node, data = load_yaml(text, path)
    if data is None:
        raise ConfigError(
            f"{path}: profile is empty; expected a mapping with keys name, cluster, namespace, components, manifests"
        )
    assert node is not None  # a document with data has its node
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}:{node.start_mark.line + 1}: expected the profile to be a mapping of keys, found {type_name(data)}"
        )
    data = dict(data)
    data.setdefault("name", path.stem)
    try:
        profile = Profile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            format_errors(exc.errors(include_url=False), data, node, path, Profile), hint=hint_for(exc)
        ) from None
    problems = profile.problems()
    if problems:
        errors = [{"loc": loc, "type": "value_error", "msg": msg, "input": None} for loc, msg in problems]
        raise ConfigError(format_errors(errors, data, node, path, Profile))
    profile._source = path
    return profile
