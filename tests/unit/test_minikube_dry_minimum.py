"""W5 in a dry run: `devloop up --dry-run` with a minikube older than MINIMUM_MINIKUBE refuses as the real run
does, naming the minimum, instead of planning a start with an "unknown" version. A version minikube could not
print still reads as unknown (a plan must work without a working minikube)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devloop.adapters.dry import DryMinikube
from devloop.adapters.minikube.versions import MINIMUM_MINIKUBE, MinikubeTooOld, MinikubeVersion
from devloop.base.errors import ClusterError
from devloop.output.report import Reporter
from support.fakes import FakeMinikube

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _dry_up(tmp_path: Path, version: str) -> subprocess.CompletedProcess:
    ws = tmp_path / "ws"
    shutil.copytree(FIXTURES / "workspace", ws)
    env = {
        **os.environ,
        "PATH": f"{FIXTURES / 'dry-run'}:/usr/bin:/bin",
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "KUBECONFIG": str(tmp_path / "no-kubeconfig"),
        "FAKE_MINIKUBE_VERSION": version,
    }
    env.pop("DEVLOOP_PROFILE", None)
    return subprocess.run(
        [sys.executable, "-m", "devloop", "up", "--dry-run", "--json", "--workspace", str(ws)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_up_dry_run_refuses_minikube_v1_23_naming_the_minimum(tmp_path):
    done = _dry_up(tmp_path, "v1.23.0")
    assert done.returncode == 1, done.stdout + done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    error = next(e for e in events if e["event"] == "error")
    assert f"minikube v1.23.0 is too old: devloop needs minikube {MINIMUM_MINIKUBE} or newer" in error["message"]
    assert not any("would run: minikube start" in json.dumps(e) for e in events)


def test_up_dry_run_plans_the_start_on_a_supported_minikube(tmp_path):
    done = _dry_up(tmp_path, "v1.36.0")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "would run: minikube start" in done.stdout


class _Unreadable(FakeMinikube):
    def version(self):
        raise ClusterError("could not read the minikube version")


def test_the_double_judges_the_version_and_only_an_unreadable_one_is_unknown():
    reporter = Reporter(json_mode=True)
    with pytest.raises(MinikubeTooOld):
        DryMinikube(FakeMinikube(version="v1.23.0"), reporter).version()
    assert DryMinikube(FakeMinikube(version="v1.36.0"), reporter).version() == MinikubeVersion("v1.36.0")
    assert DryMinikube(_Unreadable(), reporter).version().version == "unknown"
