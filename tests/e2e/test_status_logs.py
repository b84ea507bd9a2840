"""`devloop status` and `devloop logs` as a user runs them, against the test cluster's real node.

The module brings the sample workspace up once (its own minikube profile), then reads it back:
what runs, what is built, what is stale, what is stuck, and the containers' own output.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from support import run_devloop, spawn_devloop

PROFILE = "devloop-status-e2e"
NS = "kubeless"
COMPONENTS = ["function-controller", "function-image-builder", "http-trigger-controller", "cronjob-trigger-controller"]

pytestmark = [pytest.mark.rig, pytest.mark.destructive, pytest.mark.slow]


def devloop(cluster, workspace: Path, *args: str, timeout: float = 900, json_mode: bool = True):
    """This module's runs: its own profile.yaml (see the workspace fixture), the cluster's environment."""
    return run_devloop(
        *args,
        workspace=workspace,
        profile=workspace.parent / "profile.yaml",
        env=cluster.env,
        json_mode=json_mode,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def up(cluster, workspace):
    done = devloop(cluster, workspace, "up")
    assert done.returncode == 0, done.tail()
    return done.result


def test_status_of_a_cluster_that_does_not_exist(cluster, workspace):
    done = devloop(cluster, workspace, "status")
    assert done.returncode == 0, done.tail()
    st = done.result
    # a profile minikube has never heard of: `minikube status` exits 85, which reads as Missing
    assert st["cluster"]["state"] == "Missing" and "error" not in st["cluster"], st["cluster"]
    assert st["healthy"] is False
    # fingerprints need no cluster
    assert [c["name"] for c in st["components"]] == [*COMPONENTS, "runtime-python"]
    assert all(c["tag"].split(":")[1].startswith("dev-") for c in st["components"])


def test_status_after_up(up, cluster, workspace):
    st = devloop(cluster, workspace, "status").result
    assert st["cluster"]["state"] == "Running"
    env = st["docker_env"]
    assert env["matches"] is True and env["daemon"] == PROFILE and env["DOCKER_HOST"].startswith("tcp://")
    comps = {c["name"]: c for c in st["components"]}
    for name in COMPONENTS:
        assert comps[name]["tag"] == up["tags"][name]
        assert comps[name]["built"] is True
        assert comps[name]["running"] == [up["tags"][name]], comps[name]
        assert comps[name]["state"] == "up to date"
    assert any("builder-image" in w for w in comps["function-image-builder"]["running_in"])
    (dep,) = st["deployments"]
    assert (dep["namespace"], dep["name"], dep["state"]) == (NS, "kubeless-controller-manager", "rolled out")
    assert {c["resource"]: c["count"] for c in st["cleanup"]} == {
        "httptriggers.kubeless.io": 0,
        "cronjobtriggers.kubeless.io": 0,
        "functions.kubeless.io": 0,
    }
    assert st["stuck"] == [] and st["healthy"] is True
    # and for people
    text = devloop(cluster, workspace, "status", json_mode=False)
    assert text.returncode == 0
    shown = text.stdout + text.stderr
    assert "kubeless-controller-manager" in shown and "up to date" in shown


def test_status_names_a_component_whose_sources_changed(up, cluster, workspace):
    main = workspace / "http-trigger/cmd/http-trigger-controller/main.go"
    original = main.read_text()
    main.write_text(original + "\n// not built yet\n")
    try:
        st = devloop(cluster, workspace, "status").result
    finally:
        main.write_text(original)
    comps = {c["name"]: c for c in st["components"]}
    stale = comps["http-trigger-controller"]
    assert stale["built"] is False and stale["running"] == [up["tags"]["http-trigger-controller"]]
    assert "sources changed" in stale["state"]
    assert comps["function-controller"]["state"] == "up to date"
    assert st["healthy"] is False


def test_status_shows_objects_stuck_in_deletion_with_their_finalizers(up, cluster, workspace):
    # The sample controllers never remove their finalizers (as Kubeless's do when not running).
    fn = {
        "apiVersion": "kubeless.io/v1beta1",
        "kind": "Function",
        "metadata": {"name": "stuck-fn", "namespace": NS, "finalizers": ["kubeless.io/function"]},
        "spec": {"runtime": "python3.7", "handler": "h.f", "function": "def f(e, c): return 1", "deps": ""},
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(fn))
    cluster.kubectl("delete", "function", "stuck-fn", "-n", NS, "--wait=false")
    try:
        st = devloop(cluster, workspace, "status").result
        counts = {c["resource"]: c["count"] for c in st["cleanup"]}
        assert counts["functions.kubeless.io"] == 1
        (stuck,) = st["stuck"]
        assert (stuck["kind"], stuck["namespace"], stuck["name"]) == ("functions.kubeless.io", NS, "stuck-fn")
        assert stuck["finalizers"] == ["kubeless.io/function"] and stuck["deleting_since"]
        text = devloop(cluster, workspace, "status", json_mode=False)
        assert "stuck-fn" in text.stdout + text.stderr and "kubeless.io/function" in text.stdout + text.stderr
    finally:
        cluster.kubectl(
            "patch",
            "function",
            "stuck-fn",
            "-n",
            NS,
            "--type=merge",
            "-p",
            '{"metadata":{"finalizers":[]}}',
            check=False,
        )


def test_logs_of_a_component_are_its_containers_output(up, cluster, workspace):
    done = devloop(cluster, workspace, "logs", "http-trigger-controller", json_mode=False, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("build id "), lines
    pod = cluster.kubectl_json("get", "pods", "-n", NS, "-l", "kubeless=controller")["items"][0]
    direct = cluster.kubectl("logs", "-n", NS, pod["metadata"]["name"], "-c", "http-trigger-controller").stdout
    assert done.stdout == direct


def test_logs_of_all_components_are_labelled(up, cluster, workspace):
    done = devloop(cluster, workspace, "logs", json_mode=False, timeout=60)
    assert done.returncode == 0, done.stderr
    containers = {"kubeless-function-controller", "http-trigger-controller", "cronjob-trigger-controller"}
    seen = {c for line in done.stdout.splitlines() for c in containers if f"/{c}" in line.split(" ", 1)[0]}
    assert seen == containers, done.stdout


def test_logs_of_an_unknown_component_says_which_exist(up, cluster, workspace):
    done = devloop(cluster, workspace, "logs", "nope", json_mode=False, timeout=60)
    assert done.returncode == 2
    assert "function-controller" in done.stderr


def test_logs_follow_streams_until_interrupted(up, cluster, workspace):
    proc = spawn_devloop(
        "logs",
        "cronjob-trigger-controller",
        "-f",
        workspace=workspace,
        profile=workspace.parent / "profile.yaml",
        env=cluster.env,
        json_mode=False,
    )
    try:
        first = proc.stdout.readline()
        assert first.startswith("build id "), first
        time.sleep(1.0)
        assert proc.poll() is None  # still following
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 130  # a deadline against hanging, not a speed goal
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
