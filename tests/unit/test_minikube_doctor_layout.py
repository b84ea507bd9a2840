"""`devloop doctor` explains the platform's layout (issue 18, "What to build" 4): which of the node's ports the
host reaches through a forward, where docker-env points and why, and the feature gates minikube added itself.

Two layouts as real minikube writes them for the docker driver: Docker Desktop (config.json keeps the
container's 192.168.49.2:8443, which the host cannot reach; the forwarded ports are only in the kubeconfig and
docker-env's answer) and a rootful Docker Engine on Linux (the kubeconfig and docker-env name 192.168.49.2
itself). Nothing in the Desktop layout may connect to the node's address."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import yaml

from devloop.adapters.minikube import cli as mk
from devloop.adapters.minikube import engine_endpoint
from devloop.adapters.minikube.home import read_profile_config
from devloop.commands.doctor import doctor
from devloop.output.report import Reporter
from devloop.profile.lookup import load_profile
from devloop.session import Session

P = "devloop-kubeless"
NODE_IP = "192.168.49.2"


def _config(gates: str) -> dict:
    return {
        "Name": P,
        "Driver": "docker",
        "APIServerPort": 8443,
        "KubernetesConfig": {"KubernetesVersion": "v1.21.14", "ContainerRuntime": "docker", "FeatureGates": gates},
        "Nodes": [{"Name": "", "IP": NODE_IP, "Port": 8443, "ControlPlane": True, "Worker": True}],
        "Addons": {"ingress": True},
    }


def _lay_out(tmp_path: Path, monkeypatch, *, server: str, gates: str) -> str:
    home = tmp_path / ".minikube"
    (home / "profiles" / P).mkdir(parents=True)
    (home / "profiles" / P / "config.json").write_text(json.dumps(_config(gates)))
    (home / "certs").mkdir()
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (home / "certs" / name).write_text("x")
    (home / "ca.crt").write_text("ca")
    monkeypatch.setenv("MINIKUBE_HOME", str(home))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    kubeconfig = tmp_path / "kubeconfig"
    cluster = {"server": server, "certificate-authority": str(home / "ca.crt")}
    kubeconfig.write_text(
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
    return str(kubeconfig)


class Minikube:
    binary, profile_name = "minikube", P

    def profile_config(self):
        return read_profile_config(P)

    def api_endpoint(self):
        return read_profile_config(P).endpoint

    def version(self):
        return mk.MinikubeVersion("v1.36.0")

    def status(self):
        return mk.ClusterStatus("Running", name=P, host="Running", kubelet="Running", apiserver="Running")

    def docker_env(self):
        raise AssertionError("docker-env run by doctor")

    def __getattr__(self, name):
        return lambda *a, **k: None


@pytest.fixture
def connects(monkeypatch) -> list:
    seen: list = []

    def connect(sock, address):
        seen.append(address)
        raise ConnectionRefusedError(111, "refused by the test")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", lambda sock, address: (seen.append(address), 111)[1])
    return seen


def _doctor(tmp_path: Path, kubeconfig: str) -> dict[str, str]:
    session = Session(
        profile=load_profile("kubeless", cwd=Path("/")),
        workspace=tmp_path,
        reporter=Reporter(json_mode=True),
        kubeconfig=kubeconfig,
        cache_dir=tmp_path / "cache",
        minikube_binary="/bin/true",  # on PATH for doctor's tool check; the double answers
        make_minikube=lambda *_: Minikube(),
        make_kube=lambda **_: None,
    )
    checks = doctor(session).checks
    return {c.name: c.detail for c in checks if c.name in ("ports", "docker-env points at", "gates minikube added")}


def test_docker_desktop_forwarded_ports_and_minikubes_gates(tmp_path, monkeypatch, connects):
    kubeconfig = _lay_out(
        tmp_path,
        monkeypatch,
        server="https://127.0.0.1:55123",
        gates="KubeletInUserNamespace=true,ServerSideApply=false",
    )
    lines = _doctor(tmp_path, kubeconfig)
    ports = lines["ports"]
    assert ports.startswith(
        f"forwarded: the node's address {NODE_IP}:8443 is the docker container's own, which this host does not reach"
    )
    assert "8443 -> 127.0.0.1:55123 (the kubeconfig's server)" in ports
    assert "2376 -> a port only docker-env knows (not recorded yet)" in ports
    assert lines["docker-env points at"].startswith("not known without minikube: the docker driver may forward")
    assert lines["gates minikube added"].startswith(
        "KubeletInUserNamespace=true (the driver's engine is rootless Docker or Podman); devloop passes them again"
    )
    assert [a for a in connects if isinstance(a, tuple) and a[0] == NODE_IP] == []

    # after `devloop up` recorded docker-env's answer for this config.json
    engine_endpoint.remember_docker_env(
        P, tmp_path / "cache", {"DOCKER_HOST": "tcp://127.0.0.1:55124", "DOCKER_TLS_VERIFY": "1"}
    )
    lines = _doctor(tmp_path, kubeconfig)
    assert "2376 -> 127.0.0.1:55124; config.json keeps 192.168.49.2:8443" in lines["ports"]
    assert lines["docker-env points at"].startswith(
        "tcp://127.0.0.1:55124: the node's dockerd (2376) forwarded to the host's loopback, as minikube does here "
        "(docker-env's answer from devloop's last run"
    )
    assert [a for a in connects if isinstance(a, tuple) and a[0] == NODE_IP] == []


def test_linux_rootful_the_node_is_reached_at_its_own_address(tmp_path, monkeypatch, connects):
    kubeconfig = _lay_out(tmp_path, monkeypatch, server=f"https://{NODE_IP}:8443", gates="ServerSideApply=false")
    engine_endpoint.remember_docker_env(
        P, tmp_path / "cache", {"DOCKER_HOST": f"tcp://{NODE_IP}:2376", "DOCKER_TLS_VERIFY": "1"}
    )
    lines = _doctor(tmp_path, kubeconfig)
    assert lines["ports"] == (
        f"not forwarded: the host reaches the node at its own address {NODE_IP}:8443 (the kubeconfig's server "
        f"https://{NODE_IP}:8443); with the docker driver that is a rootful Docker Engine on Linux"
    )
    assert lines["docker-env points at"].startswith(
        f"tcp://{NODE_IP}:2376: the node's own address: the host reaches it"
    )
    assert lines["gates minikube added"].startswith(
        "none (when it creates a profile minikube adds KubeletInUserNamespace=true where"
    )
    assert "LocalStorageCapacityIsolation=false where the engine stores on btrfs" in lines["gates minikube added"]


def test_a_gate_the_profile_names_is_the_profiles():
    from devloop.loop.start_plan import minikube_added_gates

    assert minikube_added_gates({"LocalStorageCapacityIsolation": False}, "LocalStorageCapacityIsolation=false") == {}
    assert minikube_added_gates({}, "LocalStorageCapacityIsolation=false,A=true") == {
        "LocalStorageCapacityIsolation": "false"
    }
