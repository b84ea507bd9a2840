"""Faults in the middle of a step, on the test cluster: each command ends with a one-line reason and a
next step, `devloop status` tells the truth in between, and the next `devloop up` converges with no
manual repair.

One minikube profile for the module; the tests run in file order, as faults come in a day: minikube
start failing, the ingress addon failing, the API server killed during apply, the engine killed
during a build and during docker-env, a namespace stuck on a finalizer nobody removes, the engine's\ndisk full during a build, a checkout moved away while watch runs. The moment of a
kill is chosen by the test (the stand-in's DEVRIG_KILL_*_WHEN switch kills as soon as a marker file
appears), so it lands mid-step every time, not after some guessed number of seconds.

Each fault's observed message and time to recover are printed (`pytest -s`) and, when
DEVLOOP_FAULT_LOG names a file, appended to it as JSON lines.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from support import devloop_argv, run_devloop, wait_until

PROFILE = "devloop-faults"
NS = "kubeless"

pytestmark = [pytest.mark.rig, pytest.mark.destructive, pytest.mark.slow]


# -- helpers -------------------------------------------------------------------------------------
class Streamed:
    """A devloop run whose JSON events are read as they come; `on_event(ev)` may act on them."""

    def __init__(self, argv: list[str], env: dict, cwd: Path, on_event=None) -> None:
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.events: list[dict] = []
        self.stderr = ""
        self.on_event = on_event
        self._out = threading.Thread(target=self._read, daemon=True)
        self._out.start()
        self._err = threading.Thread(target=self._read_err, daemon=True)
        self._err.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.startswith("{"):
                ev = json.loads(line)
                ev["_t"] = time.monotonic()
                self.events.append(ev)
                if self.on_event is not None:
                    self.on_event(ev)

    def _read_err(self) -> None:
        self.stderr = self.proc.stderr.read()

    def wait(self, timeout: float) -> int:
        code = self.proc.wait(timeout)
        self._out.join(10)
        self._err.join(10)
        self.seconds = time.monotonic() - self.t0
        return code

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    @property
    def last(self) -> dict:
        return self.events[-1] if self.events else {}

    def steps(self) -> dict[str, str]:
        return {e["step"]: e["status"] for e in self.events if e.get("event") == "step" and e["status"] != "start"}

    def tail(self) -> str:
        return f"exit {self.proc.returncode}; last events {json.dumps(self.events[-6:], default=str)}\n{self.stderr[-2000:]}"


def record(name: str, **facts) -> None:
    line = json.dumps({"fault": name, **facts}, default=str)
    print(f"FAULT {line}")
    target = os.environ.get("DEVLOOP_FAULT_LOG")
    if target:
        with open(target, "a") as f:
            f.write(line + "\n")


def assert_one_line_reason(run, name: str) -> dict:
    """The run failed (exit 1) with an error event whose message is one line and which names a next step."""
    assert run.returncode == 1, run.tail()
    err = run.last
    assert err.get("event") == "error", run.tail()
    first = err["message"].splitlines()[0]
    assert first.strip(), err
    assert err.get("hint"), f"{name}: no next step in {err}"
    return err


@pytest.fixture(scope="module")
def env(rig_handle, workspace) -> dict:
    cluster = rig_handle(PROFILE)
    # The bundled profile asks for 4 CPUs and 8 GB: play a machine that has them (the stand-in checks).
    yield {
        **cluster.env,
        "XDG_CACHE_HOME": str(workspace.parent / "cache"),
        "XDG_STATE_HOME": str(workspace.parent / "state"),
        "DEVRIG_HOST_CPUS": "8",
        "DEVRIG_HOST_MEMORY_MB": "32768",
    }
    subprocess.run(["minikube", "delete", "-p", PROFILE], env=cluster.env, capture_output=True, timeout=300)


@pytest.fixture(scope="module")
def cluster(rig_handle):
    return rig_handle(PROFILE)


def devloop(
    env: dict, workspace: Path, *args: str, extra: dict | None = None, timeout: float = 900, profile: Path | None = None
):
    return run_devloop(
        *args,
        workspace=workspace,
        profile=profile or workspace.parent / "profile.yaml",
        env={**env, **(extra or {})},
        timeout=timeout,
    )


def stream(
    env: dict, workspace: Path, *args: str, extra: dict | None = None, on_event=None, profile: Path | None = None
) -> Streamed:
    argv = devloop_argv(*args, workspace=workspace, profile=profile or workspace.parent / "profile.yaml")
    return Streamed(argv, {**env, **(extra or {})}, workspace, on_event)


def status(env: dict, workspace: Path) -> dict:
    run = devloop(env, workspace, "status", timeout=300)
    assert run.events and run.events[-1]["event"] in ("result", "error"), run.tail()
    return run.events[-1]


def recover(env: dict, workspace: Path, name: str, **facts) -> float:
    """The next `devloop up` converges with no manual repair; returns its seconds."""
    t0 = time.monotonic()
    run = devloop(env, workspace, "up")
    seconds = time.monotonic() - t0
    assert run.returncode == 0, f"{name}: the next up did not converge\n{run.tail()}"
    record(name, recovered_in_s=round(seconds, 1), **facts)
    after = status(env, workspace)
    assert after["event"] == "result" and after.get("healthy", True), after
    return seconds


# -- the faults, in order ----------------------------------------------------------------------------
def test_minikube_start_failing(env, workspace):
    run = devloop(env, workspace, "up", extra={"DEVRIG_FAIL_START": "1"}, timeout=600)
    err = assert_one_line_reason(run, "start")
    assert "minikube" in err["message"]
    st = status(env, workspace)
    text = json.dumps(st)
    assert st["event"] == "result" and "Running" not in json.dumps(st.get("cluster", {})), text
    recover(
        env,
        workspace,
        "minikube start failing",
        message=err["message"].splitlines()[0],
        hint=err["hint"],
        ended_after_s=None,
    )


def test_addons_enable_failing(env, workspace, cluster):
    cluster.minikube("addons", "disable", "ingress")
    run = devloop(env, workspace, "up", extra={"DEVRIG_FAIL_ADDONS": "ingress"}, timeout=600)
    err = assert_one_line_reason(run, "addons")
    assert "ingress" in err["message"]
    assert run.steps().get("addons") == "failed", run.steps()
    recover(env, workspace, "addons enable failing", message=err["message"].splitlines()[0], hint=err["hint"])


def test_api_server_killed_during_apply(env, workspace, cluster, tmp_path):
    marker = tmp_path / "kill-apiserver"
    # Armed by `minikube start` (devloop's start on a running profile is a no-op, so arm it here).
    cluster.minikube(
        "start",
        "--kubernetes-version=v1.21.14",
        env={"DEVRIG_KILL_APISERVER_WHEN": str(marker)},
        timeout=300,
        check=True,
    )

    def on_event(ev):
        if ev.get("event") == "step" and ev.get("step") == "apply" and ev.get("status") == "start":
            marker.touch()

    run = stream(env, workspace, "apply", "--strategy", "apply", on_event=on_event)
    code = run.wait(600)
    assert marker.exists(), "apply never started"
    assert code == 1, run.tail()
    assert run.steps().get("apply") == "failed", f"the kill did not land during apply: {run.steps()}"
    err = assert_one_line_reason(run, "apply")
    st = status(env, workspace)
    assert st["event"] == "error" or "apiserver" in json.dumps(st).lower(), st
    recover(
        env,
        workspace,
        "API server killed during apply",
        message=err["message"].splitlines()[0],
        hint=err["hint"],
        ended_after_s=round(run.seconds, 1),
        status=st.get("message") or st.get("cluster"),
    )


def _kill_api_server_at_step(env, workspace, cluster, tmp_path, step: str, *args: str, name: str) -> None:
    """Arm the kill, run `devloop ARGS`, kill the API server the moment `step` starts; the command must
    fail in that step with a reason and a next step, status must say so, and up must converge."""
    marker = tmp_path / f"kill-apiserver-{step}"
    cluster.minikube(
        "start",
        "--kubernetes-version=v1.21.14",
        env={"DEVRIG_KILL_APISERVER_WHEN": str(marker)},
        timeout=300,
        check=True,
    )

    def on_event(ev):
        if ev.get("event") == "step" and ev.get("step") == step and ev.get("status") == "start":
            marker.touch()

    run = stream(env, workspace, *args, on_event=on_event)
    code = run.wait(900)
    assert marker.exists(), f"{step} never started: {run.tail()}"
    assert code == 1, run.tail()
    assert run.steps().get(step) == "failed", f"the kill did not land during {step}: {run.steps()}"
    err = assert_one_line_reason(run, step)
    st = status(env, workspace)
    assert st["event"] == "error" or "apiserver" in json.dumps(st).lower(), st
    recover(
        env,
        workspace,
        name,
        message=err["message"].splitlines()[0],
        hint=err["hint"],
        ended_after_s=round(run.seconds, 1),
    )


def test_api_server_killed_during_clean(env, workspace, cluster, tmp_path):
    # Functions whose finalizer nobody removes (controllers scaled away): clean has work to do.
    cluster.kubectl("scale", "deployment", "kubeless-controller-manager", "-n", NS, "--replicas=0")
    for i in range(10):
        cluster.kubectl(
            "apply",
            "-f",
            "-",
            input=FUNCTION.replace("name: stuck", f"name: f{i}").replace("namespace: doomed", f"namespace: {NS}"),
        )
    _kill_api_server_at_step(env, workspace, cluster, tmp_path, "clean", "clean", name="API server killed during clean")
    done = devloop(env, workspace, "clean")
    assert done.returncode == 0, done.tail()


def test_api_server_killed_during_the_rollout_wait(env, workspace, cluster, tmp_path):
    (workspace / "cronjob-trigger" / "cmd" / "cronjob-trigger-controller" / "main.go").open("a").write(
        "// rollout fault\n"
    )
    _kill_api_server_at_step(
        env, workspace, cluster, tmp_path, "rollout", "up", name="API server killed during the rollout wait"
    )


def _profile_with_build_prefix(workspace: Path, component: str, prefix: str) -> Path:
    data = yaml.safe_load((workspace.parent / "profile.yaml").read_text())
    for comp in data["components"]:
        if comp["name"] == component:
            comp["build"] = f"{prefix}; {comp['build']}"
    path = workspace.parent / "profile-build-fault.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_engine_killed_during_a_build(env, workspace, cluster, tmp_path):
    marker = tmp_path / "kill-dockerd"
    cluster.minikube(
        "start", "--kubernetes-version=v1.21.14", env={"DEVRIG_KILL_DOCKERD_WHEN": str(marker)}, timeout=300, check=True
    )
    # The build asks for the kill, then goes on only once the engine is really gone: mid-build, every time.
    wait_gone = "for i in $(seq 200); do docker version >/dev/null 2>&1 || break; sleep 0.05; done"
    profile = _profile_with_build_prefix(
        workspace, "http-trigger-controller", f"touch {shlex.quote(str(marker))}; {wait_gone}"
    )
    run = stream(env, workspace, "build", "--force", "http-trigger-controller", profile=profile)
    code = run.wait(600)
    assert marker.exists()
    assert code == 1, run.tail()
    err = assert_one_line_reason(run, "build")
    st = status(env, workspace)
    recover(
        env,
        workspace,
        "engine killed during a build",
        message=err["message"].splitlines()[0],
        hint=err["hint"],
        ended_after_s=round(run.seconds, 1),
        status=st.get("docker_env") or st.get("message"),
    )


def test_engine_killed_during_docker_env(env, workspace, cluster):
    # devloop reuses docker-env's recorded answer while minikube's config.json is unchanged; a start
    # rewrites it, so this up asks minikube again (and the engine dies right after docker-env checked it).
    cluster.minikube(
        "start",
        "--kubernetes-version=v1.21.14",
        timeout=300,
        check=True,
        env={"DEVRIG_HOST_CPUS": "8", "DEVRIG_HOST_MEMORY_MB": "32768"},
    )
    (workspace / "http-trigger" / "cmd" / "http-trigger-controller" / "main.go").open("a").write(
        "// docker-env fault\n"
    )
    run = devloop(env, workspace, "up", extra={"DEVRIG_KILL_DOCKERD_DURING": "docker-env"}, timeout=600)
    err = assert_one_line_reason(run, "docker-env")
    st = status(env, workspace)
    recover(
        env,
        workspace,
        "engine killed during docker-env",
        message=err["message"].splitlines()[0],
        hint=err["hint"],
        status=st.get("docker_env") or st.get("message"),
    )


FUNCTION = """
apiVersion: kubeless.io/v1beta1
kind: Function
metadata:
  name: stuck
  namespace: doomed
  finalizers: [kubeless.io/function]
