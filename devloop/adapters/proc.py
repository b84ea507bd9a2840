"""The one way devloop runs another program.

Every child gets its own session (so its process group is ours to kill: builds spawn docker, go,
make sub-shells…), output is read line by line as it comes, and a deadline is always given.

The caller's thread does the reading (a selector over both pipes), so `on_line` runs there and a
Ctrl-C (or signals.py's Interrupted) reaches us while we wait, which then kills the child's group.
"""

from __future__ import annotations

import collections
import os
import selectors
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from devloop.base.errors import CommandFailed, ToolMissing, WaitTimeout
from devloop.base.waits import wait_for

TAIL_LINES = 40
# After SIGTERM, how long a process group gets to exit before SIGKILL.
KILL_GRACE = 3.0
# Once the child has exited, how long its pipes may stay open (a background grandchild holding them)
# before we stop reading: the run is over when the child is, not when everything it spawned is.
DRAIN_AFTER_EXIT = 2.0
# How often the reader looks whether the child has exited while its pipes are still open.
_POLL = 0.05

_INSTALL_HINTS = {
    "minikube": "install minikube: https://minikube.sigs.k8s.io/docs/start/",
    "make": "install make (Debian/Ubuntu: `apt-get install make`)",
    "docker": "install the docker CLI (Debian/Ubuntu: `apt-get install docker.io`)",
    "bash": "install bash",
    "kubectl": "install kubectl: https://kubernetes.io/docs/tasks/tools/",
    "go": "install Go: https://go.dev/dl/",
}


@dataclass
class Completed:
    argv: list[str]
    exit_code: int
    stdout: str
    stderr: str
    # The last TAIL_LINES lines of stdout and stderr interleaved as they arrived.
    output_tail: str = ""


def _merged_env(env: Mapping[str, str] | None) -> dict[str, str]:
    merged = dict(os.environ)
    if env:
        merged.update({str(k): str(v) for k, v in env.items()})
    return merged


