"""The real Kubeless: devloop with the bundled profile, unchanged, over the archived upstream checkouts.

`../shared/upstream/make-workspace` (beside the repository clone, as CI lays it out) makes a workspace of
git repositories tagged like upstream; the Makefiles build the four images for real (gox, `git describe`,
`docker build` through minikube's docker-env), and the real controllers run on the test cluster with a pod
network (DEVRIG_NETWORK=netns: kube-proxy, the `kubernetes` Service) and do their work.

Only two things are not upstream's (see tests/rig/README.md): the base images (`bitnami/minideb:jessie`,
`fedora:27`) are busybox stand-ins preloaded by the rig, and kubeless/kubeless.yaml -- what `make all-yaml`
writes with kubecfg, which is not installed here -- is the released rendering of the same jsonnet from
../shared/fixtures/kubeless.  Tests run in file order and share one cluster, as a developer's day does.

Marker `upstream` (scripts/test selects it with `-m upstream`); the Go builds use Go's own caches.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from devrig import paths as rig_paths
from support import parse_events, run_devloop, spawn_devloop, wait_until

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
UPSTREAM = SHARED / "upstream"
FIXTURES = SHARED / "fixtures" / "kubeless"
PROFILE = "devloop-kubeless"  # the bundled profile's minikube profile
NS = "kubeless"
DEPLOY = "kubeless-controller-manager"
COMPONENTS = ["cronjob-trigger-controller", "function-controller", "function-image-builder", "http-trigger-controller"]
STARTUP = {  # container -> the first line its main() logs (cmd/*/*.go upstream)
    "kubeless-function-controller": "Running Kubeless controller manager version: ",
    "http-trigger-controller": "Running Kubeless HTTP trigger controller version: ",
    "cronjob-trigger-controller": "Running Kubeless cronjob trigger controller version: ",
}
CONTAINER_OF = {
    "function-controller": "kubeless-function-controller",
    "http-trigger-controller": "http-trigger-controller",
    "cronjob-trigger-controller": "cronjob-trigger-controller",
}
COLD_BUILD = 3600  # seconds; guards against hangs only (a cold Go build of four images on a busy 2-core box)

pytestmark = [
    pytest.mark.rig,
    pytest.mark.destructive,
    pytest.mark.upstream,
    pytest.mark.slow,
    pytest.mark.timeout(COLD_BUILD),
]


@pytest.fixture(scope="module", autouse=True)
def selected(request) -> None:
    """Only when asked for (`-m upstream`, as `scripts/test upstream` runs them, or DEVLOOP_UPSTREAM=1): the
    cold Go builds alone take longer than the rest of the suite."""
    if "upstream" not in (request.config.getoption("-m") or "") and os.environ.get("DEVLOOP_UPSTREAM") != "1":
        pytest.skip("the upstream-workspace tests run with `scripts/test upstream` (pytest -m upstream)")


@pytest.fixture(scope="module")
def upstream_workspace(tmp_path_factory) -> Path:
    if not (UPSTREAM / "make-workspace").is_file():
        pytest.fail(f"{UPSTREAM}/make-workspace is missing: the upstream checkouts live in ../shared beside the clone")
    ws = tmp_path_factory.mktemp("upstream") / "workspace"
    subprocess.run([str(UPSTREAM / "make-workspace"), str(ws)], check=True, capture_output=True, text=True, timeout=300)
    # What `make all-yaml` would have written (kubecfg is not installed): the released rendering.
    shutil.copy(FIXTURES / "kubeless.yaml", ws / "kubeless" / "kubeless.yaml")
    restore_ignored_vendor_packages(ws / "cronjob-trigger")
    return ws


def restore_ignored_vendor_packages(checkout: Path) -> list[str]:
    """Put back the vendored packages upstream's git never had: cronjob-trigger's .gitignore rule `[Ll]og/`
    kept vendor/github.com/emicklei/go-restful/log and vendor/google.golang.org/appengine/internal/log out of
    the repository, so a clean clone fails `-mod=vendor` ("cannot find module providing package"). The
    committer's checkout had them from `go mod vendor`; here they come from the module those lines name, at
    the version vendor/modules.txt pins. They stay ignored, so `git describe --dirty` is unaffected."""
    modules, restored = {}, []
    module = None
    for line in (checkout / "vendor" / "modules.txt").read_text().splitlines():
        if line.startswith("# "):
            name, _, version = line[2:].partition(" ")
            module = (name, version.split(" ")[0])
        elif line and not line.startswith("#") and module:
            modules[line] = module
    for package, (name, version) in sorted(modules.items()):
        target = checkout / "vendor" / package
        if target.is_dir():
            continue
        got = subprocess.run(
            ["go", "mod", "download", "-json", f"{name}@{version}"],
            cwd=checkout.parent,
            capture_output=True,
            text=True,
            timeout=300,
            env=dict(os.environ, GOFLAGS="-mod=mod"),
        )
        assert got.returncode == 0, got.stderr + got.stdout
        source = Path(json.loads(got.stdout)["Dir"]) / package.removeprefix(name).lstrip("/")
        target.mkdir(parents=True)
        for f in source.iterdir():
            if f.is_file():
                shutil.copy(f, target / f.name)
        restored.append(package)
    return restored


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    """The Makefiles' gox (scripts/build-rig installs it) on PATH; the profile gets a node network."""
    gox = rig_paths.cache_dir() / "bin" / "gox"
    if not os.access(gox, os.X_OK):
        pytest.fail(f"gox is not installed at {gox}; run scripts/build-rig")
    # runtime-python's base: these tests run no Function, so the rig's minideb (in every engine) will do for a
    # runtime image that only has to build (test_upstream_runtimes.py runs one on the real Python base)
    return {
        "PATH": f"{gox.parent}{os.pathsep}{os.environ['PATH']}",
        "DEVRIG_NETWORK": "netns",
        "KUBELESS_PYTHON_BASE": "bitnami/minideb:jessie",
    }


