"""How many inotify watches this machine allows and this process holds, and what to tell the user when
they run out (the watcher then polls)."""

from __future__ import annotations

import os
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
