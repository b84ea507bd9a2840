"""Watch planning, profile routing, and the watcher on a real filesystem (debouncing: test_debounce.py)."""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path

import pathspec
import pytest

from devloop.watch.debounce import Debouncer
from devloop.watch.plan import plan_tree, plan_watches
from devloop.watch.watcher import Watcher, inotify_watch_count


# -- planning ----------------------------------------------------------------------------------
def _tree(root: Path, spec: dict) -> None:
    for name, sub in spec.items():
        p = root / name
        if isinstance(sub, dict):
            p.mkdir(parents=True, exist_ok=True)
            _tree(p, sub)
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(sub)


def test_plan_never_watches_ignored_directories(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {
            ".git": {"objects": {"ab": {"x": "1"}}},
            "bundles": {"deep": {"x": "1"}},
            "pkg": {"a": {"a.go": "a"}, "b": {"node_modules": {"m": {"x": "1"}}, "b.go": "b"}},
            "cmd": {"ctl": {"main.go": "m"}},
            "go.mod": "module x",
        },
    )
    ignored = {".git", "bundles", "node_modules"}
    plan = plan_tree(tmp_path, lambda p: p.name in ignored)
    watches = dict(plan.watches())
    assert set(plan.pruned) == {tmp_path / ".git", tmp_path / "bundles", tmp_path / "pkg/b/node_modules"}
    for path in watches:
        assert not any(part in ignored for part in path.relative_to(tmp_path).parts)
    # clean subtrees are one recursive watch; dirty directories are flat
    assert watches[tmp_path] is False
    assert watches[tmp_path / "cmd"] is True
    assert watches[tmp_path / "pkg"] is False
    assert watches[tmp_path / "pkg/a"] is True
    assert watches[tmp_path / "pkg/b"] is False
    assert tmp_path / "cmd/ctl" not in watches  # covered by cmd
    assert plan.dirs == 6  # root, cmd, cmd/ctl, pkg, pkg/a, pkg/b


class SpecRouter:
    """A router for tests: components are (dir, inputs, gitignore lines)."""

    def __init__(self, workspace: Path, components: dict[str, tuple[str, list[str], list[str]]]) -> None:
        self.ws = workspace
        self.comps = {
            name: (
                workspace / d,
                [workspace / d / i for i in inputs] or [workspace / d],
                pathspec.GitIgnoreSpec.from_lines(ignore),
            )
            for name, (d, inputs, ignore) in components.items()
        }

    def roots(self) -> list[Path]:
        return [r for _, rs, _ in self.comps.values() for r in rs]

    def components_for(self, path: Path) -> frozenset[str]:
        out = set()
        for name, (base, roots, spec) in self.comps.items():
            if any(path == r or r in path.parents for r in roots):
                if not spec.match_file(path.relative_to(base).as_posix()):
                    out.add(name)
        return frozenset(out)

    def is_ignored_dir(self, path: Path) -> bool:
        owners = [(b, s) for b, rs, s in self.comps.values() if any(path == r or r in path.parents for r in rs)]
        return bool(owners) and all(s.match_file(path.relative_to(b).as_posix() + "/") for b, s in owners)

    def is_manifest(self, path: Path) -> bool:
        return False


def test_plan_for_file_inputs_and_missing_inputs_watches_the_parent(tmp_path: Path) -> None:
    _tree(tmp_path, {"k": {"go.mod": "m", "pkg": {"x.go": "x"}, "docs": {"big": {"f": "1"}}}})
    router = SpecRouter(tmp_path, {"a": ("k", ["go.mod", "pkg", "docker/a/Dockerfile"], [])})
    watches = dict(plan_watches(router, tmp_path).watches())
    # go.mod and the not-yet-existing docker/ tree are seen through a flat watch on k/;
    # docs/ is not an input and gets no watch at all
    assert watches == {tmp_path / "k": False, tmp_path / "k/pkg": True}


# -- the watcher on a real filesystem -----------------------------------------------------------
@pytest.fixture
def ws(tmp_path: Path) -> Path:
    _tree(
        tmp_path,
        {
            "a": {
                "main.go": "a",
                "pkg": {"x.go": "x"},
                ".git": {"HEAD": "h"},
                "bundles": {"out": "o"},
                "Dockerfile": "FROM scratch",
            },
            "b": {"main.go": "b", "go.mod": "m", "docs": {"readme": "r"}},
        },
    )
    return tmp_path


