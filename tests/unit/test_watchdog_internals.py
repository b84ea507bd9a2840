"""The watchdog internals devloop relies on (devloop/watch/backend.py, "watchdog's private parts") are still
there in the installed watchdog. Each failure names what changed; the fix is in backend.py (and the pin in
pyproject.toml), not here."""

from __future__ import annotations

import importlib
import inspect
import logging
import re
import threading

import pytest

from devloop.watch import backend

_LOCK_TYPES = (type(threading.Lock()), type(threading.RLock()))
# A logging call on the module's logger whose message text says "overflow", e.g.
# logger.warning("Inotify queue overflowed; filesystem events were lost")
_OVERFLOW_LOG = re.compile(
    r"""logger\.(?:warning|error|info|debug|critical)\(\s*(["'])([^"']*overflow[^"']*)\1""", re.I
)


def _installed() -> str:
    from importlib.metadata import version

    return f"watchdog {version('watchdog')}"


@pytest.mark.parametrize("polling", [False, True], ids=["inotify", "polling"])
def test_observers_still_have_a_private_lock(polling: bool) -> None:
    observer = backend.default_observer(polling)
    lock = getattr(observer, "_lock", None)
    assert lock is not None, (
        f"{_installed()}: {type(observer).__name__} has no `_lock` any more (watchdog/observers/api.py, "
        "BaseObserver.__init__); devloop.watch.backend.observer_lock relies on it to keep one lock order"
    )
    assert isinstance(lock, _LOCK_TYPES), (
        f"{_installed()}: {type(observer).__name__}._lock is a {type(lock).__name__}, not a threading lock; "
        "devloop.watch.backend.observer_lock takes it as one"
    )
    # What watchdog's own schedule() and unschedule() take: ours must be that very lock, usable as a context.
    with backend.observer_lock(observer):
        pass
    assert backend.observer_lock(observer) is lock


@pytest.mark.parametrize("name", backend.overflow_loggers())
def test_the_overflow_loggers_still_log_the_overflow(name: str) -> None:
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        pytest.fail(f"{_installed()}: module {name} is gone ({exc}); devloop.watch.backend.overflow_loggers names it")
    logger = getattr(module, "logger", None)
    assert isinstance(logger, logging.Logger) and logger.name == name, (
        f"{_installed()}: {name} no longer logs through logging.getLogger(__name__) (its `logger` is {logger!r}); "
        "devloop.watch.backend.overflow_loggers listens on that name"
    )
    messages = [m.group(2) for m in _OVERFLOW_LOG.finditer(inspect.getsource(module))]
    assert messages, (
        f"{_installed()}: {module.__file__} no longer logs a queue overflow (no logger call mentions 'overflow'); "
        "devloop's watcher learns of lost inotify events only from that log record"
    )
    for text in messages:
        assert backend.is_overflow_message(text % (("/x",) * text.count("%"))), text


def test_the_kernel_overflow_is_still_logged_where_it_is_read() -> None:
    """inotify_c's InotifyFD.handle_event is the one path every overflow takes (recursive or not)."""
    from watchdog.observers import inotify_c

    handle_event = getattr(getattr(inotify_c, "InotifyFD", None), "handle_event", None)
    assert handle_event is not None, (
        f"{_installed()}: watchdog/observers/inotify_c.py has no InotifyFD.handle_event any more, where the "
        "kernel's IN_Q_OVERFLOW was logged; check devloop.watch.backend.overflow_loggers against its source"
    )
    source = inspect.getsource(handle_event)
    assert "is_queue_overflow" in source and _OVERFLOW_LOG.search(source), (
        f"{_installed()}: watchdog/observers/inotify_c.py InotifyFD.handle_event no longer logs the kernel's "
        "IN_Q_OVERFLOW; devloop's watcher would miss lost events (see devloop.watch.backend.overflow_loggers)"
    )


def test_the_spy_turns_the_logged_overflow_into_a_rescan_and_swallows_it() -> None:
    seen: list[int] = []
    spy = backend.OverflowSpy(lambda: seen.append(1))
    spy.attach()
    try:
        for name in backend.overflow_loggers():
            logger = logging.getLogger(name)
            assert spy in logger.filters
            logger.warning("Inotify queue overflowed; filesystem events were lost")
            logger.warning("something else")
    finally:
        spy.detach()
    assert seen == [1, 1]
    assert all(spy not in logging.getLogger(n).filters for n in backend.overflow_loggers())