def _resolve(program: str, env: dict[str, str], cwd: Path | None, hint: str | None) -> str:
    """The executable to run: a path is taken as given (relative to `cwd`), a name is looked up on the
    PATH of the child's environment, not ours."""
    name = os.path.basename(program)
    hint = hint or _INSTALL_HINTS.get(name)
    if "/" in program:
        path = Path(program)
        if not path.is_absolute() and cwd is not None:
            path = Path(cwd) / path
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ToolMissing(f"`{program}` does not exist or is not executable", hint=hint)
        return str(path)
    search = os.pathsep.join(p for p in env.get("PATH", os.defpath).split(os.pathsep) if p)
    found = shutil.which(program, path=search) if search else None
    if found is None:
        raise ToolMissing(f"`{program}` is not on PATH", hint=hint)
    return found


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group is still running (zombies don't count: they hold nothing)."""
    proc_dir = Path("/proc")
    if not proc_dir.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    from devloop.base.signals import process_stats

    return any(fields[2] == str(pgid) and fields[0] != "Z" for _pid, fields in process_stats())


def _kill_group(pgid: int, grace: float | None = None) -> None:
    """SIGTERM the whole group, then SIGKILL whatever is left after `grace` seconds."""
    grace = KILL_GRACE if grace is None else grace
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        wait_for(
            lambda: not _group_alive(pgid),
            timeout=grace,
            interval=0.05,
            describe=f"process group {pgid} outlived SIGTERM by {grace:g}s",
        )
        return
    except WaitTimeout:
        pass  # not an error: SIGKILL is the answer
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _display(argv: Sequence[str]) -> str:
    import shlex

    return " ".join(shlex.quote(a) for a in argv)


class _Output:
    """Both pipes of one child, read as lines in the order they arrive."""

    def __init__(self, child: subprocess.Popen, on_line: Callable[[str], None] | None) -> None:
        self.out: list[str] = []
        self.err: list[str] = []
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.callback_errors: list[Exception] = []
        self._on_line = on_line
        self._selector = selectors.DefaultSelector()
        self._partial: dict[int, bytes] = {}
        for pipe, target in ((child.stdout, self.out), (child.stderr, self.err)):
            assert pipe is not None
            os.set_blocking(pipe.fileno(), False)
            self._selector.register(pipe.fileno(), selectors.EVENT_READ, target)
            self._partial[pipe.fileno()] = b""

    @property
    def open(self) -> bool:
        return bool(self._selector.get_map())

    def read(self, timeout: float) -> None:
        """Take whatever arrives within `timeout` seconds (0: only what is there already)."""
        for key, _ in self._selector.select(max(timeout, 0)):
            try:
                data = os.read(key.fd, 65536)
            except BlockingIOError:
                continue
            if not data:
                rest = self._partial.pop(key.fd)
                self._selector.unregister(key.fd)
                if rest:
                    self._take(key.data, rest)
                continue
            lines = (self._partial[key.fd] + data).split(b"\n")
            self._partial[key.fd] = lines.pop()
            for line in lines:
                self._take(key.data, line + b"\n")

    def drain(self, seconds: float) -> None:
        until = time.monotonic() + seconds
        while self.open:
            self.read(until - time.monotonic())  # at least once: drain(0) takes what is there already
            if time.monotonic() >= until:
                break
        # What is still buffered of a line without its newline is output too.
        for fd, rest in list(self._partial.items()):
            if rest:
                self._take(self._selector.get_key(fd).data, rest)
                self._partial[fd] = b""

    def close(self) -> None:
        self._selector.close()

    def _take(self, target: list[str], raw: bytes) -> None:
        chunk = raw.decode("utf-8", errors="replace")
        target.append(chunk)
        line = chunk.rstrip("\n")
        self.tail.append(line)
        if self._on_line is not None and not self.callback_errors:
            try:
                self._on_line(line)
            except Exception as exc:  # noqa: BLE001 - raised once the child is done, like sh's callbacks
                self.callback_errors.append(exc)


def _feed(pipe: IO[bytes], data: str) -> None:
    try:
        pipe.write(data.encode())
    except (BrokenPipeError, ValueError):
        pass  # the child stopped reading: what it did not take is its business
    finally:
        try:
            pipe.close()
        except BrokenPipeError:
            pass


def _wait_for_exit(child: subprocess.Popen, output: _Output, deadline: float) -> bool:
    """Read until the child exits (True) or the deadline passes (False)."""
    while child.poll() is None:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        if output.open:
            output.read(min(left, _POLL))
        else:
            try:
                child.wait(timeout=left)
            except subprocess.TimeoutExpired:
                return False
    return True


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
    timeout: float,
    check: bool = True,
    ok_codes: Collection[int] = (0,),
    on_line: Callable[[str], None] | None = None,
    stdin: str | None = None,
    missing_hint: str | None = None,
) -> Completed:
    """Run `argv` to completion within `timeout` seconds.

    Raises ToolMissing if the program cannot be found, WaitTimeout when the deadline passes (the
    whole process group is killed first), CommandFailed for an exit code outside `ok_codes` when
    `check` is true. On KeyboardInterrupt the group is killed and the interrupt re-raised.
    """
    argv = [str(a) for a in argv]
    if not argv:
        raise ValueError("run() needs a program to run")
    merged = _merged_env(env)
    cwd_path = Path(cwd) if cwd is not None else None
    executable = _resolve(argv[0], merged, cwd_path, missing_hint)

    deadline = time.monotonic() + timeout
    try:
        child = subprocess.Popen(
            [executable, *argv[1:]],
            env=merged,
            cwd=cwd_path,
            # Always a closed stdin when none is given: a child must never wait on ours.
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        raise ToolMissing(f"could not start `{argv[0]}`: {exc}", hint=missing_hint) from None

    pgid = child.pid  # a new session: the leader's pid is the group id, even after it exits
    output = _Output(child, on_line)
    try:
        if stdin is not None:
            # A thread: a child that writes much before it reads all of its input must not deadlock us.
            threading.Thread(target=_feed, args=(child.stdin, stdin), daemon=True).start()
        if not _wait_for_exit(child, output, deadline):
            _kill_group(pgid)
            child.wait()
            output.drain(0)
            last = "\n".join(list(output.tail)[-10:])
            seen = f"; last output:\n{last}" if last.strip() else "; it printed nothing"
            raise WaitTimeout(
                f"`{_display(argv)}` did not finish within {timeout:g}s and was stopped{seen}",
                hint="raise the timeout for this step if the command is just slow",
            )
        output.drain(DRAIN_AFTER_EXIT)
        exit_code = child.returncode
    except BaseException:
        # KeyboardInterrupt or anything else: no orphans left behind.
        _kill_group(pgid, grace=1.0)
        raise
    finally:
        output.close()
        for pipe in (child.stdout, child.stderr):
            if pipe is not None:
                pipe.close()
        if child.poll() is None:
            try:
                child.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                pass  # the group was SIGKILLed: the kernel finishes it, Popen reaps it later
    if output.callback_errors:
        raise output.callback_errors[0]

    completed = Completed(
        argv=argv,
        exit_code=exit_code,
        stdout="".join(output.out),
        stderr="".join(output.err),
        output_tail="\n".join(output.tail),
    )
    if check and exit_code not in ok_codes:
        message = None
        if exit_code < 0:
            try:
                name = signal.Signals(-exit_code).name
            except ValueError:
                name = f"signal {-exit_code}"
            message = f"`{_display(argv)}` was killed by {name}"
        raise CommandFailed(argv, exit_code, completed.output_tail, message=message)
    return completed


def run_shell(command: str, **kwargs: Any) -> Completed:
    """Run a profile's build command with bash, as a developer would type it."""
    return run(["bash", "-c", command], **kwargs)
