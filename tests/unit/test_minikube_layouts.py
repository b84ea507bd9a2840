"""config.json as real minikube lays it out, and what devloop may conclude from it (issue 18 W1, W4).

W1: for the docker and podman drivers Nodes[0].IP is the container's own address on every platform
(kic.go:294-297, machine.go:138-152). On Docker Desktop, macOS, WSL, rootless Docker and a remote
DOCKER_HOST the host cannot reach it: minikube forwards 8443 and 2376 to 127.0.0.1 ports that appear only
in the kubeconfig and in docker-env's answer. So no read-only command (and no prefetch) may derive
tcp://<node IP>:2376 for those drivers; the tests record every socket connect to prove none is tried.

W4: config.json is written in place or removed before a rename (profile.go:148-171, config.go:234-241), so
an unlocked reader can catch no file or half a file; it reads once more before concluding anything.
"""

from __future__ import annotations

import importlib
import json
import socket
from pathlib import Path

import pytest
import yaml

from devloop.adapters.host import HostResources
from devloop.adapters.minikube import cli as mk
from devloop.adapters.minikube import engine_endpoint, home
from devloop.adapters.minikube.engine_endpoint import GUESS_CONNECT_TIMEOUT, read_only_docker_env
from devloop.adapters.minikube.home import read_profile_config
from devloop.base.errors import ClusterError
from devloop.output.report import Reporter
from devloop.profile.lookup import load_profile
from devloop.session import Session

P = "devloop-kubeless"  # the bundled profile's minikube profile
NODE_IP = "192.168.49.2"
FORWARDED_API = 55123
FORWARDED_ENGINE = {
    "DOCKER_TLS_VERIFY": "1",
    "DOCKER_HOST": "tcp://127.0.0.1:55124",
    "DOCKER_CERT_PATH": "/h/.minikube/certs",
    "MINIKUBE_ACTIVE_DOCKERD": P,
}


def desktop_config(driver: str = "docker", **extra) -> dict:
    """`minikube start --driver=docker` on Docker Desktop, as saved after the host got its address: the
    container's address and the in-node port, nothing forwarded (trimmed to neighbours of what devloop reads)."""
    return {
        "Name": P,
        "Driver": driver,
        "APIServerPort": 8443,
        "KubernetesConfig": {
            "KubernetesVersion": "v1.21.14",
            "ClusterName": P,
            "ContainerRuntime": "docker",
            "FeatureGates": "ServerSideApply=false",
        },
        "Nodes": [
            {
                "Name": "",
                "IP": NODE_IP,
                "Port": 8443,
                "KubernetesVersion": "v1.21.14",
                "ContainerRuntime": "docker",
                "ControlPlane": True,
                "Worker": True,
            }
        ],
        "Addons": {"ingress": True},
        **extra,
    }


def lay_out(tmp_path: Path, config: dict | None = None) -> Path:
    minikube_home = tmp_path / ".minikube"
    (minikube_home / "profiles" / P).mkdir(parents=True)
    (minikube_home / "profiles" / P / "config.json").write_text(json.dumps(config or desktop_config(), indent="    "))
    (minikube_home / "certs").mkdir()
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (minikube_home / "certs" / name).write_text("x")
    (minikube_home / "ca.crt").write_text("ca")
    return minikube_home


def forwarded_kubeconfig(tmp_path: Path) -> str:
    """The kubeconfig entry minikube writes on Docker Desktop: the forwarded loopback port."""
    path = tmp_path / "kubeconfig"
    cluster = {
        "server": f"https://127.0.0.1:{FORWARDED_API}",
        "certificate-authority": str(tmp_path / ".minikube" / "ca.crt"),
        "extensions": [{"name": "cluster_info", "extension": {"provider": "minikube.sigs.k8s.io"}}],
    }
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": P, "cluster": cluster}],
                "users": [{"name": P, "user": {}}],
                "contexts": [{"name": P, "context": {"cluster": P, "user": P}}],
            }
        )
    )
    return str(path)


@pytest.fixture
def connects(monkeypatch) -> list:
    """Every TCP connect anything in the process tries; all are refused (nothing leaves this machine)."""
    seen: list = []

    def connect(sock, address):
        seen.append(address)
        if isinstance(address, tuple):
            raise ConnectionRefusedError(111, "refused by the test")
        return real_connect(sock, address)

    real_connect = socket.socket.connect
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", lambda sock, address: (seen.append(address), 111)[1])
    return seen


def to_node_engine(seen: list) -> list:
    return [a for a in seen if isinstance(a, tuple) and a[0] == NODE_IP]


