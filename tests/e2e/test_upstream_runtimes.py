"""The runtimes loop over the real checkouts: `devloop up` with the bundled profile over `make-workspace`'s output
builds runtime-python from upstream's runtimes checkout (upstream's `_kubeless.py`, Dockerfile.3.8's tail on the
rig's Python 3.9 base, devrig.functions), writes its tag into kubeless-config at python3.8's runtime entry, and the
real function controller runs the bundled `hello` Function on it. Then, during `devloop watch`, each edit of
`stable/python/_kubeless.py` (the `/healthz` answer) rebuilds the runtime, restarts the controller, and the step
waits until hello's Deployment runs the new image: the next call through the service proxy shows the edit.
Timed: save -> Functions moved, and save -> the call answers with the edit.

The workspace's kubeless.yaml names the rig's provision image (`kubeless/unzip:devrig`) for `provision-image`,
as a developer points kubeless-config at an image they have: the released digest cannot be pulled here.

Marker `upstream` (real Go builds through the Makefiles); run with `scripts/test upstream` or -m upstream.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from devrig import functions
from devrig import paths as rig_paths
from support import bundled_profile, run_devloop, wait_until
from support.watch import Watch

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
UPSTREAM = SHARED / "upstream"
FIXTURES = SHARED / "fixtures" / "kubeless"
HELLO = REPO / "devloop" / "profile" / "bundled" / "kubeless-verify" / "hello.yaml"
PROFILE = "devloop-rt-up"
NS = "kubeless"
FN_NS = "default"
COLD_BUILD = 3600  # seconds; guards against hangs only
EDITS = 2

pytestmark = [
    pytest.mark.rig,
    pytest.mark.destructive,
    pytest.mark.upstream,
    pytest.mark.slow,
    pytest.mark.timeout(COLD_BUILD + 1200),
]


@pytest.fixture(scope="module", autouse=True)
def selected(request) -> None:
    if "upstream" not in (request.config.getoption("-m") or "") and os.environ.get("DEVLOOP_UPSTREAM") != "1":
        pytest.skip("the upstream-workspace tests run with `scripts/test upstream` (pytest -m upstream)")


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    from test_upstream_kubeless import restore_ignored_vendor_packages

    root = tmp_path_factory.mktemp("upstream-runtimes")
    ws = root / "workspace"
    subprocess.run([str(UPSTREAM / "make-workspace"), str(ws)], check=True, capture_output=True, text=True, timeout=300)
    released = (FIXTURES / "kubeless.yaml").read_text()
    docs = list(yaml.safe_load_all(released))
    config = next(d for d in docs if d and d["kind"] == "ConfigMap")
    old = config["data"]["provision-image"]
    assert released.count(old) == 1, old
    (ws / "kubeless" / "kubeless.yaml").write_text(released.replace(old, functions.PROVISION_IMAGE))
    restore_ignored_vendor_packages(ws / "cronjob-trigger")
    profile = yaml.safe_load(bundled_profile().read_text())
    profile["cluster"]["profile"] = PROFILE
    (root / "profile.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return ws


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    gox = rig_paths.cache_dir() / "bin" / "gox"
    if not os.access(gox, os.X_OK):
        pytest.fail(f"gox is not installed at {gox}; run scripts/build-rig")
    # the test cluster's Python base, as an air-gapped user would name theirs (upstream's own Dockerfile.3.8
    # downloads Python, which nothing here can)
    return {
        "PATH": f"{gox.parent}{os.pathsep}{os.environ['PATH']}",
        "DEVRIG_NETWORK": "netns",
        "KUBELESS_PYTHON_BASE": functions.PYTHON_IMAGE,
    }


def devloop(cluster, ws: Path, env: dict, *args: str, timeout: float = COLD_BUILD):
    return run_devloop(
        *args, workspace=ws, profile=ws.parent / "profile.yaml", env=cluster.env, extra_env=env, timeout=timeout
    )


def proxy_get(cluster, path: str) -> str | None:
    got = cluster.kubectl(
        "get", "--raw", f"/api/v1/namespaces/{FN_NS}/services/hello:http-function-port/proxy{path}", check=False
    )
    return got.stdout if got.returncode == 0 else None


def hello_pod(cluster) -> dict | None:
    pods = cluster.kubectl_json("get", "pods", "-n", FN_NS, "-l", "function=hello")["items"]
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    return live[0] if len(live) == 1 else None


def story(cluster) -> str:
    return (
        cluster.kubectl("get", "pods,deploy", "-n", FN_NS, "-o", "wide", check=False).stdout
        + cluster.kubectl(
            "logs",
            "-n",
            NS,
            "deploy/kubeless-controller-manager",
            "-c",
            "kubeless-function-controller",
            "--tail=20",
            check=False,
        ).stdout
    )


def test_without_its_base_the_runtime_build_says_what_is_missing(cluster, ws, env):
    t0 = time.monotonic()
    run = devloop(cluster, ws, env, "up")
    print(
        f"\nfirst up over the upstream workspace (controllers built, no Python base yet): {time.monotonic() - t0:.0f}s"
    )
    assert run.returncode != 0, run.tail()
    steps = run.steps()
    assert steps.get("build runtime-python") == "failed", run.tail()
    assert all(steps[f"build {c}"] == "ok" for c in ("function-controller", "http-trigger-controller")), steps
    assert f"no base image {functions.PYTHON_IMAGE} in minikube's engine" in run.stdout + run.stderr, run.tail()


def test_up_runs_hello_on_the_runtime_built_from_the_checkout(cluster, ws, env):
    t0 = time.monotonic()
    images = functions.ensure_images({**cluster.env, **cluster.docker_env(), "DOCKER_BUILDKIT": "0"})
    print(f"\nthe rig's function images ({images}) in the engine: {time.monotonic() - t0:.0f}s")
    run = devloop(cluster, ws, env, "up")
    assert run.returncode == 0, run.tail()
    tag = run.result["tags"]["runtime-python"]
    assert run.result["built"] == ["runtime-python"]
    cluster.kubectl("apply", "-n", FN_NS, "-f", str(HELLO))
    answer = wait_until(lambda: proxy_get(cluster, "/"), 300, "hello to answer", detail=lambda: story(cluster))
    assert answer.strip() == "hello world"
    pod = hello_pod(cluster)
    assert pod is not None and pod["spec"]["containers"][0]["image"] == tag
    served = cluster.kubectl("exec", "-n", FN_NS, pod["metadata"]["name"], "--", "cat", "/_kubeless.py").stdout
    assert served == (ws / "runtimes" / "stable" / "python" / "_kubeless.py").read_text()


def test_an_edit_of_kubeless_py_moves_hello_to_the_new_runtime_and_the_next_call_shows_it(cluster, ws):
    source = ws / "runtimes" / "stable" / "python" / "_kubeless.py"
    original = source.read_text()
    assert original.count("    return 'OK'\n") == 1
    watch = Watch(cluster, ws, ws.parent / "profile.yaml")
    moved_s, answered_s = [], []
    try:
        first = watch.cycle(0, timeout=900)
        assert first["built"] == [], first
        for n in range(EDITS):
            mark = watch.mark()
            source.write_text(original.replace("    return 'OK'\n", f"    return 'OK edit-{n}'\n"))
            saved = time.monotonic()
            cycle = watch.cycle(mark, timeout=600)
            done = next(
                e for e in watch.since(mark) if e.get("step") == "runtimes" and e.get("status") not in ("start", None)
            )
            moved_s.append(time.monotonic() - saved)
            tag = cycle["tags"]["runtime-python"]
            assert cycle["built"] == ["runtime-python"], cycle
            assert done["status"] == "ok" and done["details"]["moved"] == {f"{FN_NS}/hello": tag}, done
            print(f"\nedit {n}: {done['note']}")
            wait_until(
                lambda n=n: (proxy_get(cluster, "/healthz") or "").strip() == f"OK edit-{n}",
                120,
                f"hello's /healthz to answer 'OK edit-{n}' from the new runtime",
                detail=lambda: story(cluster),
            )
            answered_s.append(time.monotonic() - saved)
            pod = hello_pod(cluster)
            assert pod is not None and pod["spec"]["containers"][0]["image"] == tag
            assert (proxy_get(cluster, "/") or "").strip() == "hello world"
        load = os.getloadavg()[0]
        for what, values in (("Functions moved", moved_s), ("the call shows the edit", answered_s)):
            print(
                f"save -> {what} through devloop watch ({EDITS} edits): median {statistics.median(values):.1f}s, "
                f"min {min(values):.1f}s, max {max(values):.1f}s; load {load:.1f}"
            )
    finally:
        watch.proc.terminate()
        watch.proc.wait(timeout=60)
        shutil.rmtree(ws.parent / "cache", ignore_errors=True)
