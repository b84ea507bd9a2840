"""The context guard told by the API server's certificate (issue 18, Done when: status and a no-change up with
an empty cache, on the Docker Desktop layout, without `minikube status`).

Every minikube profile has an API server certificate of its own (profiles/<P>/apiserver.crt), all signed by
the home's one CA. A forwarded loopback port is accepted without asking minikube only when the server there
completes a TLS handshake with exactly the profile's certificate; one that presents another profile's
certificate (F6: a stale port Docker handed to another profile), or a certificate another CA signed, is
refused before any request, even where `minikube status` would have said Configured. When the handshake
tells nothing (nothing listening), minikube decides as before.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import ssl
import threading
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devloop.adapters.kube.serving import serving_profile
from devloop.adapters.minikube import cli as mk
from devloop.adapters.minikube.home import read_profile_config
from devloop.base.errors import UnsafeContext
from devloop.output.report import Reporter
from devloop.profile.lookup import load_profile
from devloop.session import Session
from support.waits import wait_until

P = "devloop-kubeless"  # the bundled profile's minikube profile
OTHER = "another-profile"


# -- certificates as minikube makes them: one CA per home, one API server leaf per profile -------------------
def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca(cn: str):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(ca, cn: str = "minikube"):
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    sans = [x509.DNSName("minikubeCA"), x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    sans.append(x509.IPAddress(ipaddress.ip_address("192.168.49.2")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _pem(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _write_pair(directory: Path, stem: str, pair) -> tuple[Path, Path]:
    cert, key = pair
    directory.mkdir(parents=True, exist_ok=True)
    crt, k = directory / f"{stem}.crt", directory / f"{stem}.key"
    crt.write_bytes(_pem(cert))
    k.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return crt, k


class Home:
    """A minikube home laid out as on Docker Desktop: ca.crt, profiles/P and profiles/OTHER with their own
    apiserver.crt; config.json has the container's address and 8443 (nothing forwarded is on disk)."""

    def __init__(self, root: Path):
        self.home = root / ".minikube"
        self.ca = _ca("minikubeCA")
        (self.home).mkdir(parents=True)
        (self.home / "ca.crt").write_bytes(_pem(self.ca[0]))
        self.pairs = {}
        for i, name in enumerate((P, OTHER)):
            profile_dir = self.home / "profiles" / name
            self.pairs[name] = _write_pair(profile_dir, "apiserver", _leaf(self.ca))
            config = {
                "Name": name,
                "Driver": "docker",
                "KubernetesConfig": {"KubernetesVersion": "v1.21.14", "ContainerRuntime": "docker"},
                "Nodes": [{"Name": "", "IP": f"192.168.{49 + 9 * i}.2", "Port": 8443, "ControlPlane": True}],
            }
            (profile_dir / "config.json").write_text(json.dumps(config))


class TLSServer:
    """A TLS server on a loopback port (a forwarder in front of an API server): completes handshakes with the
    given certificate and records every byte a client sends after the handshake."""

    def __init__(self, crt: Path, key: Path):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(str(crt), str(key))
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self.handshakes = 0
        self.finished = 0  # connections the client has closed
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                conn.settimeout(5)
                with self.context.wrap_socket(conn, server_side=True) as tls:
                    self.handshakes += 1
                    while data := tls.recv(4096):
                        self.received.append(data)
            except (OSError, ssl.SSLError):
                pass
            self.finished += 1

    def settled(self, connections: int = 1) -> None:
        """Wait until the server side has seen `connections` connections end (its thread lags the client's)."""
        wait_until(lambda: self.finished >= connections, 10, "the TLS server to see the client close", interval=0.01)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def servers():
    started: list[TLSServer] = []

    def start(crt: Path, key: Path) -> TLSServer:
        server = TLSServer(crt, key)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


class GuardMinikube:
    """minikube for the guard: config.json from the laid-out home; `status` would confirm (Configured), so a
    refusal below is the certificate's doing, not minikube's."""

    binary, profile_name = "minikube", P

    def __init__(self, kubeconfig: str = "Configured"):
        self.kubeconfig, self.status_calls = kubeconfig, 0

    def profile_config(self):
        return read_profile_config(P)

    def api_endpoint(self):
        config = read_profile_config(P)
        return config.endpoint if config else None

    def status(self):
        self.status_calls += 1
        return mk.ClusterStatus(
            "Running", name=P, host="Running", kubelet="Running", apiserver="Running", kubeconfig=self.kubeconfig
        )


def _session(tmp_path: Path, monkeypatch, home: Home, port: int, mini: GuardMinikube, **cluster_extra) -> Session:
    monkeypatch.setenv("MINIKUBE_HOME", str(home.home))
    cluster = {"server": f"https://127.0.0.1:{port}", "certificate-authority": str(home.home / "ca.crt")}
    cluster.update(cluster_extra)
    cluster["extensions"] = [{"name": "cluster_info", "extension": {"provider": "minikube.sigs.k8s.io"}}]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": P, "cluster": cluster}],
                "contexts": [{"name": P, "context": {"cluster": P, "user": P}}],
                "users": [{"name": P, "user": {}}],
            }
        )
    )
    return Session(
        profile=load_profile("kubeless", cwd=Path("/")),
        workspace=tmp_path,
        reporter=Reporter(json_mode=True),
        kubeconfig=str(kubeconfig),
        cache_dir=tmp_path / "cache",
        make_minikube=lambda *_: mini,
    )


