"""Issue 10's findings 1-8, each against the code that answers it: minikube v1.36-v1.39, the docker and
containerd runtimes, forwarded API ports. Cluster-free: real processes stand in for minikube where the
behaviour is about processes (deadlines, environment), recorded runs elsewhere."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import yaml

from devloop.adapters.builder import normalize_ref, transfer_mode
from devloop.adapters.host import HostResources, user_docker_env
from devloop.adapters.minikube import cli as mk
from devloop.adapters.proc import Completed
from devloop.base.errors import ClusterError, ConfigError, UnsafeContext, WaitTimeout
from devloop.loop import steps as loop
from devloop.loop.start_plan import DOCKER_MIN_API, memory_mb, plan_start
from devloop.profile.lookup import load_profile
from devloop.profile.schema import Timeouts

P = "devloop-kubeless"
LAPTOP = HostResources(cpus=8, memory_mb=16384, source="a laptop")
SMALL = HostResources(cpus=2, memory_mb=3900, source="the Docker engine at unix:///var/run/docker.sock (docker info)")


class Run:
    def __init__(self, *results):
        self.results = list(results)
        self.calls = []

    def __call__(self, argv, **kwargs):
        self.calls.append({"argv": list(argv), **kwargs})
        code, out, err = self.results.pop(0)
        return Completed(list(argv), code, out, err, (out + err).strip())


def _script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "minikube"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def _cluster(**changes):
    profile = load_profile("kubeless", cwd=Path("/"))
    return profile.cluster.model_copy(update=changes)


# -- 1. the runtime is pinned -------------------------------------------------------------------
def test_start_pins_the_profiles_runtime_default_docker():
    assert _cluster().container_runtime == "docker"
    run = Run((0, "", ""))
    mk.Minikube(P, run=run).start(
        driver="docker", kubernetes_version="v1.21.14", cpus=4, memory="8g", container_runtime="docker"
    )
    assert "--container-runtime=docker" in run.calls[0]["argv"]


def test_ensure_cluster_passes_the_runtime_from_the_profile(tmp_path):
    from test_loop import make_session  # the loop's own session maker

    from support.fakes import FakeMinikube

    ws = tmp_path / "ws"
    ws.mkdir()
    mini = FakeMinikube(state="Missing", version="v1.39.0")
    session = make_session(tmp_path, ws, minikube=mini)
    loop.ensure_cluster(session)
    start = next(kwargs for name, *kwargs in mini.calls if name == "start")[0]
    assert start["container_runtime"] == "docker"


def test_exit_14_from_docker_env_names_runtime_and_driver_not_only_crio():
    run = Run(
        (
            14,
            "false exit code 14\n",
            "X Exiting due to MK_USAGE: The docker-env command only supports the "
            "containerd runtime with the docker driver\n",
        )
    )
    with pytest.raises(ClusterError) as err:
        mk.Minikube(P, run=run).docker_env()
    assert "containerd only with the docker driver" in err.value.hint
    assert "image_transfer: load" in err.value.hint


# -- 3. deadlines at least minikube's own, and they name minikube's last step ---------------------
def test_default_deadlines_exceed_minikubes_give_up_times():
    t = Timeouts()
    assert t.cluster_start >= 900 and t.addons >= 540
    with pytest.raises(ValueError, match="at least 900 seconds"):
        Timeouts(cluster_start=600)
    with pytest.raises(ValueError, match="at least 540 seconds"):
        Timeouts(addons=300)


def test_a_start_deadline_names_what_minikube_was_doing(tmp_path):
    binary = _script(
        tmp_path,
        'echo "* Preparing Kubernetes v1.21.14 on Docker 28.1.1 ..."\n'
        'echo "  - Booting up control plane ..."\necho "! a warning line"\nexec sleep 30\n',
    )
    with pytest.raises(WaitTimeout) as err:
        mk.Minikube(P, binary=binary).start(
            driver="docker", kubernetes_version="v1.21.14", cpus=2, memory="4g", timeout=1.5
        )
    assert "'- Booting up control plane ...'" in err.value.message
    assert "last line: '! a warning line'" in err.value.message


# -- 5. minikube writes the kubeconfig devloop reads ----------------------------------------------
def test_minikube_gets_the_whole_kubeconfig_value(tmp_path):
    seen = tmp_path / "seen"
    binary = _script(
        tmp_path, f'printf %s "$KUBECONFIG" > {seen}\necho \'{{"commit":"","minikubeVersion":"v1.38.1"}}\'\n'
    )
    mk.Minikube(P, binary=binary, kubeconfig="/x/first:/y/second").version()
    assert seen.read_text() == "/x/first:/y/second"


def test_the_session_hands_its_kubeconfig_to_minikube(tmp_path):
    from devloop.output.report import Reporter
    from devloop.session import Session

    session = Session(
        profile=load_profile("kubeless", cwd=Path("/")),
        workspace=tmp_path,
        reporter=Reporter(json_mode=True),
        kubeconfig="/a:/b",
    )
    assert session.minikube.env["KUBECONFIG"] == "/a:/b"


# -- 6. the context guard: minikube's own check for loopback and remote servers -------------------
def _kubeconfig(path: Path, server: str) -> str:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": P,
                        "cluster": {
                            "server": server,
                            "extensions": [{"name": "cluster_info", "extension": {"provider": "minikube.sigs.k8s.io"}}],
                        },
                    }
                ],
                "users": [{"name": P, "user": {}}],
                "contexts": [{"name": P, "context": {"cluster": P, "user": P}}],
            }
        )
    )
    return str(path)


class GuardMinikube:
    def __init__(self, endpoint, kubeconfig_state):
        self.endpoint, self.kubeconfig_state, self.status_calls = endpoint, kubeconfig_state, 0

    def api_endpoint(self):
        return self.endpoint

    def profile_config(self):
        return None

    def status(self):
        self.status_calls += 1
        return mk.ClusterStatus(
            "Running", name=P, host="Running", kubelet="Running", apiserver="Running", kubeconfig=self.kubeconfig_state
        )


def _guard_session(tmp_path, server, mini):
    from devloop.output.report import Reporter
    from devloop.session import Session

    return Session(
        profile=load_profile("kubeless", cwd=Path("/")),
        workspace=tmp_path,
        reporter=Reporter(json_mode=True),
        kubeconfig=_kubeconfig(tmp_path / "kc", server),
        make_minikube=lambda *_: mini,
    )


def test_guard_accepts_a_forwarded_port_only_when_minikube_says_configured(tmp_path):
    ok = GuardMinikube(("192.168.49.2", 8443), "Configured")
    _guard_session(tmp_path, "https://127.0.0.1:50123", ok).guard_context()
    assert ok.status_calls == 1
    stale = GuardMinikube(("192.168.49.2", 8443), "Misconfigured")
    with pytest.raises(UnsafeContext) as err:
        _guard_session(tmp_path, "https://127.0.0.1:50123", stale).guard_context()
    assert "Kubeconfig: Misconfigured" in err.value.message
    assert "also makes" in err.value.hint and "current kube context" in err.value.hint


def test_guard_asks_minikube_even_when_a_loopback_port_matches_the_node(tmp_path):
    # The node itself on loopback: a stale port equal to the saved one may be another profile's by now.
    stale = GuardMinikube(("127.0.0.1", 40001), "Misconfigured")
    with pytest.raises(UnsafeContext):
        _guard_session(tmp_path, "https://127.0.0.1:40001", stale).guard_context()


def test_guard_accepts_a_remote_docker_host_address_minikube_confirms(tmp_path):
    remote = GuardMinikube(("192.168.49.2", 8443), "Configured")
    _guard_session(tmp_path, "https://10.1.2.3:32771", remote).guard_context()


def test_guard_needs_no_minikube_call_for_the_nodes_own_address(tmp_path):
    native = GuardMinikube(("192.168.49.2", 8443), "Misconfigured")
    _guard_session(tmp_path, "https://192.168.49.2:8443", native).guard_context()
    assert native.status_calls == 0


# -- 7. profile list -l, and {"error":{}} ----------------------------------------------------------
def test_profile_list_is_light():
    run = Run((0, '{"invalid":[],"valid":[]}', ""))
    mk.Minikube(P, run=run).profiles()
    assert run.calls[0]["argv"] == ["minikube", "profile", "list", "-o", "json", "-l"]


def test_profile_list_empty_error_object_is_an_error_that_says_so():
    run = Run((80, '{"error":{}}', ""))
    with pytest.raises(ClusterError) as err:
        mk.Minikube(P, run=run).profiles()
    assert "exit 80" in err.value.message and '{"error":{}}' in err.value.message
    assert "--alsologtostderr" in err.value.hint


# -- 8. status and doctor stay read-only -------------------------------------------------------------
def _home_with_profile(tmp_path: Path, *, ip: str, runtime: str = "docker", driver: str = "docker") -> Path:
    home = tmp_path / ".minikube"
    (home / "profiles" / P).mkdir(parents=True)
    (home / "certs").mkdir()
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (home / "certs" / name).write_text("x")
    (home / "profiles" / P / "config.json").write_text(
        json.dumps(
            {
                "Driver": driver,
                "KubernetesConfig": {"KubernetesVersion": "v1.21.14", "ContainerRuntime": runtime},
                "Nodes": [{"Name": "", "IP": ip, "Port": 8443, "ControlPlane": True, "Worker": True}],
            }
        )
    )
    return home


def test_read_only_docker_env_from_config_json_where_nothing_is_forwarded(tmp_path, monkeypatch):
    from devloop.adapters.minikube.engine_endpoint import read_only_docker_env

    # a VM driver: docker-env prints the VM's own address (issue 18 W1: the docker driver's may be forwarded,
    # tests/unit/test_minikube_layouts.py); derived only when that address answers (here: a stubbed connect)
    monkeypatch.setattr("socket.create_connection", lambda *a, **k: __import__("io").BytesIO())
    home = _home_with_profile(tmp_path, ip="192.168.49.2", driver="kvm2")
    monkeypatch.setenv("MINIKUBE_HOME", str(home))
    env, why = read_only_docker_env(P, tmp_path / "cache")
    assert env["DOCKER_HOST"] == "tcp://192.168.49.2:2376" and env["DOCKER_CERT_PATH"] == str(home / "certs")


def test_read_only_docker_env_uses_the_answer_up_recorded_and_nothing_else(tmp_path, monkeypatch):
    from devloop.adapters.minikube.engine_endpoint import read_only_docker_env, remember_docker_env

    monkeypatch.setenv("MINIKUBE_HOME", str(_home_with_profile(tmp_path, ip="127.0.0.1")))
    env, why = read_only_docker_env(P, tmp_path / "cache")
    assert env is None and "restarts dockerd" in why
    remember_docker_env(P, tmp_path / "cache", {"DOCKER_HOST": "tcp://127.0.0.1:32770"})
    env, _ = read_only_docker_env(P, tmp_path / "cache")
    assert env == {"DOCKER_HOST": "tcp://127.0.0.1:32770"}


class RecordingMinikube:
    """A running profile; records every minikube command; docker-env must not be one of them."""

    binary, profile_name = "minikube", P

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        self.calls.append(name)
        if name == "docker_env":
            raise AssertionError("docker-env called by a read-only command")
        answers = {
            "version": mk.MinikubeVersion("v1.38.1"),
            "status": mk.ClusterStatus(
                "Running", name=P, host="Running", kubelet="Running", apiserver="Running", kubeconfig="Configured"
            ),
            "api_endpoint": ("127.0.0.1", 1),
            "profile_config": None,
            "images": [],
        }
        return lambda *a, **k: answers.get(name)


@pytest.mark.parametrize("command", ["status", "doctor"])
def test_status_and_doctor_never_run_docker_env(tmp_path, monkeypatch, command):
    import importlib

    from devloop.output.report import Reporter
    from devloop.session import Session

    monkeypatch.setenv("MINIKUBE_HOME", str(tmp_path / "empty"))
    mini = RecordingMinikube()
    session = Session(
        profile=load_profile("kubeless", cwd=Path("/")),
        workspace=tmp_path,
        reporter=Reporter(json_mode=True),
        kubeconfig=_kubeconfig(tmp_path / "kc", "https://127.0.0.1:1"),
        cache_dir=tmp_path / "cache",
        make_minikube=lambda *_: mini,
        make_kube=lambda **_: None,
        make_host=lambda driver: LAPTOP,
    )
    module = importlib.import_module(f"devloop.commands.{command}")
    getattr(module, command)(session)
    assert "docker_env" not in mini.calls and "status" in mini.calls


# -- 4. --force: devloop checks CPUs and memory itself ---------------------------------------------
def test_forced_start_on_a_two_cpu_engine_is_refused_with_the_fix():
    with pytest.raises(ConfigError) as err:
        plan_start(_cluster(), mk.MinikubeVersion("v1.37.0"), lambda: SMALL, source="profile.yaml")
    assert "cluster.cpus is 4" in err.value.message and "has 2 CPUs" in err.value.message
    assert "--force" in err.value.message and "cluster.cpus: 2" in err.value.hint


def test_forced_start_warns_about_memory_beyond_the_engine():
    plan = plan_start(_cluster(cpus=2), mk.MinikubeVersion("v1.37.0"), lambda: SMALL)
    assert plan.force and any("RSRC_OVER_ALLOC_MEM" in w and "8g" in w for w in plan.warnings)


def test_resources_are_not_read_unless_forced():
    def never():
        raise AssertionError("host resources read without --force")

    assert not plan_start(_cluster(), mk.MinikubeVersion("v1.36.0"), never).force


def test_memory_sizes_in_minikubes_units():
    assert memory_mb("8g") == 8192 and memory_mb("8192mb") == 8192 and memory_mb("4000") == 4000
    assert memory_mb("max") is None


def test_the_users_docker_not_minikubes_after_eval_docker_env():
    env = {
        "DOCKER_HOST": "tcp://192.168.49.2:2376",
        "MINIKUBE_ACTIVE_DOCKERD": P,
        "MINIKUBE_EXISTING_DOCKER_HOST": "unix:///home/me/.docker/run/docker.sock",
    }
    assert user_docker_env(env) == {"DOCKER_HOST": "unix:///home/me/.docker/run/docker.sock"}


# -- 2. old Kubernetes on the Docker >= 29 of minikube >= 1.38 ---------------------------------------
@pytest.mark.parametrize(
    ("version", "runtime", "k8s", "lowered"),
    [
        ("v1.38.1", "docker", "v1.21.14", True),
        ("v1.38.0", "docker", "v1.23.17", True),
        ("v1.39.0", "docker", "v1.21.14", True),
        ("v1.37.0", "docker", "v1.21.14", False),
        ("v1.38.1", "containerd", "v1.21.14", False),
        ("v1.38.1", "docker", "v1.24.0", False),
    ],
)
def test_docker_min_api_version_is_lowered_exactly_where_dockershim_meets_docker29(version, runtime, k8s, lowered):
    plan = plan_start(
        _cluster(container_runtime=runtime, kubernetes_version=k8s), mk.MinikubeVersion(version), lambda: LAPTOP
    )
    assert (plan.docker_env == [DOCKER_MIN_API]) is lowered
    assert any("DOCKER_MIN_API_VERSION=1.24" in n for n in plan.notes) is lowered


def test_the_profile_can_opt_out_and_is_told_what_follows():
    plan = plan_start(_cluster(lower_docker_min_api=False), mk.MinikubeVersion("v1.38.1"), lambda: LAPTOP)
    assert plan.docker_env == []
    assert any("K8S_KUBELET_NOT_RUNNING" in w and "minikube <= 1.37" in w for w in plan.warnings)


def test_start_args_carry_docker_env():
    args = mk.Minikube(P).start_args(
        driver="docker",
        kubernetes_version="v1.21.14",
        cpus=4,
        memory="8g",
        container_runtime="docker",
        force=True,
        docker_env=[DOCKER_MIN_API],
    )
    assert args[-3:] == ["--docker-env", DOCKER_MIN_API, "--force"]


# -- images where docker-env cannot reach ------------------------------------------------------------
def test_image_transfer_auto():
    assert transfer_mode("auto", "docker")[0] == "docker-env"
    assert transfer_mode("auto", "containerd")[0] == "load"
    assert transfer_mode("auto", "docker", nodes=2)[0] == "load"
    assert transfer_mode("docker-env", "containerd")[0] == "docker-env"


def test_image_names_as_minikube_lists_them():
    assert normalize_ref("app:dev-1") == "docker.io/library/app:dev-1"
    assert normalize_ref("kubeless/x:1") == "docker.io/kubeless/x:1"
    assert normalize_ref("registry.k8s.io/pause:3.4") == "registry.k8s.io/pause:3.4"
    assert normalize_ref("localhost:5000/a") == "localhost:5000/a:latest"


def test_image_load_hands_minikube_the_build_engine():
    run = Run((0, "", ""))
    mk.Minikube(P, run=run).image_load("app:1", env={"DOCKER_HOST": "tcp://127.0.0.1:1"}, timeout=5)
    assert run.calls[0]["argv"] == ["minikube", "image", "load", "-p", P, "--daemon", "app:1"]
    assert run.calls[0]["env"]["DOCKER_HOST"] == "tcp://127.0.0.1:1"


def test_a_confirmation_is_remembered_for_its_config_json_and_server_only(tmp_path, monkeypatch):
    from devloop.output.report import Reporter
    from devloop.session import Session

    monkeypatch.setenv("MINIKUBE_HOME", str(_home_with_profile(tmp_path, ip="192.168.49.2")))
    mini = GuardMinikube(("192.168.49.2", 8443), "Configured")

    def guard(server: str) -> None:
        session = Session(
            profile=load_profile("kubeless", cwd=Path("/")),
            workspace=tmp_path,
            reporter=Reporter(json_mode=True),
            cache_dir=tmp_path / "cache",
            kubeconfig=_kubeconfig(tmp_path / f"kc{server[-5:]}", server),
        )
        session._minikube = mini  # the real adapter's place, so the session keeps its cache
        session.guard_context()

    guard("https://127.0.0.1:50123")
    guard("https://127.0.0.1:50123")
    assert mini.status_calls == 1  # the second run asked minikube nothing
    mini.kubeconfig_state = "Misconfigured"
    with pytest.raises(UnsafeContext):
        guard("https://127.0.0.1:50999")  # another server: minikube is asked again, and refuses
    assert mini.status_calls == 2


def test_a_force_the_profile_passes_itself_gets_devloops_own_checks():
    """As root minikube refuses every driver but none unless forced (DRV_AS_ROOT, found on the real v1.36.0):
    a profile that adds --force gets the checks --force skips in minikube."""
    with pytest.raises(ConfigError) as err:
        plan_start(_cluster(extra_start_args=["--force"]), mk.MinikubeVersion("v1.36.0"), lambda: SMALL)
    assert "cluster.cpus is 4" in err.value.message
    plan = plan_start(_cluster(cpus=2, extra_start_args=["--force"]), mk.MinikubeVersion("v1.36.0"), lambda: SMALL)
    assert plan.force and any("cluster.extra_start_args" in n for n in plan.notes)


def test_minikube_refusing_root_says_how_to_go_on():
    from devloop.adapters.minikube.output import _REASON_HINTS

    assert "--force" in _REASON_HINTS["DRV_AS_ROOT"] and "extra_start_args" in _REASON_HINTS["DRV_AS_ROOT"]