def _router(ws: Path) -> SpecRouter:
    return SpecRouter(
        ws,
        {
            "a": ("a", [], [".git/", "bundles/", "*.swp", "*~", ".#*", "4913"]),
            "b": ("b", ["main.go", "go.mod", "pkg"], []),
        },
    )


def _collect(w: Watcher, settle: float = 0.6) -> set[str]:
    comps: set[str] = set()
    while (b := w.next_batch(timeout=settle)) is not None:
        comps |= b.components
    return comps


@pytest.mark.parametrize("poll", [False, True], ids=["inotify", "polling"])
def test_watcher_batches_only_component_inputs(ws: Path, poll: bool) -> None:
    settle = 2.5 if poll else 0.6
    with Watcher(_router(ws), ws, debouncer=Debouncer(quiet=0.1, cap=2.0), poll=poll) as w:
        assert w.info is not None and w.info.mode == ("polling" if poll else "inotify")
        (ws / "a/bundles/out").write_text("rebuilt")
        (ws / "a/.git/HEAD").write_text("moved")
        (ws / "b/docs/readme").write_text("not an input")
        assert _collect(w, settle) == set()
        (ws / "a/pkg/x.go").write_text("changed")
        b = w.next_batch(timeout=settle + 2)
        assert b is not None
        assert b.components == {"a"} and ws / "a/pkg/x.go" in b.paths
        (ws / "b/go.mod").write_text("module changed")
        b = w.next_batch(timeout=settle + 2)
        assert b is not None and b.components == {"b"}


def test_editor_temp_files_do_not_trigger(ws: Path) -> None:
    with Watcher(_router(ws), ws, debouncer=Debouncer(quiet=0.1, cap=2.0)) as w:
        for name in (".main.go.swp", "main.go~", ".#main.go", "4913"):
            (ws / "a" / name).write_text("tmp")
            (ws / "a" / name).unlink()
        assert _collect(w) == set()


def test_ignored_directories_get_no_inotify_watch(ws: Path) -> None:
    before = inotify_watch_count()
    with Watcher(_router(ws), ws) as w:
        assert w.info is not None
        assert {p.name for p in (ws / "a/.git", ws / "a/bundles")} <= {"bundles", ".git"}
        assert w.info.pruned == 2
        # a/, a/pkg, b/ (flat for its file inputs): three directories, not five
        assert inotify_watch_count() - before == w.info.dirs == 3


def test_new_directories_are_watched_and_their_files_reported(ws: Path) -> None:
    with Watcher(_router(ws), ws, debouncer=Debouncer(quiet=0.1, cap=2.0)) as w:
        # a/ is watched flat (it holds ignored dirs), so a new subdir needs its own watch
        (ws / "a/newpkg/sub").mkdir(parents=True)
        (ws / "a/newpkg/sub/n.go").write_text("n")
        b = w.next_batch(timeout=2)
        assert b is not None and b.components == {"a"}
        assert _collect(w) <= {"a"}
        (ws / "a/newpkg/sub/n.go").write_text("edited later")
        b = w.next_batch(timeout=2)
        assert b is not None and ws / "a/newpkg/sub/n.go" in b.paths
        # an input directory that did not exist when watching started
        (ws / "b/pkg").mkdir()
        (ws / "b/pkg/p.go").write_text("p")
        comps = _collect(w)
        assert comps == {"b"}


def test_recreated_ignored_directory_stays_unwatched(ws: Path) -> None:
    import shutil

    with Watcher(_router(ws), ws, debouncer=Debouncer(quiet=0.1, cap=2.0)) as w:
        count = inotify_watch_count()
        shutil.rmtree(ws / "a/bundles")
        (ws / "a/bundles").mkdir()  # `make` recreating its output dir
        (ws / "a/bundles/out").write_text("x")
        assert _collect(w) == set()
        assert inotify_watch_count() == count
        assert not [p for p, _ in w._scheduled if "bundles" in p.parts]
        # a directory renamed out of the ignore rule: its files are inputs now
        (ws / "a/bundles").rename(ws / "a/bundles_old")
        assert _collect(w) == {"a"}
        (ws / "a/bundles_old/out").write_text("y")
        assert _collect(w) == {"a"}


