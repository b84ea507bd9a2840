"""The one polling loop the tests use: a deadline, and a failure that says what never happened."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T],
    timeout: float,
    what: str,
    *,
    interval: float = 0.5,
    detail: Callable[[], Any] | None = None,
) -> T:
    """Call `condition()` until it returns something truthy and return that.

    After `timeout` seconds fail with an AssertionError naming `what`, the last value seen and, when given,
    `detail()` (e.g. a `kubectl describe`) -- the deadline only guards against hangs, it is no speed goal."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = condition()
        if last:
            return last
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    message = f"timed out after {timeout:g}s waiting for {what} (last: {last!r})"
    if detail is not None:
        message += f"\n{detail()}"
    raise AssertionError(message)
