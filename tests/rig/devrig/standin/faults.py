"""Fault injection for reliability tests: kill a profile's API server or Docker engine N seconds after start.

`start` arms a detached helper (its own session, PID recorded in the profile's devrig.json) when
DEVRIG_KILL_APISERVER_AFTER / DEVRIG_KILL_DOCKERD_AFTER is set; `stop`/`delete` disarm it.  The helper
SIGKILLs the part by the PID (+ start time) the machine recorded, never by name.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

SWITCHES = {"apiserver": "DEVRIG_KILL_APISERVER_AFTER", "dockerd": "DEVRIG_KILL_DOCKERD_AFTER"}


def arm(profile: str, info) -> None:
    from devrig import procs
    from . import home
    rig = home.load_rig_state(profile)
    helpers = rig.setdefault("fault_helpers", {})
    for part, var in SWITCHES.items():
        raw = os.environ.get(var)
        if not raw:
            continue
        seconds = float(raw)
        old = procs.Proc.from_json(helpers.get(part))
        procs.terminate(old, what=f"previous {part} fault helper")
        proc = procs.spawn([sys.executable, "-m", "devrig.standin.faults", part, str(info.state_dir / "rig.json"),
                            str(seconds)],
                           log=home.profile_dir(profile) / "logs" / f"fault-{part}.log",
                           pidfile=home.profile_dir(profile) / f"fault-{part}.pid",
                           env=dict(os.environ, PYTHONPATH=_rig_path()))
        helpers[part] = proc.to_json()
    home.save_rig_state(profile, rig)


def disarm(profile: str) -> None:
    from devrig import procs
    from . import home
    rig = home.load_rig_state(profile)
    for part, data in (rig.get("fault_helpers") or {}).items():
        procs.terminate(procs.Proc.from_json(data), what=f"{part} fault helper of {profile!r}", timeout=5)
    if rig.pop("fault_helpers", None) is not None and home.profile_dir(profile).exists():
        home.save_rig_state(profile, rig)


def _rig_path() -> str:
    return str(Path(__file__).resolve().parents[2])


def _helper(part: str, machine_state_file: str, seconds: float) -> int:
    from devrig import procs
    time.sleep(seconds)
    try:
        state = json.loads(Path(machine_state_file).read_text())
    except (OSError, ValueError) as exc:
        print(f"machine state unreadable, nothing to kill: {exc}", flush=True)
        return 0
    proc = procs.Proc.from_json(state.get("procs", {}).get(part))
    if not procs.alive(proc):
        print(f"{part} not running, nothing to kill", flush=True)
        return 0
    os.kill(proc.pid, signal.SIGKILL)
    print(f"killed {part} (pid {proc.pid}) after {seconds:g}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_helper(sys.argv[1], sys.argv[2], float(sys.argv[3])))