spec:
  runtime: python3.7
  handler: f.handler
  function: "def handler(e, c): return 1"
"""


def test_a_finalizer_nobody_removes_in_a_namespace_being_deleted(env, workspace, cluster):
    cluster.kubectl("create", "namespace", "doomed")
    cluster.kubectl("apply", "-f", "-", input=FUNCTION)
    cluster.kubectl("delete", "namespace", "doomed", "--wait=false")
    wait_until(
        lambda: cluster.kubectl_json("get", "namespace", "doomed")["status"].get("phase") == "Terminating",
        60,
        "the namespace to be Terminating",
    )
    # The namespace controller marks its Function for deletion a moment after the namespace turns
    # Terminating; from then on status must name the stuck object.
    wait_until(
        lambda: "doomed" in json.dumps(status(env, workspace).get("stuck", [])),
        60,
        "status to name the Function stuck in namespace doomed",
        detail=lambda: status(env, workspace),
    )
    t0 = time.monotonic()
    run = devloop(env, workspace, "clean", timeout=600)
    assert run.returncode == 0, run.tail()
    wait_until(
        lambda: cluster.kubectl("get", "namespace", "doomed", check=False).returncode != 0,
        120,
        "the namespace to finish deleting",
    )
    record(
        "finalizer in a namespace being deleted",
        message="devloop clean stripped it",
        recovered_in_s=round(time.monotonic() - t0, 1),
    )
    recover(env, workspace, "after the stuck namespace")


def rig_fault(cluster, *args: str) -> str:
    """`python -m devrig.standin.faults ARGS` (kill a part now, give the engine room again)."""
    done = subprocess.run(
        [sys.executable, "-m", "devrig.standin.faults", *args],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"faults {' '.join(args)}: exit {done.returncode}\n{done.stdout}{done.stderr}"
    return done.stdout.strip()


def kill_engine(cluster) -> None:
    """SIGKILL the profile's dockerd and wait until its process is really gone: a start before that finds
    dockerd's pid file naming a live process and refuses ("pid file found")."""
    said = rig_fault(cluster, "kill", "dockerd", PROFILE)
    print(said)
    pid = said.rsplit("pid ", 1)[-1].rstrip(")")
    assert pid.isdigit(), said
    wait_until(
        lambda: not Path(f"/proc/{pid}").exists(),
        60,
        f"the killed dockerd (pid {pid}) to be gone",
        detail=lambda: Path(f"/proc/{pid}/status").read_text() if Path(f"/proc/{pid}").exists() else "",
    )


