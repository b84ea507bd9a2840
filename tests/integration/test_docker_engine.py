"""DockerEngine against a rig Docker engine served over TCP+TLS exactly as docker-env describes it."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from devloop.adapters import proc
from devloop.adapters.docker_engine import DockerEngine
from devloop.base.errors import ClusterError

pytestmark = pytest.mark.rig

SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


@pytest.fixture
def ca_bundle_env(monkeypatch):
    """The trap this machine sets anyway (docker-py issues 2433/2598): made explicit for the test."""
    bundle = SYSTEM_BUNDLE if Path(SYSTEM_BUNDLE).exists() else __file__
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", bundle)
    monkeypatch.setenv("CURL_CA_BUNDLE", bundle)


def test_daemon_name_is_the_profile_despite_requests_ca_bundle(docker_target, ca_bundle_env):
    with DockerEngine(docker_target.env) as engine:
        assert engine.daemon_name() == docker_target.profile
        assert engine.server_version["ApiVersion"]


def test_a_naive_sdk_client_falls_into_the_trap(docker_target, ca_bundle_env):
    """Why DockerEngine exists: the plain SDK with the same TLS files fails when the bundle is set."""
    import docker
    import requests

    certs = Path(docker_target.env["DOCKER_CERT_PATH"])
    tls = docker.tls.TLSConfig(
        client_cert=(str(certs / "cert.pem"), str(certs / "key.pem")), ca_cert=str(certs / "ca.pem"), verify=True
    )
    with pytest.raises((requests.exceptions.SSLError, docker.errors.DockerException)):
        docker.DockerClient(base_url=docker_target.env["DOCKER_HOST"], tls=tls).info()


def test_image_built_through_docker_env_is_seen(docker_target, tmp_path, ca_bundle_env):
    ref = f"devloop-test/engine-{uuid.uuid4().hex[:8]}:dev-1"
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY hello /hello\n")
    (tmp_path / "hello").write_text(ref)
    with DockerEngine(docker_target.env) as engine:
        assert engine.image_id(ref) is None and not engine.image_exists(ref)
        # The way devloop builds: the component's command with docker-env in its environment.
        proc.run(
            ["docker", "build", "-q", "-t", ref, "."],
            env={**docker_target.env, "DOCKER_BUILDKIT": "0"},
            cwd=tmp_path,
            timeout=120,
        )
        image_id = engine.image_id(ref)
        assert image_id and image_id.startswith("sha256:")
        assert engine.image_exists(ref)
        retag = ref.replace(":dev-1", ":dev-2")
        # DockerEngine no longer tags or removes (devloop never does); the SDK client it hands out does
        engine.client.api.tag(ref, *retag.rsplit(":", 1))
        assert engine.image_id(retag) == image_id
        engine.client.api.remove_image(retag)
        engine.client.api.remove_image(ref, force=True)
        assert not engine.image_exists(ref) and not engine.image_exists(retag)


def test_missing_cert_files_are_reported(docker_target, tmp_path):
    env = {**docker_target.env, "DOCKER_CERT_PATH": str(tmp_path)}
    with pytest.raises(ClusterError, match="lacks cert.pem, key.pem, ca.pem"):
        DockerEngine(env)


def test_unreachable_daemon_is_a_cluster_error(docker_target):
    env = {**docker_target.env, "DOCKER_HOST": "tcp://127.0.0.1:1"}
    with pytest.raises(ClusterError) as info:
        DockerEngine(env, timeout=5)
    assert "tcp://127.0.0.1:1" in str(info.value) and "minikube status" in (info.value.hint or "")


def test_wrong_ca_is_refused(docker_target, tmp_path):
    """verify=True really verifies: another CA's files make the connection fail."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "other-ca")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certs = Path(docker_target.env["DOCKER_CERT_PATH"])
    for f in ("cert.pem", "key.pem"):
        (tmp_path / f).write_bytes((certs / f).read_bytes())
    (tmp_path / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(ClusterError, match="cannot reach"):
        DockerEngine({**docker_target.env, "DOCKER_CERT_PATH": str(tmp_path)}, timeout=5)
