"""The real minikube under devloop: minikube v1.38.1 and v1.36.0, built from their release modules, starting real
kubeadm clusters with the docker driver on this machine (tests/rig/devrig/kic: the engine in a namespace of its
own, reached as Docker Desktop's is, so minikube lays the cluster out with forwarded ports).

Per release, in order, on the bundled Kubeless profile over the sample workspace: `devloop up` from nothing (the
ingress addon enabled with the offline images through cluster.addon_images, the controllers running devloop's
builds), a no-change `up`, `status`, `doctor`, `watch` with an edit (live update) and another (image build and
rollout), `apply` with the controllers running, `down`, `reset`; then the host's network and kernel settings are
compared with what they were before the release's engine started.

Marker `real_minikube`, opt-in (`scripts/test real-minikube`, or DEVLOOP_REAL_MINIKUBE_LANE=1): about 20 minutes
for both releases on 2 cores once the parts are cached (see tests/rig/README.md, "The real minikube").
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from devrig import paths as rig_paths
from support import bundled_profile, copy_workspace, require_rig, run_devloop, wait_until
from support.rig import in_ci
from support.watch import Watch

VERSIONS = ("v1.38.1", "v1.36.0")
PROFILE = "devloop-kic"
NS = "kubeless"
DEPLOY = "kubeless-controller-manager"
HTTP = "http-trigger-controller"
KUBECTL = rig_paths.k8s_bin(rig_paths.DEFAULT_KUBERNETES_VERSION, "kubectl")
TIMINGS = Path(os.environ.get("DEVLOOP_REAL_MINIKUBE_TIMINGS", "/tmp/devloop-real-minikube-timings.jsonl"))

pytestmark = [pytest.mark.real_minikube, pytest.mark.slow, pytest.mark.timeout(3600)]


@pytest.fixture(scope="module", autouse=True)
def _opt_in(request):
    asked = "real_minikube" in (request.config.getoption("-m") or "")
    if not asked and os.environ.get("DEVLOOP_REAL_MINIKUBE_LANE") != "1":
        pytest.skip("the real-minikube lane runs when asked for: scripts/test real-minikube")


def host_state() -> dict[str, str]:
    """The host's network namespace and kernel settings, minus counters that move by themselves."""

    def run(*argv: str) -> str:
        return subprocess.run(argv, capture_output=True, text=True, timeout=60).stdout

    sysctls = run("sysctl", "-a")
    moving = (
        "fs.dentry-state",
        "fs.inode",
        "fs.file-nr",
        "fs.quota",
        "kernel.random",
        "kernel.ns_last_pid",
        "kernel.pty.nr",
        "fs.aio-nr",
        "kernel.sched_domain",
        "net.netfilter.nf_conntrack_count",
    )
    return {
        "links": "\n".join(sorted(line.split("\\")[0] for line in run("ip", "-o", "link").splitlines())),
        "addrs": run("ip", "-o", "addr"),
        "routes": run("ip", "route"),
        "iptables": "\n".join(line.split(" [")[0] for line in run("iptables-save").splitlines() if line[:1] != "#"),
        "sysctl": "\n".join(line for line in sysctls.splitlines() if not line.startswith(moving)),
        "lib_modules": str(Path("/lib/modules").exists()),
        "etc_docker": " ".join(sorted(os.listdir("/etc/docker"))) if Path("/etc/docker").is_dir() else "",
    }


@dataclass
class RealCluster:
    """What the tests ask of the cluster: the user's environment, kubectl on the profile's context, the node's
    Docker through docker-env."""

    env: dict[str, str]
    version: str

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [str(KUBECTL), "--context", PROFILE, *args], env=self.env, capture_output=True, text=True, timeout=120
        )
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {done.stderr}")
        return done

    def kubectl_json(self, *args: str) -> dict:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def minikube(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["minikube", *args, "-p", PROFILE], env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        out = self.minikube("docker-env", "--shell", "none").stdout
        env = dict(self.env)
        env.update(line.split("=", 1) for line in out.splitlines() if "=" in line)
        done = subprocess.run(
            [str(rig_paths.docker_cli()), *args], env=env, capture_output=True, text=True, timeout=120
        )
        if check and done.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)}: {done.stderr}")
        return done