def test_too_many_scattered_ignored_dirs_fall_back_to_whole_roots(ws: Path, monkeypatch) -> None:
    import devloop.watch.plan as watch_plan

    for i in range(12):
        (ws / f"a/pkg/p{i}/bundles").mkdir(parents=True)
    monkeypatch.setattr(watch_plan, "MAX_PLANNED_WATCHES", 5)
    plan = plan_watches(_router(ws), ws)
    assert dict(plan.watches()) == {ws / "a": True, ws / "b": False}


class ExhaustedObserver:
    """An inotify observer whose kernel has no watches left."""

    def __init__(self, code: int) -> None:
        self.code = code

    def start(self) -> None:
        pass

    def schedule(self, *a: object, **k: object) -> None:
        raise OSError(self.code, "inotify watch limit reached")

    def stop(self) -> None:
        pass

    def join(self, timeout: float | None = None) -> None:
        pass


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EMFILE])
def test_falls_back_to_polling_when_inotify_runs_out(ws: Path, code: int) -> None:
    from devloop.watch.backend import default_observer as _default_observer

    notices: list[str] = []

    def make(polling: bool):
        return _default_observer(True) if polling else ExhaustedObserver(code)

    with Watcher(
        _router(ws), ws, make_observer=make, on_notice=notices.append, debouncer=Debouncer(quiet=0.1, cap=2.0)
    ) as w:
        assert w.info is not None and w.info.mode == "polling"
        key = "max_user_watches" if code == errno.ENOSPC else "max_user_instances"
        assert len(notices) == 1 and f"fs.inotify.{key}" in notices[0]
        assert "sudo sysctl" in notices[0]
        (ws / "a/main.go").write_text("polled")
        b = w.next_batch(timeout=4)
        assert b is not None and b.components == {"a"}


def test_plan_larger_than_the_limit_polls_without_trying(ws: Path, tmp_path_factory) -> None:
    limit = tmp_path_factory.mktemp("proc") / "max_user_watches"
    limit.write_text("2\n")
    notices: list[str] = []
    with Watcher(_router(ws), ws, limit_file=str(limit), on_notice=notices.append) as w:
        assert w.info is not None and w.info.mode == "polling"
    assert "fs.inotify.max_user_watches=2" in notices[0]
    assert "needs about 3" in notices[0]


def test_stop_is_prompt_and_releases_watches(ws: Path) -> None:
    before = inotify_watch_count()
    w = Watcher(_router(ws), ws)
    w.start()
    assert inotify_watch_count() > before
    w.stop()
    assert inotify_watch_count() == before
    assert w.next_batch(timeout=5) is None  # closed: returns at once
    assert not [t for t in threading.enumerate() if "Emitter" in type(t).__name__ and t.is_alive()]


def test_many_edits_settle_into_few_batches(ws: Path) -> None:
    with Watcher(_router(ws), ws, debouncer=Debouncer(quiet=0.3, cap=5.0)) as w:
        for i in range(200):
            (ws / "a/main.go").write_text(f"v{i}")
            time.sleep(0.01)
        batches = []
        while (b := w.next_batch(timeout=1.0)) is not None:
            batches.append(b)
        assert 1 <= len(batches) <= 2
        assert (ws / "a/main.go").read_text() == "v199"


# -- the real profile rules (devloop.sources.fingerprint) ----------------------------------------------
@pytest.fixture
def kubeless_ws(tmp_path: Path) -> Path:
    _tree(
        tmp_path,
        {
            "kubeless": {
                "go.mod": "m",
                "go.sum": "s",
                "Makefile": "all:",
                "kubeless.yaml": "---\n",
                "cmd": {"function-controller": {"main.go": "m"}, "kubeless": {"cli.go": "c"}},
                "pkg": {"controller": {"c.go": "c"}, "function-image-builder": {"b.go": "b"}},
                "docker": {
                    "function-controller": {"Dockerfile": "FROM scratch", ".dockerignore": "*.md\nnotes/\n"},
                    "function-image-builder": {"Dockerfile": "FROM scratch"},
                },
                "bundles": {"kubeless_linux-amd64": {"function-controller": "bin"}},
                ".git": {"HEAD": "ref"},
            },
            "http-trigger": {
                "go.mod": "m",
                "pkg": {"h.go": "h"},
                "vendor": {"v.go": "v"},
                "cmd": {"http-trigger-controller": {"main.go": "m"}},
            },
        },
    )
    return tmp_path


