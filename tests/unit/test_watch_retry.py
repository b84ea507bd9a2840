"""The back-off of a failed watch cycle (devloop.watch.cycle): tenacity's wait_chain over RETRY_DELAYS."""

from __future__ import annotations

from types import SimpleNamespace

from devloop.base.errors import BuildFailed, ClusterError, ConfigError
from devloop.watch import cycle
from devloop.watch.cycle import WatchStats


class _Reporter:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []

    def emit(self, event: str, **fields) -> None:
        self.events.append((event, fields))

    def say(self, *lines) -> None:
        pass


def test_retry_delays_follow_the_chain_and_the_last_one_repeats() -> None:
    assert cycle.RETRY_DELAYS == (2.0, 5.0, 10.0, 20.0, 30.0)
    assert [cycle.retry_delay(n) for n in range(1, 9)] == [2.0, 5.0, 10.0, 20.0, 30.0, 30.0, 30.0, 30.0]


def test_failures_not_the_sources_fault_are_scheduled_with_growing_delays() -> None:
    rep = _Reporter()
    session = SimpleNamespace(reporter=rep)
    stats = WatchStats()
    for _ in range(7):
        cycle._failed(session, stats, ClusterError("the API server went away"))
    scheduled = [fields for event, fields in rep.events if event == "retry_scheduled"]
    assert [f["seconds"] for f in scheduled] == [2.0, 5.0, 10.0, 20.0, 30.0, 30.0, 30.0]
    assert [f["attempt"] for f in scheduled] == [1, 2, 3, 4, 5, 6, 7]
    assert stats.attempts == 7 and stats.failed == 7 and stats.needs_prepare and stats.retry_at is not None


def test_a_config_error_waits_for_an_edit_and_a_build_is_retried_once() -> None:
    rep = _Reporter()
    session = SimpleNamespace(reporter=rep)
    stats = WatchStats()
    cycle._failed(session, stats, ConfigError("bad profile"))
    assert stats.retry_at is None and stats.attempts == 0
    broken = BuildFailed(["make"], 2, "syntax error", message="build of a failed")
    cycle._failed(session, stats, broken)
    assert stats.attempts == 1 and stats.retry_at is not None
    stats.retry_at = None
    cycle._failed(session, stats, broken)
    assert stats.attempts == 0 and stats.retry_at is None
    assert [f["seconds"] for e, f in rep.events if e == "retry_scheduled"] == [2.0]
