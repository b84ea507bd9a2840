"""The shared test helpers (tests/support/): every e2e and rig test leans on them, so they are tested too."""

from __future__ import annotations

import os

import pytest

import support.rig
from support import DevloopRun, copy_workspace, parse_events, require_rig, run_devloop, wait_until


def test_parse_events_takes_json_lines_and_skips_the_rest():
    text = 'building\n{"event": "step", "step": "render", "status": "ok"}\nkind: List\n{"event": "result"}\n'
    assert parse_events(text) == [{"event": "step", "step": "render", "status": "ok"}, {"event": "result"}]


def test_parse_events_refuses_a_broken_json_line():
    with pytest.raises(AssertionError, match="line 2 is not one JSON object"):
        parse_events('{"event": "info"}\n{"event": "step", "st\n')


def test_result_is_the_final_result_event_or_a_failure_showing_the_output():
    ok = DevloopRun(
        argv=["python", "-m", "devloop", "up"],
        returncode=0,
        stdout="",
        stderr="",
        events=[{"event": "step"}, {"event": "result", "built": []}],
    )
    assert ok.result == {"event": "result", "built": []}
    failed = DevloopRun(
        argv=["python", "-m", "devloop", "up"],
        returncode=1,
        stdout="",
        stderr="boom",
        events=[{"event": "error", "message": "boom"}],
    )
    assert failed.last["message"] == "boom"
    with pytest.raises(AssertionError, match="devloop up exited 1"):
        failed.result


def test_run_devloop_runs_this_checkouts_cli(tmp_path):
    done = run_devloop("--help", cwd=tmp_path, json_mode=False, timeout=60)
    assert done.returncode == 0, done.tail()
    assert "Usage" in done.stdout and done.events == []


def test_wait_until_returns_the_first_truthy_value():
    calls = iter([None, 0, "ready"])
    assert wait_until(lambda: next(calls), 5, "the thing", interval=0.01) == "ready"


def test_wait_until_names_what_it_waited_for_and_the_last_value():
    with pytest.raises(AssertionError, match=r"timed out after 0.05s waiting for the pod \(last: \[\]\)\nkubectl says"):
        wait_until(lambda: [], 0.05, "the pod", interval=0.01, detail=lambda: "kubectl says")


def test_copy_workspace_writes_a_profile_for_the_modules_cluster(tmp_path):
    import yaml

    ws = copy_workspace(tmp_path / "ws", minikube_profile="devloop-x")
    assert (ws / "kubeless" / "Makefile").is_file()
    assert yaml.safe_load((tmp_path / "profile.yaml").read_text())["cluster"]["profile"] == "devloop-x"


@pytest.fixture
def rig_missing(monkeypatch):
    monkeypatch.setattr(support.rig.rig_paths, "missing_parts", lambda version, kwok=False: ["kubelet (/x)"])
    monkeypatch.delenv("DEVLOOP_REAL_MINIKUBE", raising=False)


def test_a_missing_rig_skips_outside_ci(rig_missing, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"kubelet \(/x\).*scripts/build-rig"):
        require_rig()


def test_a_missing_rig_fails_in_ci(rig_missing, monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"kubelet \(/x\)"):
        require_rig()


def test_root_is_checked_only_when_asked(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(support.rig.rig_paths, "missing_parts", lambda version, kwok=False: [])
    monkeypatch.delenv("CI", raising=False)
    require_rig()  # parts present, root not asked for
    with pytest.raises(pytest.skip.Exception, match="root"):
        require_rig(root=True, parts=False)