def devloop(cluster, ws: Path, env: dict, *args: str, timeout: float = 900, profile: Path | None = None):
    return run_devloop(*args, workspace=ws, profile=profile, env=cluster.env, extra_env=env, timeout=timeout)


def controller_pod(cluster) -> dict:
    pods = cluster.kubectl_json("get", "pods", "-n", NS, "-l", "kubeless=controller")["items"]
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    assert len(live) == 1, [p["metadata"]["name"] for p in live]
    return live[0]


def image_id(cluster, tag: str) -> str:
    return cluster.docker("image", "inspect", tag, "--format", "{{.Id}}").stdout.strip()


def logs(cluster, pod: dict, container: str) -> str:
    return cluster.kubectl("logs", "-n", NS, pod["metadata"]["name"], "-c", container, check=False).stdout


def custom_resources() -> list[dict]:
    return [d for d in yaml.safe_load_all((FIXTURES / "custom-resources.yaml").read_text()) if d]


def create_custom_resources(cluster) -> list[dict]:
    """As a user creates them: no server-set fields, no finalizers (the controllers add theirs), and the
    Functions first, triggers once each function's Service is there (`kubeless function deploy`, then `kubeless
    trigger http create`). The order matters upstream: http-trigger's CreateIngress gives up for good, logging
    "Unable to find the function internal service", when it sees a trigger before its function's Service
    (http-trigger pkg/controller/http_trigger_controller.go: the error is logged, the key not requeued)."""
    docs = custom_resources()
    for doc in docs:
        doc["metadata"] = {k: v for k, v in doc["metadata"].items() if k in ("name", "namespace", "labels")}
        doc.pop("status", None)
    functions = [d for d in docs if d["kind"] == "Function"]
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(functions))
    for doc in functions:
        ns, name = doc["metadata"]["namespace"], doc["metadata"]["name"]
        wait_until(
            lambda: cluster.kubectl("get", "service", name, "-n", ns, "--ignore-not-found", "-o", "name").stdout,
            120,
            f"the function controller to make Service {ns}/{name}",
            detail=lambda: controller_log_tail(cluster, "kubeless-function-controller"),
        )
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([d for d in docs if d["kind"] != "Function"]))
    return docs


