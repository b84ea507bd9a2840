"""Detached daemons: start, identify (pid + start time), stop by process group, bounded waits.

Every daemon runs in a session of its own (so it survives the caller and its group can be signalled as a
whole), its output goes to a log file, and it is identified by (pid, start time) so a recycled PID is never
mistaken for it.  Nothing here looks processes up by name.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

from . import RigError, RigTimeout

T = TypeVar("T")


@dataclass(frozen=True)
class Proc:
    pid: int
    start: int  # /proc/<pid>/stat field 22 (clock ticks since boot); guards against PID reuse

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict | None) -> Proc | None:
        return cls(int(data["pid"]), int(data["start"])) if data else None


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # comm (field 2) may contain spaces and parentheses: split after the last ')'
    rest = raw[raw.rindex(")") + 2 :].split()
    return rest  # rest[0] = state (field 3), rest[1] = ppid, rest[2] = pgrp, rest[19] = starttime


def start_time(pid: int) -> int | None:
    st = _stat(pid)
    return int(st[19]) if st else None


def alive(proc: Proc | None) -> bool:
    if proc is None:
        return False
    st = _stat(proc.pid)
    return st is not None and st[0] not in ("Z", "X") and int(st[19]) == proc.start


def all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def group_members(pgid: int) -> list[int]:
    out = []
    for pid in all_pids():
        st = _stat(pid)
        if st and st[0] not in ("Z", "X") and int(st[2]) == pgid:
            out.append(pid)
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def mount_ns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def host_mount_namespaces() -> set[str]:
    """Namespaces that must never be treated as a machine's: init's and our own."""
    return {ns for ns in (mount_ns(1), mount_ns(os.getpid())) if ns}


def pids_in_mount_ns(ns: str) -> list[int]:
    """Live processes whose mount namespace is `ns` (e.g. 'mnt:[4026532201]')."""
    out = []
    for pid in all_pids():
        st = _stat(pid)
        if st and st[0] not in ("Z", "X") and mount_ns(pid) == ns:
            out.append(pid)
    return out


def descendants(roots: Iterable[int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid in all_pids():
        st = _stat(pid)
        if st and st[0] not in ("Z", "X"):
            children.setdefault(int(st[1]), []).append(pid)
    seen: set[int] = set()
    todo = list(roots)
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen


def spawn(
    argv: list[str], *, log: Path, env: dict[str, str] | None = None, cwd: Path | None = None, pidfile: Path
) -> Proc:
    """Start `argv` fully detached: new session (pgid == pid), reparented away from the caller.

    `setsid --fork` makes the daemon independent of the caller (no zombie left in a long-lived pytest
    process); the shell records its own PID and then execs the daemon, so the recorded PID is the
    daemon's.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    pidfile.unlink(missing_ok=True)
    with open(log, "ab", buffering=0) as out:
        out.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} starting: {' '.join(argv)}\n".encode())
        launcher = subprocess.Popen(
            [
                "setsid",
                "--fork",
                "sh",
                "-c",
                'echo $$ > "$0.tmp" && mv "$0.tmp" "$0" && exec "$@"',
                str(pidfile),
                *argv,
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            env=env,
            cwd=cwd,
            close_fds=True,
        )
        launcher.wait(timeout=10)
    pid = wait_for(
        lambda: int(pidfile.read_text()) if pidfile.exists() else None, 10, f"{argv[0]} to record its PID in {pidfile}"
    )
    st = start_time(pid)
    if st is None:
        raise RigError(f"{argv[0]} exited right after starting; see {log}:\n{tail(log)}")
    return Proc(pid, st)


def terminate(proc: Proc | None, *, what: str, timeout: float = 20, sig: int = signal.SIGTERM) -> None:
    """Signal the process group of `proc`, wait (bounded) until the group is empty, then SIGKILL it."""
    terminate_all({what: proc}, timeout=timeout, sig=sig)


def terminate_all(targets: dict[str, Proc | None], *, timeout: float = 20, sig: int = signal.SIGTERM) -> None:
    """terminate() for several daemons at once: signal every group, then wait for all of them together."""
    groups: dict[int, tuple[str, Proc]] = {}
    for what, proc in targets.items():
        if proc is None or not alive(proc):
            continue
        try:
            os.killpg(proc.pid, sig)  # spawn() makes every daemon a session (and group) leader
        except ProcessLookupError:
            continue
        groups[proc.pid] = (what, proc)

    def remaining() -> list[int]:
        return [pgid for pgid, (_, proc) in groups.items() if group_members(pgid) or alive(proc)]

    deadline = time.monotonic() + timeout
    while remaining() and time.monotonic() < deadline:
        time.sleep(0.1)
    if not remaining():
        return
    for pgid in remaining():
        for pid in group_members(pgid) + [pgid]:
            kill_pid(pid)
    names = ", ".join(f"{groups[g][0]} (group {g})" for g in remaining())
    wait_for(lambda: not remaining() or None, 10, f"{names} to exit after SIGKILL")


def kill_pid(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def wait_for(
    probe: Callable[[], T | None],
    timeout: float,
    what: str,
    *,
    interval: float = 0.2,
    detail: Callable[[], str] | None = None,
) -> T:
    """Poll `probe` until it returns something truthy; raise RigTimeout naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while True:
        try:
            value = probe()
            if value:
                return value
        except RigError:
            raise
        except Exception as exc:  # probes talk to daemons that are still starting
            last_exc = exc
        if time.monotonic() >= deadline:
            msg = f"timed out after {timeout:.0f}s waiting for {what}"
            if last_exc is not None:
                msg += f" (last error: {last_exc})"
            if detail is not None:
                msg += "\n" + detail()
            raise RigTimeout(msg)
        time.sleep(interval)


def free_port(avoid: Iterable[int] = ()) -> int:
    avoid = set(avoid)
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in avoid:
            return port
    raise RigError("could not find a free loopback port")


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def tail(path: Path, lines: int = 15) -> str:
    try:
        data = path.read_bytes()[-8192:].decode(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    return "\n".join("    " + line for line in data[-lines:])
