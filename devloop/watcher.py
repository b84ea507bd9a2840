"""Watch component inputs and hand out debounced batches of changed paths.

Three parts, each testable alone:

- `Debouncer`: collects changed paths; a batch closes after a quiet window or at a cap of
  continuous events. Its clock is injectable, so the timing rules are tested without sleeps.
- `plan_watches`: decides which directories to watch and how. A subtree that holds an
  ignored directory (`.git/`, `bundles/`, `node_modules/` …) is watched directory by
  directory so the ignored part never gets an inotify watch; a clean subtree is one
  recursive watch. This keeps a 100k-file checkout cheap to watch.
- `Watcher`: a watchdog observer over that plan (inotify, or polling on request or when the
  inotify limits run out), filtering every event through a `Router` (path -> components).

Event filtering keeps noise out of batches, but it is not what stops build-output loops:
the commands compare fingerprints before building, so a batch whose inputs did not really
change builds nothing.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

DEFAULT_QUIET_MS = 300
DEFAULT_CAP_MS = 5000
POLL_INTERVAL_S = 1.0
# Past this many watchdog watches (one thread each) a pruned plan costs more than it saves.
MAX_PLANNED_WATCHES = 400
MAX_USER_WATCHES_FILE = "/proc/sys/fs/inotify/max_user_watches"
# Stands for "a manifest file changed" among a batch's component names (no component can be
# named like this: component names are DNS-style labels).
MANIFESTS = ":manifests"
_WATCHDOG_LOGGERS = ("watchdog.observers.inotify_c", "watchdog.observers.inotify")


# ---------------------------------------------------------------------------------------------
# Debounce
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Batch:
    """Changed paths that close together, and the components they belong to."""

    paths: frozenset[Path]
    components: frozenset[str]
    opened_at: float
    closed_at: float
    reason: str  # "quiet" (window passed with no event) or "cap" (events never stopped)

    def describe(self, limit: int = 5, relative_to: Path | None = None) -> str:
        """The files that triggered a run, for a person: first few, then a count."""
        names = sorted(_rel(p, relative_to) for p in self.paths)
        shown = ", ".join(names[:limit])
        more = len(names) - limit
        return shown + (f" and {more} more" if more > 0 else "")


def _rel(path: Path, base: Path | None) -> str:
    if base is not None:
        try:
            return str(path.relative_to(base))
        except ValueError:
            pass
    return str(path)


class Debouncer:
    """Thread-safe batch collector with a quiet window and a cap.

    A batch opens with its first event and closes when `quiet` seconds pass without an event,
    or `cap` seconds after it opened, whichever comes first. `take()` hands the batch out and
    starts a new, empty one, so events that arrive while the caller runs a build land in the
    next batch: nothing is dropped and nothing is run twice.
    """

    def __init__(
        self,
        quiet: float = DEFAULT_QUIET_MS / 1000,
        cap: float = DEFAULT_CAP_MS / 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if quiet <= 0:
            raise ValueError(f"the quiet window must be positive, got {quiet}s")
        if cap < quiet:
            raise ValueError(f"the cap ({cap}s) must not be shorter than the quiet window ({quiet}s)")
        self.quiet = quiet
        self.cap = cap
        self.clock = clock
        self._cond = threading.Condition()
        self._paths: set[Path] = set()
        self._components: set[str] = set()
        self._first: float | None = None
        self._last: float | None = None
        self._closed = False

    def add(self, path: Path, components: Iterable[str]) -> None:
        comps = set(components)
        if not comps:
            return
        with self._cond:
            now = self.clock()
            if self._first is None:
                self._first = now
            self._last = now
            self._paths.add(path)
            self._components |= comps
            self._cond.notify_all()

    def pending(self) -> bool:
        with self._cond:
            return self._first is not None

    def due_in(self) -> float | None:
        """Seconds until the open batch closes (0 when it is ready); None when nothing is pending."""
        with self._cond:
            return self._due_in_locked(self.clock())

    def _due_in_locked(self, now: float) -> float | None:
        if self._first is None or self._last is None:
            return None
        return max(0.0, min(self._last + self.quiet, self._first + self.cap) - now)

    def take(self) -> Batch | None:
        """The batch if it is due, else None. Never blocks."""
        with self._cond:
            return self._take_locked(self.clock())

    def _take_locked(self, now: float) -> Batch | None:
        due = self._due_in_locked(now)
        if due is None or due > 1e-9:  # tolerance: float clocks land a hair short
            return None
        assert self._first is not None and self._last is not None
        reason = "cap" if self._first + self.cap < self._last + self.quiet else "quiet"
        batch = Batch(frozenset(self._paths), frozenset(self._components), self._first, now, reason)
        self._paths, self._components = set(), set()
        self._first = self._last = None
        return batch

    def wait(self, timeout: float | None = None) -> Batch | None:
        """Block until a batch is due, `timeout` passes or `close()` is called.

        Uses the real passage of time between checks, so it is meant for the real clock;
        tests with a fake clock use `take()`.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._closed:
                now = self.clock()
                batch = self._take_locked(now)
                if batch is not None:
                    return batch
                due = self._due_in_locked(now)
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                waits = [w for w in (due, left) if w is not None]
                self._cond.wait(min(waits) if waits else None)
            return None

    def close(self) -> None:
        """Wake every waiter; `wait()` returns None from now on."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


# ---------------------------------------------------------------------------------------------
# What to watch
# ---------------------------------------------------------------------------------------------
class Router(Protocol):
    """What the watcher needs to know about a profile (see `ProfileRouter`)."""

    def roots(self) -> Sequence[Path]:
        """Absolute input paths: directories, files, or paths that do not exist yet."""

    def components_for(self, path: Path) -> frozenset[str]:
        """The components whose inputs include `path` (minus ignore rules); empty if none."""

    def is_ignored_dir(self, path: Path) -> bool:
        """True when nothing below the directory `path` can be an input of any component."""


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


def _subdirs(path: Path) -> list[Path]:
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
        for sub in _subdirs(d):
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
        for path, rec in plan.watches():
            top = next((r for r in sorted(router.roots()) if r == path or r in path.parents), None)
            if top is not None and top.is_dir():
                coarse.recursive[top] = coarse.recursive.get(top, 0) + (plan.recursive.get(path, 1))
            else:
                coarse.flat.add(path)
        coarse.recursive = {p: n + sum(1 for q in plan.pruned if p in q.parents) for p, n in coarse.recursive.items()}
        return coarse
    return plan


# ---------------------------------------------------------------------------------------------
# The watcher
# ---------------------------------------------------------------------------------------------
@dataclass
class WatchInfo:
    mode: str  # "inotify" or "polling"
    watches: int  # watchdog watches scheduled
    dirs: int  # directories covered by inotify watches (or scanned by polling)
    pruned: int  # ignored directories never watched
    seconds: float  # set-up time
    notice: str | None = None  # why polling was chosen, for the user


def inotify_limit(path: str = MAX_USER_WATCHES_FILE) -> int | None:
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None


def inotify_watch_count() -> int:
    """Inotify watches this process holds, from /proc/self/fdinfo (0 where unavailable)."""
    total = 0
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return 0
    for fd in fds:
        try:
            if os.readlink(f"/proc/self/fd/{fd}") != "anon_inode:inotify":
                continue
            with open(f"/proc/self/fdinfo/{fd}") as info:
                total += sum(1 for line in info if line.startswith("inotify wd:"))
        except OSError:
            continue
    return total


class InotifyExhausted(Exception):
    """inotify cannot cover the plan; the message tells the user what to raise."""


def _limit_notice(limit: int | None, needed: int, detail: str, *, instances: bool = False) -> str:
    if instances:
        key, value = "fs.inotify.max_user_instances", 1024
        have = key
    else:
        key, value = "fs.inotify.max_user_watches", max(524288, 2 * needed)
        have = f"{key}={limit}" if limit is not None else key
    return (
        f"inotify is out of {'instances' if instances else 'watches'} ({detail}; {have}, this workspace needs "
        f"about {needed} directory watches); falling back to polling every {POLL_INTERVAL_S:g} s, which is "
        f"slower and costs CPU. To fix: sudo sysctl {key}={value} (to keep it after a reboot: "
        f"echo {key}={value} | sudo tee /etc/sysctl.d/90-devloop.conf)"
    )


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
    ) -> None:
        self.router = router
        self.workspace = Path(workspace).resolve()
        self.debouncer = debouncer or Debouncer()
        self.poll = poll
        self._make_observer = make_observer or _default_observer
        self._limit_file = limit_file
        self._on_notice = on_notice or (lambda msg: log.warning("%s", msg))
        self._observer: Any = None
        self._scheduled: dict[tuple[Path, bool], Any] = {}
        self._lock = threading.RLock()
        self.info: WatchInfo | None = None
        self.events_seen = 0
        self.events_kept = 0
        self._spy: _OverflowSpy | None = None
        self._last_overflow_notice = -1e9

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> Watcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> WatchInfo:
        t0 = time.monotonic()
        self._spy = _OverflowSpy(self._on_overflow)
        for name in _WATCHDOG_LOGGERS:
            logging.getLogger(name).addFilter(self._spy)
        plan = plan_watches(self.router, self.workspace)
        notice = None
        mode = "polling" if self.poll else "inotify"
        if not self.poll:
            try:
                self._start_inotify(plan)
            except InotifyExhausted as exc:
                notice = str(exc)
                mode = "polling"
        if mode == "polling":
            self._start_observer(plan, polling=True)
        if notice:
            self._on_notice(notice)
        self.info = WatchInfo(mode, len(self._scheduled), plan.dirs, len(plan.pruned), time.monotonic() - t0, notice)
        return self.info

    def _start_inotify(self, plan: WatchPlan) -> None:
        limit = inotify_limit(self._limit_file)
        if limit is not None and plan.dirs > limit:
            raise InotifyExhausted(_limit_notice(limit, plan.dirs, "the plan alone exceeds the limit"))
        before = inotify_watch_count()
        try:
            self._start_observer(plan, polling=False)
        except OSError as exc:
            self._teardown()
            if exc.errno in (errno.ENOSPC, errno.EMFILE):
                raise InotifyExhausted(_limit_notice(limit, plan.dirs, exc.strerror or str(exc),
                                                     instances=exc.errno == errno.EMFILE)) from exc
            raise
        # watchdog swallows ENOSPC for subdirectories of a recursive watch: count what we got.
        added = inotify_watch_count() - before
        # A little slack: directories removed while we were scheduling are not a shortage.
        if added < plan.dirs - max(5, plan.dirs // 100):
            self._teardown()
            raise InotifyExhausted(
                _limit_notice(limit, plan.dirs, f"only {added} of {plan.dirs} directory watches were granted")
            )

    def _start_observer(self, plan: WatchPlan, *, polling: bool) -> None:
        self._observer = self._make_observer(polling)
        self._observer.start()
        for path, recursive in plan.watches():
            self._schedule(path, recursive)

    def stop(self) -> None:
        self.debouncer.close()
        self._teardown()
        if self._spy is not None:
            for name in _WATCHDOG_LOGGERS:
                logging.getLogger(name).removeFilter(self._spy)
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
                self.debouncer.add(root, self.router.components_for(root))

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

    # -- scheduling --------------------------------------------------------------------------
    def _schedule(self, path: Path, recursive: bool) -> None:
        key = (path, recursive)
        if key in self._scheduled or self._observer is None:
            return
        self._scheduled[key] = self._observer.schedule(
            _Handler(self), str(path), recursive=recursive, event_filter=_event_filter()
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
        if path.name == ".dockerignore" and hasattr(self.router, "reload"):
            self._reload_rules()
        comps = self.router.components_for(path)
        if comps:
            self.events_kept += 1
            self.debouncer.add(path, comps)

    def _reload_rules(self) -> None:
        """A .dockerignore changed: re-read the rules and watch what they no longer ignore."""
        self.router.reload()
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
            for f in _files_under(path, plan):
                self._offer(f)
        elif toward:
            try:
                self._schedule(path, False)
            except OSError as exc:
                self._on_notice(f"could not watch new directory {path}: {exc}")
                return
            for sub in _subdirs(path):
                self._on_new_dir(sub)
            for entry in _entries(path):
                self._offer(entry)


def _entries(path: Path) -> list[Path]:
    try:
        with os.scandir(path) as it:
            return [Path(e.path) for e in it if not e.is_dir(follow_symlinks=False)]
    except OSError:
        return []


def _files_under(top: Path, plan: WatchPlan) -> Iterator[Path]:
    pruned = set(plan.pruned)
    for root, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if Path(root, d) not in pruned]
        for name in files:
            yield Path(root, name)


class _Handler:
    """Duck-typed watchdog handler: the observer only calls `dispatch`."""

    def __init__(self, watcher: Watcher) -> None:
        self._watcher = watcher

    def dispatch(self, event: Any) -> None:
        try:
            self._watcher._on_event(event)
        except Exception:  # an observer thread that dies silently would stop all watching
            log.exception("devloop watcher: failed to handle %r", event)


def _event_filter() -> list[type]:
    """Changes only. Without a filter inotify also reports every open/close of a watched
    directory, so walking the tree (ours, or watchdog's own re-scan after a queue overflow)
    floods the queue with events about itself, overflows it, re-scans, and never idles."""
    from watchdog import events as ev

    return [ev.FileCreatedEvent, ev.DirCreatedEvent, ev.FileDeletedEvent, ev.DirDeletedEvent,
            ev.FileMovedEvent, ev.DirMovedEvent, ev.FileModifiedEvent, ev.FileClosedEvent]


class _OverflowSpy(logging.Filter):
    """watchdog only logs a kernel queue overflow; turn that log record into a rescan."""

    def __init__(self, on_overflow: Callable[[], None]) -> None:
        super().__init__()
        self._on_overflow = on_overflow

    def filter(self, record: logging.LogRecord) -> bool:
        if "overflow" in record.getMessage().lower():
            self._on_overflow()
            return False  # we say it once, in our own words
        return True


def _default_observer(polling: bool) -> Any:
    if polling:
        from watchdog.observers.polling import PollingObserver

        return PollingObserver(timeout=POLL_INTERVAL_S)
    from watchdog.observers.inotify import InotifyObserver

    return InotifyObserver()


# ---------------------------------------------------------------------------------------------
# Profile -> Router
# ---------------------------------------------------------------------------------------------
class ProfileRouter:
    """Routes paths with the profile's rules, as devloop.fingerprint defines them.

    The ignore rules (profile and component `ignore`, `.git/`, editor temp files, the build
    context's `.dockerignore`) are the fingerprint's, so the watcher and the "did anything
    change" decision can never disagree about what an input is.
    """

    def __init__(self, profile: Any, workspace: Path, components: Iterable[str] | None = None, *,
                 manifests: bool = True) -> None:
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
        self._manifests = {Path(os.path.normpath(self.workspace / m.path)) for m in profile.manifests} if manifests else set()
        self._root_texts = [str(r) for r in self._roots]
        self.reload()

    def reload(self) -> None:
        """Re-read the rules (a .dockerignore changed)."""
        from devloop.fingerprint import PathMapper

        self._mapper = PathMapper(self.profile, self.workspace)

    def roots(self) -> list[Path]:
        return list(self._roots) + sorted(self._manifests - set(self._roots))

    def components_for(self, path: Path) -> frozenset[str]:
        found = frozenset(c.name for c in self._mapper.components_for(path) if c.name in self._names)
        return found | {MANIFESTS} if path in self._manifests else found

    def is_ignored_dir(self, path: Path) -> bool:
        # Called for every directory of the tree while planning: string prefixes, not Path.parents.
        text = str(path)
        if not any(text == r or text.startswith(r + os.sep) for r in self._root_texts):
            return False  # an ancestor of inputs, or outside them: never pruned here
        return not any(c.name in self._names for c in self._mapper.components_for(path, is_dir=True))
