"""Edit -> new pod Ready through `devloop watch`, on the test cluster (or real minikube).

Runs `devloop watch --json` on a copy of the sample Kubeless workspace, edits one component's
source N times, and splits each round from the JSON events: debounce (write -> batch closed),
pre-build (fingerprints, docker-env check), build, render+apply, rollout. The build command is
wrapped to record when it really started, for the write -> build-started latency through the
whole CLI.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .common import cluster_env, poll, stats, workspace_copy

COMPONENT = "http-trigger-controller"
SOURCE = "http-trigger/cmd/http-trigger-controller/main.go"


def edit_to_ready(runs: int = 10, minikube_profile: str = "devloop-bench-e2e", keep: bool = False) -> dict:
    import yaml

    env = cluster_env(minikube_profile)
    root = Path(tempfile.mkdtemp(prefix="devloop-bench-e2e-"))
    ws, prof = workspace_copy(root, minikube_profile)
    stamps = root / "stamps"
    stamps.mkdir()
    profile = yaml.safe_load(prof.read_text())
    for c in profile["components"]:
        # Record when the build command itself starts (date(1): one fork+exec).
        c["build"] = f"date +%s.%N > {stamps}/{c['name']}; " + c["build"]
    prof.write_text(yaml.safe_dump(profile, sort_keys=False))
    env["XDG_CACHE_HOME"] = str(root / "cache")

    proc = subprocess.Popen(
        [sys.executable, "-m", "devloop", "watch", "--profile", str(prof), "--workspace", str(ws), "--json"],
        cwd=ws,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    events: list[dict] = []
    lock = threading.Lock()

    def read() -> None:
        for line in proc.stdout:
            if line.startswith("{"):
                ev = json.loads(line)
                ev["_t"] = time.time()
                with lock:
                    events.append(ev)

    threading.Thread(target=read, daemon=True).start()

    def wait(pred, start: int, timeout: float, what: str) -> dict:
        def found():
            with lock:
                hit = next((ev for ev in events[start:] if pred(ev)), None)
            if hit is None and proc.poll() is not None:
                raise SystemExit(f"devloop watch exited {proc.returncode} while waiting for {what}")
            return hit

        return poll(found, timeout, what, interval=0.01)

    rounds = []
    try:
        first = wait(lambda e: e["event"] == "cycle", 0, 1200, "the initial up")
        if first.get("status") != "ok":
            raise SystemExit(f"initial up failed: {first}")
        target = ws / SOURCE
        for i in range(runs):
            time.sleep(1.0)
            with lock:
                mark = len(events)
            (stamps / COMPONENT).unlink(missing_ok=True)
            t_write = time.time()
            target.write_text(target.read_text() + f"\n// bench edit {i} {t_write}\n")
            changes = wait(lambda e: e["event"] == "changes", mark, 30, "the batch")
            cycle = wait(lambda e: e["event"] == "cycle", mark, 300, "the cycle")
            if cycle.get("status") != "ok":
                raise SystemExit(f"round {i} failed: {cycle}")
            with lock:
                evs = events[mark:]
            steps = {e["step"]: e for e in evs if e["event"] == "step" and e.get("status") != "start"}
            started = {e["step"]: e["_t"] for e in evs if e["event"] == "step" and e.get("status") == "start"}
            build_started = float((stamps / COMPONENT).read_text())
            b = steps.get(f"build {COMPONENT}", {})
            rounds.append(
                {
                    "total": cycle["_t"] - t_write,
                    "debounce": changes["_t"] - t_write,
                    "write_to_build_started": build_started - t_write,
                    "pre_build": started.get(f"build {COMPONENT}", build_started) - changes["_t"],
                    "build": b.get("seconds", 0.0),
                    "render": steps.get("render", {}).get("seconds", 0.0),
                    "clean": sum(e.get("seconds", 0.0) for k, e in steps.items() if k.startswith("clean")),
                    "apply": steps.get("apply", {}).get("seconds", 0.0),
                    "rollout": steps.get("rollout", {}).get("seconds", 0.0),
                }
            )
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        if not keep:
            subprocess.run(["minikube", "delete", "-p", minikube_profile], env=env, capture_output=True, timeout=300)
            shutil.rmtree(root, ignore_errors=True)
    out = {"runs": runs, "component": COMPONENT}
    for key in rounds[0]:
        out[key] = stats([r[key] * 1000 for r in rounds], "ms")
    return out
