"""Watch component inputs and hand out debounced batches of changed paths.

`Watcher` runs a watchdog observer over a watch plan (devloop.watch.plan): inotify, or polling
on request or when the inotify limits run out. Every event is filtered through a `Router`
(path -> components, or a manifest file) and fed to a `Debouncer` (devloop.watch.debounce), which
hands out the batches. The watchdog side (observers, handler, event filter, overflow spy, and the
fenced uses of watchdog's private parts) is devloop.watch.backend.

Event filtering keeps noise out of batches, but it is not what stops build-output loops:
the commands compare fingerprints before building, so a batch whose inputs did not really
change builds nothing.

inotify follows an inode: a checkout moved away keeps its watches (at its new place) and sends
no event for the old path. So each component's directory is also stat'ed every ROOT_CHECK_S
(a handful of stats a second: no measurable idle cost). A directory gone (or replaced by another
inode, e.g. a fresh clone) is reported once, its watches are dropped and its components are
left out of batches; once it is back it is planned and watched again and its components are
offered as one batch.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devloop.watch.backend import POLL_INTERVAL_S, Handler, OverflowSpy, default_observer, event_filter, observer_lock
from devloop.watch.debounce import Batch, Debouncer
from devloop.watch.limits import (
    MAX_USER_WATCHES_FILE,
    InotifyExhausted,
    inotify_limit,
    inotify_watch_count,
    start_inotify,
)
from devloop.watch.plan import (
    ProfileRouter,
    RootsOf,
    Router,
    WatchPlan,
    entries,
    files_under,
    plan_tree,
    plan_watches,
    subdirs,
)

__all__ = [
    "Batch",
    "Debouncer",
    "InotifyExhausted",
    "ProfileRouter",
    "Router",
    "WatchInfo",
    "WatchPlan",
    "Watcher",
    "inotify_limit",
    "inotify_watch_count",
    "plan_tree",
    "plan_watches",
]

log = logging.getLogger(__name__)

# How often the component directories are stat'ed (a moved-away checkout sends no inotify event).
ROOT_CHECK_S = 1.0


@dataclass
class WatchInfo:
    mode: str  # "inotify" or "polling"
    watches: int  # watchdog watches scheduled
    dirs: int  # directories covered by inotify watches (or scanned by polling)
    pruned: int  # ignored directories never watched
    seconds: float  # set-up time
    notice: str | None = None  # why polling was chosen, for the user


class Watcher:
    """Watch a router's inputs; feed relevant changes into a Debouncer.

    Use as a context manager, or call `start()` / `stop()`. `next_batch()` blocks for the
    next batch. Directories created later are planned and watched the same way, and files
    already inside them are reported (they may have been written before the watch existed).
    """

    def __init__(
        self,
        router: Router,
        workspace: Path,
        *,
        debouncer: Debouncer | None = None,
        poll: bool = False,
        make_observer: Callable[[bool], Any] | None = None,
        limit_file: str = MAX_USER_WATCHES_FILE,
        on_notice: Callable[[str], None] | None = None,
        on_root: Callable[[str, Path, frozenset[str]], None] | None = None,
        root_check_s: float = ROOT_CHECK_S,
    ) -> None:
        """`on_root(change, directory, components)` is called (from the guard thread, or from
        `check_roots()`) with change "gone", "back" or "replaced" for a component directory."""
        self.router = router
        self.workspace = Path(workspace).resolve()
        self.debouncer = debouncer or Debouncer()
        self.poll = poll
        self._make_observer = make_observer or default_observer
        self._limit_file = limit_file
        self._on_notice = on_notice or (lambda msg: log.warning("%s", msg))
        self._observer: Any = None
        self._scheduled: dict[tuple[Path, bool], Any] = {}
        self._lock = threading.RLock()
        self.info: WatchInfo | None = None
        self.events_seen = 0
        self.events_kept = 0
        self._spy: OverflowSpy | None = None
        self._last_overflow_notice = -1e9
        self._on_root = on_root or (lambda change, path, comps: None)
        self._root_check_s = root_check_s
        self._bases: dict[Path, frozenset[str]] = {}
        self._identity: dict[Path, tuple[int, int]] = {}
        self._gone: dict[Path, frozenset[str]] = {}
        self._guard_stop = threading.Event()
        self._guard: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> Watcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> WatchInfo:
        t0 = time.monotonic()
        self._spy = OverflowSpy(self._on_overflow)
        self._spy.attach()
        plan = plan_watches(self.router, self.workspace)
        notice = None
        mode = "polling" if self.poll else "inotify"
        if not self.poll:
            try:
                start_inotify(
                    lambda: self._start_observer(plan, polling=False),
                    self._teardown,
                    plan.dirs,
                    limit_file=self._limit_file,
                    poll_interval=POLL_INTERVAL_S,
                )
            except InotifyExhausted as exc:
                notice = str(exc)
                mode = "polling"
        if mode == "polling":
            self._start_observer(plan, polling=True)
        if notice:
            self._on_notice(notice)
        self.info = WatchInfo(mode, len(self._scheduled), plan.dirs, len(plan.pruned), time.monotonic() - t0, notice)
        self._arm_guard()
        return self.info

    def _start_observer(self, plan: WatchPlan, *, polling: bool) -> None:
        self._observer = self._make_observer(polling)
        self._observer.start()
        for path, recursive in plan.watches():
            self._schedule(path, recursive)

    def stop(self) -> None:
        self._guard_stop.set()
        guard, self._guard = self._guard, None
        if guard is not None and guard is not threading.current_thread():
            guard.join(timeout=2)
        self.debouncer.close()
        self._teardown()
        if self._spy is not None:
            self._spy.detach()
            self._spy = None

    def _on_overflow(self) -> None:
        """Changes were lost: offer every component; fingerprints decide what really changed."""
        now = time.monotonic()
        if now - self._last_overflow_notice > 30:
            self._last_overflow_notice = now
            self._on_notice(
                "inotify dropped events (more changes at once than fs.inotify.max_queued_events); "
                "checking every component's fingerprint"
            )
        with self._lock:
            for root in self.router.roots():
                self.debouncer.add(root, self.router.components_for(root), manifest=self.router.is_manifest(root))

    def _teardown(self) -> None:
        obs, self._observer = self._observer, None
        self._scheduled.clear()
        if obs is not None:
            try:
                obs.stop()
                obs.join(timeout=2)
            except RuntimeError:
                pass

    def next_batch(self, timeout: float | None = None) -> Batch | None:
        return self.debouncer.wait(timeout)

    # -- component directories that go away and come back -------------------------------------
    def _arm_guard(self) -> None:
        bases = getattr(self.router, "bases", None)
        if callable(bases):
            self._bases = dict(bases())
        else:  # a router that does not know component directories: guard its directory roots
            self._bases = {r: self.router.components_for(r) for r in self.router.roots() if r.is_dir()}
        gone = []
        with self._lock:
            for base, comps in self._bases.items():
                ident = _identity(base)
                if ident is None:
                    self._gone[base] = comps
                    gone.append((base, comps))
                else:
                    self._identity[base] = ident
        for base, comps in gone:
            self._on_root("gone", base, comps)
        self._guard_stop.clear()
        if self._root_check_s > 0 and self._bases:
            self._guard = threading.Thread(target=self._guard_loop, name="devloop-root-guard", daemon=True)
            self._guard.start()

    def _guard_loop(self) -> None:
        while not self._guard_stop.wait(self._root_check_s):
            try:
                self.check_roots()
            except Exception:  # a dead guard would stop noticing; say why and keep going
                log.exception("devloop watcher: checking the component directories failed")

    def gone(self) -> dict[Path, frozenset[str]]:
        """Component directories that are gone now, with their components."""
        with self._lock:
            return dict(self._gone)

    def gone_components(self) -> frozenset[str]:
        with self._lock:
            return frozenset(c for comps in self._gone.values() for c in comps)

    def check_roots(self) -> list[tuple[str, Path]]:
        """Stat each component directory now; returns (and reports) what changed since the last check."""
        changes: list[tuple[str, Path, frozenset[str]]] = []
        # The observer's lock first, as its dispatch thread takes them (it holds its own while our
        # handler waits for ours); the other order deadlocks on the first schedule().
        with observer_lock(self._observer), self._lock:
            if self._observer is None:
                return []
            for base, comps in self._bases.items():
                now = _identity(base)
                if base in self._gone:
                    if now is not None:
                        del self._gone[base]
                        self._identity[base] = now
                        self._rearm(base, comps)
                        changes.append(("back", base, comps))
                elif now is None:
                    self._gone[base] = comps
                    self._identity.pop(base, None)
                    # The old watches follow the moved inode: its edits would look like edits here.
                    self._unschedule_under(base)
                    changes.append(("gone", base, comps))
                elif now != self._identity.get(base):
                    self._identity[base] = now
                    self._rearm(base, comps)
                    changes.append(("replaced", base, comps))
        for change, base, comps in changes:
            self._on_root(change, base, comps)
        return [(change, base) for change, base, _ in changes]

    def _rearm(self, base: Path, comps: frozenset[str]) -> None:
        """Watch `base` afresh (its old watches, if any, follow another inode) and offer its components."""
        self._unschedule_under(base)
        roots = [r for r in self.router.roots() if r == base or base in r.parents]
        try:
            for p, rec in plan_watches(RootsOf(self.router, roots), self.workspace).watches():
                if not self._covered(p):
                    self._schedule(p, rec)
        except OSError as exc:
            self._on_notice(f"could not watch {base} again: {exc}; changes below it may be missed")
        self.debouncer.add(base, comps)

    # -- scheduling --------------------------------------------------------------------------
    def _schedule(self, path: Path, recursive: bool) -> None:
        key = (path, recursive)
        if key in self._scheduled or self._observer is None:
            return
        self._scheduled[key] = self._observer.schedule(
            Handler(self._on_event), str(path), recursive=recursive, event_filter=event_filter()
        )

    def _unschedule_under(self, path: Path) -> None:
        for key in [k for k in self._scheduled if k[0] == path or path in k[0].parents]:
            watch = self._scheduled.pop(key)
            try:
                self._observer.unschedule(watch)
            except (KeyError, RuntimeError, OSError):
                pass

    def _covered(self, path: Path) -> bool:
        """True when a recursive watch already sees `path`."""
        return any((p == path or p in path.parents) for p, rec in self._scheduled if rec)

    # -- events ------------------------------------------------------------------------------
    def _on_event(self, event: Any) -> None:
        kind = event.event_type
        if kind in ("opened", "closed_no_write"):
            return
        paths = [event.src_path]
        if kind == "moved" and event.dest_path:
            paths.append(event.dest_path)
        with self._lock:
            for raw in paths:
                path = Path(os.fsdecode(raw))
                self.events_seen += 1
                if event.is_directory:
                    if kind == "modified" or self.router.is_ignored_dir(path):
                        continue  # "modified" accompanies the entry events we get anyway
                    if kind in ("deleted", "moved") and raw == event.src_path:
                        self._unschedule_under(path)
                    if kind == "created" or (kind == "moved" and raw == event.dest_path):
                        self._on_new_dir(path)
                self._offer(path)

    def _offer(self, path: Path) -> None:
        if self._gone and any(b == path or b in path.parents for b in self._gone):
            return  # an old watch on a directory that moved away: not an edit here
        if path.name == ".dockerignore" and hasattr(self.router, "reload"):
            self._reload_rules()
        comps = self.router.components_for(path)
        manifest = self.router.is_manifest(path)
        if comps or manifest:
            self.events_kept += 1
            self.debouncer.add(path, comps, manifest=manifest)

    def _reload_rules(self) -> None:
        """A .dockerignore changed: re-read the rules and watch what they no longer ignore."""
        router = self.router
        assert hasattr(router, "reload")  # optional on a Router; the caller checked
        router.reload()
        if self._observer is None:
            return
        try:
            for p, rec in plan_watches(self.router, self.workspace).watches():
                if not self._covered(p):
                    self._schedule(p, rec)
        except OSError as exc:
            self._on_notice(f"could not extend the watches after a .dockerignore change: {exc}")

    def _on_new_dir(self, path: Path) -> None:
        if self._observer is None or self._covered(path) or not path.is_dir():
            return
        roots = self.router.roots()
        inside = any(r == path or r in path.parents for r in roots)
        toward = any(path in r.parents for r in roots)
        if inside:
            if self.router.is_ignored_dir(path):
                return
            plan = plan_tree(path, self.router.is_ignored_dir)
            try:
                for p, rec in plan.watches():
                    self._schedule(p, rec)
            except OSError as exc:
                self._on_notice(f"could not watch new directory {path}: {exc}; changes below it may be missed")
                return
            # Files may have landed before the watch existed.
            for f in files_under(path, plan):
                self._offer(f)
        elif toward:
            try:
                self._schedule(path, False)
            except OSError as exc:
                self._on_notice(f"could not watch new directory {path}: {exc}")
                return
            for sub in subdirs(path):
                self._on_new_dir(sub)
            for entry in entries(path):
                self._offer(entry)


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of a directory; None when it is not there (or not a directory)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None