def _kubeless_router(ws: Path):
    from devloop.profile.lookup import load_profile
    from devloop.watch.plan import ProfileRouter

    return ProfileRouter(load_profile("kubeless", cwd=ws), ws)


def test_profile_routing_maps_paths_to_their_components(kubeless_ws: Path) -> None:
    r = _kubeless_router(kubeless_ws)
    k = kubeless_ws / "kubeless"
    assert r.components_for(k / "pkg/controller/c.go") == {"function-controller"}
    assert r.components_for(k / "pkg/function-image-builder/b.go") == {"function-image-builder"}
    assert r.components_for(k / "go.mod") == {"function-controller", "function-image-builder"}
    assert r.components_for(k / "cmd/kubeless/cli.go") == set()  # the CLI is no image's input
    assert r.components_for(kubeless_ws / "http-trigger/pkg/h.go") == {"http-trigger-controller"}
    assert r.components_for(kubeless_ws / "http-trigger/vendor/v.go") == set()
    # the manifest file is watched too: an edit re-applies, builds nothing new
    assert r.components_for(k / "kubeless.yaml") == set() and r.is_manifest(k / "kubeless.yaml")
    assert r.components_for(k / "kubeless.yaml.tmp") == set() and not r.is_manifest(k / "kubeless.yaml.tmp")


@pytest.mark.parametrize(
    "rel",
    [
        "bundles/kubeless_linux-amd64/function-controller",  # profile ignore: build output
        "docker/function-controller/function-controller",  # binary copied into the build context
        ".git/HEAD",
        "pkg/controller/.c.go.swp",
        "pkg/controller/c.go~",
        "pkg/controller/.#c.go",
        "pkg/controller/4913",
        "pkg/controller/c.go.bak",
        "docker/function-controller/README.md",  # the build context's .dockerignore
        "docker/function-controller/notes/todo",
    ],
)
def test_profile_ignore_rules(kubeless_ws: Path, rel: str) -> None:
    assert _kubeless_router(kubeless_ws).components_for(kubeless_ws / "kubeless" / rel) == set()


def test_profile_plan_prunes_ignored_dirs_and_skips_non_inputs(kubeless_ws: Path) -> None:
    r = _kubeless_router(kubeless_ws)
    watches = dict(plan_watches(r, kubeless_ws).watches())
    k = kubeless_ws / "kubeless"
    assert watches[k] is False  # for go.mod, go.sum, Makefile
    assert watches[k / "pkg"] is True
    assert k / "bundles" not in watches and k / ".git" not in watches
    assert k / "cmd/kubeless" not in watches
    assert kubeless_ws / "http-trigger/vendor" not in watches


def test_watching_the_kubeless_workspace(kubeless_ws: Path) -> None:
    k = kubeless_ws / "kubeless"
    with Watcher(_kubeless_router(kubeless_ws), kubeless_ws, debouncer=Debouncer(quiet=0.1, cap=2.0)) as w:
        (k / "bundles/kubeless_linux-amd64/function-controller").write_text("rebuilt")
        (k / "docker/function-controller/function-controller").write_text("copied binary")
        (k / "pkg/controller/.c.go.swp").write_text("vim")
        assert _collect(w) == set()
        (k / "pkg/function-image-builder/b.go").write_text("edited")
        assert _collect(w) == {"function-image-builder"}
        # the builder's build context is an input directory: its .dockerignore applies, and
        # an edit to it re-reads the rules
        ctx = k / "docker/function-image-builder"
        (ctx / ".dockerignore").write_text("notes/\n")
        assert _collect(w) == {"function-image-builder"}
        (ctx / "notes").mkdir()
        (ctx / "notes/todo").write_text("ignored")
        assert _collect(w) == set()
        (ctx / ".dockerignore").write_text("")
        assert _collect(w) == {"function-image-builder"}
        (ctx / "notes/todo").write_text("an input now")
        assert _collect(w) == {"function-image-builder"}


def test_reading_the_tree_makes_no_events(ws: Path) -> None:
    with Watcher(_router(ws), ws, debouncer=Debouncer(quiet=0.1, cap=2.0)) as w:
        for root, _dirs, files in os.walk(ws):
            for name in files:
                Path(root, name).read_bytes()
        assert _collect(w) == set()
        assert w.events_seen == 0


