"""The inner loop on one test cluster (or a real minikube with DEVLOOP_BENCH_STANDIN=0), each figure
beside what a developer types by hand for the same result, with the ratio and the machine's load.

  up-nochange      `devloop up` with nothing changed                       (target <= 1.0 s)
                   by hand: minikube status; minikube docker-env; kubectl apply -f <rendered> (client-side);
                   kubectl rollout status
  status           `devloop status`                                        (target <= 1.0 s)
                   by hand: minikube status; kubectl get deploy,pods; kubectl get <custom resources> -A
  edit-to-running  save main.go -> the pod's log shows the new binary       (target p50 <= 1.5 s)
                   through `devloop watch` with live update; by hand: make http-controller-build;
                   docker cp into the container; docker restart -t 0
  clean            `devloop clean` of 1,000 orphaned Functions             (target <= 10 s)
                   by hand: kubectl patch (100 names a call, 4 in parallel) to drop the
                   finalizers; kubectl delete functions --all (once: kubectl's own 5 requests/s make it
                   take minutes)

"The new binary runs" is read from the container itself: the sample controller prints the sha256 of
the sources it was built from (tests/fixtures/workspace/README.md), so the clock stops when a line
`sources <digest of the edited files>` appears in the running container's log.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .common import cluster_env, poll, stats, workspace_copy

NS = "kubeless"
DEPLOY = "kubeless-controller-manager"
COMPONENT = "http-trigger-controller"
CONTAINER = "http-trigger-controller"
CHECKOUT = "http-trigger"
SOURCE = "cmd/http-trigger-controller/main.go"
# the sample Makefile's HTTP_SOURCES: what the controller's `sources` line is the digest of
SOURCES = ("cmd/http-trigger-controller", "pkg", "go.mod", "go.sum")
TARGETS = {"up-nochange": 1.0, "status": 1.0, "edit-to-running": 1.5, "clean": 10.0}
# kubectl throttles itself to 5 requests a second, so its `delete --all --wait` of 1,000 takes minutes: the by-hand
# clean runs once (devloop's, `--runs` times)
HAND_CLEAN_RUNS = 1


def load() -> float:
    return round(os.getloadavg()[0], 2)


def sources_digest(checkout: Path) -> str:
    """`find SOURCES -type f | LC_ALL=C sort | xargs cat | sha256sum`, as the sample Makefile computes it."""
    files = []
    for top in SOURCES:
        path = checkout / top
        if path.is_file():
            files.append(top)
        else:
            files += [p.relative_to(checkout).as_posix() for p in path.rglob("*") if p.is_file()]
    h = hashlib.sha256()
    for rel in sorted(files, key=lambda s: s.encode()):
        h.update((checkout / rel).read_bytes())
    return h.hexdigest()


class Inner:
    def __init__(self, minikube_profile: str):
        self.profile = minikube_profile
        self.env = cluster_env(minikube_profile)
        self.root = Path(tempfile.mkdtemp(prefix="devloop-bench-inner-"))
        self.ws, self.profile_path = workspace_copy(self.root, minikube_profile)
        import yaml

        # the bundled profile asks for 4 CPUs; minikube (and the stand-in) refuse more than the machine has
        profile = yaml.safe_load(self.profile_path.read_text())
        cpus = profile["cluster"].get("cpus")
        if isinstance(cpus, int) and cpus > (os.cpu_count() or 2):
            profile["cluster"]["cpus"] = os.cpu_count() or 2
        self.profile_path.write_text(yaml.safe_dump(profile, sort_keys=False))
        self.env["XDG_CACHE_HOME"] = str(self.root / "cache")
        self._engine = None

    # -- running things ------------------------------------------------------------------------
    def devloop_argv(self, *args: str) -> list[str]:
        exe = Path(sys.executable).parent / "devloop"
        head = [str(exe)] if exe.exists() else [sys.executable, "-m", "devloop"]
        return [*head, *args, "--profile", str(self.profile_path), "--workspace", str(self.ws)]

    def devloop(self, *args: str, timeout: float = 900) -> float:
        started = time.perf_counter()
        done = subprocess.run(
            self.devloop_argv(*args), cwd=self.ws, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"devloop {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}")
        return seconds

    def shell(self, script: str, timeout: float = 900) -> float:
        started = time.perf_counter()
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=self.ws,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"by-hand script exited {done.returncode}:\n{script}\n{done.stderr[-3000:]}")
        return seconds

    def kubectl(self, *args: str, input: str | None = None) -> str:
        done = subprocess.run(
            ["kubectl", "--context", self.profile, *args],
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            raise SystemExit(f"kubectl {' '.join(args)} exited {done.returncode}:\n{done.stderr[-2000:]}")
        return done.stdout

    def docker_env(self) -> dict[str, str]:
        out = subprocess.run(
            ["minikube", "-p", self.profile, "docker-env", "--shell", "none"],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def engine(self):
        if self._engine is None:
            from devloop.adapters.docker_engine import DockerEngine

            self._engine = DockerEngine(self.docker_env())
        return self._engine

    def controller_container(self) -> str:
        pods = json.loads(self.kubectl("get", "pods", "-n", NS, "-l", "kubeless=controller", "-o", "json"))["items"]
        running = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        for pod in running:
            for st in pod["status"].get("containerStatuses") or []:
                if st["name"] == CONTAINER and st.get("state", {}).get("running") and st.get("containerID"):
                    return st["containerID"].split("://", 1)[1]
        raise SystemExit(f"no running {CONTAINER} container in {NS}")

    def wait_log(self, digest: str, timeout: float = 120) -> float:
        """When a running controller container's log shows `sources <digest>` (polls the engine directly)."""
        want = f"sources {digest}".encode()

        def seen():
            try:
                cid = self.controller_container_fast()
                return cid and want in self.engine().client.api.logs(cid, tail=4)
            except Exception:  # noqa: BLE001 - a container between lives; look again
                return False

        poll(seen, timeout, f"`sources {digest[:12]}…` in the {CONTAINER} log", interval=0.01)
        return time.time()

    def controller_container_fast(self) -> str | None:
        """The running container of the controller, asked of the engine (kubelet's docker names)."""
        found = self.engine().client.api.containers(
            filters={
                "label": [f"io.kubernetes.container.name={CONTAINER}", f"io.kubernetes.pod.namespace={NS}"],
                "status": "running",
            }
        )
        return found[0]["Id"] if found else None

    def close(self, keep: bool = False) -> None:
        if self._engine is not None:
            self._engine.close()
        if not keep:
            subprocess.run(["minikube", "delete", "-p", self.profile], env=self.env, capture_output=True, timeout=300)
            shutil.rmtree(self.root, ignore_errors=True)


