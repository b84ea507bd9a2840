"""The one way devloop waits for something: poll a condition until it holds or a deadline passes.

Every wait has a deadline and, when it runs out, says what it waited for and what it saw last.
Built on tenacity; imports nothing from devloop but its errors, so every layer may use it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from devloop.base.errors import WaitTimeout

if TYPE_CHECKING:
    from tenacity import RetryCallState

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T],
    *,
    timeout: float,
    interval: float | Callable[[], float],
    describe: str | Callable[[T], str],
    hint: str | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call `condition` until it returns something truthy, and return that.

    The condition runs at least once, even with no time left; between calls the wait sleeps
    `interval` seconds (a callable is asked each time), never past the deadline. An exception
    from the condition ends the wait at once. When `timeout` seconds have passed without a
    truthy answer it raises WaitTimeout whose message is `describe(last answer)` (or `describe`
    itself when it is a string), with `hint`.
    """
    # Imported here: proc.py (and so every command) uses this module, tenacity pulls in asyncio.
    from tenacity import Retrying, retry_if_result

    deadline = clock() + timeout

    def pause(_state: RetryCallState) -> float:
        step = interval() if callable(interval) else interval
        return max(0.0, min(step, deadline - clock()))

    retrying = Retrying(
        stop=lambda _state: clock() >= deadline,
        wait=pause,
        retry=retry_if_result(lambda value: not value),
        sleep=sleep,
        # Out of time: hand back the last (falsy) answer instead of tenacity's RetryError.
        retry_error_callback=_out_of_time,
    )
    result = retrying(condition)
    if isinstance(result, _OutOfTime):
        message = describe if isinstance(describe, str) else describe(result.last)
        raise WaitTimeout(message, hint=hint)
    return result


class _OutOfTime:
    __slots__ = ("last",)

    def __init__(self, last: Any) -> None:
        # the condition's last answer (a T; tenacity's callback does not carry the type)
        self.last = last


def _out_of_time(state: RetryCallState) -> _OutOfTime:
    # tenacity calls this only after an attempt, so there is an outcome
    assert state.outcome is not None
    return _OutOfTime(state.outcome.result())


__all__ = ["wait_for"]