def test_a_queue_overflow_offers_every_component(ws: Path) -> None:
    import logging

    notices: list[str] = []
    with Watcher(_router(ws), ws, debouncer=Debouncer(quiet=0.1, cap=2.0), on_notice=notices.append) as w:
        # what watchdog does when the kernel drops events (IN_Q_OVERFLOW)
        logging.getLogger("watchdog.observers.inotify_c").warning(
            "Inotify queue overflowed; filesystem events were lost"
        )
        assert _collect(w) == {"a", "b"}
        assert any("max_queued_events" in n for n in notices)


# -- the watch command's loop (cluster steps replaced by a recorder) ----------------------------
class CycleRecorder:
    """Stands in for loop.run_cycle: records what would be built, with real fingerprints."""

    def __init__(self, fail_when: str | None = None) -> None:
        self.calls: list[list[str] | None] = []
        self.fail_when = fail_when
        self.event = threading.Event()

    def __call__(self, session, *, triggered_by=None, strategy="apply", force_build=False):
        from devloop.base.errors import CommandFailed
        from devloop.loop import steps as loop

        # Fingerprint before the call is visible to the test, as a real cycle builds what it sees
        # when it starts: an edit the test makes after wait_calls() belongs to the next cycle.
        tags = loop.component_tags(session)
        self.calls.append(triggered_by)
        self.event.set()
        if self.fail_when and self.fail_when in (session.workspace / "a/main.go").read_text():
            raise CommandFailed(
                ["sh", "-c", "make"],
                2,
                "main.go:1: syntax error",
                message="build of a failed: `make` exited with code 2",
            )
        return loop.CycleResult(built=list(triggered_by or ["a", "b"]), tags=tags)

    def wait_calls(self, n: int, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.calls) < n:
            assert time.monotonic() < deadline, f"waited {timeout}s for {n} cycles, saw {self.calls}"
            time.sleep(0.02)


PROFILE = """\
name: t
cluster: {profile: devloop-t}
namespace: t
components:
  - {name: a, dir: a, build: "make {image}", image: t-a, replaces: [t/a]}
  - {name: b, dir: b, build: "make {image}", image: t-b, replaces: [t/b], inputs: [main.go, go.mod, pkg]}
manifests: [b/m.yaml]
ignore: [bundles/]
"""


@pytest.fixture
def session(ws: Path, tmp_path_factory, monkeypatch):
    from devloop.loop import steps as loop
    from devloop.output.report import Reporter
    from devloop.profile.lookup import parse_profile
    from devloop.session import Session

    monkeypatch.setattr(loop, "prepare_cluster", lambda session, **kw: None)
    profile = parse_profile(PROFILE, ws / "t.yaml")
    return Session(
        profile=profile, workspace=ws, reporter=Reporter(json_mode=True), cache_dir=tmp_path_factory.mktemp("cache")
    )


def _run_watch(session, **kw):
    from devloop.commands.watch import watch

    stop = threading.Event()
    out: dict = {}
    t = threading.Thread(
        target=lambda: out.update(watch(session, stop=stop, debounce_ms=100, **kw).payload()), daemon=True
    )
    t.start()
    return stop, t, out


class JsonOut:
    """The JSON event lines the reporter printed so far (reads capsys incrementally)."""

    def __init__(self, capsys) -> None:
        self.capsys = capsys
        self.lines: list[str] = []

    def events(self, kind: str | None = None) -> list[dict]:
        import json

        self.lines += self.capsys.readouterr().out.splitlines()
        evs = [json.loads(line) for line in self.lines if line.startswith("{")]
        return [e for e in evs if kind is None or e["event"] == kind]


def test_watch_rebuilds_only_the_changed_component(session, ws: Path, monkeypatch, capsys) -> None:
    from devloop.loop import steps as loop

    rec = CycleRecorder()
    monkeypatch.setattr(loop, "run_cycle", rec)
    stop, t, out = _run_watch(session)
    try:
        rec.wait_calls(1)
        assert rec.calls == [None]  # the initial `up`: everything
        time.sleep(0.3)
        (ws / "a/pkg/x.go").write_text("package x // edited")
        rec.wait_calls(2)
        assert rec.calls[1] == ["a"]
        (ws / "b/go.mod").write_text("module b2")
        rec.wait_calls(3)
        assert rec.calls[2] == ["b"]
    finally:
        stop.set()
        t.join(5)
    assert not t.is_alive()
    changes = JsonOut(capsys).events("changes")
    assert changes[0]["files"] == ["a/pkg/x.go"] and changes[0]["components"] == ["a"]
    assert out["cycles"] == 3 and out["failed"] == 0


