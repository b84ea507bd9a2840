"""`devloop watch` under faults, in-process: retries of failures that are not the sources' fault, the
profile lock around each cycle, one watch per profile, the profile file followed. A real watcher on a
real directory; only the cycle itself (`loop.run_cycle`) and the cluster check are stood in for."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from devloop.base.errors import BuildFailed, ClusterError
from devloop.base.lock import LockBusy, ProfileLock
from support import wait_until

PROFILE = """\
name: t
cluster: {profile: devloop-t}
namespace: t
components:
  - {name: a, dir: a, build: "make {image}", image: t-a, replaces: [t/a]}
  - {name: b, dir: b, build: "make {image}", image: t-b, replaces: [t/b]}
manifests: [b/m.yaml]
"""


class Cycles:
    """Stands in for loop.run_cycle: raises what `script` says for each call (None: succeed)."""

    def __init__(self, *script) -> None:
        self.script = list(script)
        self.calls: list[list[str] | None] = []
        self.lock_held: list[bool] = []

    def __call__(self, session, *, triggered_by=None, strategy="apply", force_build=False):
        from devloop.loop import steps as loop

        probe = ProfileLock(session.context)
        try:
            probe.acquire(wait=0)
            probe.release()
            self.lock_held.append(False)
        except LockBusy:
            self.lock_held.append(True)
        self.calls.append(triggered_by)
        outcome = self.script.pop(0) if self.script else None
        if outcome is not None:
            raise outcome
        return loop.CycleResult(built=list(triggered_by or ["a", "b"]), tags=loop.component_tags(session))


@pytest.fixture
def ws(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    for rel, text in {"a/main.go": "a", "b/main.go": "b", "b/m.yaml": "kind: List\nitems: []\n"}.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    (tmp_path / "t.yaml").write_text(PROFILE)
    return tmp_path


@pytest.fixture
def session(ws: Path, tmp_path_factory, monkeypatch):
    from devloop.loop import steps as loop
    from devloop.output.report import Reporter
    from devloop.profile.lookup import load_profile_file
    from devloop.session import Session

    prepared: list[int] = []
    monkeypatch.setattr(loop, "prepare_cluster", lambda session, **kw: prepared.append(1))
    s = Session(
        profile=load_profile_file(ws / "t.yaml"),
        workspace=ws,
        reporter=Reporter(json_mode=True),
        cache_dir=tmp_path_factory.mktemp("cache"),
    )
    s.prepared = prepared  # type: ignore[attr-defined]
    return s


class Running:
    def __init__(self, session, capsys, **kw) -> None:
        from devloop.commands.watch import watch

        self.capsys, self.lines, self.out, self.error = capsys, [], {}, None
        self.stop = threading.Event()

        def run():
            try:
                self.out.update(watch(session, stop=self.stop, debounce_ms=100, **kw).payload())
            except BaseException as exc:
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def events(self, kind: str | None = None) -> list[dict]:
        self.lines += self.capsys.readouterr().out.splitlines()
        evs = [json.loads(line) for line in self.lines if line.startswith("{")]
        return [e for e in evs if kind is None or e["event"] == kind]

    def wait_event(self, kind: str, pred=lambda e: True, n: int = 1, timeout: float = 30) -> list[dict]:
        return wait_until(
            lambda: (lambda evs: evs if len(evs) >= n else None)([e for e in self.events(kind) if pred(e)]),
            timeout,
            f"{n} {kind} event(s)",
            interval=0.05,
        )

    def end(self) -> None:
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error


def test_a_cluster_failure_is_retried_on_its_own_after_rechecking_the_cluster(session, monkeypatch, capsys):
    from devloop.loop import steps as loop

    cycles = Cycles(ClusterError("the API server went away", hint="devloop up"))
    monkeypatch.setattr(loop, "run_cycle", cycles)
    forgot: list[int] = []
    monkeypatch.setattr(type(session), "forget_cluster_state", lambda self: forgot.append(1))
    w = Running(session, capsys)
    try:
        w.wait_event("cycle", lambda e: e["status"] == "ok")
    finally:
        w.end()
    assert cycles.calls == [None, None]  # no edit in between: the retry did it
    (scheduled,) = w.events("retry_scheduled")
    assert scheduled["seconds"] > 0
    assert len(session.prepared) == 2 and forgot  # the retry re-checked the cluster with fresh state
    assert cycles.lock_held == [True, True]  # each cycle under the profile lock
    assert w.out["failed"] == 1 and w.out["last_error"] is None


def test_a_build_that_fails_again_waits_for_the_next_edit(session, ws, monkeypatch, capsys):
    from devloop.loop import steps as loop

    broken = BuildFailed(["bash", "-c", "make"], 2, "main.go:1: syntax error", message="build of a failed")
    cycles = Cycles(broken, broken, None)
    monkeypatch.setattr(loop, "run_cycle", cycles)
    w = Running(session, capsys)
    try:
        w.wait_event("cycle", lambda e: e["status"] == "failed", n=2)
        (ws / "a/main.go").write_text("fixed")
        w.wait_event("cycle", lambda e: e["status"] == "ok")
    finally:
        w.end()
    # One retry (the engine may have died under the build), then only the edit ran it again.
    assert len(w.events("retry_scheduled")) == 1
    assert cycles.calls == [None, None, ["a"]]


def test_an_unexpected_exception_is_shown_and_retried(session, monkeypatch, capsys):
    from devloop.loop import steps as loop

    cycles = Cycles(RuntimeError("urllib3 said no"))
    monkeypatch.setattr(loop, "run_cycle", cycles)
    w = Running(session, capsys)
    try:
        w.wait_event("cycle", lambda e: e["status"] == "ok")
    finally:
        w.end()
    failed = w.events("cycle")[0]
    assert failed["status"] == "failed" and "unexpected RuntimeError" in failed["message"] and failed["hint"]


def test_a_second_watch_on_the_profile_refuses_at_once(session, monkeypatch, capsys):
    from devloop.commands.watch import watch
    from devloop.loop import steps as loop

    monkeypatch.setattr(loop, "run_cycle", Cycles())
    other = ProfileLock(session.context, kind="watcher", command="devloop watch (the first)")
    other.acquire()
    try:
        with pytest.raises(LockBusy) as info:
            watch(session, stop=threading.Event())
    finally:
        other.release()
    assert "another `devloop watch` already watches" in info.value.message
    assert "devloop watch (the first)" in info.value.message


def test_the_profile_file_is_followed(session, ws, monkeypatch, capsys):
    from devloop.loop import steps as loop

    cycles = Cycles()
    monkeypatch.setattr(loop, "run_cycle", cycles)
    w = Running(session, capsys, initial=False)
    try:
        w.wait_event("watching")
        (ws / "t.yaml").write_text(PROFILE.replace("namespace: t", "namespace: Not Valid"))
        (invalid,) = w.wait_event("profile")
        assert invalid["status"] == "invalid" and "namespace" in invalid["message"]
        assert str(ws / "t.yaml") in invalid["message"]
        # Watching goes on with the last valid profile.
        (ws / "a/main.go").write_text("edited")
        w.wait_event("cycle")
        assert session.profile.namespace == "t"
        # Fixed, and changed: reloaded, and a full cycle runs with it.
        (ws / "t.yaml").write_text(PROFILE.replace("namespace: t", "namespace: t2"))
        w.wait_event("profile", lambda e: e["status"] == "reloaded")
        w.wait_event("cycle", n=2)
    finally:
        w.end()
    assert session.profile.namespace == "t2"
    assert cycles.calls == [["a"], None]
