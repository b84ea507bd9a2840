"""`devloop` as a user runs it, as a subprocess, against the test cluster.

The bundled Kubeless profile runs unchanged on a copy of the sample workspace: devloop itself starts
minikube profile `devloop-kubeless` through the stand-in (real control plane, real kubelet node,
minikube's Docker engine over TLS). The tests run in file order and share that cluster, the way a
developer's day does: up from nothing, up again, edit, apply over stuck finalizers, refuse a wrong
context, reset a broken cluster.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest
import yaml

from support import FIXTURE_WORKSPACE, run_devloop

PROFILE = "devloop-kubeless"  # the bundled profile's minikube profile
NS = "kubeless"
DEPLOY = "kubeless-controller-manager"

pytestmark = [pytest.mark.rig, pytest.mark.destructive]


def devloop(cluster, workspace: Path, *args: str, timeout: float = 900, env: dict | None = None, json_mode=True):
    """The bundled profile, unchanged (no --profile unless a test passes one), in the cluster's environment."""
    return run_devloop(*args, workspace=workspace, env=cluster.env, extra_env=env, json_mode=json_mode, timeout=timeout)


def controller_pods(cluster) -> list[dict]:
    pods = cluster.kubectl_json("get", "pods", "-n", NS, "-l", "kubeless=controller")["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def image_id(cluster, tag: str) -> str:
    return cluster.docker("image", "inspect", tag, "--format", "{{.Id}}").stdout.strip()


def test_up_brings_everything_up_from_nothing(cluster, workspace):
    run = devloop(cluster, workspace, "up")
    assert run.returncode == 0, run.tail()
    result = run.result
    tags = result["tags"]
    assert (
        sorted(result["built"])
        == sorted(tags)
        == sorted(
            [
                "function-controller",
                "function-image-builder",
                "http-trigger-controller",
                "cronjob-trigger-controller",
                "runtime-python",
            ]
        )
    )

    (pod,) = controller_pods(cluster)
    by_container = {c["name"]: c for c in pod["status"]["containerStatuses"]}
    expected = {
        "kubeless-function-controller": tags["function-controller"],
        "http-trigger-controller": tags["http-trigger-controller"],
        "cronjob-trigger-controller": tags["cronjob-trigger-controller"],
    }
    for container, tag in expected.items():
        status = by_container[container]
        assert status["ready"], status
        assert status["image"].endswith(tag)
        # The pod runs exactly the image devloop built in minikube's daemon, not a pulled one.
        assert status["imageID"].split("sha256:")[-1] == image_id(cluster, tag).split("sha256:")[-1]
        logs = cluster.kubectl("logs", "-n", NS, pod["metadata"]["name"], "-c", container).stdout
        assert "build id" in logs

    config = cluster.kubectl_json("get", "configmap", "kubeless-config", "-n", NS)
    assert config["data"]["builder-image"] == tags["function-image-builder"]
    addons = json.loads(cluster.minikube("addons", "list", "-o", "json", check=True).stdout)
    assert addons["ingress"]["Status"] == "enabled"


def test_second_up_builds_nothing_and_restarts_nothing(cluster, workspace):
    (before,) = controller_pods(cluster)
    run = devloop(cluster, workspace, "up")
    assert run.returncode == 0, run.tail()
    result = run.result
    assert result["built"] == []
    assert result["changed_objects"] == [] and result["restarted"] == []
    statuses = run.steps()
    assert all(statuses[f"build {name}"] == "skipped" for name in result["tags"])
    (after,) = controller_pods(cluster)
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert [c["restartCount"] for c in after["status"]["containerStatuses"]] == [0, 0, 0]


def test_source_edit_rolls_out_a_new_tag_for_that_component_only(cluster, workspace):
    (before,) = controller_pods(cluster)
    old = {c["name"]: c["image"] for c in before["spec"]["containers"]}
    main = workspace / "http-trigger" / "cmd" / "http-trigger-controller" / "main.go"
    main.write_text(main.read_text() + "\n// an edit\n")

    run = devloop(cluster, workspace, "up")
    assert run.returncode == 0, run.tail()
    result = run.result
    assert result["built"] == ["http-trigger-controller"]

    (after,) = controller_pods(cluster)
    new = {c["name"]: c["image"] for c in after["spec"]["containers"]}
    assert new["http-trigger-controller"] == result["tags"]["http-trigger-controller"] != old["http-trigger-controller"]
    assert new["kubeless-function-controller"] == old["kubeless-function-controller"]
    assert new["cronjob-trigger-controller"] == old["cronjob-trigger-controller"]
    assert all(c["ready"] for c in after["status"]["containerStatuses"])


def test_component_that_keeps_latest_is_deployed_with_a_dev_tag(cluster, workspace, tmp_path):
    # The manifest says `:latest` with no pull policy (Kubernetes then pulls Always, and with no
    # registry that is ImagePullBackOff); devloop renders its own tag with IfNotPresent.
    app = workspace / "latest-app"
    app.mkdir()
    shutil.copy(workspace / "http-trigger" / "Makefile", app / "Makefile")
    for sub in ("cmd", "docker", "script", "go.mod", "go.sum", "pkg"):
        src = workspace / "http-trigger" / sub
        (shutil.copytree if src.is_dir() else shutil.copy)(src, app / sub)
    (app / "app.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "latest-app", "namespace": "latest"},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": "latest-app"}},
                    "template": {
                        "metadata": {"labels": {"app": "latest-app"}},
                        "spec": {"containers": [{"name": "app", "image": "example/latest-app:latest"}]},
                    },
                },
            }
        )
    )
    profile = tmp_path / "latest.yaml"
    profile.write_text(
        yaml.safe_dump(
            {
                "name": "latest",
                "cluster": {"profile": PROFILE, "kubernetes_version": "v1.21.14", "allow_unsupported_kubernetes": True},
                "namespace": "latest",
                "components": [
                    {
                        "name": "app",
                        "dir": "latest-app",
                        "image": "latest-app",
                        "build": "make http-controller-image HTTP_CONTROLLER_IMAGE={image}",
                        "replaces": ["example/latest-app"],
                    }
                ],
                "manifests": ["latest-app/app.yaml"],
                "ignore": ["bundles/", "docker/http-controller/http-controller"],
            }
        )
    )
    run = devloop(cluster, workspace, "up", "--profile", str(profile))
    assert run.returncode == 0, run.tail()
    deploy = cluster.kubectl_json("get", "deployment", "latest-app", "-n", "latest")
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    assert container["image"].startswith("latest-app:dev-")
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert deploy["status"].get("availableReplicas") == 1


