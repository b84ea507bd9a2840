"""`devloop watch`: `up` once, then rebuild and redeploy the components whose inputs change, until Ctrl-C.

The engine (batches, cycles, retries, the profile followed, directories that go and come back) lives in
devloop.watch.engine; its module docstring says how it behaves.
"""

from __future__ import annotations

import threading

from devloop.base.results import WatchResult
from devloop.session import Session
from devloop.watch import engine


def watch(
    session: Session,
    *,
    initial: bool = True,
    debounce_ms: int = 300,
    max_wait_ms: int = 5000,
    poll: bool = False,
    strategy: str = "apply",
    stop: threading.Event | None = None,
    live_update: bool = True,
    wait_lock: float = 600.0,
) -> WatchResult:
    """Run until interrupted (KeyboardInterrupt propagates) or until `stop` is set."""
    return engine.watch(
        session,
        initial=initial,
        debounce_ms=debounce_ms,
        max_wait_ms=max_wait_ms,
        poll=poll,
        strategy=strategy,
        stop=stop,
        live_update=live_update,
        wait_lock=wait_lock,
    )
