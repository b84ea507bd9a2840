"""One devloop per minikube profile, signals, and a profile edited while `watch` runs: the CLI as a
user runs it (subprocesses) on the test cluster.

A build that waits at a gate (a file the test creates) holds a cycle open for as long as a test
needs, so "while watch runs a cycle" is a fact, not a guess about timing. The order of two applies is
read from the JSON events of both processes, stamped as they arrive.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from support import devloop_argv, run_devloop, wait_until

PROFILE = "devloop-lock-e2e"
NS = "kubeless"
GATED = "http-trigger-controller"
MAIN_GO = "http-trigger/cmd/http-trigger-controller/main.go"

pytestmark = [pytest.mark.rig, pytest.mark.destructive, pytest.mark.slow]


class Proc:
    """A devloop process; its JSON events (stamped on arrival) and stderr are read by threads."""

    def __init__(self, argv: list[str], env: dict, cwd: Path) -> None:
        self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.pid = self.proc.pid
        self.events: list[dict] = []
        self.stderr: list[str] = []
        threading.Thread(target=self._out, daemon=True).start()
        threading.Thread(target=self._err, daemon=True).start()

    def _out(self) -> None:
        for line in self.proc.stdout:
            if line.startswith("{"):
                ev = json.loads(line)
                ev["_t"] = time.monotonic()
                self.events.append(ev)

    def _err(self) -> None:
        for line in self.proc.stderr:
            self.stderr.append(line)

    def find(self, pred, timeout: float, what: str) -> dict:
        def hit():
            return next((e for e in list(self.events) if pred(e)), None)

        return wait_until(hit, timeout, what, interval=0.05, detail=self.tail)

    def step_times(self, name: str) -> list[tuple[float, float]]:
        """(start, end) arrival times of each run of step `name`."""
        out, start = [], None
        for e in self.events:
            if e.get("event") == "step" and e.get("step") == name:
                if e["status"] == "start":
                    start = e["_t"]
                elif start is not None:
                    out.append((start, e["_t"]))
                    start = None
        return out

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def tail(self) -> str:
        return (
            f"exit={self.proc.poll()} events={json.dumps(self.events[-8:], default=str)}\n"
            f"stderr: {''.join(self.stderr[-20:])}"
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture(scope="module")
def env(rig_handle, workspace) -> dict:
    cluster = rig_handle(PROFILE)
    yield {
        **cluster.env,
        "XDG_CACHE_HOME": str(workspace.parent / "cache"),
        "XDG_STATE_HOME": str(workspace.parent / "state"),
        "DEVRIG_HOST_CPUS": "8",
        "DEVRIG_HOST_MEMORY_MB": "32768",
    }
    subprocess.run(["minikube", "delete", "-p", PROFILE], env=cluster.env, capture_output=True, timeout=300)


@pytest.fixture(scope="module")
def gate(workspace) -> Path:
    return workspace.parent / "gate"


@pytest.fixture(scope="module")
def gated_profile(workspace, gate) -> Path:
    """The module's profile, but the gated component's build first waits for the gate file (and ignores
    SIGTERM while it waits, like a build that is slow to stop)."""
    data = yaml.safe_load((workspace.parent / "profile.yaml").read_text())
    for comp in data["components"]:
        if comp["name"] == GATED:
            comp["build"] = (
                f"echo gated-build pid $$ >&2; trap '' TERM; while [ ! -e {gate} ]; do sleep 0.05; done; "
                + comp["build"]
            )
    path = workspace.parent / "gated.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def spawn(env, workspace, *args, profile: Path | None = None) -> Proc:
    argv = devloop_argv(*args, workspace=workspace, profile=profile or workspace.parent / "profile.yaml")
    return Proc(argv, env, workspace)


def run(env, workspace, *args, profile: Path | None = None, timeout: float = 900):
    return run_devloop(
        *args, workspace=workspace, profile=profile or workspace.parent / "profile.yaml", env=env, timeout=timeout
    )


def edit(workspace: Path, note: str) -> None:
    path = workspace / MAIN_GO
    path.write_text(path.read_text() + f"// {note}\n")


def is_build_start(component: str):
    return lambda e: e.get("event") == "step" and e.get("step") == f"build {component}" and e["status"] == "start"


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def gated_pids() -> list[int]:
    """Processes of the gated build still around (its shell loops on the gate)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"gated-build" in (entry / "cmdline").read_bytes() and alive(int(entry.name)):
                    out.append(int(entry.name))
            except OSError:
                pass
    return out


