"""The per-profile lock, with real processes holding it (flock is per open file, so threads in one
process would prove nothing about two devloop runs)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from devloop.base.lock import Holder, LockBusy, ProfileLock, minikube_home, process_start

REPO = Path(__file__).resolve().parents[2]

# A holder process: takes the lock, says so on stdout, then waits for a line on stdin (release and
# exit), or is killed. Optional: start a long-lived child that does NOT close inherited fds.
HOLDER = textwrap.dedent("""
    import os, subprocess, sys
    from pathlib import Path
    from devloop.base.lock import ProfileLock
    lock = ProfileLock(sys.argv[1], kind=sys.argv[2], directory=Path(sys.argv[3]), command="devloop up --soak")
    lock.acquire(wait=0)
    if len(sys.argv) > 4:
        child = subprocess.Popen(["sleep", "60"], close_fds=False, start_new_session=True)
        print("child", child.pid, flush=True)
    print("held", os.getpid(), flush=True)
    sys.stdin.readline()
    lock.release()
    print("released", flush=True)
""")


class HolderProc:
    def __init__(
        self,
        directory: Path,
        profile: str = "demo",
        kind: str = "profile",
        *,
        spawn_child: bool = False,
        env: dict | None = None,
    ) -> None:
        argv = [sys.executable, "-c", HOLDER, profile, kind, str(directory)] + (["child"] if spawn_child else [])
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ, **(env or {})}
        )
        self.child_pid = None
        line = self.proc.stdout.readline()
        if line.startswith("child"):
            self.child_pid = int(line.split()[1])
            line = self.proc.stdout.readline()
        assert line.startswith("held"), f"holder did not take the lock: {line!r}"
        self.pid = int(line.split()[1])

    def release(self) -> None:
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "released"
        self.proc.wait(timeout=30)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.kill()
        if self.child_pid:
            try:
                os.killpg(self.child_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def holders(tmp_path):
    made: list[HolderProc] = []

    def make(*args, directory: Path | None = None, **kwargs) -> HolderProc:
        holder = HolderProc(directory or tmp_path, *args, **kwargs)
        made.append(holder)
        return holder

    yield make
    for h in made:
        h.close()


def test_second_run_refuses_at_once_naming_the_holder(tmp_path, holders):
    first = holders()
    lock = ProfileLock("demo", directory=tmp_path)
    with pytest.raises(LockBusy) as info:
        lock.acquire(wait=0)
    err = info.value
    assert err.exit_code == 1
    assert err.holder is not None and err.holder.pid == first.pid
    assert f"PID {first.pid}" in err.message
    assert "devloop up --soak" in err.message
    assert "'demo' is busy" in err.message
    assert f"kill {first.pid}" in err.hint
    assert not lock.held


def test_waits_with_a_countdown_then_takes_the_lock_once_free(tmp_path, holders):
    first = holders()
    seen: list[tuple[int | None, float]] = []

    def on_wait(holder, left):
        seen.append((holder.pid if holder else None, left))
        if len(seen) == 3:
            first.release()

    lock = ProfileLock("demo", directory=tmp_path, command="devloop apply")
    lock.acquire(wait=600, on_wait=on_wait)
    try:
        assert lock.held
        assert len(seen) >= 3
        assert {pid for pid, _ in seen[:3]} == {first.pid}
        lefts = [left for _, left in seen]
        assert lefts == sorted(lefts, reverse=True) and 0 < lefts[-1] <= 600
        assert lock.took_over is None  # a clean release leaves nothing to take over
        assert lock.holder().pid == os.getpid() and lock.holder().command == "devloop apply"
    finally:
        lock.release()
    assert not lock.info_path.exists()


def test_waiting_runs_out_with_a_clear_error(tmp_path, holders):
    first = holders()
    now = [0.0]
    lefts: list[float] = []
    lock = ProfileLock("demo", directory=tmp_path)
    with pytest.raises(LockBusy) as info:
        lock.acquire(
            wait=2,
            on_wait=lambda h, left: lefts.append(left),
            clock=lambda: now[0],
            sleep=lambda s: now.__setitem__(0, round(now[0] + s, 6)),
        )
    assert "after waiting 2s" in info.value.message and f"PID {first.pid}" in info.value.message
    assert lefts[0] == 2 and lefts == sorted(lefts, reverse=True) and len(lefts) == 10


def test_a_killed_holder_is_taken_over_and_named(tmp_path, holders):
    first = holders()
    first.kill()  # SIGKILL: no release, its JSON stays behind
    lock = ProfileLock("demo", directory=tmp_path)
    lock.acquire(wait=0)
    try:
        assert lock.took_over is not None and lock.took_over.pid == first.pid
        assert not lock.took_over.alive()
        assert lock.holder().pid == os.getpid()
    finally:
        lock.release()


def test_a_build_started_by_the_holder_does_not_keep_the_lock(tmp_path, holders):
    first = holders(spawn_child=True)
    assert first.child_pid and process_start(first.child_pid) is not None
    first.kill()
    # The holder's child lives on with every fd it could inherit; the lock fd was close-on-exec.
    assert process_start(first.child_pid) is not None
    lock = ProfileLock("demo", directory=tmp_path)
    lock.acquire(wait=0)
    lock.release()


def test_profiles_homes_and_kinds_are_separate_locks(tmp_path, holders):
    holders("demo", "watcher")
    holders("other", "profile")
    # The same profile name in another minikube home is another cluster.
    holders("demo", "profile", env={"MINIKUBE_HOME": str(tmp_path / "elsewhere")})
    with pytest.raises(LockBusy) as info:
        ProfileLock("demo", kind="watcher", directory=tmp_path).acquire()
    assert "another `devloop watch` already watches" in info.value.message
    lock = ProfileLock("demo", kind="profile", directory=tmp_path)
    lock.acquire()
    lock.release()


def test_minikube_home_follows_minikube(monkeypatch, tmp_path):
    monkeypatch.setenv("MINIKUBE_HOME", str(tmp_path))
    assert minikube_home() == tmp_path.resolve() / ".minikube"
    monkeypatch.setenv("MINIKUBE_HOME", str(tmp_path / ".minikube"))
    assert minikube_home() == tmp_path.resolve() / ".minikube"


def test_holder_liveness_sees_pid_reuse(tmp_path):
    me = Holder(
        pid=os.getpid(),
        command="x",
        since="",
        started=0.0,
        proc_start=process_start(os.getpid()),
        host=os.uname().nodename,
    )
    assert me.alive()
    reused = Holder(**{**me.__dict__, "proc_start": me.proc_start + 1})
    assert not reused.alive()
    # A PID nobody has: the largest one the kernel will hand out, plus one.
    gone = Holder(**{**me.__dict__, "pid": int(Path("/proc/sys/kernel/pid_max").read_text()) + 1})
    assert not gone.alive()


def test_release_is_idempotent_and_the_same_object_cannot_take_it_twice(tmp_path):
    lock = ProfileLock("demo", directory=tmp_path)
    lock.acquire()
    with pytest.raises(RuntimeError):
        lock.acquire()
    lock.release()
    lock.release()
    with lock.hold(wait=0):
        assert lock.held
    assert not lock.held


def test_hold_for_says_who_holds_it_counts_down_and_takes_it(tmp_path, holders, capsys, monkeypatch):
    import json
    from types import SimpleNamespace

    from devloop.base.lock import hold_for
    from devloop.output.report import Reporter

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    first = holders_in(holders, tmp_path / "devloop")
    waits: list[str] = []

    class Rep(Reporter):
        def _waiting(self, step, what):
            waits.append(what)
            super()._waiting(step, what)
            if len(waits) == 2:
                first.release()

    session = SimpleNamespace(context="demo", reporter=Rep(json_mode=True))
    with hold_for(session, wait=600) as lock:
        assert lock.held
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    info = next(e for e in events if e["event"] == "info")
    assert f"PID {first.pid}" in info["message"] and "waiting up to 600s" in info["message"]
    counted = [e["waiting_for"] for e in events if e["event"] == "wait"]
    assert counted == waits and len(counted) >= 2 and all(f"PID {first.pid}" in w and "s left)" in w for w in counted)
    assert [e["status"] for e in events if e["event"] == "step" and e["step"] == "lock"] == ["start", "ok"]

    # With no wait allowed, a busy lock is an error at once (and no lock step).
    again = holders_in(holders, tmp_path / "devloop")
    with pytest.raises(LockBusy):
        with hold_for(SimpleNamespace(context="demo", reporter=Reporter(json_mode=True)), wait=0):
            pass
    again.release()


def holders_in(holders, directory: Path) -> HolderProc:
    directory.mkdir(parents=True, exist_ok=True)
    return holders(directory=directory)