def test_the_profiles_own_certificate_is_accepted_without_minikube_and_nothing_is_sent(tmp_path, monkeypatch, servers):
    home = Home(tmp_path)
    server = servers(*home.pairs[P])
    mini = GuardMinikube()
    _session(tmp_path, monkeypatch, home, server.port, mini).guard_context()
    assert mini.status_calls == 0
    server.settled()
    assert server.handshakes == 1 and server.received == []  # a handshake only: no request, no credentials


def test_a_stale_port_serving_another_profiles_certificate_is_refused(tmp_path, monkeypatch, servers):
    # F6: `minikube stop --keep-context-active`, then Docker hands the port to another profile's API server
    home = Home(tmp_path)
    server = servers(*home.pairs[OTHER])
    mini = GuardMinikube("Configured")  # even a minikube that said Configured would not let it through
    with pytest.raises(UnsafeContext) as err:
        _session(tmp_path, monkeypatch, home, server.port, mini).guard_context()
    assert f"{OTHER!r}" in err.value.message and "stale" in err.value.message
    assert "update-context" in err.value.hint
    server.settled()
    assert mini.status_calls == 0 and server.received == []


def test_a_certificate_another_ca_signed_is_refused(tmp_path, monkeypatch, servers):
    home = Home(tmp_path)
    elsewhere = _write_pair(tmp_path / "elsewhere", "apiserver", _leaf(_ca("minikubeCA")))  # another home's
    server = servers(*elsewhere)
    mini = GuardMinikube("Configured")
    with pytest.raises(UnsafeContext) as err:
        _session(tmp_path, monkeypatch, home, server.port, mini).guard_context()
    server.settled()
    assert "did not sign" in err.value.message and mini.status_calls == 0 and server.received == []


def test_a_certificate_of_this_ca_no_profile_has_is_left_to_minikube(tmp_path, monkeypatch, servers):
    home = Home(tmp_path)
    unlisted = _write_pair(tmp_path / "deleted", "apiserver", _leaf(home.ca))  # a deleted profile's, say
    server = servers(*unlisted)
    assert serving_profile(f"https://127.0.0.1:{server.port}", home.home).verdict == "unlisted"
    refuses = GuardMinikube("Misconfigured")
    with pytest.raises(UnsafeContext) as err:
        _session(tmp_path, monkeypatch, home, server.port, refuses).guard_context()
    assert refuses.status_calls == 1 and "Kubeconfig: Misconfigured" in err.value.message


def test_nothing_listening_is_left_to_minikube(tmp_path, monkeypatch):
    home = Home(tmp_path)
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        port = placeholder.getsockname()[1]
    assert serving_profile(f"https://127.0.0.1:{port}", home.home).verdict == "unknown"
    stopped = GuardMinikube("Stopped")
    with pytest.raises(UnsafeContext):
        _session(tmp_path, monkeypatch, home, port, stopped).guard_context()
    assert stopped.status_calls == 1
    confirms = GuardMinikube("Configured")
    _session(tmp_path, monkeypatch, home, port, confirms).guard_context()
    assert confirms.status_calls == 1


def test_an_entry_that_does_not_trust_the_profiles_ca_is_left_to_minikube(tmp_path, monkeypatch, servers):
    # insecure-skip-tls-verify: the client would accept any server later, so the certificate proves nothing
    home = Home(tmp_path)
    server = servers(*home.pairs[P])
    mini = GuardMinikube("Misconfigured")
    with pytest.raises(UnsafeContext):
        _session(tmp_path, monkeypatch, home, server.port, mini, **{"insecure-skip-tls-verify": True}).guard_context()
    assert mini.status_calls == 1 and server.handshakes == 0


def test_the_check_right_after_the_client_was_guarded_is_not_repeated_but_every_later_one_is(tmp_path, monkeypatch):
    # prepare_cluster's guard_context() right after the cluster step made the client: that client is used
    # without asking again anyway. Any later call (a watch cycle's) asks again; so does one after a start.
    home = Home(tmp_path)
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        port = placeholder.getsockname()[1]  # nothing listening: minikube is asked, and counted
    mini = GuardMinikube("Configured")
    session = _session(tmp_path, monkeypatch, home, port, mini)
    session.make_kube = lambda **_: object()
    session.kube()
    assert mini.status_calls == 1
    session.guard_context()  # prepare_cluster's, right after
    assert mini.status_calls == 1
    session.guard_context()  # a later one (the next watch cycle)
    assert mini.status_calls == 2
    session.kube()
    session.forget_cluster_state()  # a start: the client and the word for it are gone
    session.guard_context()
    assert mini.status_calls == 3
    mini.kubeconfig = "Misconfigured"
    with pytest.raises(UnsafeContext):
        session.guard_context()