def _create_custom_resources(cluster) -> int:
    text = (FIXTURE_WORKSPACE / "custom-resources.yaml").read_text()
    cluster.kubectl("apply", "-f", "-", input=text)
    return sum(1 for d in yaml.safe_load_all(text) if d)


def _count_custom_resources(cluster) -> int:
    total = 0
    for kind in ("functions.kubeless.io", "httptriggers.kubeless.io", "cronjobtriggers.kubeless.io"):
        done = cluster.kubectl("get", kind, "-A", "-o", "json", check=False)
        if done.returncode == 0:
            total += len(json.loads(done.stdout)["items"])
    return total


def test_apply_finishes_where_kubectl_delete_hangs_on_finalizers(cluster, workspace):
    # The controllers are gone (scaled to zero), so nobody will remove the Kubeless finalizers.
    cluster.kubectl("scale", "deployment", DEPLOY, "-n", NS, "--replicas=0")
    cluster.wait_for(lambda: not controller_pods(cluster), 60, "controller pods to go")
    created = _create_custom_resources(cluster)
    assert _count_custom_resources(cluster) == created == 7

    render = devloop(cluster, workspace, "render", json_mode=False, timeout=60)
    assert render.returncode == 0, render.tail()
    rendered = render.stdout
    manual = cluster.kubectl("delete", "-f", "-", "--timeout=10s", input=rendered, check=False, timeout=120)
    assert manual.returncode != 0  # the hand-run loop hangs here
    crd = cluster.kubectl_json("get", "crd", "functions.kubeless.io")
    assert crd["metadata"].get("deletionTimestamp")  # left Terminating behind its Functions

    run = devloop(cluster, workspace, "apply")
    assert run.returncode == 0, run.tail()
    assert _count_custom_resources(cluster) == 0
    crd = cluster.kubectl_json("get", "crd", "functions.kubeless.io")
    assert not crd["metadata"].get("deletionTimestamp")
    (pod,) = controller_pods(cluster)
    assert all(c["ready"] for c in pod["status"]["containerStatuses"])
    stripped = [e for e in run.events if e["event"] == "info" and "removed finalizers" in e["message"]]
    assert stripped  # each strip is logged


