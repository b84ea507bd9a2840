"""The real minikube binaries that tests/rig/build-minikube caches, and how to run one beside the stand-in.

Both run with the same isolated HOME, MINIKUBE_HOME, KUBECONFIG and TMPDIR (the real binary writes its
logs under TMPDIR and reads ~/.minikube/config), and with update notifications off in the home's
config/config.json, so the real binary never reaches for the network.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

RIG_DIR = Path(__file__).resolve().parent
STANDIN = RIG_DIR / "bin" / "minikube"
CACHE = Path(os.environ.get("DEVRIG_CACHE") or Path.home() / ".cache" / "devloop-rig")
# what scripts/build-rig builds (tests/rig/build-minikube's default list)
BUILT_BY_DEFAULT = tuple((os.environ.get("DEVRIG_MINIKUBE_BUILD") or "v1.38.1 v1.36.0 v1.37.0").split())


def oracle_path(version: str) -> Path:
    return CACHE / "minikube" / version / "minikube"


def require_oracle(version: str) -> Path:
    """The real binary, else a skip -- or, with CI=true, a failure when build-rig was to build it."""
    path = oracle_path(version)
    if path.is_file() and os.access(path, os.X_OK):
        return path
    why = f"the real minikube {version} is not built ({path} missing); build it with tests/rig/build-minikube {version}"
    if os.environ.get("CI") == "true" and version in BUILT_BY_DEFAULT:
        pytest.fail(why + " (scripts/build-rig builds it: run scripts/build-rig)")
    if version not in BUILT_BY_DEFAULT:
        why += (
            f" (not in build-rig's list {' '.join(BUILT_BY_DEFAULT)}: the module proxy does not serve it or it "
            "is not built by default)"
        )
    pytest.skip(why)


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def lines(self, stream: str) -> list[str]:
        return getattr(self, stream).splitlines()


@dataclass
class Sandbox:
    """One isolated home; `run(binary, *args)` runs a minikube in it."""

    root: Path
    version: str

    @property
    def minikube_dir(self) -> Path:
        return self.root / "mk" / ".minikube"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    def env(self, extra: dict | None = None) -> dict:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("MINIKUBE_", "DOCKER_", "DEVRIG_")) and k not in ("KUBECONFIG", "TERM", "COLORTERM")
        }
        env.update(
            HOME=str(self.root / "home"),
            MINIKUBE_HOME=str(self.root / "mk"),
            KUBECONFIG=str(self.kubeconfig),
            TMPDIR=str(self.root / "tmp"),
            DEVRIG_MINIKUBE_VERSION=self.version,
        )
        env.update(extra or {})
        return env

    def prepare(self) -> None:
        for d in ("home", "tmp"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        cfg = self.minikube_dir / "config" / "config.json"
        cfg.parent.mkdir(parents=True, exist_ok=True)
        if not cfg.exists():
            cfg.write_text(json.dumps({"WantUpdateNotification": False}) + "\n")

    def run(self, binary: Path, *args: str, env: dict | None = None, timeout: float = 120) -> Result:
        self.prepare()
        # Through a shell, as people run it: start prints MINIKUBE_*/KUBECONFIG in the environment's order,
        # which bash decides (the stand-in's own bash wrapper would reorder a direct exec's environment).
        proc = subprocess.run(
            ["bash", "-c", 'exec "$@"', "minikube", str(binary), *args],
            env=self.env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)


_UUID = re.compile(r'"id":"[0-9a-f-]{36}"')
_KLOG = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ ", re.M)


def normalise(text: str, sandbox: Sandbox) -> str:
    """Only what must differ between two runs: the sandbox's paths, CloudEvents ids, and klog headers'
    time and PID."""
    text = text.replace(str(sandbox.root), "<SANDBOX>")
    text = _KLOG.sub(r"\1<TIME> <PID> ", text)
    return _UUID.sub('"id":"<ID>"', text)


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]