class DesktopMinikube:
    """A running profile; answers from the laid-out config.json; docker-env only when `forwarded` is given."""

    binary, profile_name = "minikube", P

    def __init__(self, forwarded: dict | None = None):
        self.forwarded, self.calls = forwarded, []

    def profile_config(self):
        return read_profile_config(P)

    def api_endpoint(self):
        config = read_profile_config(P)
        return config.endpoint if config else None

    def docker_env(self):
        self.calls.append("docker_env")
        if self.forwarded is None:
            raise AssertionError("docker-env run by a read-only command")
        return dict(self.forwarded)

    def __getattr__(self, name):
        self.calls.append(name)
        answers = {
            "version": mk.MinikubeVersion("v1.38.1"),
            "status": mk.ClusterStatus(
                "Running", name=P, host="Running", kubelet="Running", apiserver="Running", kubeconfig="Configured"
            ),
            "images": [],
            "addons": {"ingress": True},
        }
        return lambda *a, **k: answers.get(name)


def session_for(tmp_path: Path, monkeypatch, **kwargs) -> Session:
    monkeypatch.setenv("MINIKUBE_HOME", str(lay_out(tmp_path)))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    return Session(
        profile=load_profile("kubeless", cwd=Path("/")),
        workspace=tmp_path,
        reporter=Reporter(json_mode=True),
        kubeconfig=forwarded_kubeconfig(tmp_path),
        cache_dir=tmp_path / "cache",
        make_host=lambda driver: HostResources(cpus=8, memory_mb=16384, source="a laptop"),
        **kwargs,
    )


# -- W1: the read-only path ------------------------------------------------------------------------------
@pytest.mark.parametrize("driver", ["docker", "podman"])
def test_no_endpoint_is_derived_for_a_kic_driver(tmp_path, monkeypatch, connects, driver):
    monkeypatch.setenv("MINIKUBE_HOME", str(lay_out(tmp_path, desktop_config(driver))))
    env, why = read_only_docker_env(P, tmp_path / "cache")
    assert env is None
    assert f"the {driver} driver may forward the engine's port" in why and "`devloop up`" in why
    assert connects == []


def test_the_answer_up_recorded_is_used_as_is(tmp_path, monkeypatch, connects):
    monkeypatch.setenv("MINIKUBE_HOME", str(lay_out(tmp_path)))
    engine_endpoint.remember_docker_env(P, tmp_path / "cache", FORWARDED_ENGINE)
    env, why = read_only_docker_env(P, tmp_path / "cache")
    assert env == FORWARDED_ENGINE and "last run" in why and connects == []


@pytest.mark.parametrize("command", ["status", "doctor"])
def test_status_and_doctor_never_connect_to_the_containers_address(tmp_path, monkeypatch, connects, command):
    session = session_for(tmp_path, monkeypatch, make_minikube=lambda *_: DesktopMinikube(), make_kube=lambda **_: None)
    module = importlib.import_module(f"devloop.commands.{command}")
    result = getattr(module, command)(session)
    assert to_node_engine(connects) == []
    if command == "status":
        said = result.report["docker_env"]
        assert "may forward the engine's port" in said["error"] and "devloop up" in said["hint"]


def test_the_up_prefetch_never_connects_to_the_containers_address(tmp_path, monkeypatch, connects):
    session = session_for(tmp_path, monkeypatch)  # no minikube double: the prefetch runs as in `devloop up`
    session.prefetch_engine()
    if session._engine_prefetch is not None:
        session._engine_prefetch[0].join(30)
    assert to_node_engine(connects) == []


def test_up_asks_minikube_and_records_the_forwarded_port(tmp_path, monkeypatch, connects):
    session = session_for(tmp_path, monkeypatch)
    mini = DesktopMinikube(forwarded=FORWARDED_ENGINE)
    session._minikube = mini  # `up`'s own path (make_minikube unset), with minikube's answer stubbed
    assert session.docker_env()["DOCKER_HOST"] == "tcp://127.0.0.1:55124"
    assert mini.calls.count("docker_env") == 1 and to_node_engine(connects) == []
    assert read_only_docker_env(P, tmp_path / "cache")[0] == FORWARDED_ENGINE  # status now has it