# -- tests, in order ---------------------------------------------------------------------------------
def test_first_up(env, workspace):
    done = run(env, workspace, "up")
    assert done.returncode == 0, done.tail()


def test_up_during_a_watch_cycle_waits_then_proceeds_and_applies_never_interleave(env, workspace, gated_profile, gate):
    gate.unlink(missing_ok=True)
    watch = spawn(env, workspace, "watch", "--no-initial", profile=gated_profile)
    try:
        watch.find(lambda e: e.get("event") == "watching", 60, "watch to start")
        edit(workspace, "lock test 1")
        watch.find(is_build_start(GATED), 120, "watch's cycle to reach the gated build")

        # At once: refused, naming watch's PID.
        refused = run(env, workspace, "up", "--wait-lock", "0", timeout=120)
        assert refused.returncode == 1, refused.tail()
        assert refused.last["event"] == "error" and refused.last["kind"] == "LockBusy", refused.last
        assert f"PID {watch.pid}" in refused.last["message"] and "watch" in refused.last["message"]

        # Patient: waits (a visible countdown naming watch), then proceeds once the cycle is done.
        up = spawn(env, workspace, "up", "--wait-lock", "600")
        first_wait = up.find(lambda e: e.get("event") == "wait" and e.get("step") == "lock", 120, "up to wait")
        assert f"PID {watch.pid}" in first_wait["waiting_for"] and "s left" in first_wait["waiting_for"]
        gate.touch()
        cycle = watch.find(lambda e: e.get("event") == "cycle", 300, "watch's cycle to end")
        assert cycle["status"] == "ok", cycle
        assert up.wait(600) == 0, up.tail()
        assert up.events[-1]["event"] == "result"
    finally:
        gate.touch()
        watch.stop()
    ((w_start, w_end),) = watch.step_times("apply")
    ((u_start, u_end),) = up.step_times("apply")
    # Lines are stamped as they arrive; both processes flush each line. up applied after watch finished.
    assert w_end < u_start, f"applies interleaved: watch {w_start:.3f}-{w_end:.3f}, up {u_start:.3f}-{u_end:.3f}"
    lock_start, lock_end = up.step_times("lock")[0]
    assert lock_end >= cycle["_t"] - 0.5 and lock_start < w_end


def test_two_ups_at_once_take_turns(env, workspace, gated_profile, gate):
    gate.unlink(missing_ok=True)
    edit(workspace, "lock test 2")
    a = spawn(env, workspace, "up", "--wait-lock", "600", "--force-build", profile=gated_profile)
    b = spawn(env, workspace, "up", "--wait-lock", "600", "--force-build", profile=gated_profile)
    try:
        # One of them holds the lock (in its gated build), the other waits naming it.
        def one_waits():
            for waiter, holder in ((a, b), (b, a)):
                ev = next(
                    (e for e in list(waiter.events) if e.get("event") == "wait" and e.get("step") == "lock"), None
                )
                if ev is not None:
                    return waiter, holder, ev
            return None

        waiter, holder, ev = wait_until(
            one_waits, 180, "one up to wait for the other", detail=lambda: a.tail() + "\n" + b.tail()
        )
        assert f"PID {holder.pid}" in ev["waiting_for"]
        gate.touch()
        assert holder.wait(600) == 0, holder.tail()
        assert waiter.wait(600) == 0, waiter.tail()
    finally:
        gate.touch()
        a.stop()
        b.stop()
    ((h_start, h_end),) = holder.step_times("apply")
    ((w_start, w_end),) = waiter.step_times("apply")
    assert h_end < w_start, f"applies interleaved: {h_start:.3f}-{h_end:.3f} and {w_start:.3f}-{w_end:.3f}"
    # No build ever ran in both at once either: the waiter's builds all started after the holder ended.
    holder_end = holder.events[-1]["_t"]
    waiter_builds = [
        e["_t"]
        for e in waiter.events
        if e.get("event") == "step" and e.get("step", "").startswith("build ") and e["status"] == "start"
    ]
    assert all(t > h_end for t in waiter_builds), (waiter_builds, holder_end)


