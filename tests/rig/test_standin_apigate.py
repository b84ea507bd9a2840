"""The Docker >= 29 API gate (devrig/standin/apigate.py) in front of an upstream engine, without a cluster.

The upstream is a tiny HTTP server on a unix socket that answers every request with the method, path and
body it received, so each test sees what the gate passed on. Real clients: the docker SDK and CLI.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import socketserver
import subprocess
import threading
import time

import pytest

from devrig.standin import apigate, versions

MESSAGE_141 = (
    "client version 1.41 is too old. Minimum supported API version is 1.44, please upgrade your client "
    "to a newer version"
)


class _Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding") == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                body += self.rfile.read(size)
                self.rfile.readline()
                if size == 0:
                    break
        else:
            body = self.rfile.read(length)
        out = json.dumps({"method": self.command, "path": self.path, "body": body.decode()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_HEAD = _answer

    def log_message(self, *args):
        pass


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):
        conn, _ = super().get_request()
        return conn, ("local", 0)


@pytest.fixture
def gate(tmp_path):
    """(gate socket path, start(minimum)) with an echoing upstream."""
    upstream = str(tmp_path / "up.sock")
    server = _UnixServer(upstream, _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    listen = str(tmp_path / "gate.sock")

    def start(minimum: str) -> str:
        threading.Thread(target=apigate.serve, args=(listen, upstream, minimum), daemon=True).start()
        deadline = time.monotonic() + 10
        while not os.path.exists(listen):
            assert time.monotonic() < deadline, f"the gate did not listen on {listen} within 10 s"
            time.sleep(0.05)
        return listen

    yield start
    server.shutdown()


def request(sock_path: str, raw: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(sock_path)
        s.sendall(raw)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_old_client_gets_dockers_400_and_message(gate):
    sock = gate("1.44")
    reply = request(sock, b"GET /v1.41/version HTTP/1.1\r\nHost: docker\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request")
    assert json.loads(body) == {"message": MESSAGE_141}


def test_ping_plays_docker_29_so_negotiation_keeps_the_clients_version(gate):
    sock = gate("1.44")
    reply = request(sock, b"HEAD /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200 OK") and b"Api-Version: 1.52" in reply and not reply.endswith(b"OK")


def test_new_client_passes_as_the_upstreams_version(gate):
    sock = gate("1.44")
    body = request(sock, b"GET /v1.45/info HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n").partition(
        b"\r\n\r\n"
    )[2]
    assert json.loads(body)["path"] == "/v1.41/info"


def test_every_request_on_a_kept_alive_connection_is_checked(gate):
    """Go's docker client pings, then sends its versioned requests on the same connection."""
    sock = gate("1.44")
    reply = request(
        sock, b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\nGET /v1.41/containers/json HTTP/1.1\r\nHost: docker\r\n\r\n"
    )
    assert b"HTTP/1.1 200 OK" in reply and MESSAGE_141.encode() in reply


def test_bodies_pass_whole(gate):
    sock = gate("1.44")
    chunked = (
        b"POST /v1.44/images/load HTTP/1.1\r\nHost: docker\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )
    assert json.loads(request(sock, chunked).partition(b"\r\n\r\n")[2])["body"] == "hello world"
    sized = b"POST /v1.44/build HTTP/1.1\r\nHost: docker\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"
    assert json.loads(request(sock, sized).partition(b"\r\n\r\n")[2]) == {
        "method": "POST",
        "path": "/v1.41/build",
        "body": "abc",
    }


def test_a_lowered_minimum_lets_the_old_client_through(gate):
    sock = gate("1.24")
    body = request(sock, b"GET /v1.41/version HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n").partition(
        b"\r\n\r\n"
    )[2]
    assert json.loads(body)["path"] == "/v1.41/version"


def test_docker_sdk_at_1_41_is_refused_with_the_daemons_message(gate):
    import docker

    sock = gate("1.44")
    client = docker.APIClient(base_url=f"unix://{sock}", version="1.41", timeout=10)
    with pytest.raises(docker.errors.APIError) as err:
        client.version()
    assert err.value.status_code == 400 and MESSAGE_141 in str(err.value)


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker CLI on PATH")
def test_docker_cli_pinned_to_1_41_says_what_the_kubelet_sees(gate):
    sock = gate("1.44")
    out = subprocess.run(
        ["docker", "version", "--format", "{{.Server.Version}}"],
        capture_output=True,
        text=True,
        timeout=30,
        env={
            "PATH": os.environ["PATH"],
            "DOCKER_HOST": f"unix://{sock}",
            "DOCKER_API_VERSION": "1.41",
            "HOME": os.environ.get("HOME", "/root"),
        },
    )
    assert out.returncode != 0 and f"Error response from daemon: {MESSAGE_141}" in out.stderr


# --- which releases gate, and what lowers the gate -------------------------------------------------------


@pytest.mark.parametrize(
    "version, driver, docker_env, expected",
    [
        ("v1.36.0", "docker", None, None),
        ("v1.37.0", "docker", None, None),
        ("v1.38.0", "docker", None, "1.44"),
        ("v1.38.1", "docker", None, "1.44"),
        ("v1.38.1", "kvm2", None, None),  # the ISO's Docker is 28.5.2
        ("v1.38.1", "docker", ["DOCKER_MIN_API_VERSION=1.24"], "1.24"),
        ("v1.39.0", "docker", None, "1.40"),  # Docker >= 29.3: 1.40, below dockershim's 1.41
    ],
)
def test_engine_floor_per_release(monkeypatch, version, driver, docker_env, expected):
    monkeypatch.delenv(versions.ENGINE_MIN_API_ENV, raising=False)
    monkeypatch.setenv(versions.VERSION_ENV, version)
    assert versions.engine_min_api(versions.current(), driver, docker_env) == expected


@pytest.mark.parametrize("switch, expected", [("off", None), ("1.44", "1.44")])
def test_engine_floor_switch(monkeypatch, switch, expected):
    monkeypatch.setenv(versions.VERSION_ENV, "v1.36.0")
    monkeypatch.setenv(versions.ENGINE_MIN_API_ENV, switch)
    assert versions.engine_min_api(versions.current(), "docker", None) == expected