def _first(events: list[dict], since: int, match) -> dict | None:
    return next((e for e in events[since:] if match(e)), None)


def _built(comp: str):
    return lambda e: e.get("event") == "cycle" and e.get("status") == "ok" and comp in (e.get("built") or [])


def test_disk_full_during_a_build(env, workspace, cluster):
    """The engine's data root on a tmpfs with 32 MB of room; a build whose context and layer take 64 MB."""
    base = devloop(env, workspace, "up")
    assert base.returncode == 0, base.tail()
    comp, context = "http-trigger-controller", workspace / "http-trigger" / "docker" / "http-controller"
    dockerfile = context / "Dockerfile"
    original = dockerfile.read_text()
    start_env = {"DEVRIG_HOST_CPUS": "8", "DEVRIG_HOST_MEMORY_MB": "32768"}
    kill_engine(cluster)
    cluster.minikube(
        "start",
        "--kubernetes-version=v1.21.14",
        env={**start_env, "DEVRIG_ENGINE_DISK_FREE_MB": "32"},
        timeout=600,
        check=True,
    )
    watch = None
    try:
        (context / "fill").write_bytes(os.urandom(64 << 20))
        dockerfile.write_text(original + "ADD fill /fill\n")
        run = stream(env, workspace, "up")
        code = run.wait(900)
        assert code == 1, run.tail()
        err = assert_one_line_reason(run, "disk full")
        first, *tail = err["message"].splitlines()
        assert "no space left on device" in first and comp in first, err
        assert "docker system prune" in err["hint"] and "--disk-size" in err["hint"], err
        assert any("no space left on device" in line for line in tail), f"no build output under the reason: {err}"
        assert run.steps().get(f"build {comp}") == "failed", run.steps()
        st = status(env, workspace)
        state = {c["name"]: c for c in st.get("components", [])}[comp]["state"]
        assert state.startswith("sources changed since the running build"), st

        # watch: the failure is shown and watching goes on; once there is room, the next edit deploys
        watch = stream(env, workspace, "watch", "--no-initial", "--no-live-update")
        wait_until(
            lambda: any(e.get("event") == "watching" for e in watch.events), 120, "watch to start", detail=watch.tail
        )
        main = workspace / "http-trigger" / "cmd" / "http-trigger-controller" / "main.go"
        main.write_text(main.read_text() + "// disk full, in watch\n")
        failed = wait_until(
            lambda: _first(watch.events, 0, lambda e: e.get("event") == "cycle"),
            600,
            "watch's cycle for the edit",
            detail=watch.tail,
        )
        assert failed["status"] == "failed" and "no space left on device" in failed["message"], failed
        assert watch.proc.poll() is None, "watch ended after a full disk"
        mark = len(watch.events)
        print(rig_fault(cluster, "disk", PROFILE, "2048"))
        t0 = time.monotonic()
        main.write_text(main.read_text() + "// room again\n")
        ok = wait_until(
            lambda: _first(watch.events, mark, _built(comp)),
            600,
            "watch to build the component once the engine has room",
            detail=watch.tail,
        )
        watch_recovered = time.monotonic() - t0
        assert watch.proc.poll() is None
    finally:
        if watch is not None and watch.proc.poll() is None:
            watch.proc.send_signal(2)
            watch.wait(60)
    record(
        "disk full during a build (watch)",
        message=failed["message"].splitlines()[0],
        recovered_in_s=round(watch_recovered, 1),
        built=ok.get("built"),
    )
    recover(
        env,
        workspace,
        "disk full during a build",
        message=first,
        hint=err["hint"],
        engine_said=next(line.strip() for line in tail if "no space left on device" in line),
        ended_after_s=round(run.seconds, 1),
        status=state,
    )
    # Teardown: the engine back on its on-disk data root (its tmpfs goes with its mount namespace), the
    # component as it was; the next up converges on that too.
    dockerfile.write_text(original)
    (context / "fill").unlink()
    kill_engine(cluster)
    cluster.minikube("start", "--kubernetes-version=v1.21.14", env=start_env, timeout=600, check=True)
    recover(env, workspace, "after the disk-full fault (engine restarted on disk)")