def controller_log_tail(cluster, container: str) -> str:
    try:
        return f"{container} log (tail):\n" + logs(cluster, controller_pod(cluster), container)[-3000:]
    except AssertionError as exc:
        return f"no log of {container}: {exc}"


def step_effects(run, step: str) -> dict:
    done = [e for e in run.events if e.get("event") == "step" and e.get("step") == step and e["status"] != "start"]
    assert done, f"no finished {step!r} step in\n{run.tail()}"
    return done[-1].get("details") or {}  # Step.effects() lands in the finished step's details


# -- 1. up from nothing ---------------------------------------------------------------------------
# cronjob-trigger v1.0.3 vendors a 2017 json-iterator that cannot read the managedFields keys
# ("k:{\"type\":...}") Kubernetes >= 1.18 puts on every object: on such a cluster its controller exits at start
# with "readObjectFieldAsBytes: expect : after object field" (vmware-archive/kubeless#1250, #1152, #1245). The
# bundled profile turns the API server's ServerSideApply feature gate off (still possible in 1.21), so no object
# carries managedFields and the real controller runs.
CRONJOB_CRASH = "readObjectFieldAsBytes: expect : after object field"
CRONJOB_RUNS = True


def test_up_from_nothing_builds_with_the_real_makefiles_and_runs_the_real_controllers(cluster, upstream_workspace, env):
    t0 = time.monotonic()
    run = devloop(cluster, upstream_workspace, env, "up", timeout=COLD_BUILD)
    print(f"\ndevloop up over the upstream workspace: {time.monotonic() - t0:.0f}s")
    builds = {
        e["step"].removeprefix("build "): e
        for e in run.events
        if e.get("event") == "step" and e["step"].startswith("build ") and e["status"] != "start"
    }
    print("build seconds: " + ", ".join(f"{c} {e.get('seconds', 0):.0f}" for c, e in sorted(builds.items())))
    assert sorted(builds) == [*COMPONENTS, "runtime-python"], run.tail()
    assert all(e["status"] == "ok" for e in builds.values()), run.tail()
    tags = {c: e["details"]["tag"] for c, e in builds.items()}
    for component in COMPONENTS:  # the real Makefiles ran (their gox output is in bundles/)
        checkout = upstream_workspace / (
            "kubeless" if component.startswith("function") else component.removesuffix("-controller")
        )
        assert list(checkout.glob("bundles/kubeless_linux-amd64/*")), f"no gox output in {checkout}/bundles"
    assert run.returncode == 0, run.tail()
    # the cluster runs with the profile's gate: minikube saved it, and the API server keeps no managedFields
    from devloop.adapters.minikube.home import minikube_home, read_profile_config

    saved = read_profile_config(PROFILE, minikube_home({"MINIKUBE_HOME": str(cluster.minikube_home)}))
    assert saved is not None and saved.feature_gates == "ServerSideApply=false"
    crd = cluster.kubectl_json("get", "crd", "functions.kubeless.io")
    assert "managedFields" not in crd["metadata"], crd["metadata"]

    pod = controller_pod(cluster)
    statuses = {c["name"]: c for c in pod["status"]["containerStatuses"]}
    for component, container in CONTAINER_OF.items():
        tag = tags[component]
        status = statuses[container]
        assert status["image"].endswith(tag)
        assert status["imageID"].split("sha256:")[-1] == image_id(cluster, tag).split("sha256:")[-1]
        line = wait_until(
            lambda c=container: next((ln for ln in logs(cluster, pod, c).splitlines() if STARTUP[c] in ln), None),
            60,
            f"{container}'s startup line",
        )
        version = line.split(STARTUP[container], 1)[1].strip().strip('"')
        assert re.match(r"v1\.0\.[38]", version) and "dirty" not in version, line
        assert status["ready"] and "running" in status["state"], status
        assert status["restartCount"] == 0, status
    assert CRONJOB_CRASH not in logs(cluster, pod, "cronjob-trigger-controller")
    config = cluster.kubectl_json("get", "configmap", "kubeless-config", "-n", NS)
    assert config["data"]["builder-image"] == tags["function-image-builder"]


