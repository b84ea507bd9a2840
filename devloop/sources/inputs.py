"""What a component's inputs are: which files, under which ignore rules, and path -> component.

Ignore rules are gitignore patterns matched against paths relative to the component's directory
(each checkout is treated like a repository root): the profile's `ignore`, the component's
`ignore`, the build context's `.dockerignore` and, always, `.git/` and editor temp files. Build
outputs are ignored, so a build writing into its own inputs cannot trigger itself: the
fingerprint — not event filtering — is what makes build loops impossible.

Build contexts (for .dockerignore): the directory of any input that is a file named
`Dockerfile*`, any input directory that directly contains a `Dockerfile`, and the component
directory itself when it contains a `Dockerfile`. Their `.dockerignore` patterns are anchored at
that directory, as Docker anchors them at the context root (`*.md` there means top-level only).

The fingerprint (devloop.sources.fingerprint) and the watcher's router (devloop.watch.plan) both use
these rules, so "what changed" and "what is an input" can never disagree.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath

import pathspec

from devloop.profile.schema import Component, Profile

DEFAULT_IGNORES = (".git/", "*.swp", "*.swx", "*~", ".#*", "4913")


def norm_rel(rel: str) -> str:
    """`./a/../b/` -> `b`; `.` -> `` (the component directory itself)."""
    text = os.path.normpath(rel).replace(os.sep, "/")
    return "" if text == "." else text.strip("/")


def build_contexts(component: Component, workspace: Path) -> list[str]:
    """Build-context directories (relative to the component dir, "" = the dir itself)."""
    base = component.path(workspace)
    contexts: list[str] = []
    candidates = [""] + [norm_rel(i) for i in component.inputs]
    for rel in candidates:
        path = base / rel if rel else base
        if path.is_file() and path.name.startswith("Dockerfile"):
            ctx = norm_rel(str(PurePosixPath(rel).parent))
        elif path.is_dir() and (path / "Dockerfile").is_file():
            ctx = rel
        else:
            continue
        if ctx not in contexts:
            contexts.append(ctx)
    return contexts


def _dockerignore_lines(component: Component, workspace: Path) -> list[str]:
    lines: list[str] = []
    base = component.path(workspace)
    for ctx in build_contexts(component, workspace):
        path = base / ctx / ".dockerignore" if ctx else base / ".dockerignore"
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        prefix = f"/{ctx}/" if ctx else "/"
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            pattern = line[1:].strip() if negate else line
            pattern = pattern.lstrip("/")
            if pattern.startswith("./"):
                pattern = pattern[2:]
            if not pattern:
                continue
            lines.append(("!" if negate else "") + prefix + pattern)
    return lines


def ignore_lines(profile: Profile, component: Component, workspace: Path) -> list[str]:
    """All ignore patterns for a component, in precedence order (later wins, gitignore style):
    .dockerignore, profile, component, then the built-in ones (.git/, editor temp files)."""
    return [*_dockerignore_lines(component, workspace), *profile.ignore, *component.ignore, *DEFAULT_IGNORES]


_GLOB = re.compile(r"[*?\[]")


class IgnoreRules:
    """Fast matching of one component's ignore rules (paths relative to its directory).

    `ignored(rel)` for files, `ignored(rel + "/")` for directories. `prune(rel_dir)` says whether
    a walk may skip a directory entirely: yes when it is ignored and no `!` pattern could
    re-include something below it. pathspec re-includes files under an excluded directory,
    which is what Docker does for .dockerignore exceptions; plain git would not, so this errs on
    the side of hashing more, never less.
    """

    def __init__(self, lines: list[str], keep: Iterable[str] = ()) -> None:
        self.spec = pathspec.GitIgnoreSpec.from_lines(lines)
        self.keep = frozenset(keep)
        patterns = [p for p in self.spec.patterns if p.include is not None]
        negations = [ln.strip()[1:] for ln in lines if ln.strip().startswith("!")]
        # Directory prefixes below which some `!` pattern may apply; None = anywhere.
        self._reinclude: list[str] | None = []
        for neg in negations:
            body = neg.rstrip("/")
            if "/" not in body:  # unanchored: can match at any depth
                self._reinclude = None
                break
            literal = _GLOB.split(body.lstrip("/"), 1)[0]
            self._reinclude.append(literal.rsplit("/", 1)[0] if "/" in literal else "")
        if any(p.include is False for p in patterns):
            self.ignored: Callable[[str], bool] = self.spec.match_file
        elif patterns:
            # No `!`: last-match-wins needs no ordering, so one alternation does it in one pass.
            combined = "|".join(f"(?:{re.sub(r'[(][?]P<[^>]+>', '(?:', p.regex.pattern)})" for p in patterns if p.regex)
            self.ignored = re.compile(combined).match  # type: ignore[assignment]  # a match is truthy
        else:
            self.ignored = lambda rel: False
        if self.keep:
            match, keep = self.ignored, self.keep
            self.ignored = lambda rel: rel not in keep and bool(match(rel))

    def prune(self, rel_dir: str) -> bool:
        if not self.ignored(rel_dir + "/"):
            return False
        if rel_dir == ".git" or rel_dir.endswith("/.git"):
            return True
        if self._reinclude is None:
            return False
        return not any(
            p == "" or p == rel_dir or p.startswith(rel_dir + "/") or rel_dir.startswith(p + "/")
            for p in self._reinclude
        )


def ignore_rules(profile: Profile, component: Component, workspace: Path) -> IgnoreRules:
    # Docker sends a context's Dockerfile and .dockerignore even when .dockerignore lists them,
    # and a change to either changes the build: they stay inputs whatever .dockerignore says.
    keep = [
        f"{ctx}/{name}" if ctx else name
        for ctx in build_contexts(component, workspace)
        for name in ("Dockerfile", ".dockerignore")
    ]
    return IgnoreRules(ignore_lines(profile, component, workspace), keep)


class PathMapper:
    """Maps changed paths to the components whose inputs contain them (and don't ignore them).

    Built once per profile+workspace (reads .dockerignore files); rebuild it when a
    .dockerignore or the profile changes.
    """

    def __init__(self, profile: Profile, workspace: Path) -> None:
        self.profile = profile
        self.workspace = Path(workspace)
        self._entries = []
        for c in profile.components:
            base = os.path.abspath(c.path(self.workspace))
            inputs = [norm_rel(i) for i in c.inputs]
            self._entries.append((c, base, inputs, ignore_rules(profile, c, self.workspace).ignored))

    def components_for(self, path: str | os.PathLike[str], *, is_dir: bool = False) -> list[Component]:
        p = Path(path)
        absolute = os.path.abspath(p if p.is_absolute() else self.workspace / p)
        out = []
        for component, base, inputs, matcher in self._entries:
            rel = _relative_to(absolute, base)
            if rel is None:
                continue
            if not any(i == "" or rel == i or rel.startswith(i + "/") for i in inputs):
                continue
            if rel and matcher(rel + "/" if is_dir else rel):
                continue
            out.append(component)
        return out


def _relative_to(path: str, base: str) -> str | None:
    if path == base:
        return ""
    if path.startswith(base.rstrip("/") + "/"):
        return path[len(base.rstrip("/")) + 1 :].replace(os.sep, "/")
    return None