def test_checkout_deleted_while_watch_runs_then_restored(env, workspace):
    """A checkout moved away while watch runs: said once, its component left as deployed, other components
    still rebuilt; moved back: watched again, one cycle for it, and later edits there are built."""
    checkout = workspace / "http-trigger"
    aside = workspace.parent / "http-trigger.aside"
    comp = "http-trigger-controller"
    watch = stream(env, workspace, "watch", "--no-live-update")
    try:
        wait_until(
            lambda: _first(watch.events, 0, lambda e: e.get("event") == "cycle"),
            900,
            "watch's first cycle",
            detail=watch.tail,
        )
        assert _first(watch.events, 0, lambda e: e.get("event") == "cycle")["status"] == "ok", watch.tail()
        mark = len(watch.events)
        t_gone = time.monotonic()
        checkout.rename(aside)
        gone = wait_until(
            lambda: _first(watch.events, mark, lambda e: e.get("event") == "directory"),
            60,
            "watch to notice the missing checkout",
            detail=watch.tail,
        )
        noticed = time.monotonic() - t_gone
        assert gone["status"] == "gone" and gone["path"] == "http-trigger", gone
        assert gone["message"].startswith("http-trigger is gone: waiting for it to come back"), gone
        st = status(env, workspace)
        comps = {c["name"]: c for c in st.get("components", [])}
        assert "fingerprint failed" in comps[comp]["state"], comps

        # another checkout is still watched and rebuilt; the gone one is left as deployed
        other = workspace / "cronjob-trigger" / "cmd" / "cronjob-trigger-controller" / "main.go"
        other.write_text(other.read_text() + "// while http-trigger is away\n")
        rebuilt = wait_until(
            lambda: _first(watch.events, mark, lambda e: e.get("event") == "cycle"),
            600,
            "a cycle for the edit in cronjob-trigger",
            detail=watch.tail,
        )
        assert rebuilt["status"] == "ok" and "cronjob-trigger-controller" in rebuilt["built"], rebuilt
        assert watch.proc.poll() is None, "watch ended instead of going on"

        mark = len(watch.events)
        t0 = time.monotonic()
        aside.rename(checkout)
        back = wait_until(
            lambda: _first(watch.events, mark, lambda e: e.get("event") == "cycle"),
            600,
            "watch to run a cycle once the checkout is back",
            detail=watch.tail,
        )
        recovered = time.monotonic() - t0
        assert back["status"] == "ok" and back["components"] == [comp], back
        # the restored checkout is watched again: an edit there rebuilds its component
        mark = len(watch.events)
        main = checkout / "cmd" / "http-trigger-controller" / "main.go"
        main.write_text(main.read_text() + "// after the restore\n")
        again = wait_until(
            lambda: _first(watch.events, mark, lambda e: e.get("event") == "cycle"),
            600,
            "a cycle for an edit in the restored checkout",
            detail=watch.tail,
        )
        assert again["status"] == "ok" and comp in (again.get("built") or []), again
        said = [e for e in watch.events if e.get("event") == "directory"]
        assert [e["status"] for e in said] == ["gone", "back"], said
        assert not any(e.get("event") == "cycle" and e.get("status") == "failed" for e in watch.events), watch.tail()
    finally:
        if aside.exists() and not checkout.exists():
            aside.rename(checkout)
        watch.proc.send_signal(2)
        watch.wait(60)
    record(
        "workspace checkout moved away while watch runs, then restored",
        message=gone["message"],
        noticed_in_s=round(noticed, 1),
        recovered_in_s=round(recovered, 1),
        built_after_restore=back.get("built"),
    )
