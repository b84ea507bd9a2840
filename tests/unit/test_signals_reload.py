"""devloop.base.signals (with real processes and real signals) and devloop.profile.reload (with a real profile file)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from devloop.profile.lookup import load_profile_file
from devloop.profile.reload import Invalid, ProfileReloader, Reloaded
from support import wait_until

REPO = Path(__file__).resolve().parents[2]

# A devloop-like process: signals installed, a child in its own session (as the runner starts builds)
# that ignores SIGTERM, and a `finally` that takes long (as stopping a build does).
PROGRAM = textwrap.dedent("""
    import os, subprocess, sys, time
    from devloop.base import signals
    signals.install(lambda text: print("announce", text, flush=True))
    child = subprocess.Popen(["sh", "-c", "trap '' TERM; sleep 120"], start_new_session=True)
    try:
        print("child", child.pid, flush=True)
        time.sleep(120)
    except KeyboardInterrupt as exc:
        print("interrupted", signals.exit_code(exc), flush=True)
        try:
            time.sleep(120)  # a slow cleanup: only a second signal ends it early
        finally:
            pass
        sys.exit(signals.exit_code(exc))
""")


def start() -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, "-c", PROGRAM], cwd=REPO, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("child"), line
    return proc, int(line.split()[1])


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_first_signal_interrupts_like_ctrl_c_with_its_exit_code(sig, code):
    proc, child = start()
    try:
        proc.send_signal(sig)
        assert proc.stdout.readline().startswith("announce stopping (" + signal.Signals(sig).name)
        assert proc.stdout.readline().split() == ["interrupted", str(code)]
        # Still stopping (its cleanup takes long): a second signal ends it at once, children included.
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
        wait_until(lambda: not alive(child), 10, f"child {child} (it ignores SIGTERM) to die with the second signal")
    finally:
        if proc.poll() is None:
            proc.kill()
        try:
            os.killpg(child, signal.SIGKILL)
        except ProcessLookupError:
            pass


def write(path: Path, data: dict) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture
def profile_file(tmp_path) -> Path:
    data = yaml.safe_load((REPO / "devloop" / "profile" / "bundled" / "kubeless.yaml").read_text())
    path = tmp_path / "p.yaml"
    write(path, data)
    return path


def test_reloader_keeps_the_last_valid_profile_and_reloads_a_fixed_one(profile_file):
    first = load_profile_file(profile_file)
    reloader = ProfileReloader(first)
    assert reloader.check() is None  # nothing changed

    good = yaml.safe_load(profile_file.read_text())
    profile_file.write_text(profile_file.read_text().replace("namespace: kubeless", "namespace: Kube Less"))
    change = reloader.check()
    assert isinstance(change, Invalid) and str(profile_file) in change.error.message
    assert "namespace" in change.error.message
    assert reloader.current is first and reloader.broken
    # The same error again (an editor saving twice) is not reported twice.
    profile_file.write_text(profile_file.read_text() + "\n")
    assert reloader.check() is None

    good["timeouts"]["rollout"] = 99
    write(profile_file, good)
    change = reloader.check()
    assert isinstance(change, Reloaded) and change.profile.timeouts.rollout == 99
    assert reloader.current is change.profile and not reloader.broken

    # Saved again with the same content: nothing to reload.
    write(profile_file, good)
    os.utime(profile_file, ns=(1, 1))
    assert reloader.check() is None


def test_reloader_of_a_deleted_profile_reports_it(profile_file):
    reloader = ProfileReloader(load_profile_file(profile_file))
    profile_file.unlink()
    change = reloader.check()
    assert isinstance(change, Invalid) and "cannot read profile" in change.error.message
