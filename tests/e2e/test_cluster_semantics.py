"""The Kubernetes and minikube semantics devloop depends on, proven on the rig's real parts (issue 4, "Done
when").  One profile of this module's own (with one kwok fake node); tests run in file order, and the last
one deliberately leaves the Kubeless CRDs stuck in Terminating before the profile is deleted."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import yaml

from devrig import procs
from devrig.machine import Machine
from support import copy_workspace

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
KUBELESS_YAML = FIXTURES / "kubeless" / "kubeless.yaml"
CUSTOM_RESOURCES = FIXTURES / "kubeless" / "custom-resources.yaml"
CRDS = ("functions.kubeless.io", "httptriggers.kubeless.io", "cronjobtriggers.kubeless.io")
# (checkout, make target, image variable, image in kubeless.yaml, container name)
COMPONENTS = (
    (
        "kubeless",
        "function-controller",
        "CONTROLLER_IMAGE",
        "kubeless/function-controller:latest",
        "kubeless-function-controller",
    ),
    (
        "http-trigger",
        "http-controller-image",
        "HTTP_CONTROLLER_IMAGE",
        "kubeless/http-trigger-controller:v1.0.3",
        "http-trigger-controller",
    ),
    (
        "cronjob-trigger",
        "cronjob-controller-image",
        "CRONJOB_CONTROLLER_IMAGE",
        "kubeless/cronjob-trigger-controller:v1.0.3",
        "cronjob-trigger-controller",
    ),
)
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module")
def cluster(rig_profile_factory):
    c = rig_profile_factory(fake_nodes=1)
    TIMINGS["profile start (with 1 fake node)"] = c.start_seconds
    return c


@pytest.fixture(scope="module")
def built(cluster, tmp_path_factory) -> dict[str, tuple[str, str]]:
    """The three controller images built with the workspace's Makefiles through docker-env (TCP + TLS).

    Returns {manifest image: (built tag, build id)}."""
    if not shutil.which("make"):
        pytest.fail("make is not installed (apt-get install make)")
    work = copy_workspace(tmp_path_factory.mktemp("workspace") / "ws")
    # this machine's REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE stay set (never unset them); the build must still
    # reach minikube's engine over TCP + TLS with the docker-env certificates
    env = {**cluster.env, **cluster.docker_env(), "DOCKER_BUILDKIT": "0"}
    out = {}
    tag = uuid.uuid4().hex[:8]
    for checkout, target, var, manifest_image, _ in COMPONENTS:
        image = f"{manifest_image.split(':')[0].replace('kubeless/', 'devloop-e2e-')}:dev-{tag}"
        t0 = time.monotonic()
        result = subprocess.run(
            ["make", "-C", str(work / checkout), target, f"{var}={image}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode == 0, f"make {target} failed:\n{result.stdout}\n{result.stderr}"
        TIMINGS[f"build {target}"] = time.monotonic() - t0
        build_id = re.search(r"build-id=(\S+)", result.stdout).group(1)
        out[manifest_image] = (image, build_id)
    return out


def _rendered(built: dict[str, tuple[str, str]]) -> str:
    text = KUBELESS_YAML.read_text()
    for manifest_image, (image, _) in built.items():
        text = text.replace(f"image: {manifest_image}", f"image: {image}")
    return text


def _crd(cluster, name: str) -> dict:
    return cluster.kubectl_json("get", "crd", name)


def _condition(obj: dict, kind: str) -> str | None:
    return next((c["status"] for c in obj.get("status", {}).get("conditions", []) if c["type"] == kind), None)


def test_kubeless_crds_become_established(cluster, built):
    cluster.kubectl("create", "namespace", "kubeless")
    t0 = time.monotonic()
    cluster.kubectl("apply", "-f", "-", input=_rendered(built))
    cluster.kubectl("wait", "--for=condition=Established", *(f"crd/{n}" for n in CRDS), "--timeout=60s", timeout=90)
    TIMINGS["kubeless.yaml CRDs Established"] = time.monotonic() - t0
    for name in CRDS:
        crd = _crd(cluster, name)
        assert crd["apiVersion"] == "apiextensions.k8s.io/v1"  # served from the v1beta1 manifest
        assert _condition(crd, "Established") == "True"


def test_kubeless_controller_rolls_out_on_the_real_node_with_the_built_images(cluster, built, rig_env):
    t0 = time.monotonic()
    cluster.kubectl(
        "rollout", "status", "-n", "kubeless", "deployment/kubeless-controller-manager", "--timeout=120s", timeout=150
    )
    TIMINGS["kubeless controller rollout"] = time.monotonic() - t0
    [pod] = cluster.kubectl_json("get", "pods", "-n", "kubeless", "-l", "kubeless=controller")["items"]
    node = Machine(cluster.profile, rig_env.minikube_home / ".minikube").info().node_name
    assert pod["spec"]["nodeName"] == node
    for checkout, _, _, manifest_image, container in COMPONENTS:
        image, build_id = built[manifest_image]
        spec = next(c for c in pod["spec"]["containers"] if c["name"] == container)
        assert spec["image"] == image
        logs = cluster.wait_for(
            lambda: cluster.kubectl("logs", "-n", "kubeless", pod["metadata"]["name"], "-c", container).stdout,
            30,
            f"logs of container {container}",
        )
        assert f"build id {build_id}" in logs


def test_function_finalizer_holds_deletion_until_removed(cluster):
    docs = [d for d in yaml.safe_load_all(CUSTOM_RESOURCES.read_text()) if d]
    hello = next(d for d in docs if d["kind"] == "Function" and d["metadata"]["name"] == "hello")
    assert hello["metadata"]["finalizers"] == ["kubeless.io/function"]
    cluster.kubectl("apply", "-f", "-", input=json.dumps(hello))
    cluster.kubectl("delete", "function", "hello", "-n", "default", "--wait=false")
    time.sleep(2)
    obj = cluster.kubectl_json("get", "function", "hello", "-n", "default")
    assert obj["metadata"].get("deletionTimestamp")
    assert obj["metadata"]["finalizers"] == ["kubeless.io/function"]
    cluster.kubectl(
        "patch", "function", "hello", "-n", "default", "--type=merge", "-p", '{"metadata":{"finalizers":null}}'
    )
    cluster.wait_for(
        lambda: cluster.kubectl("get", "function", "hello", "-n", "default", check=False).returncode != 0,
        20,
        "function hello to be gone",
    )


def test_latest_image_with_default_pull_policy_fails_to_pull(cluster):
    image = f"devloop-e2e-latest-{uuid.uuid4().hex[:6]}:latest"
    build_dir = Path(cluster.rig.tmp) / image.split(":")[0]
    build_dir.mkdir()
    (build_dir / "Dockerfile").write_text(
        'FROM scratch\nCOPY busybox /bin/busybox\nCMD ["/bin/busybox", "sleep", "3600"]\n'
    )
    shutil.copy("/bin/busybox", build_dir / "busybox")
    cluster.docker("build", "-t", image, str(build_dir))
    assert cluster.docker("image", "inspect", image).returncode == 0  # the image IS in minikube's engine
    cluster.kubectl("run", "latest-trap", f"--image={image}", "-n", "default")
    pod = cluster.kubectl_json("get", "pod", "latest-trap", "-n", "default")
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == "Always"  # the default for :latest

    def waiting_reason():
        st = cluster.kubectl_json("get", "pod", "latest-trap", "-n", "default").get("status", {})
        for cs in st.get("containerStatuses", []):
            reason = (cs.get("state", {}).get("waiting") or {}).get("reason")
            if reason in ("ErrImagePull", "ImagePullBackOff"):
                return reason
        return None

    # the kubelet reports either reason depending on when it is asked; the wait fails if neither comes
    cluster.wait_for(waiting_reason, 90, "latest-trap to fail pulling (ErrImagePull or ImagePullBackOff)")
    cluster.kubectl("delete", "pod", "latest-trap", "-n", "default", "--wait=false")


def test_fake_node_runs_a_deployment_of_an_image_nobody_built(cluster, rig_env):
    info = Machine(cluster.profile, rig_env.minikube_home / ".minikube").info()
    [fake] = info.fake_nodes
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "on-kwok", "namespace": "default"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "on-kwok"}},
            "template": {
                "metadata": {"labels": {"app": "on-kwok"}},
                "spec": {
                    "containers": [{"name": "c", "image": "registry.example/nobody-built-this:1.0"}],
                    "nodeSelector": {"type": "kwok"},
                    "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}],
                },
            },
        },
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(deployment))
    cluster.kubectl(
        "wait", "--for=condition=Available", "deployment/on-kwok", "-n", "default", "--timeout=60s", timeout=90
    )
    pods = cluster.kubectl_json("get", "pods", "-n", "default", "-l", "app=on-kwok")["items"]
    assert {p["spec"]["nodeName"] for p in pods} == {fake}
    assert all(p["status"]["phase"] == "Running" for p in pods)
    # the real node keeps its own pods: the Kubeless controller still runs there
    [ctl] = cluster.kubectl_json("get", "pods", "-n", "kubeless", "-l", "kubeless=controller")["items"]
    assert ctl["spec"]["nodeName"] == info.node_name and ctl["status"]["phase"] == "Running"
    cluster.kubectl("delete", "deployment", "on-kwok", "-n", "default")


def test_namespace_deletion_goes_through_terminating(cluster, built):
    ns = f"doomed-{uuid.uuid4().hex[:6]}"
    image = next(iter(built.values()))[0]
    cluster.kubectl("create", "namespace", ns)
    cluster.kubectl("run", "sleeper", f"--image={image}", "--image-pull-policy=IfNotPresent", "-n", ns)
    cluster.kubectl("wait", "--for=condition=Ready", "pod/sleeper", "-n", ns, "--timeout=60s", timeout=90)
    cluster.kubectl("delete", "namespace", ns, "--wait=false")
    phase = cluster.kubectl_json("get", "namespace", ns)["status"]["phase"]
    assert phase == "Terminating"
    t0 = time.monotonic()
    cluster.wait_for(
        lambda: cluster.kubectl("get", "namespace", ns, check=False).returncode != 0,
        90,
        f"namespace {ns} to finish terminating",
    )
    TIMINGS["namespace Terminating -> gone"] = time.monotonic() - t0


def test_ingress_addon_enables_and_its_webhook_admits(cluster):
    t0 = time.monotonic()
    out = cluster.minikube("addons", "enable", "ingress", timeout=420)
    TIMINGS["addons enable ingress"] = time.monotonic() - t0
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines() == [
        "* ingress is an addon maintained by Kubernetes. For any concerns contact minikube on GitHub.",
        "You can view the list of minikube maintainers at: https://github.com/kubernetes/minikube/blob/master/OWNERS",
        "  - Using image registry.k8s.io/ingress-nginx/controller:v1.12.2",
        "  - Using image registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.5.3",
        "  - Using image registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.5.3",
        "* Verifying ingress addon...",
        "* The 'ingress' addon is enabled",
    ]
    pods = cluster.kubectl_json("get", "pods", "-n", "ingress-nginx", "-l", "app.kubernetes.io/name=ingress-nginx")
    phases = {p["metadata"]["labels"].get("job-name", "controller"): p["status"]["phase"] for p in pods["items"]}
    assert phases == {
        "controller": "Running",
        "ingress-nginx-admission-create": "Succeeded",
        "ingress-nginx-admission-patch": "Succeeded",
    }
    klass = cluster.kubectl_json("get", "ingressclass", "nginx")
    assert klass["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"] == "true"
    webhook = cluster.kubectl_json("get", "validatingwebhookconfiguration", "ingress-nginx-admission")
    assert webhook["webhooks"][0]["clientConfig"]["url"].startswith("https://127.0.0.1:")
    listed = json.loads(cluster.minikube("addons", "list", "-o", "json").stdout)
    assert listed["ingress"] == {"Profile": cluster.profile, "Status": "enabled"}

    ingress = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "hello", "namespace": "default"},
        "spec": {
            "rules": [
                {
                    "host": "hello.example",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "hello", "port": {"number": 8080}}},
                            }
                        ]
                    },
                }
            ]
        },
    }
    created = cluster.kubectl("apply", "-f", "-", input=json.dumps(ingress))
    assert "ingress.networking.k8s.io/hello created" in created.stdout
    ingress["metadata"] = {
        "name": "snippety",
        "namespace": "default",
        "annotations": {"nginx.ingress.kubernetes.io/configuration-snippet": "more_set_headers 'X-Evil: 1';"},
    }
    refused = cluster.kubectl("apply", "-f", "-", input=json.dumps(ingress), check=False)
    assert refused.returncode != 0
    assert (
        'admission webhook "validate.nginx.ingress.kubernetes.io" denied the request: '
        "nginx.ingress.kubernetes.io/configuration-snippet annotation cannot be used. Snippet directives are "
        "disabled by the Ingress administrator"
    ) in refused.stderr


def test_delete_with_functions_present_hangs_and_leaves_crds_terminating(cluster):
    docs = [d for d in yaml.safe_load_all(CUSTOM_RESOURCES.read_text()) if d and d["kind"] == "Function"]
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    out = cluster.kubectl("delete", "-f", str(KUBELESS_YAML), "--timeout=10s", check=False, timeout=60)
    assert out.returncode != 0
    assert "timed out waiting for the condition" in out.stderr
    crd = _crd(cluster, "functions.kubeless.io")
    assert crd["metadata"].get("deletionTimestamp")
    assert _condition(crd, "Terminating") == "True"
    functions = cluster.kubectl_json("get", "functions", "--all-namespaces")["items"]
    assert functions and all(f["metadata"].get("deletionTimestamp") for f in functions)


def test_delete_leaves_no_process_behind(cluster, rig_env):
    from devrig.standin import admission_proc

    home = rig_env.minikube_home / ".minikube"
    admission = admission_proc.pid(cluster.profile)
    assert admission, "the ingress admission server should be running"
    # (pid, start time) pairs, so a PID recycled after the delete is not mistaken for a survivor
    before = [
        procs.Proc(p, procs.start_time(p))
        for p in Machine(cluster.profile, home).processes() + [admission]
        if procs.start_time(p) is not None
    ]
    t0 = time.monotonic()
    out = cluster.minikube("delete", timeout=180)
    TIMINGS["delete (ingress + kubeless + fake node)"] = time.monotonic() - t0
    assert out.returncode == 0, out.stderr
    # a zombie (exited, not yet reaped by whoever adopted it) is not a process left running
    alive = [p for p in before if procs.alive(p)]
    assert not alive, [procs.cmdline(p.pid) for p in alive]
    print("\nrig timings (s): " + ", ".join(f"{k}: {v:.1f}" for k, v in TIMINGS.items()))