def _pair(name: str, ours: list[float], by_hand: list[float], loads: list[float]) -> dict:
    d, m = stats(ours, "s"), stats(by_hand, "s")
    return {
        "bench": name,
        "devloop": d,
        "by_hand": m,
        "ratio_p50": round(d["p50_s"] / m["p50_s"], 3),
        "target_s": TARGETS[name],
        "ok": d["p50_s"] <= TARGETS[name],
        "load": {"min": min(loads), "max": max(loads)},
    }


# -- the benchmarks ----------------------------------------------------------------------------------
def up_nochange(b: Inner, runs: int) -> dict:
    rendered = b.root / "rendered.yaml"
    rendered.write_text(
        subprocess.run(b.devloop_argv("render"), env=b.env, capture_output=True, text=True, check=True).stdout
    )
    by_hand_script = (
        f"minikube status -p {b.profile} -o json >/dev/null; "
        f'eval "$(minikube -p {b.profile} docker-env)"; '
        # client-side: the bundled profile turns the ServerSideApply feature gate off (README)
        f"kubectl --context {b.profile} apply -f {rendered} >/dev/null; "
        f"kubectl --context {b.profile} rollout status deployment/{DEPLOY} -n {NS} >/dev/null"
    )
    ours, hand, loads = [], [], []
    for _ in range(runs):
        loads.append(load())
        ours.append(b.devloop("up"))
        hand.append(b.shell(by_hand_script))
    return _pair("up-nochange", ours, hand, loads)


def status(b: Inner, runs: int) -> dict:
    script = (
        f"minikube status -p {b.profile} >/dev/null || true; "
        f"kubectl --context {b.profile} get deploy,pods -n {NS} >/dev/null; "
        f"kubectl --context {b.profile} get functions.kubeless.io,httptriggers.kubeless.io,"
        f"cronjobtriggers.kubeless.io -A >/dev/null"
    )
    ours, hand, loads = [], [], []
    for _ in range(runs):
        loads.append(load())
        ours.append(b.devloop("status"))
        hand.append(b.shell(script))
    return _pair("status", ours, hand, loads)


