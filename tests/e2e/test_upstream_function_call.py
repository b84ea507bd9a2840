"""A Function does work: the real function controller deploys the bundled `hello` Function, and it answers.

`devloop up` with the bundled profile over `make-workspace`'s output builds and runs the real controllers, as
in test_upstream_kubeless.py. Then the rig's function images (devrig.functions: kubeless's docker/unzip built on
the rig's minideb as the provision image; Debian bullseye's Python 3.9 with upstream's pins and upstream's
`_kubeless.py`, unmodified, as the python runtime) are put into the profile's engine, kubeless-config is
pointed at them (the documented keys: `provision-image`, `runtime-images`), the controller restarted (it reads
its config only at start), and the Function applied. It must answer `hello world` through the API server's
service proxy, the path `kubeless function call` uses (kubeless cmd/kubeless/function/call.go:79); no DNS
or ingress is involved.

Marker `upstream` (real Go builds through the Makefiles); run with `scripts/test upstream` or -m upstream.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from devrig import coredns, functions
from devrig import paths as rig_paths
from support import run_devloop, wait_until

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
UPSTREAM = SHARED / "upstream"
FIXTURES = SHARED / "fixtures" / "kubeless"
HELLO = REPO / "devloop" / "profile" / "bundled" / "kubeless-verify" / "hello.yaml"
PROFILE = "devloop-kubeless"  # the bundled profile's minikube profile
NS = "kubeless"
DEPLOY = "kubeless-controller-manager"
FN_NS = "default"
COLD_BUILD = 3600  # seconds; guards against hangs only

pytestmark = [
    pytest.mark.rig,
    pytest.mark.destructive,
    pytest.mark.upstream,
    pytest.mark.slow,
    pytest.mark.timeout(COLD_BUILD + 900),
]


@pytest.fixture(scope="module", autouse=True)
def selected(request) -> None:
    if "upstream" not in (request.config.getoption("-m") or "") and os.environ.get("DEVLOOP_UPSTREAM") != "1":
        pytest.skip("the upstream-workspace tests run with `scripts/test upstream` (pytest -m upstream)")


@pytest.fixture(scope="module")
def upstream_workspace(tmp_path_factory) -> Path:
    from test_upstream_kubeless import restore_ignored_vendor_packages  # the same clean-clone repair

    ws = tmp_path_factory.mktemp("upstream-fn") / "workspace"
    subprocess.run([str(UPSTREAM / "make-workspace"), str(ws)], check=True, capture_output=True, text=True, timeout=300)
    shutil.copy(FIXTURES / "kubeless.yaml", ws / "kubeless" / "kubeless.yaml")  # what `make all-yaml` writes
    restore_ignored_vendor_packages(ws / "cronjob-trigger")
    return ws


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    """gox on PATH, a node network, and cluster DNS when CoreDNS is built (`scripts/build-rig --with-coredns`)."""
    gox = rig_paths.cache_dir() / "bin" / "gox"
    if not os.access(gox, os.X_OK):
        pytest.fail(f"gox is not installed at {gox}; run scripts/build-rig")
    env = {"PATH": f"{gox.parent}{os.pathsep}{os.environ['PATH']}", "DEVRIG_NETWORK": "netns"}
    # the bundled runtime-python's base before the rig's Python image is in the engine (the first up makes the
    # engine); kubeless-config is pointed at functions.PYTHON_IMAGE after the up, so the runtime built on it is
    # not used here (test_upstream_runtimes.py builds it on the real base)
    env["KUBELESS_PYTHON_BASE"] = "bitnami/minideb:jessie"
    if os.access(coredns.binary(), os.X_OK):
        env["DEVRIG_COREDNS"] = "1"
    return env


def controller_running(cluster) -> bool:
    pods = cluster.kubectl_json("get", "pods", "-n", NS, "-l", "kubeless=controller")["items"]
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    return len(live) == 1 and all(c.get("ready") for c in live[0]["status"].get("containerStatuses", [{}]))


def proxy_get(cluster, name: str) -> str | None:
    path = f"/api/v1/namespaces/{FN_NS}/services/{name}:http-function-port/proxy/"
    got = cluster.kubectl("get", "--raw", path, check=False)
    return got.stdout if got.returncode == 0 else None


def function_pod(cluster, name: str) -> dict | None:
    pods = cluster.kubectl_json("get", "pods", "-n", FN_NS, "-l", f"function={name}")["items"]
    return pods[0] if pods else None


def pod_story(cluster, name: str) -> str:
    pod = function_pod(cluster, name)
    if pod is None:
        return (
            "no pod yet; controller log:\n"
            + cluster.kubectl(
                "logs", "-n", NS, "deploy/" + DEPLOY, "-c", "kubeless-function-controller", "--tail=30", check=False
            ).stdout
        )
    pname = pod["metadata"]["name"]
    logs = cluster.kubectl("logs", "-n", FN_NS, pname, "--all-containers", "--tail=30", check=False).stdout
    return json.dumps(pod.get("status", {}), indent=1)[-2500:] + "\n" + logs[-2000:]


def test_hello_function_answers_hello_world_through_the_service_proxy(cluster, upstream_workspace, env):
    t0 = time.monotonic()
    run = run_devloop("up", workspace=upstream_workspace, env=cluster.env, extra_env=env, timeout=COLD_BUILD)
    assert run.returncode == 0, run.tail()
    print(f"\ndevloop up over the upstream workspace: {time.monotonic() - t0:.0f}s")

    t1 = time.monotonic()
    images = functions.ensure_images({**cluster.env, **cluster.docker_env(), "DOCKER_BUILDKIT": "0"})
    print(f"function images ({images}) in the profile's engine: {time.monotonic() - t1:.0f}s")
    labels = json.loads(
        cluster.docker("image", "inspect", images["python"], "--format", "{{json .Config.Labels}}").stdout
    )
    assert functions.LABEL in labels and "3.9" in labels[functions.LABEL]

    config = cluster.kubectl_json("get", "configmap", "kubeless-config", "-n", NS)
    overrides = functions.kubeless_config_overrides(config["data"])
    cluster.kubectl(
        "patch", "configmap", "kubeless-config", "-n", NS, "--type", "merge", "-p", json.dumps({"data": overrides})
    )
    cluster.kubectl("rollout", "restart", "deployment", DEPLOY, "-n", NS)  # config is read only at start
    cluster.kubectl("rollout", "status", "deployment", DEPLOY, "-n", NS, "--timeout=300s", timeout=320)
    wait_until(lambda: controller_running(cluster), 120, "the restarted controllers to be ready")

    cluster.kubectl("apply", "-n", FN_NS, "-f", str(HELLO))
    fn = yaml.safe_load(HELLO.read_text())
    name = fn["metadata"]["name"]
    answer = wait_until(
        lambda: proxy_get(cluster, name),
        300,
        f"Function {name} to answer through services/{name}:http-function-port/proxy",
        detail=lambda: pod_story(cluster, name),
    )
    assert answer.strip() == "hello world", answer

    pod = function_pod(cluster, name)
    assert pod is not None
    spec = pod["spec"]
    assert [c["image"] for c in spec["containers"]] == [functions.PYTHON_IMAGE]
    assert [c["image"] for c in spec.get("initContainers", [])] == [functions.PROVISION_IMAGE]
    pname = pod["metadata"]["name"]
    inside = cluster.kubectl("exec", "-n", FN_NS, pname, "--", "sh", "-c", "id -u; python --version").stdout
    assert inside.split()[0] == "1000", inside  # upstream's USER 1000
    assert "Python 3.9" in inside, inside
    # upstream's runtime file, byte for byte
    served = cluster.kubectl("exec", "-n", FN_NS, pname, "--", "cat", "/_kubeless.py").stdout
    assert served == functions.kubeless_py().read_text()


CRON = {
    "apiVersion": "kubeless.io/v1beta1",
    "kind": "CronJobTrigger",
    "metadata": {"name": "hello-every-minute", "namespace": FN_NS, "labels": {"created-by": "kubeless"}},
    "spec": {"function-name": "hello", "payload": {"message": "tick"}, "schedule": "*/1 * * * *"},
}


def test_a_cronjobtrigger_job_calls_the_function_by_its_dns_name(cluster, env):
    """The real cronjob-trigger controller's CronJob runs `curl -Lv ... http://hello.default.svc.cluster.local:8080`
    and `date --rfc-3339` in the provision image (cronjob-trigger pkg/utils/kubelessutil.go): cluster DNS, a real
    curl and GNU date. Needs CoreDNS (the profile was created with DEVRIG_COREDNS=1 when it is built)."""
    if env.get("DEVRIG_COREDNS") != "1":
        pytest.skip(f"needs cluster DNS: scripts/build-rig --with-coredns ({coredns.binary()})")
    cluster.kubectl("apply", "-f", "-", input=json.dumps(CRON))
    cron = wait_until(
        lambda: (
            cluster.kubectl("get", "cronjob", "trigger-hello", "-n", FN_NS, "--ignore-not-found", "-o", "json").stdout
        ),
        120,
        "the cronjob trigger controller to make CronJob trigger-hello",
    )
    container = json.loads(cron)["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == functions.PROVISION_IMAGE
    assert "http://hello.default.svc.cluster.local:8080" in " ".join(
        container.get("args", []) + container.get("command", [])
    )

    def succeeded_job() -> dict | None:
        jobs = cluster.kubectl_json("get", "jobs", "-n", FN_NS)["items"]
        return next((j for j in jobs if (j.get("status") or {}).get("succeeded")), None)

    def story() -> str:
        return (
            cluster.kubectl("get", "jobs,pods", "-n", FN_NS, "-o", "wide", check=False).stdout
            + "\n"
            + (cluster.kubectl("logs", "-n", FN_NS, "-l", "created-by=kubeless", "--tail=20", check=False).stdout)
        )

    job = wait_until(succeeded_job, 200, "a Job of CronJob trigger-hello to succeed", detail=story)
    pods = cluster.kubectl_json("get", "pods", "-n", FN_NS, "-l", f"job-name={job['metadata']['name']}")["items"]
    assert pods, job["metadata"]
    log = cluster.kubectl("logs", "-n", FN_NS, pods[0]["metadata"]["name"]).stdout
    assert "hello world" in log and "< HTTP/1.1 200" in log, log  # curl -v: the answer and its status
