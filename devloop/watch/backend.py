"""The watchdog side of the watcher: observers, the event handler and filter, and the overflow spy.

Everything devloop takes from watchdog beyond its public API is fenced in the two functions at the end
(`observer_lock`, `overflow_loggers`), each naming the watchdog version and file it was read from;
tests/unit/test_watchdog_internals.py fails, naming what changed, when an installed watchdog no longer
has them. pyproject.toml pins watchdog to the major version checked (watchdog 6 does not log overflows).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 1.0


def default_observer(polling: bool) -> Any:
    if polling:
        from watchdog.observers.polling import PollingObserver

        return PollingObserver(timeout=POLL_INTERVAL_S)
    from watchdog.observers.inotify import InotifyObserver

    return InotifyObserver()


class Handler:
    """Duck-typed watchdog handler: the observer only calls `dispatch`."""

    def __init__(self, on_event: Callable[[Any], None]) -> None:
        self._on_event = on_event

    def dispatch(self, event: Any) -> None:
        try:
            self._on_event(event)
        except Exception:  # an observer thread that dies silently would stop all watching
            log.exception("devloop watcher: failed to handle %r", event)


def event_filter() -> list[type]:
    """Changes only. Without a filter inotify also reports every open/close of a watched
    directory, so walking the tree (ours, or watchdog's own re-scan after a queue overflow)
    floods the queue with events about itself, overflows it, re-scans, and never idles."""
    from watchdog import events as ev

    return [
        ev.FileCreatedEvent,
        ev.DirCreatedEvent,
        ev.FileDeletedEvent,
        ev.DirDeletedEvent,
        ev.FileMovedEvent,
        ev.DirMovedEvent,
        ev.FileModifiedEvent,
        ev.FileClosedEvent,
    ]


class OverflowSpy(logging.Filter):
    """watchdog only logs a kernel queue overflow; turn that log record into a rescan.

    Installed on `overflow_loggers()` between `attach()` and `detach()`."""

    def __init__(self, on_overflow: Callable[[], None]) -> None:
        super().__init__()
        self._on_overflow = on_overflow

    def filter(self, record: logging.LogRecord) -> bool:
        if is_overflow_message(record.getMessage()):
            self._on_overflow()
            return False  # we say it once, in our own words
        return True

    def attach(self) -> None:
        for name in overflow_loggers():
            logging.getLogger(name).addFilter(self)

    def detach(self) -> None:
        for name in overflow_loggers():
            logging.getLogger(name).removeFilter(self)


def is_overflow_message(message: str) -> bool:
    return "overflow" in message.lower()


# -- watchdog's private parts -------------------------------------------------------------------------


def observer_lock(observer: Any) -> contextlib.AbstractContextManager[Any]:
    """The observer's own lock, to take before the watcher's (a nullcontext when there is none).

    Private to watchdog: watchdog 7.1.1, watchdog/observers/api.py, `BaseObserver.__init__` sets
    `self._lock = threading.RLock()`, which schedule() and unschedule() take (and which watchdog 6's
    dispatch_events held while calling our handler). The watcher schedules while holding its own lock;
    taking the observer's first keeps one lock order with every watchdog thread."""
    return getattr(observer, "_lock", None) or contextlib.nullcontext()


def overflow_loggers() -> tuple[str, ...]:
    """The loggers that report a kernel inotify queue overflow (IN_Q_OVERFLOW).

    Private to watchdog: watchdog 7.1.1, watchdog/observers/inotify_c.py (`InotifyFD.handle_event`:
    "Inotify queue overflowed; filesystem events were lost") and watchdog/observers/inotify.py
    (`InotifyWatchGroup.on_queue_overflow`: "Inotify queue overflowed; reconciling recursive watches
    below ..."), both `logging.getLogger(__name__)`. Our event filter keeps watchdog's EventsLostEvent
    out, so the log record is how the watcher learns of the loss."""
    return ("watchdog.observers.inotify_c", "watchdog.observers.inotify")
