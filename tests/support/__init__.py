"""Shared test helpers: one way to run devloop, copy the sample workspace, skip without the rig, and wait.

Tests import from here (`from support import run_devloop`), never from a conftest.py: pytest loads
tests/conftest.py and tests/e2e/conftest.py under the same module name, so such an import can get
the wrong one. pytest's `pythonpath` setting (pyproject.toml) makes tests/ importable.
"""

from support.cli import DevloopRun, devloop_argv, parse_events, run_devloop, spawn_devloop
from support.rig import require_rig
from support.waits import wait_until
from support.workspace import FIXTURE_WORKSPACE, bundled_profile, copy_workspace

__all__ = [
    "DevloopRun",
    "FIXTURE_WORKSPACE",
    "bundled_profile",
    "copy_workspace",
    "devloop_argv",
    "parse_events",
    "require_rig",
    "run_devloop",
    "spawn_devloop",
    "wait_until",
]
