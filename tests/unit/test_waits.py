"""devloop.base.waits.wait_for on a fake clock: what it returns, when it gives up and what it says then."""

from __future__ import annotations

import pytest

from devloop.base.errors import ClusterError, WaitTimeout
from devloop.base.waits import wait_for


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _answers(*values):
    seen = list(values)
    calls = []

    def condition():
        calls.append(None)
        return seen.pop(0)

    return condition, calls


def test_returns_the_first_truthy_value_and_sleeps_between_polls():
    clock = FakeClock()
    condition, calls = _answers(None, [], {"ready": True})
    got = wait_for(condition, timeout=10, interval=0.5, describe="never", clock=clock, sleep=clock.sleep)
    assert got == {"ready": True}
    assert len(calls) == 3 and clock.sleeps == [0.5, 0.5]


def test_a_condition_true_at_once_never_sleeps():
    clock = FakeClock()
    assert wait_for(lambda: "yes", timeout=0, interval=1, describe="x", clock=clock, sleep=clock.sleep) == "yes"
    assert clock.sleeps == []


def test_timeout_message_describes_the_last_answer():
    clock = FakeClock()
    polls = []

    def not_ready():
        polls.append(None)
        return {} if len(polls) % 2 else 0  # falsy answers of two kinds: the last one is reported

    with pytest.raises(WaitTimeout) as info:
        wait_for(
            not_ready,
            timeout=2,
            interval=0.5,
            describe=lambda last: f"gave up, last answer {last!r} after {len(polls)} polls",
            hint="try harder",
            clock=clock,
            sleep=clock.sleep,
        )
    assert info.value.message == "gave up, last answer {} after 5 polls"
    assert info.value.hint == "try harder"
    # Never sleeps past the deadline, and polls once more at the deadline itself.
    assert sum(clock.sleeps) == 2 and clock.now == 1002.0


def test_describe_sees_the_last_observed_state():
    clock = FakeClock()
    states = iter(["", "", ""])
    observed = []

    def condition():
        observed.append(f"state {len(observed)}")
        return next(states, "")

    with pytest.raises(WaitTimeout, match=r"^still waiting: state 2$"):
        wait_for(
            condition,
            timeout=1,
            interval=0.5,
            describe=lambda _last: f"still waiting: {observed[-1]}",
            clock=clock,
            sleep=clock.sleep,
        )


def test_string_message_and_zero_timeout_polls_exactly_once():
    clock = FakeClock()
    condition, calls = _answers(None, None)
    with pytest.raises(WaitTimeout, match="^nothing came$"):
        wait_for(condition, timeout=0, interval=1, describe="nothing came", clock=clock, sleep=clock.sleep)
    assert len(calls) == 1 and clock.sleeps == []


def test_the_last_sleep_is_cut_to_the_deadline():
    clock = FakeClock()
    with pytest.raises(WaitTimeout):
        wait_for(lambda: None, timeout=1, interval=0.4, describe="x", clock=clock, sleep=clock.sleep)
    assert clock.sleeps == pytest.approx([0.4, 0.4, 0.2])


def test_interval_may_change_between_polls():
    clock = FakeClock()
    intervals = iter([0.02, 0.2, 0.02])
    condition, _ = _answers(None, None, None, True)
    assert (
        wait_for(condition, timeout=5, interval=lambda: next(intervals), describe="x", clock=clock, sleep=clock.sleep)
        is True
    )
    assert clock.sleeps == pytest.approx([0.02, 0.2, 0.02])


def test_an_error_in_the_condition_ends_the_wait_at_once():
    clock = FakeClock()
    calls = []

    def condition():
        calls.append(None)
        raise ClusterError("the image may never be pulled")

    with pytest.raises(ClusterError, match="never be pulled"):
        wait_for(condition, timeout=10, interval=1, describe="x", clock=clock, sleep=clock.sleep)
    assert len(calls) == 1 and clock.sleeps == []


def test_real_clock_with_a_tiny_interval():
    condition, calls = _answers(0, 0, "done")
    assert wait_for(condition, timeout=30, interval=0.001, describe="x") == "done"
    assert len(calls) == 3
