"""proc.run as the rest of devloop relies on it: real child processes, no mocks."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from devloop.adapters import proc
from devloop.base.errors import CommandFailed, ToolMissing, WaitTimeout
from support import wait_until


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def test_captures_stdout_stderr_and_exit_code():
    done = proc.run_shell("echo out; echo err >&2; printf 'no newline'", timeout=10)
    assert done.exit_code == 0
    assert done.stdout == "out\nno newline"
    assert done.stderr == "err\n"
    assert done.argv == ["bash", "-c", "echo out; echo err >&2; printf 'no newline'"]


def test_on_line_sees_every_line_of_both_streams_in_order():
    lines: list[str] = []
    proc.run_shell("echo one; echo two >&2; sleep 0.1; echo three", timeout=10, on_line=lines.append)
    assert lines == ["one", "two", "three"]


def test_env_is_merged_over_the_process_environment(tmp_path):
    done = proc.run_shell('echo "$DEVLOOP_T_VAR|$HOME"; pwd', env={"DEVLOOP_T_VAR": "x y"}, cwd=tmp_path, timeout=10)
    assert done.stdout.splitlines() == [f"x y|{os.environ['HOME']}", str(tmp_path)]


def test_stdin_is_fed_and_otherwise_closed():
    assert proc.run(["cat"], stdin="a\nb", timeout=10).stdout == "a\nb"
    # Without stdin a reader gets EOF at once instead of hanging until the deadline.
    # (a hang would end in WaitTimeout at the 10 s deadline, failing the test)
    assert proc.run(["cat"], timeout=10).stdout == ""


def test_non_zero_exit_raises_with_argv_code_and_tail():
    with pytest.raises(CommandFailed) as info:
        proc.run_shell("for i in $(seq 1 100); do echo line $i; done; echo boom >&2; exit 3", timeout=10)
    err = info.value
    assert err.argv[0] == "bash"
    assert err.exit_code_of_command == 3
    tail = err.output_tail.splitlines()
    assert len(tail) == proc.TAIL_LINES
    assert tail[-1] == "boom" and tail[-2] == "line 100"
    assert "exited with code 3" in str(err) and "line 100" in str(err)


def test_ok_codes_and_check_false():
    assert proc.run_shell("exit 7", timeout=10, ok_codes=(0, 7)).exit_code == 7
    assert proc.run_shell("exit 9", timeout=10, check=False).exit_code == 9


def test_missing_program_is_tool_missing_with_hint():
    with pytest.raises(ToolMissing) as info:
        proc.run(["make"], env={"PATH": "/nonexistent"}, timeout=5)
    assert "`make` is not on PATH" in str(info.value)
    assert info.value.hint and "make" in info.value.hint
    with pytest.raises(ToolMissing):
        proc.run(["./no-such-script"], timeout=5)


def test_path_from_env_is_used_to_find_the_program(tmp_path):
    tool = tmp_path / "mytool"
    tool.write_text("#!/bin/sh\necho mine\n")
    tool.chmod(0o755)
    done = proc.run(["mytool"], env={"PATH": f"{tmp_path}:{os.environ['PATH']}"}, timeout=10)
    assert done.stdout == "mine\n"


def test_timeout_kills_the_whole_process_group(tmp_path):
    pidfile = tmp_path / "pids"
    with pytest.raises(WaitTimeout) as info:
        proc.run_shell(f"sleep 60 & echo $! > {pidfile}; echo waiting for godot; sleep 60", timeout=1)
    message = str(info.value)
    assert "did not finish within 1s" in message and "sleep 60" in message
    assert "waiting for godot" in message  # what it saw last
    grandchild = int(pidfile.read_text())
    wait_until(
        lambda: not _alive(grandchild), 5, "the background grandchild to die with the timed-out group", interval=0.05
    )


def test_sigterm_ignoring_child_is_killed_after_grace(tmp_path, monkeypatch):
    monkeypatch.setattr(proc, "KILL_GRACE", 0.5)
    pidfile = tmp_path / "pid"
    with pytest.raises(WaitTimeout):
        proc.run_shell(f"trap '' TERM; echo $$ > {pidfile}; while :; do sleep 0.1; done", timeout=1)
    pid = int(pidfile.read_text())
    wait_until(lambda: not _alive(pid), 5, "the TERM-ignoring child to be killed after the grace", interval=0.05)


def test_keyboard_interrupt_kills_the_group_and_propagates(tmp_path):
    pidfile = tmp_path / "pid"
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            proc.run_shell(f"sleep 60 & echo $! > {pidfile}; wait", timeout=30)
    finally:
        timer.cancel()
    pid = int(pidfile.read_text())
    wait_until(lambda: not _alive(pid), 5, "the interrupted group's sleep to die", interval=0.05)


def test_child_runs_in_its_own_session_and_group():
    done = proc.run_shell("read -a f < /proc/$$/stat; echo ${f[0]} ${f[4]} ${f[5]}", timeout=10)
    pid, pgrp, session = done.stdout.split()
    assert pid == pgrp == session
    assert int(session) != os.getsid(0)


def test_callback_exception_surfaces_in_caller():
    def explode(line: str) -> None:
        raise RuntimeError(f"bad line {line}")

    with pytest.raises(RuntimeError, match="bad line x"):
        proc.run_shell("echo x", timeout=10, on_line=explode)


def test_killed_by_signal_is_named():
    with pytest.raises(CommandFailed) as info:
        proc.run_shell("echo dying; kill -KILL $$", timeout=10)
    assert "was killed by SIGKILL" in str(info.value) and "dying" in str(info.value)
    assert info.value.exit_code_of_command == -9


def test_a_grandchild_holding_the_pipes_does_not_outlast_the_child(monkeypatch, tmp_path):
    # The run ends with the child: a daemon it left behind (still holding stdout) gets DRAIN_AFTER_EXIT.
    monkeypatch.setattr(proc, "DRAIN_AFTER_EXIT", 0.3)
    pidfile = tmp_path / "pid"
    started = time.monotonic()
    try:
        done = proc.run_shell(f"sleep 30 & echo $! > {pidfile}; echo left it running", timeout=20)
        assert done.stdout == "left it running\n" and time.monotonic() - started < 10
    finally:
        if pidfile.exists():
            os.kill(int(pidfile.read_text()), signal.SIGKILL)


def test_large_stdin_and_output_do_not_deadlock():
    data = "x" * 99 + "\n"
    done = proc.run(["cat"], stdin=data * 5000, timeout=20)  # ~500 KB each way, far beyond a pipe's buffer
    assert done.stdout == data * 5000 and len(done.output_tail.splitlines()) == proc.TAIL_LINES


def test_undecodable_bytes_are_replaced_not_fatal():
    done = proc.run_shell(r"printf 'caf\xc3\xa9 \xff\n'", timeout=10)
    assert done.stdout == "café \ufffd\n"


def test_a_missing_working_directory_cannot_start(tmp_path):
    with pytest.raises(ToolMissing, match="could not start `bash`"):
        proc.run_shell("true", cwd=tmp_path / "gone", timeout=5)
