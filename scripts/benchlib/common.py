"""What every benchmark shares: the bootstrap (this checkout's venv, the test cluster's environment),
the statistics, timing a command, polling with a deadline, a copy of the sample workspace.

Standard library only at import time: scripts/bench imports it before it has re-executed itself
in the venv."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

SCRIPTS = Path(__file__).resolve().parents[1]
REPO = SCRIPTS.parent
VENV_PY = REPO / ".venv" / "bin" / "python"
FIXTURES = REPO / "tests" / "fixtures" / "workspace"
RIG_DIR = REPO / "tests" / "rig"
T = TypeVar("T")


# -- bootstrap ------------------------------------------------------------------------------------
def bootstrap(entry: str, argv: list[str]) -> None:
    """Run in this checkout's venv (re-exec `entry` there unless already in it or DEVLOOP_BENCH_NO_REEXEC
    is set) with the checkout importable, so the benchmarks measure this devloop, not an installed one."""
    if (
        VENV_PY.exists()
        and Path(sys.prefix).resolve() != VENV_PY.parent.parent.resolve()
        and not os.environ.get("DEVLOOP_BENCH_NO_REEXEC")
    ):
        os.execv(str(VENV_PY), [str(VENV_PY), entry, *argv])
    for path in (str(REPO), str(SCRIPTS)):
        if path not in sys.path:
            sys.path.insert(0, path)


def child_env(**extra: str) -> dict[str, str]:
    """os.environ for a `python -m benchlib.…` child: the checkout and scripts/ importable."""
    path = os.pathsep.join(
        [str(SCRIPTS), str(REPO)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
    )
    return {**os.environ, "PYTHONPATH": path, **extra}


def cluster_env(minikube_profile: str) -> dict[str, str]:
    """The environment for cluster benchmarks: the test cluster's stand-in with a MINIKUBE_HOME and kubeconfig
    of its own, as the tests use it -- or a real minikube on PATH with DEVLOOP_BENCH_STANDIN=0."""
    env = dict(os.environ)
    if shutil.which("minikube") is not None and os.environ.get("DEVLOOP_BENCH_STANDIN", "1") != "1":
        return env
    from devrig import paths as rig_paths

    missing = rig_paths.missing_parts(rig_paths.DEFAULT_KUBERNETES_VERSION)
    if missing:
        raise SystemExit(f"the test cluster is not built (missing: {', '.join(missing)}); run scripts/build-rig")
    home = Path(tempfile.gettempdir()) / "devloop-bench-minikube"
    home.mkdir(exist_ok=True)
    kubectl = rig_paths.k8s_bin(rig_paths.DEFAULT_KUBERNETES_VERSION, "kubectl")
    env.update(
        MINIKUBE_HOME=str(home),
        KUBECONFIG=str(home / "kubeconfig"),
        PATH=os.pathsep.join([str(RIG_DIR / "bin"), str(kubectl.parent), env.get("PATH", "")]),
    )
    return env


def devloop_exe() -> str:
    """The venv's `devloop` console script (what a user runs), else whatever is on PATH."""
    exe = Path(sys.executable).parent / "devloop"
    return str(exe) if exe.exists() else shutil.which("devloop") or "devloop"


def workspace_copy(root: Path, minikube_profile: str) -> tuple[Path, Path]:
    """Copy the sample workspace to root/workspace and write root/profile.yaml: the bundled Kubeless profile
    on `minikube_profile`. Returns (workspace, profile)."""
    import yaml

    ws = root / "workspace"
    shutil.copytree(FIXTURES, ws, symlinks=True)
    bundled = REPO / "profiles" / "kubeless.yaml"
    profile = yaml.safe_load(
        (bundled if bundled.exists() else REPO / "devloop" / "profile" / "bundled" / "kubeless.yaml").read_text()
    )
    profile["cluster"]["profile"] = minikube_profile
    path = root / "profile.yaml"
    path.write_text(yaml.safe_dump(profile, sort_keys=False))
    return ws, path


# -- measuring ------------------------------------------------------------------------------------
def stats(samples: list[float], unit: str) -> dict:
    """{p50_<unit>, p95_<unit>, min_<unit>, max_<unit>, runs}; p95 is the nearest-rank value."""
    s = sorted(samples)
    p95 = s[min(len(s) - 1, max(0, round(0.95 * len(s)) - 1))]
    digits = 3 if unit == "s" else 1
    return {
        f"p50_{unit}": round(statistics.median(s), digits),
        f"p95_{unit}": round(p95, digits),
        f"min_{unit}": round(s[0], digits),
        f"max_{unit}": round(s[-1], digits),
        "runs": len(s),
    }


def timed(argv: list[str], *, cwd: Path | None = None, env: dict | None = None, ok=(0,)) -> float:
    """Wall seconds of one run of `argv` (stdout discarded); a run exiting outside `ok` ends the benchmark."""
    t = time.perf_counter()
    r = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300)
    dt = time.perf_counter() - t
    if r.returncode not in ok:
        raise SystemExit(f"`{' '.join(argv)}` exited {r.returncode}: {r.stderr.decode()[-2000:]}")
    return dt


def poll(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.2) -> T:
    """Call `condition()` until truthy and return it; after `timeout` s end the benchmark naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)
