"""`devloop watch`: `up` once, then rebuild and redeploy the components whose inputs change, until Ctrl-C.

The command is the engine's own entry point: batches, cycles, retries, the profile followed and directories that
go and come back live in devloop.watch.engine, whose module docstring says how it behaves.
"""

from __future__ import annotations

from devloop.watch.engine import watch

__all__ = ["watch"]
