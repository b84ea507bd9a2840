"""Runtimes as components on the test cluster, over the sample workspace: the bundled profile's `runtime-python`
(the sample's `runtimes/stable/python`, FROM scratch) is built, its tag is written into kubeless-config's
`runtime-images` at python 3.8's runtime entry, and an edit of `_kubeless.py` during `devloop watch` rebuilds only
it, puts the new tag there and restarts the controller Deployment (the function controller reads the list only
at start). The sample controllers are stand-ins that start no Function, so no Function moves here: the step says
so (test_upstream_runtimes.py moves a real one). Each save → runtimes step done is printed (timings, not
assertions)."""

from __future__ import annotations

import json
import os
import statistics
import time

import pytest

from support import run_devloop
from support.watch import Watch

PROFILE = "devloop-runtimes-e2e"
NS = "kubeless"
DEPLOY = "kubeless-controller-manager"
EDITS = 3

pytestmark = [pytest.mark.rig, pytest.mark.destructive]


def runtime_image(cluster, version: str = "3.8", phase: str = "runtime") -> str:
    config = cluster.kubectl_json("get", "configmap", "kubeless-config", "-n", NS)
    python = next(r for r in json.loads(config["data"]["runtime-images"]) if r["ID"] == "python")
    images = next(v for v in python["versions"] if v["version"] == version)["images"]
    return next(i for i in images if i["phase"] == phase)["image"]


def controller_pod(cluster) -> dict:
    pods = cluster.kubectl_json("get", "pods", "-n", NS, "-l", "kubeless=controller")["items"]
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    assert len(live) == 1, [p["metadata"]["name"] for p in live]
    return live[0]


@pytest.fixture(scope="module")
def up(cluster, workspace):
    run = run_devloop("up", workspace=workspace, profile=workspace.parent / "profile.yaml", env=cluster.env)
    assert run.returncode == 0, run.tail()
    return run


def test_up_builds_the_runtime_and_writes_its_tag_into_runtime_images(up, cluster):
    tag = up.result["tags"]["runtime-python"]
    assert "runtime-python" in up.result["built"]
    assert tag.startswith("kubeless-python:dev-")
    assert runtime_image(cluster) == tag
    # only that entry: 3.7's runtime and 3.8's installation image stay as released
    assert runtime_image(cluster, "3.7").startswith("kubeless/python@sha256:")
    assert runtime_image(cluster, "3.8", "installation") == "python:3.8"
    # the image devloop built is in minikube's engine, with upstream's tail of Dockerfile.3.8
    config = json.loads(cluster.docker("image", "inspect", tag, "--format", "{{json .Config}}").stdout)
    assert config["Cmd"] == ["python", "/_kubeless.py"] and config["User"] == "1000"
    step = next(e for e in up.events if e.get("step") == "runtimes" and e["status"] != "start")
    assert step["status"] == "ok", step
    # the controller was just created by this up: nothing to restart, no Functions yet
    assert step["details"]["restarted"] == [] and step["details"]["moved"] == {}


def test_an_edit_of_kubeless_py_while_watching_rebuilds_only_it_and_restarts_the_controller(up, cluster, workspace):
    watch = Watch(cluster, workspace)
    try:
        first = watch.cycle(0, timeout=600)
        assert first["built"] == [], first  # up built everything already
        source = workspace / "runtimes" / "stable" / "python" / "_kubeless.py"
        seconds = []
        for n in range(EDITS):
            before_tag = runtime_image(cluster)
            before_pod = controller_pod(cluster)
            mark = watch.mark()
            source.write_text(source.read_text() + f"# edit {n} while watching\n")
            saved = time.monotonic()
            changes = watch.wait(mark, lambda e: e["event"] == "changes", 10, "the edit to be noticed")
            assert changes["components"] == ["runtime-python"], changes
            cycle = watch.cycle(mark)
            done = next(
                e for e in watch.since(mark) if e.get("step") == "runtimes" and e.get("status") not in ("start", None)
            )
            seconds.append(time.monotonic() - saved)
            assert cycle["built"] == ["runtime-python"], cycle
            new_tag = cycle["tags"]["runtime-python"]
            assert new_tag != before_tag and runtime_image(cluster) == new_tag
            assert done["status"] == "ok", done
            # apply restarted the controller (it reads kubeless-config by configMapKeyRef); the step did not
            # restart it again, and says there was no Function to move
            assert "Deployment/kubeless/kubeless-controller-manager" in cycle["restarted"], cycle
            assert done["details"]["restarted"] == [] and done["details"]["moved"] == {}
            assert "no Functions of python3.8" in done["note"], done
            after_pod = controller_pod(cluster)
            assert after_pod["metadata"]["uid"] != before_pod["metadata"]["uid"]
            restarted_at = after_pod["metadata"].get("annotations", {}).get("kubectl.kubernetes.io/restartedAt")
            assert restarted_at, after_pod["metadata"]
            assert all(c["ready"] for c in after_pod["status"]["containerStatuses"])
        load = os.getloadavg()[0]
        print(
            f"\nsave -> runtimes step done through devloop watch ({EDITS} edits): median "
            f"{statistics.median(seconds):.1f}s, min {min(seconds):.1f}s, max {max(seconds):.1f}s; load {load:.1f}"
        )
    finally:
        watch.proc.terminate()
        watch.proc.wait(timeout=60)