def test_a_second_watch_refuses_at_once_naming_the_first(env, workspace):
    first = spawn(env, workspace, "watch", "--no-initial")
    try:
        first.find(lambda e: e.get("event") == "watching", 60, "the first watch to start")
        second = run(env, workspace, "watch", "--no-initial", timeout=60)
        assert second.returncode == 1, second.tail()
        assert second.last["kind"] == "LockBusy" and f"PID {first.pid}" in second.last["message"], second.last
        assert "watch" in second.last["message"]
    finally:
        first.stop()


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_and_sighup_end_watch_like_ctrl_c(env, workspace, gated_profile, gate, sig, code):
    gate.unlink(missing_ok=True)
    watch = spawn(env, workspace, "watch", "--no-initial", profile=gated_profile)
    try:
        watch.find(lambda e: e.get("event") == "watching", 60, "watch to start")
        edit(workspace, f"signal {sig}")
        watch.find(is_build_start(GATED), 120, "the gated build to start")
        wait_until(gated_pids, 30, "the gated build's shell to run")
        watch.proc.send_signal(sig)
        assert watch.wait(30) == code, watch.tail()
    finally:
        gate.touch()
        watch.stop()
    # Nothing left running (the build ignored SIGTERM: it was killed), and the lock is free.
    wait_until(lambda: not gated_pids(), 10, "the gated build to be gone")
    took = run(env, workspace, "clean", "--wait-lock", "0", timeout=300)
    assert took.returncode == 0, took.tail()
    assert not any(e.get("event") == "warning" and "took over" in e.get("message", "") for e in took.events), (
        "the lock was not released: the next command had to take it over"
    )


def test_a_second_ctrl_c_while_stopping_ends_at_once(env, workspace, gated_profile, gate):
    gate.unlink(missing_ok=True)
    watch = spawn(env, workspace, "watch", "--no-initial", profile=gated_profile)
    try:
        watch.find(lambda e: e.get("event") == "watching", 60, "watch to start")
        edit(workspace, "double ctrl-c")
        watch.find(is_build_start(GATED), 120, "the gated build to start")
        wait_until(gated_pids, 30, "the gated build's shell to run")
        watch.proc.send_signal(signal.SIGINT)
        # The build ignores SIGTERM, so stopping waits for its grace period: interrupt that.
        wait_until(
            lambda: (
                any("Ctrl-C again" in line for line in watch.stderr)
                or any(e.get("event") == "stopping" for e in watch.events)
            ),
            10,
            "watch to say it is stopping",
        )
        watch.proc.send_signal(signal.SIGINT)
        assert watch.wait(30) == 130, watch.tail()
    finally:
        gate.touch()
        watch.stop()
    assert any("stopped at once" in line for line in watch.stderr), watch.tail()
    wait_until(lambda: not gated_pids(), 10, "the gated build to be gone")


def test_profile_edited_invalid_then_fixed_while_watch_runs(env, workspace):
    profile = workspace.parent / "profile.yaml"
    good = profile.read_text()
    watch = spawn(env, workspace, "watch", "--no-initial")
    try:
        watch.find(lambda e: e.get("event") == "watching", 60, "watch to start")
        profile.write_text(good.replace("namespace: kubeless", "namespace: Not A Namespace"))
        invalid = watch.find(
            lambda e: e.get("event") == "profile" and e.get("status") == "invalid",
            30,
            "watch to show the invalid profile",
        )
        assert str(profile) in invalid["message"] and "namespace" in invalid["message"]
        # Watching goes on with the last valid profile: an edit still deploys.
        mark = len(watch.events)
        edit(workspace, "with a broken profile")
        cycle = watch.find(
            lambda e: e.get("event") == "cycle" and watch.events.index(e) >= mark,
            300,
            "a cycle with the last valid profile",
        )
        assert cycle["status"] == "ok", cycle
        # Fixed (and changed: a longer rollout deadline): reloaded, and a cycle runs with it.
        data = yaml.safe_load(good)
        data["timeouts"]["rollout"] = 240
        profile.write_text(yaml.safe_dump(data, sort_keys=False))
        reloaded = watch.find(
            lambda e: e.get("event") == "profile" and e.get("status") == "reloaded",
            30,
            "watch to reload the fixed profile",
        )
        assert str(profile) in reloaded["path"]
        mark = watch.events.index(reloaded)
        cycle = watch.find(
            lambda e: e.get("event") == "cycle" and watch.events.index(e) > mark,
            300,
            "a cycle with the reloaded profile",
        )
        assert cycle["status"] == "ok", cycle
    finally:
        profile.write_text(good)
        watch.stop()
