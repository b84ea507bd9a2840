"""What to watch: the input roots of a profile, and which directories get a watch and how.

A subtree that holds an ignored directory (`.git/`, `bundles/`, `node_modules/` …) is watched
directory by directory so the ignored part never gets an inotify watch; a clean subtree is one
recursive watch. This keeps a 100k-file checkout cheap to watch. `ProfileRouter` answers the
questions a plan (and the watcher) asks with the rules of devloop.sources.inputs, the fingerprint's.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

# Past this many watchdog watches (one thread each) a pruned plan costs more than it saves.
MAX_PLANNED_WATCHES = 400


class Router(Protocol):
    """What the watcher needs to know about a profile (see `ProfileRouter`)."""

    def roots(self) -> Sequence[Path]:
        """Absolute input paths: directories, files, or paths that do not exist yet."""

    def components_for(self, path: Path) -> frozenset[str]:
        """The components whose inputs include `path` (minus ignore rules); empty if none."""

    def is_ignored_dir(self, path: Path) -> bool:
        """True when nothing below the directory `path` can be an input of any component."""

    def is_manifest(self, path: Path) -> bool:
        """True when `path` is one of the profile's manifest files (an edit re-applies them)."""

    # Optional: `bases() -> {component directory: components}`; without it the watcher guards
    # the directory roots themselves.


@dataclass
class WatchPlan:
    """Directories to watch: `recursive` ones (with the number of directories below them)
    cover their whole subtree, `flat` ones only their direct entries. `pruned` are ignored
    directories left unwatched."""

    recursive: dict[Path, int] = field(default_factory=dict)
    flat: set[Path] = field(default_factory=set)
    pruned: list[Path] = field(default_factory=list)

    def watches(self) -> list[tuple[Path, bool]]:
        rec = sorted(self.recursive)
        top = [p for p in rec if not _under_any(p, rec, strict=True)]
        flat = sorted(p for p in self.flat if not _under_any(p, top))
        return [(p, True) for p in top] + [(p, False) for p in flat]

    @property
    def dirs(self) -> int:
        """Directories the plan puts an inotify watch on."""
        return sum(self.recursive[p] if rec else 1 for p, rec in self.watches())

    def merge(self, other: WatchPlan) -> None:
        for p, n in other.recursive.items():
            self.recursive[p] = max(n, self.recursive.get(p, 0))
        self.flat |= other.flat
        self.pruned += [p for p in other.pruned if p not in self.pruned]


def _under_any(path: Path, roots: Iterable[Path], strict: bool = False) -> bool:
    for root in roots:
        if path == root:
            if not strict:
                return True
            continue
        if root in path.parents:
            return True
    return False


def subdirs(path: Path) -> list[Path]:
    try:
        with os.scandir(path) as it:
            return [Path(e.path) for e in it if e.is_dir(follow_symlinks=False)]
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return []


def plan_tree(top: Path, is_ignored_dir: Callable[[Path], bool]) -> WatchPlan:
    """Plan watches for the directory `top` and everything below it, skipping ignored dirs."""
    plan = WatchPlan()
    children: dict[Path, list[Path]] = {}
    order: list[Path] = []  # pre-order; reversed it visits children before parents
    dirty: set[Path] = set()  # directories with an ignored child
    stack = [top]
    while stack:
        d = stack.pop()
        order.append(d)
        kids = []
        for sub in subdirs(d):
            if is_ignored_dir(sub):
                plan.pruned.append(sub)
                dirty.add(d)
            else:
                kids.append(sub)
        children[d] = kids
        stack.extend(kids)
    clean: dict[Path, bool] = {}
    size: dict[Path, int] = {}
    for d in reversed(order):
        kids = children[d]
        clean[d] = d not in dirty and all(clean[k] for k in kids)
        size[d] = 1 + sum(size[k] for k in kids)
    # A clean subtree is one recursive watch; a dirty directory is watched flat and its
    # children are planned the same way, so ignored directories never get a watch.
    emit = [top]
    while emit:
        d = emit.pop()
        if clean[d]:
            plan.recursive[d] = size[d]
        else:
            plan.flat.add(d)
            emit.extend(children[d])
    return plan


class RootsOf:
    """A router narrowed to some of its roots (to plan the watches of one directory again)."""

    def __init__(self, router: Router, roots: list[Path]) -> None:
        self._router = router
        self._roots = roots

    def roots(self) -> list[Path]:
        return list(self._roots)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._router, name)


