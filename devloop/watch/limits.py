"""How many inotify watches this machine allows and this process holds, whether starting a watch got all
it needs, and what to tell the user when they run out (the watcher then polls)."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

MAX_USER_WATCHES_FILE = "/proc/sys/fs/inotify/max_user_watches"


def inotify_limit(path: str = MAX_USER_WATCHES_FILE) -> int | None:
    """fs.inotify.max_user_watches; None where it cannot be read (not Linux, no /proc)."""
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None


def inotify_watch_count() -> int:
    """Inotify watches this process holds, from /proc/self/fdinfo (0 where unavailable)."""
    total = 0
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return 0
    for fd in fds:
        try:
            if os.readlink(f"/proc/self/fd/{fd}") != "anon_inode:inotify":
                continue
            with open(f"/proc/self/fdinfo/{fd}") as info:
                total += sum(1 for line in info if line.startswith("inotify wd:"))
        except OSError:
            continue
    return total


class InotifyExhausted(Exception):
    """inotify cannot cover the plan; the message tells the user what to raise."""


def limit_notice(
    limit: int | None, needed: int, detail: str, *, instances: bool = False, poll_interval: float = 1.0
) -> str:
    if instances:
        key, value = "fs.inotify.max_user_instances", 1024
        have = key
    else:
        key, value = "fs.inotify.max_user_watches", max(524288, 2 * needed)
        have = f"{key}={limit}" if limit is not None else key
    return (
        f"inotify is out of {'instances' if instances else 'watches'} ({detail}; {have}, this workspace needs "
        f"about {needed} directory watches); falling back to polling every {poll_interval:g} s, which is "
        f"slower and costs CPU. To fix: sudo sysctl {key}={value} (to keep it after a reboot: "
        f"echo {key}={value} | sudo tee /etc/sysctl.d/90-devloop.conf)"
    )


def start_inotify(
    start: Callable[[], None],
    undo: Callable[[], None],
    dirs: int,
    *,
    limit_file: str = MAX_USER_WATCHES_FILE,
    poll_interval: float = 1.0,
) -> None:
    """Run `start` (it schedules inotify watches for `dirs` directories) and check that inotify covered them;
    if not, `undo` it and raise InotifyExhausted with what to tell the user."""
    limit = inotify_limit(limit_file)
    if limit is not None and dirs > limit:
        raise InotifyExhausted(
            limit_notice(limit, dirs, "the plan alone exceeds the limit", poll_interval=poll_interval)
        )
    before = inotify_watch_count()
    try:
        start()
    except OSError as exc:
        undo()
        if exc.errno in (errno.ENOSPC, errno.EMFILE):
            raise InotifyExhausted(
                limit_notice(
                    limit,
                    dirs,
                    exc.strerror or str(exc),
                    instances=exc.errno == errno.EMFILE,
                    poll_interval=poll_interval,
                )
            ) from exc
        raise
    # watchdog swallows ENOSPC for subdirectories of a recursive watch: count what we got.
    added = inotify_watch_count() - before
    # A little slack: directories removed while we were scheduling are not a shortage.
    if added < dirs - max(5, dirs // 100):
        undo()
        raise InotifyExhausted(
            limit_notice(
                limit,
                dirs,
                f"only {added} of {dirs} directory watches were granted",
                poll_interval=poll_interval,
            )
        )
