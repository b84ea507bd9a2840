"""Fault injection for reliability tests: kill a profile's API server or Docker engine, fail a step.

`start` arms a detached helper (its own session, PID recorded in the profile's devrig.json) when
DEVRIG_KILL_APISERVER_AFTER / DEVRIG_KILL_DOCKERD_AFTER (seconds) or DEVRIG_KILL_APISERVER_WHEN /
DEVRIG_KILL_DOCKERD_WHEN (a path: killed as soon as that file exists, so a test or a build command
picks the moment: mid-apply, mid-build) is set; `stop`/`delete` disarm it. The helper SIGKILLs the
part by the PID (+ start time) the machine recorded, never by name.

In-process switches: DEVRIG_KILL_DOCKERD_DURING=docker-env kills the engine after `docker-env` checked
it and before it prints (the env it prints names a dead daemon); DEVRIG_FAIL_ADDONS=1 (or an addon
name) makes `addons enable` fail as minikube does when the addon's manifests cannot be applied.
`python -m devrig.standin.faults kill PART PROFILE` kills a part now (the soak uses it).

Disk full: DEVRIG_ENGINE_DISK_FREE_MB=N, when an engine starts (`start` after the engine was killed, or
`docker-env` restarting a dead one), puts its data root on a tmpfs holding a copy of it plus N MB of
room (devrig.engine; mounted in the engine's own mount namespace only, gone with the engine, the on-disk
data root untouched). A build whose context or layer is larger fails with the engine's real "no space
left on device". `python -m devrig.standin.faults disk PROFILE MB` gives the running engine's tmpfs MB of
room again (the developer freed space); the engine keeps running.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

SWITCHES = {"apiserver": "DEVRIG_KILL_APISERVER_AFTER", "dockerd": "DEVRIG_KILL_DOCKERD_AFTER"}
WHEN_SWITCHES = {"apiserver": "DEVRIG_KILL_APISERVER_WHEN", "dockerd": "DEVRIG_KILL_DOCKERD_WHEN"}
DURING = "DEVRIG_KILL_DOCKERD_DURING"
FAIL_ADDONS = "DEVRIG_FAIL_ADDONS"
# A marker helper gives up after this long: a test that never writes its marker must not leave it behind.
WHEN_DEADLINE = 3600.0


def arm(profile: str, info) -> None:
    from devrig import procs

    from . import home

    rig = home.load_rig_state(profile)
    helpers = rig.setdefault("fault_helpers", {})
    for part in SWITCHES:
        after, when = os.environ.get(SWITCHES[part]), os.environ.get(WHEN_SWITCHES[part])
        if not after and not when:
            continue
        trigger = str(float(after)) if after else f"when:{when}"
        old = procs.Proc.from_json(helpers.get(part))
        procs.terminate(old, what=f"previous {part} fault helper")
        proc = procs.spawn(
            [sys.executable, "-m", "devrig.standin.faults", part, str(info.state_dir / "rig.json"), trigger],
            log=home.profile_dir(profile) / "logs" / f"fault-{part}.log",
            pidfile=home.profile_dir(profile) / f"fault-{part}.pid",
        )
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


def during(point: str, profile: str) -> None:
    """Called by a command at `point` (e.g. "docker-env"): kill the engine there when asked to."""
    if os.environ.get(DURING) == point:
        kill_now("dockerd", profile)


def fail_addon(console, addon: str) -> None:
    """`addons enable` failing the way minikube's does when kubectl apply of the addon fails (exit 10)."""
    which = os.environ.get(FAIL_ADDONS)
    if which in (None, "", "0") or which not in ("1", addon):
        return
    from .reasons import ADDON_ENABLE

    raise console.fatal(
        ADDON_ENABLE,
        "enable failed: run callbacks: running callbacks: [sudo "
        "KUBECONFIG=/var/lib/minikube/kubeconfig kubectl apply -f "
        f"/etc/kubernetes/addons/{addon}-deploy.yaml: Process exited with status 1\nstdout:\n\n"
        "stderr:\nerror: the server could not find the requested resource "
        f"(fault injected by {FAIL_ADDONS})\n]",
        new_issue_link=True,
    )