def record(version: str, what: str, seconds: float) -> None:
    with open(TIMINGS, "a") as out:
        load = round(os.getloadavg()[0], 1)
        out.write(json.dumps({"minikube": version, "what": what, "seconds": round(seconds, 1), "load": load}) + "\n")


@pytest.fixture(scope="module", params=VERSIONS)
def lane(request, tmp_path_factory):
    require_rig(root=True)
    from devrig import RigMissing
    from devrig.kic.lane import KicLane, real_minikube

    try:
        real_minikube(request.param)
    except RigMissing as exc:
        if in_ci():
            raise
        pytest.skip(str(exc))
    before = host_state()
    lane = KicLane(tmp_path_factory.mktemp(f"kic-{request.param}"), request.param)
    started = time.monotonic()
    try:
        lane.start()
    except BaseException:
        lane.stop()
        raise
    record(request.param, "lane start (engine, images, cache)", time.monotonic() - started)
    lane.host_before = before  # type: ignore[attr-defined]
    yield lane
    lane.stop()


@pytest.fixture(scope="module")
def setup(lane, tmp_path_factory):
    """The user's side: the sample workspace, the bundled profile as this machine needs it."""
    from devrig.kic.lane import START_ARGS

    workspace = copy_workspace(tmp_path_factory.mktemp("ws") / "workspace")
    profile = yaml.safe_load(bundled_profile().read_text())
    cluster = profile["cluster"]
    cluster["profile"] = PROFILE
    cluster["cpus"] = 2  # this machine has 2; the profile's 4 would be refused (by devloop: minikube is forced)
    cluster["memory"] = "4g"
    # as root (this machine, CI) minikube refuses every driver but none unless forced (DRV_AS_ROOT; v1.38.1 is
    # forced anyway for Kubernetes v1.21): what a root user adds, and devloop then checks resources itself
    cluster["extra_start_args"] = [*START_ARGS, *(["--force"] if os.geteuid() == 0 else [])]
    cluster["addon_images"] = {"ingress": dict(lane.addon_images)}
    path = workspace.parent / "profile.yaml"
    path.write_text(yaml.safe_dump(profile, sort_keys=False))
    return workspace, path, RealCluster(lane.user_env("dev"), lane.version)


def devloop(setup, *args: str, timeout: float = 1500):
    workspace, profile, cluster = setup
    return run_devloop(*args, profile=profile, workspace=workspace, env=cluster.env, timeout=timeout)


def components(setup) -> set[str]:
    return {c["name"] for c in yaml.safe_load(setup[1].read_text())["components"]}


def controller_images(cluster: RealCluster) -> dict[str, str]:
    dep = cluster.kubectl_json("get", "deployment", DEPLOY, "-n", NS)
    return {c["name"]: c["image"] for c in dep["spec"]["template"]["spec"]["containers"]}


def running_images(cluster: RealCluster) -> dict[str, str]:
    pods = cluster.kubectl_json("get", "pods", "-n", NS, "-l", "kubeless=controller")["items"]
    out = {}
    for pod in pods:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        running = {s["name"] for s in pod["status"].get("containerStatuses") or [] if s["state"].get("running")}
        out.update({c["name"]: c["image"] for c in pod["spec"]["containers"] if c["name"] in running})
    return out


def test_up_from_nothing_enables_ingress_and_runs_devloops_builds(setup, lane):
    _, _, cluster = setup
    started = time.monotonic()
    run = devloop(setup, "up")
    record(lane.version, "up from nothing", time.monotonic() - started)
    assert run.returncode == 0, run.tail()
    steps = run.steps()
    assert steps.get("cluster") == "ok" and steps.get("addons") == "ok", steps
    assert not [name for name, status in steps.items() if status not in ("ok", "skipped")], steps
    assert set(run.result["built"]) == components(setup), run.tail()
    addons = json.loads(cluster.minikube("addons", "list", "-o", "json").stdout)
    assert addons["ingress"]["Status"] == "enabled"
    # the pods run exactly what devloop built and rendered
    wanted = controller_images(cluster)
    wait_until(lambda: running_images(cluster) == wanted, 120, "the controllers to run devloop's builds")
    assert all(":dev-" in image for image in wanted.values()), wanted
    ingress = cluster.kubectl_json("get", "pods", "-n", "ingress-nginx", "-l", "app.kubernetes.io/component=controller")
    assert [p["status"]["phase"] for p in ingress["items"]] == ["Running"]


