"""mypy stays clean on devloop/, and each adapter (real and dry-run double) still fits its Protocol
(devloop/adapters/protocols.py), so the Session's slots can hold either."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _mypy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_mypy_finds_no_errors_in_devloop() -> None:
    done = _mypy("devloop")
    assert done.returncode == 0, done.stdout + done.stderr


def test_real_adapters_and_dry_doubles_fit_their_protocols(tmp_path: Path) -> None:
    check = tmp_path / "check_protocols.py"
    check.write_text(
        textwrap.dedent(
            """
            from devloop.adapters.builder import Builder, LoadBuilder
            from devloop.adapters.docker_engine import DockerEngine
            from devloop.adapters.dry import DryBuilder, DryKube, DryMinikube
            from devloop.adapters.kube.client import Kube
            from devloop.adapters.minikube.cli import Minikube
            from devloop.adapters.protocols import (
                BuilderAdapter,
                ContainerEngine,
                EngineAdapter,
                KubeAdapter,
                MinikubeAdapter,
            )

            minikubes: list[type[MinikubeAdapter]] = [Minikube, DryMinikube]
            kubes: list[type[KubeAdapter]] = [Kube, DryKube]
            builders: list[type[BuilderAdapter]] = [Builder, LoadBuilder, DryBuilder]
            engines: list[type[EngineAdapter]] = [DockerEngine]
            container_engines: list[type[ContainerEngine]] = [DockerEngine]
            """
        )
    )
    # silent: devloop itself is the other test's; this one judges only the assignments
    done = _mypy("--follow-imports=silent", str(check))
    assert done.returncode == 0, done.stdout + done.stderr
