"""`devloop up` from nothing through the real minikube (tests/rig/devrig/kic): the figure issue 18 asks for.

Each run: a fresh user (minikube home with the seeded cache, kubeconfig, devloop cache), `devloop up` on the
bundled profile over the sample workspace with the flags this machine needs, timed; then `minikube delete`. The
lane's engine and images are made once, before the first run, and are not timed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from benchlib.common import REPO, devloop_exe, stats

PROFILE = "devloop-bench-kic"


def _profile(path: Path, addon_images: dict[str, str], start_args: tuple[str, ...]) -> None:
    import yaml

    profile = yaml.safe_load((REPO / "devloop" / "profile" / "bundled" / "kubeless.yaml").read_text())
    cluster = profile["cluster"]
    # as root minikube refuses every driver but none unless forced (DRV_AS_ROOT)
    forced = ["--force"] if os.geteuid() == 0 else []
    cluster.update(profile=PROFILE, cpus=2, memory="4g", extra_start_args=[*start_args, *forced])
    cluster["addon_images"] = {"ingress": dict(addon_images)}
    path.write_text(yaml.safe_dump(profile, sort_keys=False))


def up_from_nothing(version: str, runs: int) -> dict:
    from devrig.kic.lane import START_ARGS, KicLane

    root = Path(tempfile.mkdtemp(prefix="devloop-bench-kic-"))
    lane = KicLane(root / "lane", version)
    samples, loads = [], []
    try:
        lane.start()
        for i in range(runs):
            user = f"u{i}"
            ws = root / user / "workspace"
            shutil.copytree(REPO / "tests" / "fixtures" / "workspace", ws, symlinks=True)
            _profile(ws.parent / "profile.yaml", lane.addon_images, START_ARGS)
            env = dict(lane.user_env(user), XDG_CACHE_HOME=str(ws.parent / "cache"))
            loads.append(round(os.getloadavg()[0], 1))
            t = time.perf_counter()
            done = subprocess.run(
                [devloop_exe(), "up", "--profile", str(ws.parent / "profile.yaml"), "--workspace", str(ws)],
                env=env,
                capture_output=True,
                text=True,
                timeout=1800,
            )
            samples.append(time.perf_counter() - t)
            subprocess.run(["minikube", "delete", "-p", PROFILE], env=env, capture_output=True, timeout=300)
            lane.remove_user(user)
            if done.returncode != 0:
                raise SystemExit(f"devloop up exited {done.returncode}:\n{(done.stdout + done.stderr)[-3000:]}")
    finally:
        lane.stop()
        shutil.rmtree(root, ignore_errors=True)
    return {"minikube": version, **stats(samples, "s"), "load": {"min": min(loads), "max": max(loads)}}
