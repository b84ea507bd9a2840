"""Watch benchmarks: scale (set-up, idle CPU, RSS, ignored writes) and write -> build latency.

The watcher runs in a child process (`python -m benchlib.watch child ...`) so its CPU and memory
are measured alone, from /proc, the way `top` would see a `devloop watch`. The child prints one
JSON object per line: `ready` once watching, then `batch` for every batch; with --build it runs
that shell command for each batch, as devloop runs a component's build.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import REPO, child_env, poll, stats
from .tree import IGNORED_DIRS, bench_cache, generate, profile_yaml

CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- child ------------------------------------------------------------------------------------
def child(argv: list[str]) -> int:
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("--profile", required=True)
    p.add_argument("--workspace", required=True)
    p.add_argument("--build", default=None)
    p.add_argument("--quiet-ms", type=int, default=300)
    p.add_argument("--poll", action="store_true")
    args = p.parse_args(argv)

    t0 = time.monotonic()
    from devloop.profile.lookup import load_profile_file
    from devloop.watch.watcher import Debouncer, ProfileRouter, Watcher

    profile = load_profile_file(Path(args.profile))
    workspace = Path(args.workspace)
    router = ProfileRouter(profile, workspace)
    w = Watcher(router, workspace, debouncer=Debouncer(quiet=args.quiet_ms / 1000), poll=args.poll)
    info = w.start()
    out = sys.stdout
    out.write(
        json.dumps(
            {
                "event": "ready",
                "seconds": time.monotonic() - t0,
                "watch_seconds": info.seconds,
                "mode": info.mode,
                "watches": info.watches,
                "dirs": info.dirs,
                "pruned": info.pruned,
            }
        )
        + "\n"
    )
    out.flush()
    try:
        while True:
            batch = w.next_batch(timeout=None)
            if batch is None:
                break
            out.write(
                json.dumps(
                    {
                        "event": "batch",
                        "paths": len(batch.paths),
                        "components": sorted(batch.components),
                        "closed": time.time(),
                    }
                )
                + "\n"
            )
            out.flush()
            if args.build:
                subprocess.run(args.build, shell=True, check=False)
    except KeyboardInterrupt:
        pass
    finally:
        w.stop()
    return 0


# -- parent helpers ---------------------------------------------------------------------------
def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14, 15 of stat)


def _rss_mb(pid: int) -> tuple[float, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    vals = {
        line.split(":")[0]: int(line.split()[1]) for line in status.splitlines() if line.startswith(("VmRSS", "VmHWM"))
    }
    return vals["VmRSS"] / 1024, vals["VmHWM"] / 1024


class Child:
    def __init__(
        self, profile: Path, workspace: Path, build: str | None = None, quiet_ms: int = 300, cli: bool = False
    ) -> None:
        if cli:
            # The real thing: `devloop watch` as a user starts it (no cluster needed while idle).
            cmd = [
                sys.executable,
                "-m",
                "devloop",
                "watch",
                "--no-initial",
                "--profile",
                str(profile),
                "--workspace",
                str(workspace),
                "--debounce",
                str(quiet_ms),
                "--json",
            ]
            env = {**os.environ, "XDG_CACHE_HOME": str(Path(tempfile.mkdtemp(prefix="devloop-bench-xdg-")))}
        else:
            cmd = [
                sys.executable,
                "-m",
                "benchlib.watch",
                "child",
                "--profile",
                str(profile),
                "--workspace",
                str(workspace),
                "--quiet-ms",
                str(quiet_ms),
            ]
            env = child_env()
        if build:
            cmd += ["--build", build]
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO, env=env
        )
        first = self.read(timeout=120)
        if cli and first.get("event") == "watching":
            first = {
                "event": "ready",
                "seconds": time.monotonic() - t0,
                "watch_seconds": first["seconds"],
                "mode": first["mode"],
                "watches": first["watches"],
                "dirs": first["dirs"],
                "pruned": first["pruned"],
            }
        self.ready = first
        if self.ready.get("event") != "ready":
            raise SystemExit(f"watch did not start: {self.ready}")

    def read(self, timeout: float) -> dict:
        import selectors

        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            return {}
        line = self.proc.stdout.readline()
        return json.loads(line) if line else {"event": "exited", "code": self.proc.wait(5)}

    def drain(self, seconds: float) -> list[dict]:
        events, end = [], time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            ev = self.read(left)
            if ev:
                events.append(ev)
        return events

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def _workspace(files: int, ignored: int) -> tuple[Path, Path]:
    ws = bench_cache() / f"ws-{files}-{ignored}"
    generate(ws / "app", files, ignored_files=ignored)
    prof = ws / "bench.yaml"
    prof.write_text(profile_yaml(ws, "app", "echo {image}"))
    (ws / "manifests.yaml").write_text("")
    return ws, prof


# -- benchmarks ---------------------------------------------------------------------------------
def scale(files: int = 100_000, idle_seconds: float = 30.0, ignored_writes: int = 1000, cli: bool = True) -> dict:
    """Set-up time, idle CPU, RSS, and builds caused by writes into ignored directories, of
    `devloop watch --no-initial` itself (cli=True) or of the bare Watcher (cli=False)."""
    # Three quarters inputs, one quarter in ignored dirs and .git/: a checkout after a few builds.
    t = time.monotonic()
    ws, prof = _workspace(files * 3 // 4, files // 4)
    gen_s = time.monotonic() - t
    ch = Child(prof, ws, cli=cli)
    try:
        ready = ch.ready
        pid = ch.proc.pid
        time.sleep(1.0)  # let start-up work settle before sampling
        c0, t0 = _cpu_ticks(pid), time.monotonic()
        time.sleep(idle_seconds)
        c1, t1 = _cpu_ticks(pid), time.monotonic()
        idle_cpu = 100.0 * (c1 - c0) / CLK_TCK / (t1 - t0)
        rss, hwm = _rss_mb(pid)
        comp = ws / "app"
        t_w = time.monotonic()
        for i in range(ignored_writes):
            top = (*IGNORED_DIRS, ".git")[i % (len(IGNORED_DIRS) + 1)]
            d = comp / top / "bench-writes"
            d.mkdir(parents=True, exist_ok=True)
            (d / f"w{i}").write_text(str(i))
        write_s = time.monotonic() - t_w
        ignored_batches = [e for e in ch.drain(2.0) if e.get("event") in ("batch", "changes")]
        # Liveness check: one real input edit must still produce exactly one batch.
        (comp / "go.mod").write_text(f"module example.com/bench\n// {time.time()}\n")
        live = [e for e in ch.drain(1.5) if e.get("event") in ("batch", "changes")]
        rss_after, hwm_after = _rss_mb(pid)
    finally:
        ch.stop()
    return {
        "measured": "devloop watch --no-initial" if cli else "devloop.watch.watcher.Watcher in a child process",
        "files": files,
        "generate_seconds": round(gen_s, 2),
        "setup_seconds": round(ready["seconds"], 3),
        "watch_setup_seconds": round(ready["watch_seconds"], 3),
        "mode": ready["mode"],
        "watches": ready["watches"],
        "watched_dirs": ready["dirs"],
        "pruned_dirs": ready["pruned"],
        "idle_cpu_percent": round(idle_cpu, 3),
        "idle_seconds": idle_seconds,
        "rss_mb": round(rss, 1),
        "rss_after_one_cycle_mb": round(rss_after, 1),
        "peak_rss_mb": round(max(hwm, hwm_after), 1),
        "ignored_writes": ignored_writes,
        "ignored_write_seconds": round(write_s, 2),
        "builds_from_ignored_writes": len(ignored_batches),
        "batches_from_one_input_edit": len(live),
    }


def latency(runs: int = 30, files: int = 2000, quiet_ms: int = 300) -> dict:
    """File write -> build command started, through the watcher and a 300 ms quiet window."""
    ws, prof = _workspace(files, 200)
    stamp_dir = Path(tempfile.mkdtemp(prefix="devloop-bench-"))
    stamp = stamp_dir / "started"
    # The build records when it started: date(1) is a single fork+exec, like `make` would be.
    build = f"date +%s.%N > {stamp}"
    ch = Child(prof, ws, build=build, quiet_ms=quiet_ms)
    samples: list[float] = []
    try:
        target = ws / "app" / "pkg"
        files_ = sorted(target.rglob("*.go"))[:runs]
        for i in range(runs):
            stamp.unlink(missing_ok=True)
            t_write = time.time()
            with open(files_[i % len(files_)], "ab") as f:
                f.write(b"// edit\n")
            poll(
                lambda: stamp.exists() and stamp.read_text().strip(),
                5,
                f"run {i}'s build to start after the write",
                interval=0.005,
            )
            samples.append((float(stamp.read_text()) - t_write) * 1000)
            ch.drain(0.4)  # let the batch finish and the debouncer empty
    finally:
        ch.stop()
    return {"quiet_ms": quiet_ms, **stats(samples, "ms")}


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        sys.exit(child(sys.argv[2:]))
    raise SystemExit("run scripts/bench instead")