# -- W1: a VM's own address is what docker-env prints, tried with a short deadline ---------------------------
def test_a_vm_drivers_address_is_derived_when_it_answers(tmp_path, monkeypatch):
    tried = []

    class Accepted:
        def close(self):
            pass

    def create_connection(address, timeout=None, *a, **k):
        tried.append((address, timeout))
        return Accepted()

    monkeypatch.setattr(socket, "create_connection", create_connection)
    minikube_home = lay_out(tmp_path, desktop_config("kvm2"))
    monkeypatch.setenv("MINIKUBE_HOME", str(minikube_home))
    env, why = read_only_docker_env(P, tmp_path / "cache")
    assert env["DOCKER_HOST"] == f"tcp://{NODE_IP}:2376" and env["DOCKER_CERT_PATH"] == str(minikube_home / "certs")
    assert tried == [((NODE_IP, 2376), GUESS_CONNECT_TIMEOUT)] and GUESS_CONNECT_TIMEOUT <= 2


def test_a_vm_address_that_does_not_answer_is_said_within_the_short_deadline(tmp_path, monkeypatch):
    def create_connection(address, timeout=None, *a, **k):
        assert timeout == GUESS_CONNECT_TIMEOUT
        raise TimeoutError("timed out")

    monkeypatch.setattr(socket, "create_connection", create_connection)
    monkeypatch.setenv("MINIKUBE_HOME", str(lay_out(tmp_path, desktop_config("kvm2"))))
    env, why = read_only_docker_env(P, tmp_path / "cache")
    assert env is None
    assert f"{NODE_IP}:2376" in why and f"within {GUESS_CONNECT_TIMEOUT:g} s" in why and "timed out" in why


@pytest.mark.parametrize("network", ["builtin", "user"])
def test_qemus_builtin_network_forwards_too(tmp_path, monkeypatch, connects, network):
    monkeypatch.setenv("MINIKUBE_HOME", str(lay_out(tmp_path, desktop_config("qemu2", Network=network))))
    env, why = read_only_docker_env(P, tmp_path / "cache")
    assert env is None and "forwards the engine's port" in why and connects == []


# -- W4: minikube's write windows ---------------------------------------------------------------------------
def pause_does(monkeypatch, action) -> list:
    """Run `action` during the reader's pause, as minikube finishing its write would."""
    pauses: list = []
    real = home.wait_for

    def sleep(seconds):
        pauses.append(seconds)
        action()

    monkeypatch.setattr(home, "wait_for", lambda condition, **kw: real(condition, **{**kw, "sleep": sleep}))
    return pauses


def test_no_file_between_remove_and_rename_is_read_again(tmp_path, monkeypatch):
    minikube_home = lay_out(tmp_path)
    path = minikube_home / "profiles" / P / "config.json"
    saved = path.read_text()
    path.unlink()  # SaveProfile removed it; the rename has not happened yet
    pauses = pause_does(monkeypatch, lambda: path.write_text(saved))
    config = read_profile_config(P, minikube_home)
    assert config is not None and config.endpoint == (NODE_IP, 8443)
    assert len(pauses) == 1 and 0.1 <= pauses[0] <= 0.2


@pytest.mark.parametrize("written", ["", '{"Name": "devloop-kubeless", "Driver": "doc'])
def test_a_file_caught_mid_write_is_read_again(tmp_path, monkeypatch, written):
    minikube_home = lay_out(tmp_path)
    path = minikube_home / "profiles" / P / "config.json"
    saved = path.read_text()
    path.write_text(written)  # config.Write truncated it and has written this much
    pauses = pause_does(monkeypatch, lambda: path.write_text(saved))
    config = read_profile_config(P, minikube_home)
    assert config is not None and config.driver == "docker" and len(pauses) == 1


def test_a_profile_without_its_directory_is_absent_at_once(tmp_path, monkeypatch):
    pauses = pause_does(monkeypatch, lambda: None)
    assert read_profile_config(P, tmp_path / ".minikube") is None and pauses == []


def test_a_file_that_stays_broken_gets_no_destructive_advice(tmp_path, monkeypatch):
    minikube_home = lay_out(tmp_path)
    path = minikube_home / "profiles" / P / "config.json"
    path.write_text('{"Name": "devl')
    pauses = pause_does(monkeypatch, lambda: None)
    with pytest.raises(ClusterError) as err:
        read_profile_config(P, minikube_home)
    assert len(pauses) == 1
    assert str(path) in err.value.message and "not JSON" in err.value.message and "two reads" in err.value.message
    hint = err.value.hint or ""
    assert "delete" not in hint and "half-written" in hint and "run the command again" in hint
    assert "If it stays this way, look at the file" in hint


def test_a_missing_file_that_stays_missing_is_no_profile(tmp_path, monkeypatch):
    minikube_home = lay_out(tmp_path)
    (minikube_home / "profiles" / P / "config.json").unlink()
    pauses = pause_does(monkeypatch, lambda: None)
    assert read_profile_config(P, minikube_home) is None and len(pauses) == 1
