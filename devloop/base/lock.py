"""One devloop per minikube profile at a time: a file lock under devloop's state dir.

The lock is `flock(2)` on a file keyed by the minikube home and the profile, so two minikube
homes may use the same profile name without blocking each other. The kernel drops an flock when
its holder dies (even by SIGKILL), so a dead holder can never keep the lock: whoever asks next
simply gets it. Beside the lock, the holder writes who it is (PID, command line, since when, and
its process start time, so a reused PID is not mistaken for it) as JSON; a waiting run reads that
to say who it is waiting for. A holder that releases cleanly removes its JSON; JSON found by a
new holder therefore belongs to a holder that died, and the takeover is said.

Two kinds of lock per profile: `profile` (held while a command changes the cluster: `up`,
`apply`, `clean`, `down`, `reset`, `build`, and `watch` during each cycle) and `watcher` (held by
`watch` for its whole life, so a second `watch` on the profile refuses at once).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devloop.base.errors import DevloopError, WaitTimeout
from devloop.base.waits import wait_for

KINDS = ("profile", "watcher")
# How often a waiting run retries the lock and refreshes its countdown.
POLL = 0.2


class LockBusy(DevloopError):
    """Another devloop holds the profile's lock. Exit code 1 like any step that could not run:
    the documented codes stay 0/1/2/130, and `--json` tells tools apart by `kind: LockBusy`."""

    def __init__(self, message: str, *, holder: Holder | None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.holder = holder


@dataclass(frozen=True)
class Holder:
    pid: int
    command: str
    since: str  # ISO 8601, UTC
    started: float  # time.time() when the lock was taken
    proc_start: int | None  # the process's start time in clock ticks since boot (/proc/PID/stat field 22)
    host: str

    def alive(self) -> bool:
        """Whether the process that wrote this is still running (not merely its PID, reused)."""
        if self.host != socket.gethostname():
            return True  # another machine sharing the state dir: we cannot tell, assume it is
        current = process_start(self.pid)
        if current is None:
            return _pid_exists(self.pid)
        return self.proc_start is None or current == self.proc_start

    def describe(self, now: float | None = None) -> str:
        age = max(0.0, (now if now is not None else time.time()) - self.started)
        return f"PID {self.pid} (`{self.command}`, since {self.since}, {_duration(age)} ago)"


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "devloop"


def minikube_home() -> Path:
    """Where minikube keeps its profiles, as minikube computes it (localpath.MiniPath): MINIKUBE_HOME,
    with `.minikube` appended unless it already ends in it; default ~/.minikube."""
    raw = os.environ.get("MINIKUBE_HOME")
    if not raw:
        return (Path.home() / ".minikube").resolve()
    path = Path(raw)  # literally, as minikube does: it expands no `~` (adapters/minikube/home.py home_notice)
    if path.name != ".minikube":
        path = path / ".minikube"
    return path.resolve()


def process_start(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (start time in ticks since boot); None if unknown or gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # pid (comm) state …: comm may hold spaces and parentheses, so split after the last ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _command_line() -> str:
    argv = list(sys.argv)
    if argv and argv[0].endswith(("/devloop", "__main__.py")):
        argv[0] = "devloop"
    text = " ".join(argv)
    return text if len(text) <= 200 else text[:197] + "..."


class ProfileLock:
    """`with ProfileLock(profile).hold(wait=60, on_wait=...)`, or acquire()/release()."""

    def __init__(
        self,
        profile: str,
        *,
        kind: str = "profile",
        home: Path | None = None,
        directory: Path | None = None,
        command: str | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"lock kind must be one of {KINDS}, got {kind!r}")
        self.profile = profile
        self.kind = kind
        self.home = home if home is not None else minikube_home()
        key = hashlib.sha256(str(self.home).encode()).hexdigest()[:12]
        base = (directory if directory is not None else state_dir()) / "locks"
        stem = f"{profile}.{key}.{kind}"
        self.path = base / f"{stem}.lock"
        self.info_path = base / f"{stem}.json"
        self.command = command or _command_line()
        self._fd: int | None = None
        self.took_over: Holder | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def holder(self) -> Holder | None:
        """Who the JSON beside the lock names (possibly a dead holder's leftover), or None."""
        try:
            data = json.loads(self.info_path.read_text())
            return Holder(**data)
        except (OSError, ValueError, TypeError):
            return None

    def _try(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # O_CLOEXEC (Python's default): a build we start must never inherit, and so keep, the lock.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def acquire(
        self,
        *,
        wait: float = 0.0,
        on_wait: Callable[[Holder | None, float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        """Take the lock, waiting up to `wait` seconds; `on_wait(holder, seconds_left)` is called
        about every POLL seconds while waiting (the Reporter's countdown). Raises LockBusy naming
        the holder when the time is up (at once when `wait` is 0)."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this object")
        wait = max(0.0, wait)
        deadline = clock() + wait

        def taken() -> bool:
            if self._try():
                return True
            left = deadline - clock()
            if on_wait is not None and left > 0:
                on_wait(self.holder(), left)
            return False

        # wait_for's own default sleep unless one is given
        sleeping: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
        try:
            wait_for(
                taken,
                timeout=wait,
                interval=POLL,
                describe=f"the lock {self.path}",
                clock=clock,
                **sleeping,
            )
        except WaitTimeout:
            raise self._busy(self.holder(), waited=wait) from None
        self._took(self.holder())

    def _took(self, previous: Holder | None) -> None:
        # We hold the flock, so any JSON left there was written by a holder that never released:
        # it died (or was killed). Say so, then write ours.
        self.took_over = previous if previous is not None and previous.pid != os.getpid() else None
        me = Holder(
            pid=os.getpid(),
            command=self.command,
            since=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            started=time.time(),
            proc_start=process_start(os.getpid()),
            host=socket.gethostname(),
        )
        tmp = self.info_path.with_name(f".{self.info_path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(asdict(me)))
        os.replace(tmp, self.info_path)

    def _busy(self, holder: Holder | None, *, waited: float) -> LockBusy:
        what = "watches" if self.kind == "watcher" else "is changing"
        if holder is None:
            who = "another devloop (it has not written who it is yet)"
        elif not holder.alive():
            who = f"{holder.describe()}, which has exited; a process it started still holds the lock ({self.path})"
        else:
            who = holder.describe()
        waited_text = f" after waiting {waited:g}s" if waited > 0 else ""
        if self.kind == "watcher":
            message = f"another `devloop watch` already watches minikube profile {self.profile!r}: {who}"
            hint = "stop that one first (Ctrl-C in its terminal" + (f", or `kill {holder.pid}`)" if holder else ")")
        else:
            message = f"minikube profile {self.profile!r} is busy{waited_text}: {who} {what} it"
            hint = "wait for it to finish, or pass a longer --wait-lock SECONDS" + (
                f"; to stop it: `kill {holder.pid}`" if holder else ""
            )
        return LockBusy(message, holder=holder, hint=hint)

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            # Still under the flock: nobody else can be writing their JSON now.
            mine = self.holder()
            if mine is not None and mine.pid == os.getpid():
                with contextlib.suppress(FileNotFoundError):
                    self.info_path.unlink()
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    @contextlib.contextmanager
    def hold(self, **kwargs: Any) -> Iterator[ProfileLock]:
        self.acquire(**kwargs)
        try:
            yield self
        finally:
            self.release()

    def __del__(self) -> None:  # a forgotten release must not outlive the object
        with contextlib.suppress(Exception):
            self.release()


@contextlib.contextmanager
def hold_for(session: Any, *, wait: float, kind: str = "profile") -> Iterator[ProfileLock]:
    """Hold `session`'s profile lock around a command (or one watch cycle), through its Reporter:
    a busy lock is said once (who holds it, how long we wait), the wait shows a countdown (a `lock`
    step's wait events), and a takeover from a dead holder is a warning."""
    rep = session.reporter
    lock = ProfileLock(session.context, kind=kind)
    try:
        lock.acquire(wait=0)
    except LockBusy as busy:
        if wait <= 0:
            raise
        rep.info(f"{busy.message}; waiting up to {wait:g}s for it (--wait-lock)")
        with rep.step("lock", "wait for the profile lock") as step:
            shown: list[int | None] = [None]

            def on_wait(holder: Holder | None, left: float) -> None:
                whole = int(left + 0.999)
                if whole != shown[0]:  # once a second, not on every poll
                    shown[0] = whole
                    who = holder.describe() if holder else "another devloop"
                    step.waiting(f"{who} to finish ({whole}s left)")

            lock.acquire(wait=wait, on_wait=on_wait)
            step.detail(waited_for=busy.holder.pid if busy.holder else None)
    if lock.took_over is not None:
        rep.warn(
            f"took over the lock of minikube profile {session.context!r} from {lock.took_over.describe()}, "
            "which ended without releasing it"
        )
    try:
        yield lock
    finally:
        lock.release()
