"""`devloop up` from nothing with the bundled profile unchanged, on each minikube release the stand-in plays
(DEVRIG_MINIKUBE_VERSION): running pods that run the images devloop built, or, where the combination cannot
work, a non-zero exit within 60 s that names the cause and the fix. Plus the context guard against a
foreign API server on a loopback port. Each `up` from nothing costs a cluster start: profiles are deleted
as soon as their test is done.

The developer's own Docker (which minikube's docker driver asks for NCPU/MemTotal, and which devloop asks
under --force) is played by a small HTTP server answering the read-only calls devloop makes."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from support import run_devloop
from support.workspace import bundled_profile, copy_workspace

pytestmark = [pytest.mark.rig, pytest.mark.destructive]
NS = "kubeless"
TIMES: dict[str, float] = {}


class _EngineInfo(BaseHTTPRequestHandler):
    cpus = 8
    memory = 16 * 1024**3

    def do_GET(self):
        path = self.path.split("?")[0]
        if path.endswith("/version"):
            body = {"Version": "28.1.1", "ApiVersion": "1.41", "MinAPIVersion": "1.12"}
        elif path.endswith("/info"):
            body = {"Name": "laptop", "NCPU": self.server.cpus, "MemTotal": self.server.memory}
        elif path.endswith("/_ping"):
            body = "OK"
        else:
            self.send_error(404)
            return
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Api-Version", "1.41")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def _host_docker(cpus: int, memory_mb: int):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EngineInfo)
    server.cpus, server.memory = cpus, memory_mb * 1024 * 1024
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, {"DOCKER_HOST": f"tcp://127.0.0.1:{server.server_address[1]}"}


@pytest.fixture(scope="module")
def laptop():
    """A developer's Docker: 8 CPUs, 16 GiB (what the rig's stand-in plays too, see tests/conftest.py)."""
    server, env = _host_docker(8, 16384)
    yield env
    server.shutdown()


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return copy_workspace(tmp_path_factory.mktemp("versions") / "workspace")


def _profile_file(ws: Path, name: str, **cluster) -> Path:
    """The bundled profile with only cluster.profile changed (so each mode gets a minikube profile of its own),
    and the `cluster` settings given (the tests that are not about the bundled profile)."""
    data = yaml.safe_load(bundled_profile().read_text())
    data["cluster"]["profile"] = name
    data["cluster"].update(cluster)
    path = ws.parent / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _delete(rig_env, name: str) -> None:
    subprocess.run(["minikube", "delete", "-p", name], env=rig_env.env, capture_output=True, timeout=180)


def _up(rig_env, ws: Path, name: str, env: dict, timeout: float = 900, **cluster):
    t0 = time.monotonic()
    run = run_devloop(
        "up", workspace=ws, profile=_profile_file(ws, name, **cluster), env=rig_env.env, extra_env=env, timeout=timeout
    )
    return run, time.monotonic() - t0


def _kubectl(rig_env, name: str, *args: str) -> dict:
    out = subprocess.run(
        [str(rig_env.kubectl), "--context", name, *args, "-o", "json"],
        env=rig_env.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout)


def _assert_pods_run_the_built_images(rig_env, name: str, run) -> None:
    tags = run.result["tags"]
    pods = [
        p
        for p in _kubectl(rig_env, name, "get", "pods", "-n", NS, "-l", "kubeless=controller")["items"]
        if not p["metadata"].get("deletionTimestamp")
    ]
    (pod,) = pods
    statuses = {c["name"]: c for c in pod["status"]["containerStatuses"]}
    for container, component in (
        ("kubeless-function-controller", "function-controller"),
        ("http-trigger-controller", "http-trigger-controller"),
        ("cronjob-trigger-controller", "cronjob-trigger-controller"),
    ):
        assert statuses[container]["ready"], statuses[container]
        assert statuses[container]["image"].endswith(tags[component])


# -- the small host: explained before minikube runs ---------------------------------------------------
def test_forced_start_on_a_two_cpu_docker_is_refused_within_a_minute_naming_the_fix(rig_env, rig_built, ws):
    server, docker = _host_docker(2, 3900)
    try:
        env = {**docker, "DEVRIG_MINIKUBE_VERSION": "v1.37.0"}
        run, seconds = _up(rig_env, ws, "mkv-small", env, timeout=60)
    finally:
        server.shutdown()
        _delete(rig_env, "mkv-small")
    TIMES["v1.37.0 on a 2-CPU Docker (refused)"] = seconds
    assert run.returncode == 2, run.tail()
    error = run.last
    assert error["event"] == "error" and error["kind"] == "ConfigError", run.tail()
    assert "cluster.cpus is 4" in error["message"] and "has 2 CPUs" in error["message"], run.tail()
    assert "--force" in error["message"] and "cluster.cpus: 2" in error["hint"], run.tail()
    profiles = json.loads(
        subprocess.run(
            ["minikube", "profile", "list", "-o", "json", "-l"],
            env=rig_env.env,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
    )
    assert "mkv-small" not in [p["Name"] for p in profiles["valid"]]  # minikube never ran start


# -- each release, from nothing -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("version", "network", "expect"),
    [
        # netns: the node at 192.168.49.2:8443 inside its own network, the host reaching the API server only through
        # a forwarded loopback port (as Docker Desktop, WSL and rootless Docker do); loopback: the node on 127.0.0.1
        ("v1.36.0", "netns", []),
        ("v1.36.0", "loopback", []),
        ("v1.37.0", "netns", ["--force"]),
        ("v1.38.1", "netns", ["--force", "--docker-env DOCKER_MIN_API_VERSION=1.24"]),
        # v1.39 defaults to containerd: the profile's pinned docker runtime is what runs
        (
            "v1.39.0",
            "netns",
            ["--force", "v1.21.14, docker runtime, --force, --docker-env DOCKER_MIN_API_VERSION=1.24"],
        ),
    ],
)
def test_up_from_nothing_runs_the_built_images(rig_env, rig_built, ws, laptop, version, network, expect):
    name = f"mkv-{version.replace('.', '')[1:]}-{network[:2]}"
    try:
        run, seconds = _up(rig_env, ws, name, {**laptop, "DEVRIG_MINIKUBE_VERSION": version, "DEVRIG_NETWORK": network})
        TIMES[f"{version} docker runtime, {network}"] = seconds
        assert run.returncode == 0, run.tail()
        _assert_pods_run_the_built_images(rig_env, name, run)
        for flag in expect:
            assert flag in run.stdout, run.tail()  # the step line / notes say what devloop added, and why
        config = json.loads((rig_env.minikube_home / ".minikube" / "profiles" / name / "config.json").read_text())
        assert config["KubernetesConfig"]["ContainerRuntime"] == "docker"
        server = next(
            c["cluster"]["server"]
            for c in yaml.safe_load(rig_env.kubeconfig.read_text())["clusters"]
            if c["name"] == name
        )
        node = config["Nodes"][0]
        forwarded = server != f"https://{node['IP']}:{node['Port']}"
        assert forwarded is (network == "netns"), (server, node)  # the guard passed the profile's forwarded port
        if version == "v1.36.0":
            _foreign_server_gets_nothing(rig_env, ws, name)
    finally:
        _delete(rig_env, name)
        print(f"devloop up from nothing: {TIMES}")


def _foreign_server_gets_nothing(rig_env, ws: Path, name: str) -> None:
    """A stale loopback port in the kubeconfig, now served by something else: the guard refuses before any request
    goes there. Since 0.4 it may open one TLS handshake to ask the server which profile's certificate it holds
    (its ClientHello carries no request and no credentials; a server that cannot complete it is left to
    `minikube status`); v0.3 sent nothing at all."""
    connections = []
    requests = []
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def accept():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            connections.append(1)
            conn.settimeout(2)
            try:
                data = conn.recv(4096)
            except OSError:
                data = b""
            if data and not data.startswith(b"\x16\x03"):  # anything but a TLS handshake record
                requests.append(data[:80])
            conn.close()

    threading.Thread(target=accept, daemon=True).start()
    kubeconfig = yaml.safe_load(rig_env.kubeconfig.read_text())
    saved = rig_env.kubeconfig.read_text()
    for entry in kubeconfig["clusters"]:
        if entry["name"] == name:
            entry["cluster"]["server"] = f"https://127.0.0.1:{port}"
    rig_env.kubeconfig.write_text(yaml.safe_dump(kubeconfig))
    try:
        run = run_devloop("apply", workspace=ws, profile=_profile_file(ws, name), env=rig_env.env, timeout=120)
        assert run.returncode != 0, run.tail()
        assert run.last["kind"] == "UnsafeContext" and f"127.0.0.1:{port}" in run.last["message"], run.tail()
        assert requests == [], f"the foreign server at port {port} got {requests} ({len(connections)} connections)"
        assert len(connections) <= 1, f"the foreign server at port {port} was contacted {len(connections)} times"
    finally:
        listener.close()
        rig_env.kubeconfig.write_text(saved)


# -- Kubernetes 1.21 on the Docker >= 29 of minikube 1.38, without devloop's way through --------------
def test_opting_out_of_the_docker_api_floor_fails_as_minikube_does_and_says_the_fix(rig_env, rig_built, ws, laptop):
    """The stand-in's gate refuses the real v1.21 kubelet (dockershim's API 1.41) as Docker 29 does; kubeadm's
    two waits are shortened to 15 s each (DEVRIG_KUBEADM_INIT_TIMEOUT). This is what the parametrized v1.38.1
    run above avoids with --docker-env DOCKER_MIN_API_VERSION=1.24."""
    name = "mkv-optout"
    try:
        run, seconds = _up(
            rig_env,
            ws,
            name,
            {**laptop, "DEVRIG_MINIKUBE_VERSION": "v1.38.1", "DEVRIG_KUBEADM_INIT_TIMEOUT": "15"},
            lower_docker_min_api=False,
        )
    finally:
        _delete(rig_env, name)
    TIMES["v1.38.1 opted out of the API floor (refused by minikube)"] = seconds
    assert run.returncode == 1, run.tail()
    warnings = [e["message"] for e in run.events if e.get("event") == "warning"]
    assert any("K8S_KUBELET_NOT_RUNNING" in w for w in warnings), run.tail()  # said before the wait
    error = run.last
    assert "exited with code 109" in error["message"] and "K8S_KUBELET_NOT_RUNNING" in error["message"], run.tail()
    assert "DOCKER_MIN_API_VERSION=1.24" in error["hint"], run.tail()


# -- containerd: images built with the developer's Docker, loaded with `minikube image load` ----------
def test_containerd_pods_run_the_images_devloop_loaded(rig_env, rig_built, ws, rig_profile_factory):
    """The developer's Docker is a real engine here (another profile's: the rig's host has none), so builds
    and `minikube image load` are real; the pod must run exactly the image built there, by imageID."""
    from devrig.machine import Machine

    laptop = rig_profile_factory("mkv-laptop")
    info = Machine(laptop.profile, rig_env.minikube_home / ".minikube").info()
    docker = {"DOCKER_HOST": info.docker_host, "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(info.docker_cert_path)}
    name = "mkv-ctrd"
    try:
        # v1.39 forces 1.21, so devloop checks CPUs against this engine's (the machine's) 2
        run, seconds = _up(
            rig_env, ws, name, {**docker, "DEVRIG_MINIKUBE_VERSION": "v1.39.0"}, container_runtime="containerd", cpus=2
        )
        TIMES["v1.39.0 containerd runtime (image load)"] = seconds
        assert run.returncode == 0, run.tail()
        assert run.steps().get("images") == "ok" and "docker-env" not in run.steps(), run.tail()
        tags = run.result["tags"]
        (pod,) = [
            p
            for p in _kubectl(rig_env, name, "get", "pods", "-n", NS, "-l", "kubeless=controller")["items"]
            if not p["metadata"].get("deletionTimestamp")
        ]
        for status in pod["status"]["containerStatuses"]:
            component = {"kubeless-function-controller": "function-controller"}.get(status["name"], status["name"])
            assert status["ready"] and status["image"].endswith(tags[component]), status
            built = laptop.docker("image", "inspect", tags[component], "--format", "{{.Id}}").stdout.strip()
            assert status["imageID"].split("sha256:")[-1] == built.split("sha256:")[-1]
        shown = run_devloop(
            "status",
            workspace=ws,
            profile=_profile_file(ws, name, container_runtime="containerd", cpus=2),
            env=rig_env.env,
            extra_env=docker,
        )
        report = shown.result
        assert report["image_transfer"]["mode"] == "load", shown.tail()
        assert all(c["built"] is True for c in report["components"]), shown.tail()
    finally:
        _delete(rig_env, name)
        print(f"devloop up from nothing: {TIMES}")