def test_the_layout_is_docker_desktops(setup):
    """The engine looks remote to minikube, so it forwards: config.json keeps the node's own address, which this
    host does not reach, and the kubeconfig and docker-env name loopback ports."""
    _, _, cluster = setup
    home = Path(cluster.env["MINIKUBE_HOME"])
    config = json.loads((home / ".minikube" / "profiles" / PROFILE / "config.json").read_text())
    node = config["Nodes"][0]
    assert node["IP"].startswith("192.168.") and node["Port"] == 8443
    kubeconfig = yaml.safe_load(Path(cluster.env["KUBECONFIG"]).read_text())
    server = next(c["cluster"]["server"] for c in kubeconfig["clusters"] if c["name"] == PROFILE)
    assert server.startswith("https://127.0.0.1:") and not server.endswith(":8443")
    env = cluster.minikube("docker-env", "--shell", "none").stdout
    assert "DOCKER_HOST=tcp://127.0.0.1:" in env


def test_a_second_up_changes_nothing(setup, lane):
    started = time.monotonic()
    run = devloop(setup, "up")
    record(lane.version, "no-change up", time.monotonic() - started)
    assert run.returncode == 0, run.tail()
    assert run.result["built"] == [] and run.steps().get("cluster") == "skipped", run.steps()


def test_status_and_doctor_see_the_real_cluster(setup):
    run = devloop(setup, "status")
    assert run.returncode == 0, run.tail()
    assert run.result["cluster"]["state"] == "Running", run.tail()
    doctor = devloop(setup, "doctor")
    failed = [c for c in doctor.result["checks"] if c["status"] not in ("ok", "skipped")]
    assert doctor.returncode == 0 and not failed, failed
    text = json.dumps(doctor.events)
    assert "forwarded" in text and "docker-env points at" in text, doctor.tail()


@pytest.fixture(scope="module")
def watch(setup):
    workspace, profile, cluster = setup
    w = Watch(cluster, workspace, profile)
    w.cycle(0, timeout=900)
    yield w
    if w.proc.poll() is None:
        w.proc.send_signal(signal.SIGINT)
        try:
            w.proc.wait(120)
        except subprocess.TimeoutExpired:
            w.proc.kill()


def test_watch_live_updates_an_edit_in_the_running_container(setup, watch, lane):
    workspace, _, cluster = setup
    before = running_images(cluster)
    mark = watch.mark()
    started = time.monotonic()
    path = workspace / "http-trigger" / "cmd" / "http-trigger-controller" / "main.go"
    path.write_text(path.read_text() + "\n// live edit on the real minikube\n")
    ev = watch.live(mark, timeout=300)
    record(lane.version, "save -> live update done", time.monotonic() - started)
    assert ev["components"] == [HTTP]
    assert running_images(cluster) == before  # same image: the binary was copied in and restarted
    assert not [e for e in watch.since(mark) if e["event"] == "cycle"]


def test_watch_rebuilds_and_rolls_out_an_edit_outside_the_live_inputs(setup, watch, lane):
    workspace, _, cluster = setup
    before = controller_images(cluster)[HTTP]
    mark = watch.mark()
    started = time.monotonic()
    dockerfile = workspace / "http-trigger" / "docker" / "http-controller" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "\n# an image change\n")
    watch.cycle(mark, timeout=600)
    record(lane.version, "save -> image built and rolled out", time.monotonic() - started)
    after = controller_images(cluster)[HTTP]
    assert after != before
    wait_until(lambda: running_images(cluster).get(HTTP) == after, 180, "the new pod to run the new image")
    watch.proc.send_signal(signal.SIGINT)
    assert watch.proc.wait(300) == 130, watch.tail(mark)


