"""docker-env's forwarded engine port found as minikube finds it, without running `minikube docker-env`
(issue 18 W1 and Done when): `docker container inspect <profile>` through the user's own Docker gives the
host port published for the node container's 2376/tcp, on 127.0.0.1. Never the container's own address
(192.168.49.2, unreachable on Docker Desktop); only a running container minikube labelled with this
profile; a request the engine does not answer leaves it to docker-env as before."""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from devloop.adapters.minikube.engine_endpoint import read_only_docker_env

P = "devloop-kubeless"


def _lay_out(root: Path, **config_extra) -> Path:
    home = root / ".minikube"
    (home / "profiles" / P).mkdir(parents=True)
    (home / "certs").mkdir()
    (home / "certs" / "cert.pem").write_text("client certificate\n")
    config = {
        "Name": P,
        "Driver": "docker",
        "KubernetesConfig": {"KubernetesVersion": "v1.21.14", "ContainerRuntime": "docker"},
        "Nodes": [{"Name": "", "IP": "192.168.49.2", "Port": 8443, "ControlPlane": True, "Worker": True}],
        **config_extra,
    }
    (home / "profiles" / P / "config.json").write_text(json.dumps(config))
    return home


def node_container(*, name: str = P, running: bool = True, port: str = "55124") -> dict:
    """What `docker container inspect` says of minikube's node container on Docker Desktop (trimmed)."""
    return {
        "Name": f"/{name}",
        "State": {"Status": "running" if running else "exited", "Running": running},
        "Config": {"Labels": {"created_by.minikube.sigs.k8s.io": "true", "name.minikube.sigs.k8s.io": name}},
        "NetworkSettings": {
            "Ports": {
                "22/tcp": [{"HostIp": "127.0.0.1", "HostPort": "55120"}],
                "2376/tcp": [{"HostIp": "127.0.0.1", "HostPort": port}] if running else None,
                "8443/tcp": [{"HostIp": "127.0.0.1", "HostPort": "55123"}],
            },
            "Networks": {P: {"IPAddress": "192.168.49.2"}},
        },
    }


class FakeDocker:
    """The user's Docker engine on a unix socket, answering GET /containers/<name>/json only."""

    def __init__(self, path: Path, containers: dict[str, dict]):
        self.requests: list[tuple[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append(("GET", self.path))
                name = self.path.removeprefix("/containers/").removesuffix("/json")
                body, code = (json.dumps(containers[name]).encode(), 200) if name in containers else (b"{}", 404)
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def address_string(self):
                return "unix"

            def log_message(self, *args):
                pass

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        self.server = Server(str(path), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def docker(tmp_path, monkeypatch):
    started = []

    def start(containers: dict[str, dict]) -> FakeDocker:
        sock = tmp_path / "docker.sock"
        engine = FakeDocker(sock, containers)
        started.append(engine)
        monkeypatch.setenv("DOCKER_HOST", f"unix://{sock}")
        return engine

    monkeypatch.delenv("MINIKUBE_ACTIVE_DOCKERD", raising=False)
    yield start
    for engine in started:
        engine.close()


@pytest.fixture
def tcp_connects(monkeypatch) -> list:
    seen: list = []
    real = socket.socket.connect

    def connect(sock, address):
        if isinstance(address, tuple):
            seen.append(address)
            raise ConnectionRefusedError(111, "refused by the test")
        return real(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return seen


def test_the_published_engine_port_is_read_through_the_users_docker(tmp_path, monkeypatch, docker, tcp_connects):
    home = _lay_out(tmp_path)
    monkeypatch.setenv("MINIKUBE_HOME", str(home))
    engine = docker({P: node_container()})
    env, why = read_only_docker_env(P, tmp_path / "cache")
    assert env == {
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_HOST": "tcp://127.0.0.1:55124",
        "DOCKER_CERT_PATH": str(home / "certs"),
        "MINIKUBE_ACTIVE_DOCKERD": P,
    }
    assert "docker container inspect" in why
    assert engine.requests == [("GET", f"/containers/{P}/json")]  # one read, nothing else
    assert tcp_connects == []  # never the container's address (nor anything else over TCP)


@pytest.mark.parametrize(
    "containers",
    [
        {},  # no such container: a VM driver's profile of the same name, a deleted node
        {P: node_container(running=False)},  # stopped: nothing published
        {P: {**node_container(), "Config": {"Labels": {}}}},  # not minikube's node container
        {P: node_container(name="someone-else")},  # labelled with another profile
    ],
)
def test_anything_but_this_profiles_running_node_is_left_to_docker_env(tmp_path, monkeypatch, docker, containers):
    monkeypatch.setenv("MINIKUBE_HOME", str(_lay_out(tmp_path)))
    docker(containers)
    env, why = read_only_docker_env(P, tmp_path / "cache")
    assert env is None and "may forward the engine's port" in why


def test_no_users_docker_is_left_to_docker_env(tmp_path, monkeypatch, tcp_connects):
    monkeypatch.setenv("MINIKUBE_HOME", str(_lay_out(tmp_path)))
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'nothing-here.sock'}")
    env, why = read_only_docker_env(P, tmp_path / "cache")
    assert env is None and "may forward the engine's port" in why and tcp_connects == []


def test_the_podman_driver_is_not_asked_through_docker(tmp_path, monkeypatch, docker):
    monkeypatch.setenv("MINIKUBE_HOME", str(_lay_out(tmp_path, Driver="podman")))
    engine = docker({P: node_container()})
    env, _ = read_only_docker_env(P, tmp_path / "cache")
    assert env is None and engine.requests == []


def test_up_uses_it_only_when_the_daemon_there_is_the_profiles(tmp_path, monkeypatch, docker):
    from devloop.output.report import Reporter
    from devloop.profile.lookup import load_profile
    from devloop.session import Session

    monkeypatch.setenv("MINIKUBE_HOME", str(_lay_out(tmp_path)))
    docker({P: node_container()})
    asked = []

    class Minikube:
        binary, profile_name = "minikube", P

        def docker_env(self):
            asked.append("docker-env")
            return {"DOCKER_HOST": "tcp://127.0.0.1:60000", "MINIKUBE_ACTIVE_DOCKERD": P}

    class Engine:
        def __init__(self, env):
            self.env = env

        def daemon_name(self):
            return "another-daemon" if env_port(self.env) == "55124" else P

        def close(self):
            pass

    def env_port(env):
        return env["DOCKER_HOST"].rsplit(":", 1)[1]

    def session():
        s = Session(
            profile=load_profile("kubeless", cwd=Path("/")),
            workspace=tmp_path,
            reporter=Reporter(json_mode=True),
            cache_dir=tmp_path / "cache",
            make_docker=Engine,
        )
        s._minikube = Minikube()  # type: ignore[assignment]  # the real adapter's place
        return s

    # the inspected port leads to a daemon that is not the profile's: minikube is asked after all
    assert env_port(session().docker().env) == "60000" and asked == ["docker-env"]
