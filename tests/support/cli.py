"""`devloop` run as a user runs it: a subprocess of this interpreter, its --json lines parsed once, here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path


def parse_events(stdout: str) -> list[dict]:
    """The JSON events in devloop's stdout (one object per line; other lines, e.g. rendered YAML, skipped).

    A line that starts like JSON but does not parse fails the test: --json promises whole lines."""
    events = []
    for number, line in enumerate(stdout.splitlines(), 1):
        if not line.startswith("{"):
            continue
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise AssertionError(f"devloop stdout line {number} is not one JSON object ({exc}): {line[:300]!r}")
    return events


@dataclass
class DevloopRun:
    """A finished `devloop` run. `returncode`/`stdout`/`stderr` as subprocess.CompletedProcess has them."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    events: list[dict] = field(default_factory=list)

    @property
    def result(self) -> dict:
        """The final `result` event; fails (with the output's tail) when the run did not end with one."""
        assert self.events and self.events[-1].get("event") == "result", self.tail()
        return self.events[-1]

    @property
    def last(self) -> dict:
        """The final event, whatever it is (an `error` for a failed run)."""
        assert self.events, self.tail()
        return self.events[-1]

    def steps(self) -> dict[str, str]:
        """{step: final status} of the run's steps (their `start` events left out)."""
        return {e["step"]: e["status"] for e in self.events if e.get("event") == "step" and e["status"] != "start"}

    def __repr__(self) -> str:  # pytest prints it in failed asserts: the full streams would bury the point
        return f"<devloop {' '.join(self.argv[3:])}: exit {self.returncode}, {len(self.events)} events>"

    def tail(self, chars: int = 3000) -> str:
        """For assertion messages: the command, its exit code and the end of both streams."""
        return (
            f"devloop {' '.join(self.argv[3:])} exited {self.returncode}\n"
            f"stdout tail:\n{self.stdout[-chars:]}\nstderr tail:\n{self.stderr[-chars:]}"
        )


def devloop_argv(
    *args: str, workspace: Path | None = None, profile: Path | None = None, json_mode: bool = True
) -> list[str]:
    argv = [sys.executable, "-m", "devloop", *args]
    if profile is not None:
        argv += ["--profile", str(profile)]
    if workspace is not None:
        argv += ["--workspace", str(workspace)]
    return argv + (["--json"] if json_mode else [])


def _env(base: dict | None, workspace: Path | None, extra: dict | None) -> dict | None:
    if base is None and workspace is None and extra is None:
        return None
    env = dict(base if base is not None else os.environ)
    if workspace is not None:
        # next to the workspace copy, so no test shares (or leaves behind) a fingerprint cache
        env["XDG_CACHE_HOME"] = str(Path(workspace).parent / "cache")
    return {**env, **(extra or {})}


def run_devloop(
    *args: str,
    workspace: Path | None = None,
    profile: Path | None = None,
    env: dict | None = None,
    extra_env: dict | None = None,
    json_mode: bool = True,
    cwd: Path | None = None,
    timeout: float = 900,
) -> DevloopRun:
    """Run `python -m devloop ARGS [--profile P] [--workspace W] [--json]` and collect everything.

    `env` is the whole environment (default: this process's), `extra_env` is laid over it; with a
    workspace, XDG_CACHE_HOME is <workspace>/../cache and the run's cwd is the workspace.
    `timeout` guards against hangs only."""
    argv = devloop_argv(*args, workspace=workspace, profile=profile, json_mode=json_mode)
    done = subprocess.run(
        argv, cwd=cwd or workspace, env=_env(env, workspace, extra_env), capture_output=True, text=True, timeout=timeout
    )
    return DevloopRun(
        argv=argv,
        returncode=done.returncode,
        stdout=done.stdout,
        stderr=done.stderr,
        events=parse_events(done.stdout) if "--json" in argv else [],
    )


def spawn_devloop(
    *args: str,
    workspace: Path | None = None,
    profile: Path | None = None,
    env: dict | None = None,
    extra_env: dict | None = None,
    json_mode: bool = True,
) -> subprocess.Popen:
    """The same command as run_devloop, left running (for `watch` and `logs -f`); pipes in text mode."""
    argv = devloop_argv(*args, workspace=workspace, profile=profile, json_mode=json_mode)
    return subprocess.Popen(
        argv,
        cwd=workspace,
        env=_env(env, workspace, extra_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