def edit_to_running(b: Inner, runs: int) -> dict:
    checkout = b.ws / CHECKOUT
    target = checkout / SOURCE
    ours, hand, loads = [], [], []
    proc = subprocess.Popen(
        b.devloop_argv("watch", "--json"),
        cwd=b.ws,
        env=b.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    events: list[dict] = []
    lock = threading.Lock()

    def read() -> None:
        for line in proc.stdout:
            if line.startswith("{"):
                with lock:
                    events.append(json.loads(line))

    threading.Thread(target=read, daemon=True).start()

    def cycles() -> list[dict]:
        with lock:
            return [e for e in events if e["event"] == "cycle"]

    try:
        poll(lambda: cycles() or proc.poll() is not None, 600, "watch's first cycle")
        if proc.poll() is not None or cycles()[0].get("status") != "ok":
            raise SystemExit(f"devloop watch did not come up: {cycles()[:1]}")
        for i in range(runs):
            time.sleep(1.5)  # between saves, as a developer types: nothing of the last round still runs
            loads.append(load())
            target.write_text(target.read_text() + f"\n// bench edit {i}\n")
            t0 = time.time()
            ours.append(b.wait_log(sources_digest(checkout)) - t0)

        def lives() -> list[dict]:
            with lock:
                return [
                    e
                    for e in events
                    if e["event"] == "step" and str(e.get("step", "")).startswith("live ") and e.get("status") == "ok"
                ]

        # the new binary logs before watch reports the step done: wait for the last report (not timed)
        try:
            poll(lambda: len(lives()) >= runs, 60, f"watch to report {runs} live updates")
        except SystemExit:
            pass
        if len(lives()) < runs:
            raise SystemExit(f"only {len(lives())} of {runs} edits were live updates: {events[-5:]}")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(120)  # it converges the Deployment to the real image before it exits
        except subprocess.TimeoutExpired:
            proc.kill()
    # by hand, on the converged Deployment: the same edit, the fast target, docker cp and restart
    env = b.docker_env()
    exports = " ".join(f"{k}={v}" for k, v in env.items())
    for i in range(runs):
        time.sleep(1.5)
        loads.append(load())
        cid = b.controller_container_fast()
        target.write_text(target.read_text() + f"\n// by-hand edit {i}\n")
        t0 = time.time()
        b.shell(
            f"cd {CHECKOUT} && make -s http-controller-build >/dev/null && export {exports} && "
            f"docker cp bundles/kubeless_linux-amd64/http-controller {cid}:/http-controller && "
            f"docker restart -t 0 {cid} >/dev/null"
        )
        hand.append(b.wait_log(sources_digest(checkout)) - t0)
    return _pair("edit-to-running", ours, hand, loads)


def clean(b: Inner, runs: int, count: int = 1000) -> dict:
    from .core import Bench

    core = Bench.__new__(Bench)  # reuse its orphaning on this cluster and workspace
    core.env, core.context, core.ws, core.profile_path = b.env, b.profile, b.ws, b.profile_path
    import yaml

    from .common import FIXTURES

    core.function = next(
        d for d in yaml.safe_load_all((FIXTURES / "custom-resources.yaml").read_text()) if d and d["kind"] == "Function"
    )
    by_hand_script = (
        f"kubectl --context {b.profile} get functions.kubeless.io -n default -o name "
        f"| xargs -n 100 -P 4 kubectl --context {b.profile} -n default patch --type merge "
        '-p \'{"metadata":{"finalizers":null}}\' >/dev/null; '
        f"kubectl --context {b.profile} delete functions.kubeless.io --all -A --wait=true >/dev/null"
    )
    ours, hand, loads = [], [], []
    for i in range(runs):
        core.orphan(count)
        loads.append(load())
        ours.append(b.devloop("clean"))
        _assert_none_left(b)
        if i >= HAND_CLEAN_RUNS:
            continue
        core.orphan(count)
        loads.append(load())
        hand.append(b.shell(by_hand_script))
        _assert_none_left(b)
    b.kubectl("scale", "deployment", DEPLOY, "-n", NS, "--replicas=1")
    out = _pair("clean", ours, hand, loads)
    out["functions"] = count
    return out


def _assert_none_left(b: Inner) -> None:
    left = json.loads(b.kubectl("get", "functions.kubeless.io", "-A", "-o", "json"))["items"]
    if left:
        raise SystemExit(f"{len(left)} Functions left after a clean")


BENCHES = {"up-nochange": up_nochange, "status": status, "edit-to-running": edit_to_running, "clean": clean}


def run(
    names: list[str], runs: int = 5, minikube_profile: str = "devloop-bench-inner", keep: bool = False
) -> list[dict]:
    """Run the named benchmarks (in the table's order) on one cluster; `devloop up` sets it up first."""
    b = Inner(minikube_profile)
    results = []
    try:
        b.devloop("up", timeout=1800)
        for name in BENCHES:
            if name in names:
                r = BENCHES[name](b, runs)
                r["load_now"] = load()
                results.append(r)
                # as each finishes: the whole set takes minutes, and an interrupted run keeps what it measured
                print("\n".join([f"-- {name} (done)", *lines(r)]), file=sys.stderr, flush=True)
    finally:
        b.close(keep)
    return results


def lines(r: dict) -> list[str]:
    d, m = r["devloop"], r["by_hand"]
    fmt = lambda s: f"median {s['p50_s']:.3f} s (min {s['min_s']:.3f}, max {s['max_s']:.3f}, {s['runs']} runs)"  # noqa: E731
    return [
        f"devloop   {fmt(d)}",
        f"by hand   {fmt(m)}",
        f"  {'PASS' if r['ok'] else 'FAIL'}  {r['bench']}: median {d['p50_s']:.3f} s (target <= {r['target_s']} s); "
        f"{r['ratio_p50']}x the by-hand sequence; load average {r['load']['min']}-{r['load']['max']}",
    ]
