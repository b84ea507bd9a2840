"""The one way devloop runs another program.

Every child gets its own session (so its process group is ours to kill: builds spawn docker, go,
make sub-shells…), output is read line by line as it comes, and a deadline is always given.
"""

from __future__ import annotations

import collections
import os
import signal
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sh

from devloop.base.errors import CommandFailed, ToolMissing, WaitTimeout
from devloop.base.waits import wait_for

TAIL_LINES = 40
# After SIGTERM, how long a process group gets to exit before SIGKILL.
KILL_GRACE = 3.0

_INSTALL_HINTS = {
    "minikube": "install minikube: https://minikube.sigs.k8s.io/docs/start/",
    "make": "install make (Debian/Ubuntu: `apt-get install make`)",
    "docker": "install the docker CLI (Debian/Ubuntu: `apt-get install docker.io`)",
    "bash": "install bash",
    "kubectl": "install kubectl: https://kubernetes.io/docs/tasks/tools/",
    "go": "install Go: https://go.dev/dl/",
}

# sh raises for signals unless their negative codes are "ok"; we judge exit codes ourselves.
_ALL_CODES = tuple(range(-64, 256))


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


def _resolve(program: str, env: dict[str, str], cwd: Path | None, hint: str | None) -> sh.Command:
    import sh  # sh pulls in asyncio: too slow for `devloop --help`

    name = os.path.basename(program)
    hint = hint or _INSTALL_HINTS.get(name)
    if "/" in program:
        path = Path(program)
        if not path.is_absolute() and cwd is not None:
            path = Path(cwd) / path
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ToolMissing(f"`{program}` does not exist or is not executable", hint=hint)
        return sh.Command(str(path))
    search = [p for p in env.get("PATH", os.defpath).split(os.pathsep) if p]
    try:
        return sh.Command(program, search_paths=search)
    except sh.CommandNotFound:
        raise ToolMissing(f"`{program}` is not on PATH", hint=hint) from None


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
    command = _resolve(argv[0], merged, cwd_path, missing_hint)

    out_lines: list[str] = []
    err_lines: list[str] = []
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    lock = threading.Lock()
    callback_errors: list[BaseException] = []

    def collector(target: list[str]) -> Callable[[str], None]:
        def take(chunk: str) -> None:
            with lock:
                target.append(chunk)
                line = chunk.rstrip("\n")
                tail.append(line)
            if on_line is not None and not callback_errors:
                try:
                    on_line(line)
                except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                    callback_errors.append(exc)

        return take

    import sh

    finished = threading.Event()
    try:
        proc = command(
            *argv[1:],
            _env=merged,
            _cwd=str(cwd_path) if cwd_path is not None else None,
            # Always a closed stdin: a child must never wait on ours (and sh joins faster).
            _in=stdin if stdin is not None else "",
            _out=collector(out_lines),
            _err=collector(err_lines),
            _tty_out=False,
            _out_bufsize=1,
            _err_bufsize=1,
            _new_session=True,
            _bg=True,
            _bg_exc=False,
            _ok_code=_ALL_CODES,
            _decode_errors="replace",
            _done=lambda *_: finished.set(),
        )
    except sh.ForkException as exc:
        raise ToolMissing(f"could not start `{argv[0]}`: {exc}", hint=missing_hint) from None

    pgid = proc.pid  # a new session: the leader's pid is the group id, even after it exits
    try:
        if not finished.wait(timeout):
            _kill_group(pgid)
            _reap(proc)
            with lock:
                last = "\n".join(list(tail)[-10:])
            seen = f"; last output:\n{last}" if last.strip() else "; it printed nothing"
            raise WaitTimeout(
                f"`{_display(argv)}` did not finish within {timeout:g}s and was stopped{seen}",
                hint="raise the timeout for this step if the command is just slow",
            )
        exit_code = _reap(proc)
    except BaseException:
        # KeyboardInterrupt or anything else: no orphans left behind.
        _kill_group(pgid, grace=1.0)
        raise
    if callback_errors:
        raise callback_errors[0]

    with lock:
        completed = Completed(
            argv=argv,
            exit_code=exit_code,
            stdout="".join(out_lines),
            stderr="".join(err_lines),
            output_tail="\n".join(tail),
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


def _reap(proc: sh.RunningCommand) -> int:
    import sh

    try:
        proc.wait()
    except sh.ErrorReturnCode:
        pass
    code = proc.exit_code
    return code if code is not None else -1


def run_shell(command: str, **kwargs) -> Completed:
    """Run a profile's build command with bash, as a developer would type it."""
    return run(["bash", "-c", command], **kwargs)
