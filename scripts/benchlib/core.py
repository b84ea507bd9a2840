"""Core-loop benchmarks on the test cluster (or a real minikube with DEVLOOP_BENCH_STANDIN=0).

apply-vs-manual: `devloop apply` (recreate) of the real kubeless.yaml with 10 Functions holding
  the Kubeless finalizer and no controller running, against the hand-run sequence a developer
  types for the same state: find the Functions, `kubectl patch` each one's finalizers away,
  `kubectl delete -f`, `kubectl create -f`, `kubectl rollout status`. Target: devloop <= 0.5x.
clean-orphans: `devloop clean` of 1,000 Functions with finalizers and no controller. Target <= 10 s.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from .common import FIXTURES, cluster_env, poll, stats, workspace_copy

NS = "kubeless"
DEPLOY = "kubeless-controller-manager"


class Bench:
    def __init__(self, minikube_profile: str):
        self.env = cluster_env(minikube_profile)
        self.root = Path(tempfile.mkdtemp(prefix="devloop-bench-core-"))
        self.ws, self.profile_path = workspace_copy(self.root, minikube_profile)
        self.context = minikube_profile
        self.env["XDG_CACHE_HOME"] = str(self.root / "cache")
        function = next(
            d
            for d in yaml.safe_load_all((FIXTURES / "custom-resources.yaml").read_text())
            if d and d["kind"] == "Function"
        )
        self.function = function

    def devloop(self, *args: str, timeout: float = 900) -> float:
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "devloop", *args, "--profile", str(self.profile_path), "--workspace", str(self.ws)],
            cwd=self.ws,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise SystemExit(f"devloop {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}")
        return time.monotonic() - started

    def kubectl(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 300) -> str:
        done = subprocess.run(
            ["kubectl", "--context", self.context, *args],
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise SystemExit(f"kubectl {' '.join(args)} exited {done.returncode}:\n{done.stderr[-2000:]}")
        return done.stdout

    def functions(self, count: int) -> str:
        items = []
        for i in range(count):
            fn = copy.deepcopy(self.function)
            fn["metadata"]["name"] = f"bench-{i:04d}"
            fn["metadata"]["namespace"] = "default"
            items.append(fn)
        return yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items})

    def orphan(self, count: int) -> None:
        """The state the hand-run loop hangs on: Functions with finalizers, controllers gone."""
        self.kubectl("scale", "deployment", DEPLOY, "-n", NS, "--replicas=0")
        poll(
            lambda: not self.kubectl("get", "pods", "-n", NS, "-l", "kubeless=controller", "-o", "name").strip(),
            120,
            "the controller pods to go",
        )
        self.kubectl("create", "-f", "-", input=self.functions(count), timeout=600)
        left = json.loads(self.kubectl("get", "functions.kubeless.io", "-A", "-o", "json"))["items"]
        assert len(left) == count and all(f["metadata"].get("finalizers") for f in left)

    def manual_apply(self, rendered: str) -> float:
        started = time.monotonic()
        names = self.kubectl(
            "get",
            "functions.kubeless.io",
            "-A",
            "-o",
            'jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}{"\\n"}{end}',
        ).split()
        for ref in names:
            ns, name = ref.split("/")
            self.kubectl(
                "patch",
                "functions.kubeless.io",
                name,
                "-n",
                ns,
                "--type=merge",
                "-p",
                '{"metadata":{"finalizers":null}}',
            )
        self.kubectl("delete", "-f", "-", input=rendered)
        self.kubectl("create", "-f", "-", input=rendered)
        self.kubectl("rollout", "status", f"deployment/{DEPLOY}", "-n", NS, "--timeout=300s")
        return time.monotonic() - started


def apply_vs_manual(rounds: int = 5, functions: int = 10, minikube_profile: str = "devloop-bench-core") -> dict:
    bench = Bench(minikube_profile)
    try:
        bench.devloop("up")
        rendered = subprocess.run(
            [
                sys.executable,
                "-m",
                "devloop",
                "render",
                "--profile",
                str(bench.profile_path),
                "--workspace",
                str(bench.ws),
            ],
            env=bench.env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        ours, manual = [], []
        for _ in range(rounds):
            bench.orphan(functions)
            ours.append(bench.devloop("apply"))
            bench.orphan(functions)
            manual.append(bench.manual_apply(rendered))
        d, m = stats(ours, "s"), stats(manual, "s")
        return {
            "devloop_apply": d,
            "manual": m,
            "ratio_p50": round(d["p50_s"] / m["p50_s"], 3),
            "limit": 0.5,
            "functions": functions,
        }
    finally:
        subprocess.run(["minikube", "delete", "-p", minikube_profile], env=bench.env, capture_output=True, timeout=300)


def clean_orphans(count: int = 1000, rounds: int = 3, minikube_profile: str = "devloop-bench-clean") -> dict:
    bench = Bench(minikube_profile)
    try:
        bench.devloop("up")
        times = []
        for _ in range(rounds):
            bench.orphan(count)
            times.append(bench.devloop("clean"))
            left = json.loads(bench.kubectl("get", "functions.kubeless.io", "-A", "-o", "json"))["items"]
            if left:
                raise SystemExit(f"devloop clean left {len(left)} Functions")
            bench.kubectl("scale", "deployment", DEPLOY, "-n", NS, "--replicas=1")
        return {"devloop_clean": stats(times, "s"), "functions": count, "limit_s": 10.0}
    finally:
        subprocess.run(["minikube", "delete", "-p", minikube_profile], env=bench.env, capture_output=True, timeout=300)
