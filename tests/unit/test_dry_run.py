"""`--dry-run` prints what it would run, and that plan is a contract: scripts and people read it.

tests/fixtures/dry-run/recorded.json holds the output (JSON lines and the text for people) of each
command below, recorded from the code before the dry run moved behind the Session's adapter
doubles (issue 9); the test proves the refactor left every line as it was. minikube is the fake in
tests/fixtures/dry-run: a machine with no profile, whose mutating commands fail loudly.

To re-record after an intended change: DEVLOOP_RECORD_DRY_RUN=1 pytest tests/unit/test_dry_run.py

Every JSON line must end with the event schema and devloop's version (added later, issue 17); the
recording holds the lines without them, so a version bump needs no re-recording.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import devloop
from devloop.output.report import SCHEMA

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RECORDED = FIXTURES / "dry-run" / "recorded.json"
CASES = [
    ("up", "--dry-run"),
    ("up", "--dry-run", "--fresh", "--strategy", "recreate"),
    ("reset", "--dry-run"),
    ("build", "--dry-run"),
    ("apply", "--dry-run"),
    ("clean", "--dry-run"),
    ("down", "--dry-run", "--delete-namespace"),
]


def _normalize(text: str, ws: Path) -> str:
    text = text.replace(str(ws), "<ws>")
    text = re.sub(r"dev-[0-9a-f]{6,}", "dev-<digest>", text)  # fingerprints: not this test's subject
    text = re.sub(r"\d+\.\d+s\b", "<s>", text)
    return re.sub(r'"seconds": [0-9.]+', '"seconds": 0', text)


def _without_schema(stdout: str) -> str:
    """stdout with each JSON line's schema and version suffix removed, after checking it is there."""
    suffix = f', "schema": {SCHEMA}, "devloop": {json.dumps(devloop.__version__)}}}'
    lines = []
    for line in stdout.splitlines():
        if line.startswith("{"):
            assert line.endswith(suffix), line
            line = line[: -len(suffix)] + "}"
        lines.append(line)
    return "".join(f"{line}\n" for line in lines)


def _run_all(tmp_path: Path) -> dict[str, dict]:
    ws = tmp_path / "ws"
    shutil.copytree(FIXTURES / "workspace", ws)
    env = {
        **os.environ,
        "PATH": f"{FIXTURES / 'dry-run'}:/usr/bin:/bin",
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "KUBECONFIG": str(tmp_path / "no-kubeconfig"),
    }
    env.pop("DEVLOOP_PROFILE", None)
    seen = {}
    for case in CASES:
        for mode in ((), ("--json",)):
            args = [*case, *mode]
            done = subprocess.run(
                [sys.executable, "-m", "devloop", *args, "--workspace", str(ws)],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            seen[" ".join(args)] = {
                "exit_code": done.returncode,
                "stdout": _normalize(_without_schema(done.stdout), ws).splitlines(),
                "stderr": _normalize(done.stderr, ws).splitlines(),
            }
    return seen


def test_dry_run_output_is_unchanged(tmp_path):
    seen = _run_all(tmp_path)
    if os.environ.get("DEVLOOP_RECORD_DRY_RUN"):
        RECORDED.write_text(json.dumps(seen, indent=1) + "\n")
        pytest.skip("recorded")
    recorded = json.loads(RECORDED.read_text())
    assert list(seen) == list(recorded)
    for case, want in recorded.items():
        assert seen[case] == want, case