# -- 2. the controllers do their work ----------------------------------------------------------------
def test_functions_and_triggers_lead_to_the_objects_their_controllers_make(cluster):
    docs = create_custom_resources(cluster)
    functions = {(d["metadata"]["namespace"], d["metadata"]["name"]) for d in docs if d["kind"] == "Function"}
    for doc in docs:
        ns, name = doc["metadata"]["namespace"], doc["metadata"]["name"]
        if doc["kind"] == "Function":
            for kind in ("deployment", "service", "configmap"):
                obj = wait_until(
                    lambda k=kind: (
                        cluster.kubectl_json("get", k, name, "-n", ns, "--ignore-not-found")
                        if cluster.kubectl("get", k, name, "-n", ns, "--ignore-not-found").stdout
                        else None
                    ),
                    120,
                    f"the function controller to make {kind} {ns}/{name}",
                )
                owners = [(o["kind"], o["name"]) for o in obj["metadata"].get("ownerReferences", [])]
                assert ("Function", name) in owners, obj["metadata"]
        elif doc["kind"] == "HTTPTrigger":
            ingress = wait_until(
                lambda: cluster.kubectl("get", "ingress", name, "-n", ns, "--ignore-not-found", "-o", "json").stdout,
                120,
                f"the HTTP trigger controller to make Ingress {ns}/{name} (admitted by the webhook)",
                detail=lambda: controller_log_tail(cluster, "http-trigger-controller"),
            )
            rules = json.loads(ingress)["spec"]["rules"]
            assert rules[0]["host"] == doc["spec"]["host-name"]
        elif doc["kind"] == "CronJobTrigger" and (ns, doc["spec"]["function-name"]) in functions:
            job = f"trigger-{doc['spec']['function-name']}"  # cronjob-trigger pkg/utils/kubelessutil.go
            cron = wait_until(
                lambda: cluster.kubectl("get", "cronjob", job, "-n", ns, "--ignore-not-found", "-o", "json").stdout,
                120,
                f"the cronjob trigger controller to make CronJob {ns}/{job}",
                detail=lambda: controller_log_tail(cluster, "cronjob-trigger-controller"),
            )
            cron = json.loads(cron)
            assert cron["spec"]["schedule"] == doc["spec"]["schedule"]
            # owned by the trigger (by uid; upstream names the owner's kind "Trigger": cronJobObjKind)
            trigger_uid = cluster.kubectl_json("get", "cronjobtrigger", name, "-n", ns)["metadata"]["uid"]
            owners = [(o["name"], o["uid"]) for o in cron["metadata"].get("ownerReferences", [])]
            assert (name, trigger_uid) in owners, cron["metadata"]
        elif doc["kind"] == "CronJobTrigger":
            raise AssertionError(f"the fixtures' CronJobTrigger {ns}/{name} names a function they do not have")
    for doc in docs:  # and each controller put its finalizer on its resources
        obj = cluster.kubectl_json(
            "get", doc["kind"].lower(), doc["metadata"]["name"], "-n", doc["metadata"]["namespace"]
        )
        assert f"kubeless.io/{doc['kind'].lower()}" in obj["metadata"].get("finalizers", []), obj["metadata"]


