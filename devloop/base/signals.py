"""SIGTERM and SIGHUP (the terminal closed) end devloop the way Ctrl-C does; a second one ends it at once.

The first SIGINT, SIGTERM or SIGHUP raises `Interrupted` (a KeyboardInterrupt, so every path that
already cleans up after Ctrl-C -- the process runner killing a build's process group, watch
stopping its observer, the profile lock being released -- does the same for the others) and the
process exits 128 + the signal's number: 130, 143 or 129. While that cleanup runs, a second signal
does not wait for it: it SIGKILLs the process groups of devloop's children (each child runs in a
session of its own, so its group id is its pid) and exits at once. The kernel releases the lock.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

_stopping = False
_announce: Callable[[str], None] | None = None


class Interrupted(KeyboardInterrupt):
    """Raised in the main thread by the first SIGINT, SIGTERM or SIGHUP."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.name = signal.Signals(signum).name
        self.exit_code = 128 + signum
        super().__init__(self.name)


def exit_code(exc: BaseException) -> int:
    """The exit code for an interrupt: 128 + signal (a bare KeyboardInterrupt is Ctrl-C: 130)."""
    return getattr(exc, "exit_code", 128 + signal.SIGINT)


def install(announce: Callable[[str], None] | None = None) -> None:
    """Handle the three signals in this (the main) thread. `announce(text)` is told when stopping
    starts, so people know a second Ctrl-C stops at once."""
    global _announce, _stopping
    _announce = announce
    _stopping = False
    for sig in HANDLED:
        signal.signal(sig, _handle)


def stopping() -> bool:
    return _stopping


def _handle(signum: int, _frame: FrameType | None) -> None:
    global _stopping
    if _stopping:
        _kill_children()
        try:
            os.write(2, f"stopped at once ({signal.Signals(signum).name} while stopping)\n".encode())
        except OSError:
            pass  # the terminal may be gone (SIGHUP)
        os._exit(128 + signum)
    _stopping = True
    if _announce is not None:
        try:
            _announce(f"stopping ({signal.Signals(signum).name}); press Ctrl-C again to stop at once")
        except Exception:  # noqa: BLE001 - a closed terminal must not keep us from stopping
            pass
    raise Interrupted(signum)


def process_stats() -> Iterator[tuple[str, list[str]]]:
    """(pid, [state, ppid, pgrp, session, …]) of every process in /proc; comm (which may hold spaces and
    parentheses) is cut off at its last ')'."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2:
            yield entry.name, fields


def child_groups(pid: int | None = None) -> list[int]:
    """Process groups led by direct children of `pid` (default: this process): the runner starts
    every child in a new session, so each is the leader of its own group."""
    me = str(pid or os.getpid())
    return [int(p) for p, fields in process_stats() if fields[1] == me and fields[2] == p]


def _kill_children() -> None:
    for pgid in child_groups():
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
