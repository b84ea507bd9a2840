"""Live update through `devloop watch` on the test cluster: the rebuilt binary copied into the running
container and restarted (same pod, same Deployment image), the image build where a live update cannot
be right, and a container that comes back from its image (so it runs the older binary) converged at once.

One watch process on a copy of the sample workspace with the bundled profile (which ships live update
for the three controllers). What runs is read from the container itself: the sample controller logs
`sources <sha256 of the files it was built from>`.
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
from pathlib import Path

import pytest

from support import run_devloop, wait_until
from support.watch import Watch

PROFILE = "devloop-live-e2e"
NS = "kubeless"
DEPLOY = "kubeless-controller-manager"
HTTP = "http-trigger-controller"
SOURCES = ("cmd/http-trigger-controller", "pkg", "go.mod", "go.sum")  # the sample Makefile's HTTP_SOURCES

pytestmark = [pytest.mark.rig, pytest.mark.destructive, pytest.mark.slow]


def sources_digest(checkout: Path) -> str:
    files = []
    for top in SOURCES:
        path = checkout / top
        files += (
            [top] if path.is_file() else [p.relative_to(checkout).as_posix() for p in path.rglob("*") if p.is_file()]
        )
    h = hashlib.sha256()
    for rel in sorted(files, key=str.encode):
        h.update((checkout / rel).read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    from support.workspace import copy_workspace

    return copy_workspace(tmp_path_factory.mktemp("live") / "ws", minikube_profile=PROFILE)


@pytest.fixture(scope="module")
def watch(cluster, workspace):
    w = Watch(cluster, workspace)
    w.cycle(0, timeout=900)
    yield w
    if w.proc.poll() is None:
        w.proc.send_signal(signal.SIGINT)
        try:
            w.proc.wait(120)
        except subprocess.TimeoutExpired:
            w.proc.kill()


def controller(cluster) -> tuple[str, str, int, str]:
    """(pod, docker container ID, restartCount, image) of the running http-trigger-controller."""
    pods = cluster.kubectl_json("get", "pods", "-n", NS, "-l", "kubeless=controller")["items"]
    for pod in pods:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        image = next(c["image"] for c in pod["spec"]["containers"] if c["name"] == HTTP)
        for st in pod["status"].get("containerStatuses") or []:
            if st["name"] == HTTP and st.get("state", {}).get("running"):
                return pod["metadata"]["name"], st["containerID"].split("://")[1], st["restartCount"], image
    raise AssertionError(f"no running {HTTP}: {json.dumps(pods)[:2000]}")


def deployment_image(cluster) -> str:
    dep = cluster.kubectl_json("get", "deployment", DEPLOY, "-n", NS)
    return next(c["image"] for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == HTTP)


def runs_sources(cluster, digest: str, timeout: float = 120) -> None:
    """Until the running http-trigger-controller container logs `sources <digest>`."""

    def seen():
        try:
            _, cid, _, _ = controller(cluster)
        except AssertionError:
            return False
        return f"sources {digest}" in cluster.docker("logs", cid, check=False).stdout

    wait_until(seen, timeout, f"the controller to run the build of sources {digest[:12]}", interval=0.2)


def edit(workspace: Path, rel: str, text: str) -> None:
    path = workspace / "http-trigger" / rel
    path.write_text(path.read_text() + text)


def test_an_edit_runs_in_the_same_container_without_a_rollout(cluster, workspace, watch):
    pod, cid, restarts, image = controller(cluster)
    mark = watch.mark()
    edit(workspace, "cmd/http-trigger-controller/main.go", "\n// live edit 1\n")
    ev = watch.live(mark)
    assert ev["components"] == [HTTP]
    runs_sources(cluster, sources_digest(workspace / "http-trigger"))
    assert controller(cluster) == (pod, cid, restarts, image)  # same pod, same container, same image
    assert deployment_image(cluster) == image
    assert not [e for e in watch.since(mark) if e["event"] == "cycle"]  # no image build, no rollout


def test_status_says_what_was_synced_over_which_image(cluster, workspace, watch):
    _, _, _, image = controller(cluster)
    run = run_devloop("status", profile=workspace.parent / "profile.yaml", workspace=workspace, env=cluster.env)
    assert run.returncode in (0, 1), run.tail()
    live = run.result["live_updates"]
    assert [entry["component"] for entry in live] == [HTTP]
    assert live[0]["description"].startswith(f"live-updated from {image} + synced /http-controller at ")


@pytest.mark.parametrize("rel", ["docker/http-controller/Dockerfile", "Makefile"])
def test_a_change_outside_the_live_inputs_rolls_out_the_image(cluster, workspace, watch, rel):
    before = deployment_image(cluster)
    mark = watch.mark()
    edit(workspace, rel, "\n# outside the live inputs\n")
    watch.cycle(mark)
    fell_back = [e for e in watch.since(mark) if e["event"] == "live-fallback"]
    assert fell_back and fell_back[0]["reasons"][HTTP].startswith("a change outside live_update.inputs")
    after = deployment_image(cluster)
    assert after != before
    wait_until(lambda: controller(cluster)[3] == after, 120, "the new pod to run")
    runs_sources(cluster, sources_digest(workspace / "http-trigger"))


def test_a_container_back_from_its_image_is_converged(cluster, workspace, watch):
    """After a live update the kubelet may restart the container from its image (here: killed), which
    would run the older binary: watch notices and rolls out the image of the current sources."""
    mark = watch.mark()
    edit(workspace, "pkg/utils/k8sutil.go", "\n// live edit 2\n")
    watch.live(mark)
    digest = sources_digest(workspace / "http-trigger")
    runs_sources(cluster, digest)
    _, cid, _, image = controller(cluster)
    mark = watch.mark()
    cluster.docker("kill", cid)
    lost = watch.wait(mark, lambda e: e["event"] == "live-lost", 60, "watch to notice the restarted container")
    assert HTTP in lost["components"]
    watch.cycle(mark)
    assert deployment_image(cluster) != image
    runs_sources(cluster, digest)  # the image now holds the same sources the live update had synced
    _, new_cid, _, new_image = controller(cluster)
    assert new_image == deployment_image(cluster) and new_cid != cid


def test_a_recreated_pod_is_converged_too(cluster, workspace, watch):
    mark = watch.mark()
    edit(workspace, "cmd/http-trigger-controller/main.go", "\n// live edit 3\n")
    watch.live(mark)
    pod, _, _, image = controller(cluster)
    mark = watch.mark()
    cluster.kubectl("delete", "pod", pod, "-n", NS, "--wait=false")
    watch.wait(mark, lambda e: e["event"] == "live-lost", 60, "watch to notice the recreated pod")
    watch.cycle(mark)
    assert deployment_image(cluster) != image
    runs_sources(cluster, sources_digest(workspace / "http-trigger"))


def test_ctrl_c_converges_the_deployment_to_the_real_image(cluster, workspace, watch):
    mark = watch.mark()
    edit(workspace, "cmd/http-trigger-controller/main.go", "\n// live edit 4\n")
    watch.live(mark)
    _, _, _, image = controller(cluster)
    watch.proc.send_signal(signal.SIGINT)
    assert watch.proc.wait(300) == 130, watch.tail(mark)
    assert deployment_image(cluster) != image
    run = run_devloop("status", profile=workspace.parent / "profile.yaml", workspace=workspace, env=cluster.env)
    assert run.result["live_updates"] == []
    runs_sources(cluster, sources_digest(workspace / "http-trigger"))
