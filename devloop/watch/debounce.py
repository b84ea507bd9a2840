"""Collect changed paths into batches: a batch closes after a quiet window, or at a cap when
events never stop.

The clock is injectable, so the timing rules are tested with a fake clock and no sleeps.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

DEFAULT_QUIET_MS = 300
DEFAULT_CAP_MS = 5000


@dataclass(frozen=True)
class Batch:
    """Changed paths that close together: the components they belong to, and whether a manifest
    file was among them."""

    paths: frozenset[Path]
    components: frozenset[str]
    manifests_changed: bool  # a manifest file changed: re-render and re-apply everything
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
        self._manifests = False
        self._first: float | None = None
        self._last: float | None = None
        self._closed = False

    def add(self, path: Path, components: Iterable[str], *, manifest: bool = False) -> None:
        """Record a change to `path`, an input of `components` and/or (`manifest`) a manifest file."""
        comps = set(components)
        if not comps and not manifest:
            return
        with self._cond:
            now = self.clock()
            if self._first is None:
                self._first = now
            self._last = now
            self._paths.add(path)
            self._components |= comps
            self._manifests |= manifest
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
        batch = Batch(frozenset(self._paths), frozenset(self._components), self._manifests, self._first, now, reason)
        self._paths, self._components, self._manifests = set(), set(), False
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
