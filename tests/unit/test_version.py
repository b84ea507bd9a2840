"""One version, written once (pyproject.toml), and a schema on every --json event."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

import devloop
from devloop.base.errors import ConfigError
from devloop.base.results import CleanResult
from devloop.output.report import SCHEMA, Reporter
from support import run_devloop

REPO = Path(__file__).resolve().parents[2]
PYPROJECT_VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
FIXTURES = REPO / "tests" / "fixtures" / "workspace"


def test_the_package_version_is_pyprojects():
    assert devloop.__version__ == PYPROJECT_VERSION


def test_devloop_version_prints_it_and_exits_0(tmp_path):
    done = run_devloop("--version", cwd=tmp_path, json_mode=False, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"devloop {PYPROJECT_VERSION}\n"


def test_an_unknown_attribute_of_the_package_is_still_an_error():
    with pytest.raises(AttributeError, match="no_such_thing"):
        devloop.no_such_thing


def test_every_kind_of_event_carries_the_schema_and_the_version(capsys):
    reporter = Reporter(json_mode=True, verbose=True)
    with reporter.step("build app") as step:
        step.detail(tag="app:dev-1")
        reporter.output_line("build app", "Step 1/3 : FROM scratch")
    reporter.info("note")
    reporter.warn("careful")
    reporter.emit("changes", files=["a.go"], schema="a field of the same name cannot hide it")
    reporter.log_line("app", "hello")
    reporter.result(CleanResult(deleted=1))
    reporter.error(ConfigError("bad"))
    reporter.interrupted()
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds == ["step", "output", "step", "info", "warning", "changes", "log", "result", "error", "interrupted"]
    for event in events:
        assert (event["schema"], event["devloop"]) == (SCHEMA, PYPROJECT_VERSION), event
        assert list(event)[0] == "event" and list(event)[-2:] == ["schema", "devloop"], event


def test_the_cli_s_json_lines_carry_the_schema(tmp_path):
    done = run_devloop(
        "render", workspace=FIXTURES, cwd=tmp_path, extra_env={"XDG_CACHE_HOME": str(tmp_path / ".cache")}, timeout=60
    )
    assert done.returncode == 0, done.tail()
    assert done.result["command"] == "render"
    assert all(e["schema"] == SCHEMA and e["devloop"] == PYPROJECT_VERSION for e in done.events), done.events