def remaining_custom_resources(cluster) -> list[str]:
    out = []
    for kind in ("functions.kubeless.io", "httptriggers.kubeless.io", "cronjobtriggers.kubeless.io"):
        got = cluster.kubectl("get", kind, "-A", "-o", "name", "--ignore-not-found", check=False).stdout
        out += got.split()
    return out


# -- 3. apply (recreate) with the controllers running: they remove their own finalizers ----------------
class FollowLogs:
    """`kubectl logs -f` of one container into a file: what it logs until it ends, even once its pod is gone."""

    def __init__(self, cluster, pod: dict, container: str, into: Path):
        self.path = into
        self._out = open(into, "w")
        self.proc = subprocess.Popen(
            [
                str(cluster.rig.kubectl),
                "--context",
                PROFILE,
                "logs",
                "-f",
                "-n",
                NS,
                pod["metadata"]["name"],
                "-c",
                container,
            ],
            env=cluster.env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    def text(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self._out.close()
        return self.path.read_text()


DELETED_LINE = {  # what each controller logs once it removed its finalizer (controller/*_controller.go upstream)
    "kubeless-function-controller": "Function object {key} has been successfully processed and marked for deletion",
    "http-trigger-controller": "HTTP trigger object {key} has been successfully processed and marked for deleteion",
    "cronjob-trigger-controller": "Cronjob trigger object {key} has been successfully processed and marked for "
    "deletion",
}
CONTAINER_OF_KIND = {
    "Function": "kubeless-function-controller",
    "HTTPTrigger": "http-trigger-controller",
    "CronJobTrigger": "cronjob-trigger-controller",
}


def test_apply_with_running_controllers_lets_them_remove_their_finalizers(cluster, upstream_workspace, env, tmp_path):
    pod = controller_pod(cluster)
    follow = {c: FollowLogs(cluster, pod, c, tmp_path / f"{c}.log") for c in CONTAINER_OF.values()}
    time.sleep(1)  # `kubectl logs -f` connects before the apply starts deleting (its output is checked below)
    run = devloop(cluster, upstream_workspace, env, "apply")
    said = {c: f.text() for c, f in follow.items()}
    assert run.returncode == 0, run.tail()
    effects = step_effects(run, "clean")
    assert effects.get("deleted") == len(custom_resources()), effects
    assert effects.get("stripped") == 0, effects
    assert not [e for e in run.events if "removed finalizers" in str(e.get("message", ""))]
    assert remaining_custom_resources(cluster) == []
    # each controller's own log says it removed its finalizer from each of its resources
    for doc in custom_resources():
        container = CONTAINER_OF_KIND[doc["kind"]]
        line = DELETED_LINE[container].format(key=f"{doc['metadata']['namespace']}/{doc['metadata']['name']}")
        assert line in said[container], f"{container} did not log {line!r}:\n{said[container][-3000:]}"


def test_apply_with_the_controllers_scaled_to_zero_strips_each_finalizer_and_says_so(cluster, upstream_workspace, env):
    wait_until(lambda: controller_pod(cluster)["status"].get("phase") == "Running", 180, "the recreated controllers")
    docs = create_custom_resources(cluster)
    wait_until(
        lambda: all(
            "kubeless.io/"
            in json.dumps(
                cluster.kubectl_json("get", d["kind"].lower(), d["metadata"]["name"], "-n", d["metadata"]["namespace"])[
                    "metadata"
                ].get("finalizers", [])
            )
            for d in docs
        ),
        120,
        "every custom resource to carry its controller's finalizer",
    )
    cluster.kubectl("scale", "deployment", DEPLOY, "-n", NS, "--replicas=0")
    wait_until(
        lambda: not cluster.kubectl("get", "pods", "-n", NS, "-l", "kubeless=controller", "-o", "name").stdout,
        120,
        "the controllers to be gone",
    )
    run = devloop(cluster, upstream_workspace, env, "apply")
    assert run.returncode == 0, run.tail()
    effects = step_effects(run, "clean")
    assert effects.get("stripped") == len(docs), effects
    stripped = [e["message"] for e in run.events if "removed finalizers" in str(e.get("message", ""))]
    assert len(stripped) == len(docs), stripped
    assert remaining_custom_resources(cluster) == []


# -- 4. an edit to a real Go file during watch --------------------------------------------------------
class Watch:
    def __init__(self, cluster, ws: Path, env: dict):
        # --no-live-update: these tests are about the image path (build, roll out); the profile's live updates
        # would copy a rebuilt binary into the running containers instead
        self.proc = spawn_devloop(
            "watch",
            "--workspace",
            str(ws),
            "--json",
            "--no-live-update",
            env=cluster.env,
            extra_env=env,
            json_mode=False,
        )
        self.events: list[dict] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self._lock:
                self.events.extend(parse_events(line))

    def wait(self, mark: int, kind: str, timeout: float) -> dict:
        def found():
            with self._lock:
                hit = next((e for e in self.events[mark:] if e.get("event") == kind), None)
            if hit is None and self.proc.poll() is not None:
                raise AssertionError(f"devloop watch exited {self.proc.returncode} before a {kind!r} event")
            return hit

        return wait_until(
            found,
            timeout,
            f"a {kind!r} event from devloop watch",
            detail=lambda: json.dumps(self.events[-8:], default=str),
        )

    def mark(self) -> int:
        with self._lock:
            return len(self.events)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def test_an_edit_under_http_trigger_pkg_rebuilds_only_that_image_and_its_version_says_dirty(
    cluster, upstream_workspace, env
):
    cluster.kubectl("scale", "deployment", DEPLOY, "-n", NS, "--replicas=1")
    watch = Watch(cluster, upstream_workspace, env)
    try:
        first = watch.wait(0, "cycle", COLD_BUILD)
        assert first["status"] == "ok", first
        mark = watch.mark()
        source = upstream_workspace / "http-trigger" / "pkg" / "controller" / "http_trigger_controller.go"
        source.write_text(source.read_text() + "\n// edited by test_upstream_kubeless\n")
        t0 = time.monotonic()
        cycle = watch.wait(mark, "cycle", 1800)
        print(f"\nwarm rebuild of http-trigger-controller after one Go edit: {time.monotonic() - t0:.0f}s")
        assert cycle["status"] == "ok", cycle
        assert cycle["built"] == ["http-trigger-controller"], cycle
        tag = cycle["tags"]["http-trigger-controller"] if "tags" in cycle else None

        def new_controller():
            pod = controller_pod(cluster)
            status = {c["name"]: c for c in pod["status"].get("containerStatuses", [])}.get("http-trigger-controller")
            if not status or not status.get("ready") or (tag and not status["image"].endswith(tag)):
                return None
            line = next(
                (
                    ln
                    for ln in logs(cluster, pod, "http-trigger-controller").splitlines()
                    if STARTUP["http-trigger-controller"] in ln
                ),
                None,
            )
            return line if line and "dirty" in line else None

        line = wait_until(new_controller, 180, "the rebuilt HTTP trigger controller to start and log its version")
        assert re.search(r"version: v1\.0\.3-dirty", line), line
    finally:
        watch.stop()


def test_an_edit_to_the_function_image_builder_rebuilds_only_it_and_restarts_the_controllers(
    cluster, upstream_workspace, env
):
    """The builder is no container of the Deployment: the function controller reads its image from ConfigMap
    kubeless-config (builder-image) at start-up, so the new tag in the ConfigMap needs new controller pods."""
    before = controller_pod(cluster)
    images_before = {c["name"]: c["image"] for c in before["spec"]["containers"]}
    watch = Watch(cluster, upstream_workspace, env)
    try:
        first = watch.wait(0, "cycle", COLD_BUILD)
        assert first["status"] == "ok", first
        mark = watch.mark()
        source = upstream_workspace / "kubeless" / "pkg" / "function-image-builder" / "image_builder.go"
        source.write_text(source.read_text() + "\n// edited by test_upstream_kubeless\n")
        t0 = time.monotonic()
        cycle = watch.wait(mark, "cycle", 1800)
        print(f"\nwarm rebuild of function-image-builder after one Go edit: {time.monotonic() - t0:.0f}s")
        assert cycle["status"] == "ok", cycle
        assert cycle["built"] == ["function-image-builder"], cycle
        assert f"Deployment/{NS}/{DEPLOY}" in cycle["restarted"], cycle
        tag = cycle["tags"]["function-image-builder"]
        assert image_id(cluster, tag), f"{tag} is not in the cluster's engine"
        config = cluster.kubectl_json("get", "configmap", "kubeless-config", "-n", NS)
        assert config["data"]["builder-image"] == tag

        def replaced():
            pod = controller_pod(cluster)
            ready = all(c.get("ready") for c in pod["status"].get("containerStatuses", []))
            return pod if pod["metadata"]["uid"] != before["metadata"]["uid"] and ready else None

        after = wait_until(replaced, 180, "new controller pods (they read builder-image at start-up)")
        # only the builder changed: the controllers' own images are the ones they ran before
        assert {c["name"]: c["image"] for c in after["spec"]["containers"]} == images_before
        restarted_at = after["metadata"].get("annotations", {}).get("kubectl.kubernetes.io/restartedAt")
        assert restarted_at, after["metadata"]
    finally:
        watch.stop()


# -- 5. render from the real jsonnet ----------------------------------------------------------------------
def _by_identity(docs) -> dict[tuple[str, str, str], dict]:
    return {(d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d for d in docs if d}


def _without_images(obj, repos: set[str]):
    """obj with every image reference of one of `repos` (any tag) replaced by a placeholder."""
    if isinstance(obj, dict):
        return {k: _without_images(v, repos) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_without_images(v, repos) for v in obj]
    if isinstance(obj, str) and obj.rpartition(":")[0] in repos:
        return "<image>"
    return obj


def test_render_from_the_real_jsonnet_equals_the_released_manifest_but_for_the_images(
    cluster, upstream_workspace, env, tmp_path
):
    bundled = yaml.safe_load((REPO / "devloop" / "profile" / "bundled" / "kubeless.yaml").read_text())
    # without the runtime component: its tag inside runtime-images' JSON text is test_upstream_runtimes.py's
    bundled["components"] = [c for c in bundled["components"] if "runtime" not in c]
    profile = dict(
        bundled, manifests=[{"jsonnet": "kubeless/kubeless.jsonnet", "jpath": ["kubeless/ksonnet-lib", "runtimes"]}]
    )
    variant = tmp_path / "kubeless-jsonnet.yaml"
    variant.write_text(yaml.safe_dump(profile, sort_keys=False))
    t0 = time.monotonic()
    run = run_devloop(
        "render",
        workspace=upstream_workspace,
        profile=variant,
        env=cluster.env,
        extra_env=env,
        json_mode=False,
        timeout=300,
    )
    print(f"\ndevloop render from kubeless.jsonnet: {time.monotonic() - t0:.1f}s")
    assert run.returncode == 0, run.tail()
    rendered = _by_identity(yaml.safe_load_all(run.stdout))
    released = _by_identity(yaml.safe_load_all((FIXTURES / "kubeless.yaml").read_text()))
    assert sorted(rendered) == sorted(released)
    built = {c["image"] for c in bundled["components"]}  # what devloop substitutes in
    replaced = {r for c in bundled["components"] for r in c.get("replaces", [])}  # ... for these
    differences = {
        key: (rendered[key], released[key])
        for key in rendered
        if _without_images(rendered[key], built) != _without_images(released[key], replaced)
    }
    assert differences == {}