def test_unchanged_fingerprints_build_nothing(session, ws: Path, monkeypatch, capsys) -> None:
    """What makes build-output loops impossible is the fingerprint, not event filtering: a build
    that rewrites its own inputs with the same content produces events, and a batch, but the
    fingerprints are equal to what was deployed, so no second build runs."""
    from devloop.loop import steps as loop

    rec = CycleRecorder()
    monkeypatch.setattr(loop, "run_cycle", rec)
    printed = JsonOut(capsys)
    stop, t, out = _run_watch(session)
    try:
        rec.wait_calls(1)
        time.sleep(0.3)
        for name in ("main.go", "pkg/x.go", "Dockerfile"):  # same bytes, new mtime, new inode
            p = ws / "a" / name
            data = p.read_bytes()
            p.unlink()
            p.write_bytes(data)
        deadline = time.monotonic() + 3
        while not printed.events("skipped"):
            assert time.monotonic() < deadline, "the batch never arrived"
            time.sleep(0.05)
        assert rec.calls == [None]  # no second cycle
    finally:
        stop.set()
        t.join(5)
    assert out["skipped_unchanged"] >= 1 and out["cycles"] == 1


def test_failed_cycle_is_shown_and_the_next_edit_recovers(session, ws: Path, monkeypatch, capsys) -> None:
    from devloop.loop import steps as loop

    rec = CycleRecorder(fail_when="BROKEN")
    monkeypatch.setattr(loop, "run_cycle", rec)
    stop, t, out = _run_watch(session, initial=False)
    try:
        time.sleep(0.3)
        (ws / "a/main.go").write_text("BROKEN")
        rec.wait_calls(1)
        time.sleep(0.2)
        (ws / "a/main.go").write_text("fixed")
        rec.wait_calls(2)
        time.sleep(0.2)
    finally:
        stop.set()
        t.join(5)
    cycles = JsonOut(capsys).events("cycle")
    assert cycles[0]["status"] == "failed"
    assert cycles[0]["exit_code"] == 2 and "syntax error" in cycles[0]["output_tail"]
    assert cycles[1]["status"] == "ok"
    assert rec.calls == [["a"], ["a"]]
    assert out["failed"] == 1 and out["last_error"] is None


def test_after_a_failure_an_unchanged_batch_still_retries(session, ws: Path, monkeypatch) -> None:
    from devloop.loop import steps as loop

    rec = CycleRecorder(fail_when="BROKEN")
    monkeypatch.setattr(loop, "run_cycle", rec)
    (ws / "a/main.go").write_text("BROKEN")
    stop, t, out = _run_watch(session)
    try:
        rec.wait_calls(1)  # initial up fails: nothing was deployed
        time.sleep(0.3)
        (ws / "a/main.go").write_text("BROKEN")  # same content again
        rec.wait_calls(2)
    finally:
        stop.set()
        t.join(5)
    assert out["skipped_unchanged"] == 0


def test_a_manifest_edit_reapplies_everything(session, ws: Path, monkeypatch, capsys) -> None:
    from devloop.loop import steps as loop

    (ws / "b/m.yaml").write_text("kind: List\n")
    rec = CycleRecorder()
    monkeypatch.setattr(loop, "run_cycle", rec)
    stop, t, out = _run_watch(session, initial=False)
    try:
        time.sleep(0.3)
        (ws / "b/m.yaml").write_text("kind: List\nitems: []\n")
        rec.wait_calls(1)
        time.sleep(0.2)
    finally:
        stop.set()
        t.join(5)
    assert rec.calls == [None]  # the whole cycle: render and apply all, build what is missing
    (changes,) = JsonOut(capsys).events("changes")
    assert changes["manifests"] is True and changes["components"] == [] and changes["files"] == ["b/m.yaml"]


def test_watch_rejects_a_cap_shorter_than_the_window(session) -> None:
    from devloop.base.errors import ConfigError
    from devloop.commands.watch import watch

    with pytest.raises(ConfigError, match="--max-wait"):
        watch(session, debounce_ms=500, max_wait_ms=100)