def kill_now(part: str, profile: str) -> str:
    from . import cluster

    info = cluster.machine(profile).info()
    if info is None:
        return f"profile {profile!r} has no machine, nothing to kill"
    return _kill(part, str(info.state_dir / "rig.json"))


def _kill(part: str, machine_state_file: str) -> str:
    from devrig import procs

    try:
        state = json.loads(Path(machine_state_file).read_text())
    except (OSError, ValueError) as exc:
        return f"machine state unreadable, nothing to kill: {exc}"
    proc = procs.Proc.from_json(state.get("procs", {}).get(part))
    if not procs.alive(proc):
        return f"{part} not running, nothing to kill"
    os.kill(proc.pid, signal.SIGKILL)
    return f"killed {part} (pid {proc.pid})"


def _helper(part: str, machine_state_file: str, trigger: str) -> int:
    if trigger.startswith("when:"):
        marker = Path(trigger[len("when:") :])
        deadline = time.monotonic() + WHEN_DEADLINE
        while not marker.exists():
            if time.monotonic() > deadline:
                print(f"{marker} did not appear within {WHEN_DEADLINE:g}s; nothing killed", flush=True)
                return 0
            time.sleep(0.02)
        print(f"{_kill(part, machine_state_file)} when {marker} appeared", flush=True)
        return 0
    seconds = float(trigger)
    time.sleep(seconds)
    print(f"{_kill(part, machine_state_file)} after {seconds:g}s", flush=True)
    return 0


def disk_room(profile: str, free_mb: int) -> str:
    """Resize the running engine's tmpfs data root to what it holds plus `free_mb` (fault DISK_FREE)."""
    import subprocess

    from . import cluster

    info = cluster.machine(profile).info()
    if info is None:
        raise SystemExit(f"profile {profile!r} has no machine")
    from devrig import procs

    state = json.loads(Path(info.state_dir / "rig.json").read_text())
    proc = procs.Proc.from_json(state.get("procs", {}).get("dockerd"))
    if not procs.alive(proc):
        raise SystemExit(f"the engine of {profile!r} is not running")
    args = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
    root = next((a.split(b"=", 1)[1].decode() for a in args if a.startswith(b"--data-root=")), None)
    if root is None:
        raise SystemExit(f"pid {proc.pid} has no --data-root: not the engine of {profile!r}?")
    # In the engine's mount namespace, and only for its data root (a tmpfs there, or this refuses).
    script = (
        '[ "$(findmnt -n -o FSTYPE --mountpoint "$1")" = tmpfs ] || '
        '{ echo "$1 is not on a tmpfs (start the engine with DEVRIG_ENGINE_DISK_FREE_MB)" >&2; exit 3; }; '
        'used=$(df -k --output=used "$1" | tail -n 1); '
        'mount -o remount,size=$((used + $2 * 1024))k "$1" && df -h --output=size,used,avail "$1" | tail -n 1'
    )
    done = subprocess.run(
        ["nsenter", "-t", str(proc.pid), "-m", "sh", "-c", script, "disk", root, str(free_mb)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if done.returncode != 0:
        raise SystemExit(f"resizing {root} failed: {done.stderr.strip()}")
    return f"{root}: {free_mb} MB free now (size used avail: {done.stdout.strip()})"


if __name__ == "__main__":
    if sys.argv[1] == "kill":
        print(kill_now(sys.argv[2], sys.argv[3]), flush=True)
        sys.exit(0)
    if sys.argv[1] == "disk":
        print(disk_room(sys.argv[2], int(sys.argv[3])), flush=True)
        sys.exit(0)
    sys.exit(_helper(sys.argv[1], sys.argv[2], sys.argv[3]))