def test_apply_with_the_controllers_running(setup):
    run = devloop(setup, "apply")
    assert run.returncode == 0, run.tail()
    assert not [name for name, status in run.steps().items() if status not in ("ok", "skipped")], run.steps()


def test_down_removes_what_devloop_deployed(setup):
    _, _, cluster = setup
    run = devloop(setup, "down")
    assert run.returncode == 0, run.tail()
    gone = cluster.kubectl("get", "deployment", DEPLOY, "-n", NS, check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr
    assert json.loads(cluster.minikube("status", "-o", "json").stdout)["Host"] == "Running"


def test_reset_recreates_the_cluster_and_up_deploys_again(setup, lane):
    _, _, cluster = setup
    uid_before = cluster.kubectl_json("get", "namespace", "kube-system")["metadata"]["uid"]
    started = time.monotonic()
    run = devloop(setup, "reset")
    record(lane.version, "reset", time.monotonic() - started)
    assert run.returncode == 0, run.tail()
    assert cluster.kubectl_json("get", "namespace", "kube-system")["metadata"]["uid"] != uid_before
    addons = json.loads(cluster.minikube("addons", "list", "-o", "json").stdout)
    assert addons["ingress"]["Status"] == "enabled"
    run = devloop(setup, "up")
    assert run.returncode == 0, run.tail()
    # a new node holds none of the images, whatever devloop's fingerprint cache remembers: all are built again
    assert set(run.result["built"]) == components(setup), run.tail()
    wanted = controller_images(cluster)
    wait_until(lambda: running_images(cluster) == wanted, 180, "the controllers to run again after the reset")


# -- the stand-in against the real minikube, field by field ------------------------------------------------------
# Each difference the comparison finds is fixed in the stand-in or listed here with its reason; a new one fails.
KNOWN_DIFFERENCES: dict[str, dict[str, str]] = {
    "config.json": {
        ".Addons.default-storageclass": "the stand-in runs no storage provisioner (the rig has no PersistentVolumes; "
        "devloop never reads these two)",
        ".Addons.storage-provisioner": "as .Addons.default-storageclass",
    },
    "status": {},
    "docker-env": {},
    "addons list": {},
    "profile list": {
        ".valid[].Config.Addons.default-storageclass": "as config.json's .Addons.default-storageclass",
        ".valid[].Config.Addons.storage-provisioner": "as config.json's .Addons.default-storageclass",
    },
    "kubeconfig": {},
}


def shape(value, path: str = "") -> dict[str, str]:
    """path -> JSON type, recursively; a list's items share the path `[]`."""
    if isinstance(value, dict):
        out = {path or ".": "object"}
        for key, item in value.items():
            out.update(shape(item, f"{path}.{key}"))
        return out
    if isinstance(value, list):
        out = {path or ".": "array"}
        for item in value:
            out.update(shape(item, f"{path}[]"))
        return out
    return {path: type(value).__name__}


def differences(real: dict, standin: dict, *, values: tuple[str, ...] = ()) -> dict[str, str]:
    """What differs: paths one side lacks, types that differ, and the listed values that differ."""
    a, b = shape(real), shape(standin)
    out = {p: f"only in the real minikube ({a[p]})" for p in a.keys() - b.keys()}
    out.update({p: f"only in the stand-in ({b[p]})" for p in b.keys() - a.keys()})
    out.update({p: f"type {a[p]} (real) vs {b[p]} (stand-in)" for p in a.keys() & b.keys() if a[p] != b[p]})
    for path in values:
        x, y = dig(real, path), dig(standin, path)
        if x != y:
            out[path] = f"value {x!r} (real) vs {y!r} (stand-in)"
    return out


def dig(doc, path: str):
    for part in path.strip(".").split("."):
        if isinstance(doc, list):
            doc = doc[int(part)] if part.isdigit() and int(part) < len(doc) else None
        elif isinstance(doc, dict):
            doc = doc.get(part)
        else:
            return None
    return doc


def assert_known(artifact: str, found: dict[str, str]) -> None:
    known = KNOWN_DIFFERENCES[artifact]
    new = {p: why for p, why in found.items() if p not in known}
    gone = sorted(p for p in known if p not in found)
    assert not new and not gone, (
        f"{artifact}: differences not listed (fix the stand-in or list them with the reason):\n"
        + "\n".join(f"  {p}: {why}" for p, why in sorted(new.items()))
        + (f"\nlisted but no longer found: {gone}" if gone else "")
    )


@pytest.fixture(scope="module")
def real_up(setup):
    """The real profile as devloop brought it up (the tests above leave it so; run alone, this brings it up)."""
    _, _, cluster = setup
    # a missing profile's status is a JSON line, then minikube's own advice: read the first line only
    status = (cluster.minikube("status", "-o", "json").stdout.strip().splitlines() or ["{}"])[0]
    if json.loads(status).get("APIServer") != "Running":
        run = devloop(setup, "up")
        assert run.returncode == 0, run.tail()
    return cluster


@pytest.fixture(scope="module")
def standin(lane, rig_profile_factory, real_up):
    """A stand-in profile started with the flags devloop gave the real one, the ingress addon enabled alike."""
    from devrig.kic.lane import START_ARGS

    saved = _config(Path(real_up.env["MINIKUBE_HOME"]), PROFILE)
    docker_env = [a for item in saved.get("DockerEnv") or [] for a in ("--docker-env", item)]
    args = (
        "--driver=docker",
        "--container-runtime=docker",
        "--cpus=2",
        "--memory=4g",
        "--feature-gates=ServerSideApply=false",
        "--force",
        *docker_env,
        *START_ARGS,
    )
    cluster = rig_profile_factory(
        f"kicsa{lane.version.replace('.', '')[1:]}", args=args, env={"DEVRIG_MINIKUBE_VERSION": lane.version}
    )
    cluster.env["DEVRIG_MINIKUBE_VERSION"] = lane.version  # every call, not just the start: a binary has one version
    # what devloop does for the real one: the addon's local images loaded into the node before enabling it
    refs = sorted(set(lane.addon_images.values()))
    saved = subprocess.run(
        [str(rig_paths.docker_cli()), "save", *refs],
        env=lane.host.docker_env(),
        capture_output=True,
        timeout=300,
        check=True,
    ).stdout
    subprocess.run(
        [str(rig_paths.docker_cli()), "load"],
        input=saved,
        env={**cluster.env, **cluster.docker_env()},
        capture_output=True,
        timeout=300,
        check=True,
    )
    images = ",".join(f"{k}={v}" for k, v in sorted(lane.addon_images.items()))
    registries = ",".join(f"{k}=" for k in sorted(lane.addon_images))
    cluster.minikube(
        "addons", "enable", "ingress", f"--images={images}", f"--registries={registries}", check=True, timeout=300
    )
    return cluster


def _json(done: subprocess.CompletedProcess) -> dict:
    assert done.stdout.strip(), done.stderr
    return json.loads(done.stdout)


def _config(home: Path, profile: str) -> dict:
    return json.loads((home / ".minikube" / "profiles" / profile / "config.json").read_text())


CONFIG_VALUES = (
    "Driver",
    "KicBaseImage",
    "APIServerPort",
    "CPUs",
    "Memory",
    "DockerEnv",
    "KubernetesConfig.KubernetesVersion",
    "KubernetesConfig.ContainerRuntime",
    "KubernetesConfig.FeatureGates",
    "KubernetesConfig.ServiceCIDR",
    "KubernetesConfig.ExtraOptions",
    "KubernetesConfig.ShouldLoadCachedImages",
    "Nodes.0.Port",
    "Nodes.0.ControlPlane",
    "Nodes.0.Worker",
    "Nodes.0.ContainerRuntime",
    "Addons.ingress",
    "CustomAddonImages",
    "CustomAddonRegistries",
)


def test_contract_config_json_after_start(real_up, standin):
    real = real_up
    found = differences(
        _config(Path(real.env["MINIKUBE_HOME"]), PROFILE),
        _config(standin.minikube_home, standin.profile),
        values=CONFIG_VALUES,
    )
    assert_known("config.json", found)


def test_contract_status_docker_env_addons_profiles_kubeconfig(real_up, standin):
    real = real_up
    rs, ss = real.minikube("status", "-o", "json"), standin.minikube("status", "-o", "json")
    found = differences(_json(rs), _json(ss), values=("Host", "Kubelet", "APIServer", "Kubeconfig", "Worker"))
    if rs.returncode != ss.returncode:
        found["exit code"] = f"{rs.returncode} (real) vs {ss.returncode} (stand-in)"
    assert_known("status", found)

    def env_names(done):
        return {line.split("=", 1)[0]: "" for line in done.stdout.splitlines() if "=" in line}

    # the same shell on both sides: a DOCKER_HOST already set is echoed as MINIKUBE_EXISTING_DOCKER_HOST
    real_env = real.minikube("docker-env", "--shell", "none")
    standin_env = standin.minikube("docker-env", "--shell", "none", env={"DOCKER_HOST": real.env["DOCKER_HOST"]})
    found = differences(env_names(real_env), env_names(standin_env))
    if found:
        found["(outputs)"] = f"real:\n{real_env.stdout}\nstand-in:\n{standin_env.stdout}"
    assert_known("docker-env", found)
    # what devloop reads: -o json
    flags = ("docker-env", "--shell", "none", "-o", "json")
    real_json = _json(real.minikube(*flags))
    standin_json = _json(standin.minikube(*flags, env={"DOCKER_HOST": real.env["DOCKER_HOST"]}))
    assert_known("docker-env", differences(real_json, standin_json))
    found = differences(
        _json(real.minikube("addons", "list", "-o", "json")),
        _json(standin.minikube("addons", "list", "-o", "json")),
        values=("ingress.Status",),
    )
    assert_known("addons list", found)

    def profiles(cluster_env):
        done = subprocess.run(
            ["minikube", "profile", "list", "-o", "json"], env=cluster_env, capture_output=True, text=True, timeout=120
        )
        doc = _json(done)
        return {
            "valid": [p for p in doc.get("valid") or [] if p["Name"] in (PROFILE, standin.profile)][:1],
            "invalid": doc.get("invalid"),
        }

    found = differences(
        profiles(real.env), profiles(standin.env), values=("valid.0.Status", "valid.0.Config.Driver", "valid.0.Active")
    )
    assert_known("profile list", found)

    def kube_entry(path: Path, name: str) -> dict:
        doc = yaml.safe_load(path.read_text())
        pick = lambda kind: next(e for e in doc[kind] if e["name"] == name)  # noqa: E731
        return {"cluster": pick("clusters"), "context": pick("contexts"), "user": pick("users")}

    found = differences(
        kube_entry(Path(real.env["KUBECONFIG"]), PROFILE),
        kube_entry(standin.kubeconfig, standin.profile),
        values=("context.context.namespace",),
    )
    assert_known("kubeconfig", found)


def test_contract_stopped_status(real_up, standin):
    real = real_up
    real.minikube("stop")
    standin.minikube("stop", timeout=300)
    rs, ss = real.minikube("status", "-o", "json"), standin.minikube("status", "-o", "json")
    found = differences(_json(rs), _json(ss), values=("Host", "Kubelet", "APIServer", "Kubeconfig"))
    if rs.returncode != ss.returncode:
        found["exit code"] = f"{rs.returncode} (real) vs {ss.returncode} (stand-in)"
    assert_known("status", found)


def test_the_hosts_network_and_kernel_settings_are_unchanged(setup, lane):
    _, _, cluster = setup
    cluster.minikube("delete")
    lane.stop()
    after = host_state()
    before = lane.host_before
    changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    assert not changed, "\n".join(f"{k}:\n  before: {b[-800:]}\n  after:  {a[-800:]}" for k, (b, a) in changed.items())