def test_context_pointing_at_another_server_is_refused_and_nothing_is_deleted(cluster, workspace, tmp_path):
    created = _create_custom_resources(cluster)
    config = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    for entry in config["clusters"]:
        if entry["name"] == PROFILE:
            entry["cluster"]["server"] = "https://127.0.0.1:1"
    wrong = tmp_path / "kubeconfig"
    wrong.write_text(yaml.safe_dump(config))

    run = devloop(cluster, workspace, "down", env={"KUBECONFIG": str(wrong)})
    assert run.returncode == 1, run.tail()
    assert run.last["event"] == "error" and run.last["kind"] == "UnsafeContext"
    assert "https://127.0.0.1:1" in run.last["message"]
    assert _count_custom_resources(cluster) == created
    assert controller_pods(cluster)

    run = devloop(cluster, workspace, "clean")
    assert run.returncode == 0, run.tail()
    assert _count_custom_resources(cluster) == 0


def _apiserver_pid(cluster) -> int:
    from devrig.machine import Machine

    home = Path(cluster.minikube_home)
    home = home if home.name == ".minikube" else home / ".minikube"
    state = Machine(PROFILE, home)._load()
    return int(state["procs"]["apiserver"]["pid"])


def test_reset_recovers_a_cluster_whose_api_server_was_killed(cluster, workspace):
    os.kill(_apiserver_pid(cluster), signal.SIGKILL)
    time.sleep(1)
    run = devloop(cluster, workspace, "apply", timeout=300)
    assert run.returncode == 1, run.tail()  # the loop says the cluster is broken instead of hanging

    run = devloop(cluster, workspace, "reset")
    assert run.returncode == 0, run.tail()
    run = devloop(cluster, workspace, "up")
    assert run.returncode == 0, run.tail()
    (pod,) = controller_pods(cluster)
    assert all(c["ready"] for c in pod["status"]["containerStatuses"])
    # The reset cluster's daemon was empty: everything was rebuilt into it.
    assert sorted(run.result["built"]) == sorted(run.result["tags"])


def test_doctor_finds_nothing_to_fix_on_a_running_loop(cluster, workspace):
    run = devloop(cluster, workspace, "doctor")
    assert run.returncode == 0, run.tail()
    checks = {c["name"]: c for c in run.result["checks"]}
    for name in ("minikube on PATH", "make on PATH", "cluster", "kube context", "docker-env"):
        assert checks[name]["status"] == "ok", checks[name]
    assert "devloop-kubeless" in checks["docker-env"]["detail"]


def test_doctor_names_a_missing_checkout_and_how_to_fix_it(cluster, workspace, tmp_path):
    run = devloop(cluster, tmp_path, "doctor")
    assert run.returncode == 1, run.tail()
    checks = {c["name"]: c for c in run.result["checks"]}
    failed = checks["workspace function-controller"]
    assert failed["status"] == "fail" and str(tmp_path / "kubeless") in failed["detail"]
    assert "--workspace" in failed["fix"]


def test_down_removes_custom_resources_manifest_objects_and_namespace(cluster, workspace):
    _create_custom_resources(cluster)
    run = devloop(cluster, workspace, "down", "--delete-namespace")
    assert run.returncode == 0, run.tail()
    assert cluster.kubectl("get", "namespace", NS, check=False).returncode != 0
    assert cluster.kubectl("get", "crd", "functions.kubeless.io", check=False).returncode != 0
    assert cluster.kubectl("get", "clusterrole", "kubeless-controller-deployer", check=False).returncode != 0
