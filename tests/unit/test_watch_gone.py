"""A watched component directory that goes away (moved aside, deleted, replaced by a fresh clone) and
comes back: inotify follows the moved inode and sends nothing for the old path, so the watcher stats
each component directory. Real filesystem, real inotify/polling observers."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest

# test_watcher's sample tree, router and watch-loop helpers: one definition of each
from test_watcher import PROFILE, CycleRecorder, JsonOut, SpecRouter, _run_watch, _tree

from devloop.watch.debounce import Debouncer
from devloop.watch.watcher import Watcher
from support import wait_until


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    _tree(
        tmp_path,
        {
            "a": {"main.go": "a", "pkg": {"x.go": "x"}, ".git": {"HEAD": "h"}, "Dockerfile": "FROM scratch"},
            "b": {"main.go": "b", "go.mod": "m", "pkg": {"y.go": "y"}},
        },
    )
    return tmp_path


class BasesRouter(SpecRouter):
    """SpecRouter plus the component directories, as ProfileRouter.bases() gives them."""

    def bases(self) -> dict[Path, frozenset[str]]:
        return {base: frozenset({name}) for name, (base, _, _) in self.comps.items()}


def _router(ws: Path) -> BasesRouter:
    return BasesRouter(ws, {"a": ("a", [], [".git/"]), "b": ("b", ["main.go", "go.mod", "pkg"], [])})


def _watcher(ws: Path, poll: bool, changes: list) -> Watcher:
    # root_check_s=0: no guard thread; the test calls check_roots() itself, so nothing depends on timing
    return Watcher(
        _router(ws),
        ws,
        debouncer=Debouncer(quiet=0.1, cap=2.0),
        poll=poll,
        root_check_s=0,
        on_root=lambda change, path, comps: changes.append((change, path, comps)),
    )


def _batches(w: Watcher, settle: float) -> list:
    out = []
    while (b := w.next_batch(timeout=settle)) is not None:
        out.append(b)
    return out


@pytest.mark.parametrize("poll", [False, True], ids=["inotify", "polling"])
def test_a_directory_moved_away_and_back_is_said_once_and_watched_again(ws: Path, tmp_path_factory, poll) -> None:
    settle = 2.5 if poll else 0.6
    aside = tmp_path_factory.mktemp("aside") / "a"
    changes: list = []
    with _watcher(ws, poll, changes) as w:
        (ws / "a").rename(aside)
        assert w.check_roots() == [("gone", ws / "a")]
        assert w.check_roots() == [] and w.check_roots() == []  # said once
        assert w.gone_components() == {"a"}
        # the old watches followed the inode: an edit over there is no edit here
        (aside / "pkg/x.go").write_text("edited aside")
        assert not any("a" in b.components for b in _batches(w, settle))
        # the other component is still watched
        (ws / "b/pkg/y.go").write_text("edited")
        assert {c for b in _batches(w, settle) for c in b.components} == {"b"}

        aside.rename(ws / "a")
        assert w.check_roots() == [("back", ws / "a")]
        assert w.gone_components() == set()
        back = _batches(w, settle)
        assert [b.components for b in back] == [{"a"}], back  # one batch for its components
        # and it is watched again where it is now
        (ws / "a/pkg/x.go").write_text("edited after the restore")
        after = _batches(w, settle)
        assert any(ws / "a/pkg/x.go" in b.paths for b in after), after
    assert [c for c, _, _ in changes] == ["gone", "back"]
    assert changes[0][2] == {"a"}


def test_a_fresh_clone_at_the_same_path_is_watched(ws: Path) -> None:
    """Deleted and cloned again between two checks: another inode at the same path."""
    changes: list = []
    with _watcher(ws, False, changes) as w:
        fresh = ws.parent / (ws.name + "-clone")
        shutil.copytree(ws / "a", fresh)
        shutil.rmtree(ws / "a")
        fresh.rename(ws / "a")
        _batches(w, 0.6)  # whatever the delete sent
        assert w.check_roots() == [("replaced", ws / "a")]
        assert [b.components for b in _batches(w, 0.6)] == [{"a"}]
        (ws / "a/main.go").write_text("edited in the clone")
        assert any(ws / "a/main.go" in b.paths for b in _batches(w, 0.6))


def test_deleted_for_good_keeps_waiting_and_the_rest_is_watched(ws: Path) -> None:
    changes: list = []
    with _watcher(ws, False, changes) as w:
        shutil.rmtree(ws / "b")
        assert w.check_roots() == [("gone", ws / "b")]
        _batches(w, 0.6)
        for _ in range(3):
            assert w.check_roots() == []
        assert w.gone() == {ws / "b": {"b"}}
        (ws / "a/main.go").write_text("still watched")
        assert {c for b in _batches(w, 0.6) for c in b.components} == {"a"}
    assert [c for c, _, _ in changes] == ["gone"]


def test_a_directory_missing_at_start_is_said_and_picked_up_when_it_appears(ws: Path, tmp_path_factory) -> None:
    aside = tmp_path_factory.mktemp("aside") / "b"
    (ws / "b").rename(aside)
    changes: list = []
    with _watcher(ws, False, changes) as w:
        assert [c for c, _, _ in changes] == ["gone"]
        aside.rename(ws / "b")
        assert w.check_roots() == [("back", ws / "b")]
        (ws / "b/go.mod").write_text("module b2")
        assert any(ws / "b/go.mod" in b.paths for b in _batches(w, 0.6))


def test_the_guard_thread_notices_on_its_own(ws: Path, tmp_path_factory) -> None:
    aside = tmp_path_factory.mktemp("aside") / "a"
    changes: list = []
    seen = threading.Event()

    def on_root(change, path, comps):
        changes.append(change)
        seen.set()

    with Watcher(_router(ws), ws, debouncer=Debouncer(quiet=0.1, cap=2.0), root_check_s=0.05, on_root=on_root):
        (ws / "a").rename(aside)
        assert seen.wait(10), "the guard never noticed the directory was gone"
        seen.clear()
        aside.rename(ws / "a")
        assert seen.wait(10), "the guard never noticed the directory was back"
    assert changes == ["gone", "back"]


class KeepingRecorder(CycleRecorder):
    """Also takes keep_tags, as loop.run_cycle does: those components are neither fingerprinted nor built."""

    def __init__(self) -> None:
        super().__init__()
        self.kept: list[dict] = []

    def __call__(self, session, *, triggered_by=None, strategy="apply", force_build=False, keep_tags=None):
        from devloop.loop import steps as loop

        keep = dict(keep_tags or {})
        tags = {
            **keep,
            **loop.component_tags(session, [c.name for c in session.profile.components if c.name not in keep]),
        }
        self.calls.append(triggered_by)
        self.kept.append(keep)
        return loop.CycleResult(built=list(triggered_by or []), tags=tags)


def test_watch_waits_for_a_moved_checkout_and_runs_one_cycle_when_it_is_back(
    ws: Path, tmp_path_factory, monkeypatch, capsys
) -> None:
    """The watch command: no cycle while the directory is away (edits there included), one notice, the
    other component still rebuilt; back: one cycle for it, though its sources did not change."""
    from devloop.loop import steps as loop
    from devloop.output.report import Reporter
    from devloop.profile.lookup import parse_profile
    from devloop.session import Session

    monkeypatch.setattr(loop, "prepare_cluster", lambda session, **kw: None)
    (ws / "b/m.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: m}\n")
    session = Session(
        profile=parse_profile(PROFILE, ws / "t.yaml"),
        workspace=ws,
        reporter=Reporter(json_mode=True),
        cache_dir=tmp_path_factory.mktemp("cache"),
    )
    rec = KeepingRecorder()
    monkeypatch.setattr(loop, "run_cycle", rec)
    printed = JsonOut(capsys)
    aside = tmp_path_factory.mktemp("aside") / "a"
    stop, t, out = _run_watch(session)
    try:
        rec.wait_calls(1)
        (ws / "a").rename(aside)
        gone = wait_until(lambda: printed.events("directory"), 10, "watch to say the directory is gone")
        assert gone[0]["status"] == "gone" and gone[0]["path"] == "a", gone
        assert gone[0]["message"].startswith("a is gone: waiting for it to come back"), gone
        (aside / "main.go").write_text("edited while aside")
        (ws / "b/go.mod").write_text("module b2")
        rec.wait_calls(2)
        assert rec.calls[1] == ["b"]
        assert set(rec.kept[1]) == {"a"}  # rendered with the tag it was deployed with
        aside.rename(ws / "a")
        rec.wait_calls(3)
        assert rec.calls[2] == ["a"] and rec.kept[2] == {}
        time.sleep(1.5)  # two guard periods: no second notice, no further cycle
        assert len(rec.calls) == 3, rec.calls
    finally:
        stop.set()
        t.join(5)
    assert not t.is_alive()
    assert [e["status"] for e in printed.events("directory")] == ["gone", "back"]
    assert out["failed"] == 0
