"""The Reporter, the one place devloop writes output: JSON lines on stdout for tools, step lines on stderr for
people (stdout stays clean for `render` and results). Real streams, captured by pytest."""

from __future__ import annotations

import json

import pytest

import devloop
from devloop.base.errors import ConfigError
from devloop.base.results import CleanResult, RenderResult
from devloop.output.report import SCHEMA, Reporter

STAMP = {"schema": SCHEMA, "devloop": devloop.__version__}  # on every event, last


def json_lines(text: str) -> list[dict]:
    """Every line of `text` must be one whole JSON object (the --json promise)."""
    lines = text.splitlines()
    assert lines, "nothing was written"
    return [json.loads(line) for line in lines]


# -- --json: one object per line on stdout ---------------------------------------------------------
def test_json_step_is_a_start_and_an_end_event_with_step_status_seconds(capsys):
    reporter = Reporter(json_mode=True)
    with reporter.step("build app") as step:
        step.detail(tag="app:dev-1")
    out, err = capsys.readouterr()
    start, end = json_lines(out)
    assert start == {"event": "step", "step": "build app", "status": "start", "seconds": 0.0, **STAMP}
    assert (end["event"], end["step"], end["status"]) == ("step", "build app", "ok")
    assert isinstance(end["seconds"], float) and end["seconds"] >= 0
    assert end["details"] == {"tag": "app:dev-1"}
    assert err == ""


def test_json_skipped_step_says_why(capsys):
    reporter = Reporter(json_mode=True)
    with reporter.step("build app") as step:
        step.skip("up to date")
    _, end = json_lines(capsys.readouterr().out)
    assert (end["status"], end["note"]) == ("skipped", "up to date")
    assert [(t.step, t.status) for t in reporter.timings] == [("build app", "skipped")]


def test_json_failed_step_is_reported_and_the_error_still_raised(capsys):
    reporter = Reporter(json_mode=True)
    with pytest.raises(ConfigError, match="no image"):
        with reporter.step("render"):
            raise ConfigError("no image")
    _, end = json_lines(capsys.readouterr().out)
    assert (end["step"], end["status"], end["details"]["error"]) == ("render", "failed", "no image")
    assert [(t.step, t.status) for t in reporter.timings] == [("render", "failed")]


def test_json_info_warning_and_error_events(capsys):
    reporter = Reporter(json_mode=True)
    reporter.info("removed finalizers from 3 Functions")
    reporter.warn("ingress addon is slow")
    reporter.error(ConfigError("profile.yaml: components[a].image: missing", hint="add image: NAME"))
    out, err = capsys.readouterr()
    info, warning, error = json_lines(out)
    assert info == {"event": "info", "message": "removed finalizers from 3 Functions", **STAMP}
    assert warning == {"event": "warning", "message": "ingress addon is slow", **STAMP}
    assert error == {
        "event": "error",
        "message": "profile.yaml: components[a].image: missing",
        "hint": "add image: NAME",
        "exit_code": 2,
        "kind": "ConfigError",
        **STAMP,
    }
    assert err == ""


def test_json_result_carries_the_payload_and_the_step_timings(capsys):
    reporter = Reporter(json_mode=True)
    with reporter.step("clean"):
        pass
    reporter.result(CleanResult(deleted=7, stripped=["functions.kubeless.io/default/hello"]))
    *_, result = json_lines(capsys.readouterr().out)
    assert result["event"] == "result" and result["command"] == "clean"
    assert (result["deleted"], result["stripped"], result["stuck"]) == (7, ["functions.kubeless.io/default/hello"], [])
    (timing,) = result["timings"]
    assert (timing["step"], timing["status"]) == ("clean", "ok") and timing["seconds"] >= 0


def test_child_output_is_shown_only_when_verbose(capsys):
    Reporter(json_mode=True).output_line("build app", "Step 1/3 : FROM scratch")
    assert capsys.readouterr().out == ""
    Reporter(json_mode=True, verbose=True).output_line("build app", "Step 1/3 : FROM scratch")
    assert json_lines(capsys.readouterr().out) == [
        {"event": "output", "step": "build app", "line": "Step 1/3 : FROM scratch", **STAMP}
    ]


# -- people: step lines on stderr ---------------------------------------------------------------
def test_human_step_lines_go_to_stderr_with_mark_label_and_time(capsys):
    reporter = Reporter()
    with reporter.step("build app", label="build app (make image)"):
        pass
    with reporter.step("build web") as step:
        step.skip("up to date")
    out, err = capsys.readouterr()
    assert out == ""
    done, skipped = err.splitlines()
    assert done.startswith("✓ build app (make image)") and done.endswith("s")
    assert skipped.startswith("– build web") and "up to date" in skipped


def test_human_failed_step_and_error_go_to_stderr(capsys):
    reporter = Reporter()
    with pytest.raises(ConfigError):
        with reporter.step("render"):
            raise ConfigError("no image")
    reporter.error(ConfigError("no image", hint="add image: NAME"))
    out, err = capsys.readouterr()
    assert out == ""
    failed, error, hint = err.splitlines()
    assert failed.startswith("✗ render")
    assert error == "error: no image" and hint.strip() == "hint: add image: NAME"


def test_human_rendered_yaml_goes_to_stdout_alone(capsys):
    # `devloop render > all.yaml` must get the YAML and nothing else
    reporter = Reporter()
    with reporter.step("render"):
        pass
    reporter.result(RenderResult(tags={"app": "app:dev-1"}, yaml="kind: List\nitems: []\n", objects=[]))
    out, err = capsys.readouterr()
    assert out == "kind: List\nitems: []\n"
    assert err.startswith("✓ render")


def test_markup_in_messages_is_printed_literally(capsys):
    Reporter().info("image [bold]app[/bold]:dev-1")
    assert capsys.readouterr().err.strip() == "image [bold]app[/bold]:dev-1"
