"""The shape of devloop/ (docs/architecture.md, "Layers"), checked by import-linter's contracts in
pyproject.toml: packages are the layers and imports point down; typer only in the CLI; kubernetes and docker
only in the adapters; watchdog only behind the watcher. `devloop --help` staying free of the heavy libraries
(imported lazily) is checked by tests/unit/test_cli.py."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(cwd)},
    )


def test_the_import_contracts_hold():
    done = _lint(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_every_package_of_devloop_is_in_a_layer():
    text = (REPO / "pyproject.toml").read_text()
    packages = sorted(p.name for p in (REPO / "devloop").iterdir() if (p / "__init__.py").exists())
    missing = [
        p
        for p in packages
        if f'"devloop.{p}"' not in text and f"devloop.{p} " not in text and f' devloop.{p}"' not in text
    ]
    assert not missing, f"packages with no layer in pyproject.toml's import-linter contracts: {missing}"


def test_an_upward_import_breaks_the_contract(tmp_path):
    """Guards the check itself: an import from the base layer up to the CLI is reported, naming both."""
    shutil.copytree(REPO / "devloop", tmp_path / "devloop", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    errors = tmp_path / "devloop" / "base" / "errors.py"
    errors.write_text(errors.read_text() + "\n\ndef _up() -> None:\n    import devloop.cli  # noqa: F401\n")
    done = _lint(tmp_path)
    assert done.returncode != 0
    assert "devloop.base.errors -> devloop.cli" in done.stdout, done.stdout
