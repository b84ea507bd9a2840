"""The one way devloop waits for something: poll a condition until it holds or a deadline passes.

Every wait has a deadline and, when it runs out, says what it waited for and what it saw last.
Built on tenacity; imports nothing from devloop but its errors, so every layer may use it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from devloop.base.errors import WaitTimeout

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

    def pause(_state) -> float:
        step = interval() if callable(interval) else interval
        return max(0.0, min(step, deadline - clock()))

    retrying = Retrying(
        stop=lambda _state: clock() >= deadline,
        wait=pause,
        retry=retry_if_result(lambda value: not value),
        sleep=sleep,
        # Out of time: hand back the last (falsy) answer instead of tenacity's RetryError.
        retry_error_callback=lambda state: _OutOfTime(state.outcome.result()),
    )
    result = retrying(condition)
    if isinstance(result, _OutOfTime):
        message = describe if isinstance(describe, str) else describe(result.last)
        raise WaitTimeout(message, hint=hint)
    return result


class _OutOfTime:
    __slots__ = ("last",)

    def __init__(self, last) -> None:
        self.last = last


__all__ = ["wait_for"]