def entries(path: Path) -> list[Path]:
    """The entries of `path` that are not directories (none when it cannot be read)."""
    try:
        with os.scandir(path) as it:
            return [Path(e.path) for e in it if not e.is_dir(follow_symlinks=False)]
    except OSError:
        return []


def files_under(top: Path, plan: WatchPlan) -> Iterator[Path]:
    """Every file below `top`, outside the directories `plan` pruned."""
    pruned = set(plan.pruned)
    for root, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if Path(root, d) not in pruned]
        for name in files:
            yield Path(root, name)


def plan_watches(router: Router, workspace: Path) -> WatchPlan:
    """The whole plan for a router's input roots, deduplicated."""
    plan = WatchPlan()
    for root in sorted(set(router.roots())):
        if root.is_dir():
            if not router.is_ignored_dir(root):
                plan.merge(plan_tree(root, router.is_ignored_dir))
        else:
            # A file (or a path that does not exist yet): watch the nearest existing directory
            # flat. Editors replace files by rename, so a watch on the file itself would go stale.
            anchor = root.parent
            while not anchor.is_dir() and anchor != workspace and workspace in anchor.parents:
                anchor = anchor.parent
            if anchor.is_dir():
                plan.flat.add(anchor)
    if len(plan.watches()) > MAX_PLANNED_WATCHES:
        # Ignored directories scattered everywhere: one thread per flat watch would cost more
        # than watching them. Watch each input root whole; the router still filters events.
        coarse = WatchPlan(pruned=[])
        for path, _rec in plan.watches():
            top = next((r for r in sorted(router.roots()) if r == path or r in path.parents), None)
            if top is not None and top.is_dir():
                coarse.recursive[top] = coarse.recursive.get(top, 0) + (plan.recursive.get(path, 1))
            else:
                coarse.flat.add(path)
        coarse.recursive = {p: n + sum(1 for q in plan.pruned if p in q.parents) for p, n in coarse.recursive.items()}
        return coarse
    return plan


class ProfileRouter:
    """Routes paths with the profile's rules, as devloop.sources.inputs defines them.

    The ignore rules (profile and component `ignore`, `.git/`, editor temp files, the build
    context's `.dockerignore`) are the fingerprint's, so the watcher and the "did anything
    change" decision can never disagree about what an input is.
    """

    def __init__(
        self, profile: Any, workspace: Path, components: Iterable[str] | None = None, *, manifests: bool = True
    ) -> None:
        self.profile = profile
        self.workspace = Path(workspace).resolve()
        wanted = set(components) if components is not None else None
        self._components = [c for c in profile.components if wanted is None or c.name in wanted]
        self._names = {c.name for c in self._components}
        self._roots: list[Path] = []
        for c in self._components:
            base = Path(os.path.abspath(c.path(self.workspace)))
            for i in c.inputs:
                root = Path(os.path.normpath(base / i))
                if root not in self._roots:
                    self._roots.append(root)
        # The manifest files themselves (not what a jsonnet file imports): an edit re-applies.
        self._manifests = (
            {Path(os.path.normpath(self.workspace / m.path)) for m in profile.manifests} if manifests else set()
        )
        self._root_texts = [str(r) for r in self._roots]
        self.reload()

    def reload(self) -> None:
        """Re-read the rules (a .dockerignore changed)."""
        from devloop.sources.inputs import PathMapper

        self._mapper = PathMapper(self.profile, self.workspace)

    def roots(self) -> list[Path]:
        return list(self._roots) + sorted(self._manifests - set(self._roots))

    def bases(self) -> dict[Path, frozenset[str]]:
        """Each component directory (a checkout, usually) with the components in it: the watcher
        checks that these are still there (see devloop.watch.watcher)."""
        out: dict[Path, frozenset[str]] = {}
        for c in self._components:
            base = Path(os.path.abspath(c.path(self.workspace)))
            out[base] = out.get(base, frozenset()) | {c.name}
        return out

    def components_for(self, path: Path) -> frozenset[str]:
        return frozenset(c.name for c in self._mapper.components_for(path) if c.name in self._names)

    def is_manifest(self, path: Path) -> bool:
        return path in self._manifests

    def is_ignored_dir(self, path: Path) -> bool:
        # Called for every directory of the tree while planning: string prefixes, not Path.parents.
        text = str(path)
        if not any(text == r or text.startswith(r + os.sep) for r in self._root_texts):
            return False  # an ancestor of inputs, or outside them: never pruned here
        return not any(c.name in self._names for c in self._mapper.components_for(path, is_dir=True))
