"""Session-wide test setup: the rig's stand-in on PATH, an isolated minikube home and kubeconfig, and the
fixtures that give tests a cluster.

Fixtures (see tests/rig/README.md):
  rig_env              session; RigEnv (paths, env dict) -- always available, no cluster
  rig_built            session; skips (fails under CI=true) unless scripts/build-rig has run
  workspace            module; a copy of tests/fixtures/workspace (and, when the module sets PROFILE, a
                       profile.yaml beside it: the bundled profile on that minikube profile)
  rig_cluster          session; RigCluster for profile `devloop-rig-session` (started once, deleted at the end)
  rig_profile_factory  module; make(name=None, *, fake_nodes=0, args=(), env=None) -> RigCluster, each
                       profile deleted when the module finishes (for destructive tests)
Tests that use a cluster fixture get the `rig` marker automatically.  When the rig's binaries are missing
they are skipped -- unless CI=true, where that is a failure telling you to run scripts/build-rig.

Shared helpers (running devloop, waiting, the rig check) live in tests/support/, a normal package:
import them from there, never from a conftest.

DEVLOOP_REAL_MINIKUBE=1 keeps a real `minikube` first on PATH (and the user's MINIKUBE_HOME; the kubeconfig
is still a session-private file).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# devrig is the installed rig package (tests/rig, `pip install -e tests/rig`); support is tests/support,
# importable through pytest's `pythonpath` setting in pyproject.toml.
from devrig import paths as rig_paths
from support import copy_workspace, require_rig, wait_until
from support.rig import real_minikube

REPO = Path(__file__).resolve().parent.parent
RIG_DIR = REPO / "tests" / "rig"
RIG_BIN = RIG_DIR / "bin"

KUBERNETES_VERSION = rig_paths.DEFAULT_KUBERNETES_VERSION
SESSION_PROFILE = "devloop-rig-session"
START_TIMEOUT = 300  # seconds for `minikube start` (cold: ~20 s; the rest is headroom for a loaded CI box)
DELETE_TIMEOUT = 120
REAL_MINIKUBE = real_minikube()
CLUSTER_FIXTURES = {"rig_cluster", "rig_profile_factory", "rig_built", "rig_handle"}


@dataclass
class RigEnv:
    """The session's isolated minikube environment (no cluster implied)."""

    tmp: Path
    minikube_home: Path  # the MINIKUBE_HOME value (minikube keeps its files in <this>/.minikube)
    kubeconfig: Path
    kubectl: Path  # the rig's kubectl (matches the cluster version)
    env: dict[str, str]  # os.environ for subprocesses: PATH, MINIKUBE_HOME, KUBECONFIG set

    def minikube(
        self, *args: str, timeout: float = 120, env: dict | None = None, check: bool = False
    ) -> subprocess.CompletedProcess:
        """Run `minikube ARGS` (the stand-in unless DEVLOOP_REAL_MINIKUBE=1); output captured as text."""
        result = subprocess.run(
            ["minikube", *args], env={**self.env, **(env or {})}, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"minikube {' '.join(args)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result


@dataclass
class RigCluster:
    """One running minikube profile of the rig."""

    profile: str
    rig: RigEnv
    env: dict[str, str]
    start_seconds: float = 0.0
    fake_nodes: int = 0
    _docker_env: dict | None = field(default=None, repr=False)

    @property
    def kubeconfig(self) -> Path:
        return self.rig.kubeconfig

    @property
    def minikube_home(self) -> Path:
        return self.rig.minikube_home

    @property
    def context(self) -> str:
        return self.profile

    def minikube(
        self, *args: str, timeout: float = 120, check: bool = False, env: dict | None = None
    ) -> subprocess.CompletedProcess:
        return self.rig.minikube(
            *args, "-p", self.profile, timeout=timeout, check=check, env={**self.env, **(env or {})}
        )

    def kubectl(
        self,
        *args: str,
        timeout: float = 60,
        check: bool = True,
        input: str | None = None,
    ) -> subprocess.CompletedProcess:
        """kubectl against this profile's context (never the current context)."""
        result = subprocess.run(
            [str(self.rig.kubectl), "--context", self.profile, *args],
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def kubectl_json(self, *args: str, timeout: float = 60) -> dict:
        return json.loads(self.kubectl(*args, "-o", "json", timeout=timeout).stdout)

    def docker_env(self) -> dict[str, str]:
        """`minikube docker-env --shell none -o json`: DOCKER_HOST (tcp+TLS), DOCKER_CERT_PATH, ..."""
        if self._docker_env is None:
            out = self.minikube("docker-env", "--shell", "none", "-o", "json", check=True).stdout
            self._docker_env = {k: v for k, v in json.loads(out).items() if v}
        return dict(self._docker_env)

    def docker(
        self, *args: str, timeout: float = 120, check: bool = True, cwd: Path | None = None
    ) -> subprocess.CompletedProcess:
        """The docker CLI pointed at this profile's engine through docker-env (TCP + TLS)."""
        env = {**self.env, **self.docker_env(), "DOCKER_BUILDKIT": "0"}
        result = subprocess.run(
            [str(rig_paths.docker_cli()), *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"docker {' '.join(args)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def wait_for(self, probe, timeout: float, what: str, interval: float = 0.5):
        """support.wait_until, kept as a method because cluster tests read better with it."""
        return wait_until(probe, timeout, what, interval=interval)


@pytest.fixture(scope="session", autouse=True)
def rig_env() -> RigEnv:
    """Isolate every test from the user's minikube and kubeconfig; put the stand-in and kubectl on PATH."""
    # a short path: the kubelet puts unix sockets below <home>/.minikube/machines/<profile>/, and a socket
    # path may not exceed 107 bytes (pytest's tmp paths are too long for that)
    tmp = Path(tempfile.mkdtemp(prefix="dlrig-", dir="/tmp"))
    saved = {k: os.environ.get(k) for k in ("PATH", "MINIKUBE_HOME", "KUBECONFIG")}
    kubectl = rig_paths.k8s_bin(KUBERNETES_VERSION, "kubectl")
    minikube_home = Path(os.environ.get("MINIKUBE_HOME") or Path.home()) if REAL_MINIKUBE else tmp / "minikube"
    kubeconfig = tmp / "kubeconfig"
    path = os.environ.get("PATH", "")
    front = [str(kubectl.parent)] + ([] if REAL_MINIKUBE else [str(RIG_BIN)])
    os.environ["PATH"] = os.pathsep.join(front[::-1] + [path])
    if not REAL_MINIKUBE:
        os.environ["MINIKUBE_HOME"] = str(minikube_home)
    os.environ["KUBECONFIG"] = str(kubeconfig)
    # The stand-in checks --cpus/--memory against the machine as `docker info` reports it (exit 29 / 10, as
    # minikube does). The bundled profile asks for 4 CPUs and 8g, as a developer's laptop gives; this test
    # machine has 2 cores. So the rig plays a developer host; the small-host case has its own test
    # (tests/e2e/test_up_per_minikube_release.py), which unsets these.
    for key, value in (("DEVRIG_HOST_CPUS", "8"), ("DEVRIG_HOST_MEMORY_MB", "16384")):
        saved.setdefault(key, os.environ.get(key))
        os.environ.setdefault(key, value)
    yield RigEnv(tmp=tmp, minikube_home=minikube_home, kubeconfig=kubeconfig, kubectl=kubectl, env=dict(os.environ))
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    if not any((minikube_home / ".minikube" / "machines").glob("*/rig.json")):
        shutil.rmtree(tmp, ignore_errors=True)  # keep it when a machine survived: its logs explain why


def _start(
    rig: RigEnv, profile: str, *, fake_nodes: int = 0, args: tuple[str, ...] = (), env: dict | None = None
) -> RigCluster:
    run_env = {**rig.env, **(env or {})}
    if fake_nodes:
        run_env["DEVRIG_FAKE_NODES"] = str(fake_nodes)
    t0 = time.monotonic()
    result = subprocess.run(
        ["minikube", "start", "-p", profile, "--driver=docker", f"--kubernetes-version={KUBERNETES_VERSION}", *args],
        env=run_env,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
    )
    elapsed = time.monotonic() - t0
    if result.returncode != 0:
        _delete(rig, profile)
        pytest.fail(
            f"minikube start -p {profile} exited {result.returncode} after {elapsed:.1f}s\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}",
            pytrace=False,
        )
    return RigCluster(profile=profile, rig=rig, env=dict(rig.env), start_seconds=elapsed, fake_nodes=fake_nodes)


def _delete(rig: RigEnv, profile: str) -> None:
    result = subprocess.run(
        ["minikube", "delete", "-p", profile], env=rig.env, capture_output=True, text=True, timeout=DELETE_TIMEOUT
    )
    if result.returncode != 0:
        sys.stderr.write(f"warning: minikube delete -p {profile} exited {result.returncode}:\n{result.stderr}\n")


@pytest.fixture(scope="session")
def rig_built() -> None:
    """Skip (or, with CI=true, fail) unless scripts/build-rig has built the rig's binaries."""
    require_rig()


@pytest.fixture(scope="session")
def rig_cluster(rig_env: RigEnv) -> RigCluster:
    """The shared cluster: profile `devloop-rig-session`, started once per test run, deleted at the end.
    Tests must not break it (no delete/stop, no cluster-wide teardown); use rig_profile_factory for that."""
    require_rig()
    cluster = _start(rig_env, SESSION_PROFILE)
    yield cluster
    _delete(rig_env, SESSION_PROFILE)


@pytest.fixture(scope="module")
def rig_profile_factory(rig_env: RigEnv, request):
    """make(name=None, *, fake_nodes=0, args=(), env=None) -> RigCluster: a profile of the module's own.

    Every profile made is deleted when the module's tests are done (even if they failed)."""
    made: list[str] = []
    # short names: profile names end up in unix socket paths (see rig_env)
    module = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "-")[:12].strip("-")

    def make(
        name: str | None = None, *, fake_nodes: int = 0, args: tuple[str, ...] = (), env: dict | None = None
    ) -> RigCluster:
        require_rig(kwok=fake_nodes > 0)
        profile = name or f"{module}-{uuid.uuid4().hex[:6]}"
        made.append(profile)
        return _start(rig_env, profile, fake_nodes=fake_nodes, args=args, env=env)

    yield make
    for profile in reversed(made):
        _delete(rig_env, profile)


@pytest.fixture(scope="session")
def rig_handle(rig_env: RigEnv):
    """handle(profile) -> RigCluster for a profile the test starts itself (e.g. through `devloop up`).

    Nothing is started here; tests import no names from this file (pytest may load another
    conftest.py under the same module name)."""
    require_rig()
    return lambda profile: RigCluster(profile=profile, rig=rig_env, env=dict(rig_env.env))


@pytest.fixture(scope="module")
def workspace(request, tmp_path_factory) -> Path:
    """The module's copy of the sample workspace (tests edit it in file order).

    When the module names a minikube profile in PROFILE, the bundled profile pointed at it is written
    to <workspace>/../profile.yaml (pass it with --profile); the bundled profile itself stays untouched."""
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    return copy_workspace(
        tmp_path_factory.mktemp(name) / "workspace", minikube_profile=getattr(request.module, "PROFILE", None)
    )


def pytest_collection_modifyitems(config, items):
    for item in items:
        if CLUSTER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.rig)
