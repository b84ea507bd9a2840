"""Certificates, laid out as minikube lays them out.

<home>/ca.{crt,key}                 cluster CA, shared by all profiles of one minikube home (minikubeCA)
<home>/profiles/<p>/client.{crt,key} admin user minikube-user, O=system:masters
<home>/profiles/<p>/apiserver.{crt,key}
<home>/certs/{ca,ca-key,cert,key}.pem  docker-env TLS (DOCKER_CERT_PATH), shared; own CA as libmachine has
<home>/machines/<p>/server{,-key}.pem  the engine's serving cert (SAN 127.0.0.1), signed by certs/ca.pem
Component credentials (controller-manager, scheduler, kubelet, service-account key) live in the machine's
pki dir, which the caller passes in.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import os
from contextlib import contextmanager
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = dt.timedelta(days=3650)
APISERVER_SANS = [
    "127.0.0.1",
    "10.96.0.1",
    "10.0.0.1",
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
    "control-plane.minikube.internal",
]


@contextmanager
def _locked(lockfile: Path):
    """Profiles booting at the same time share the CAs; only one may create them."""
    lockfile.parent.mkdir(parents=True, exist_ok=True)
    with open(lockfile, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    if private:
        os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _key_pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )


def _name(cn: str, orgs: list[str] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    return x509.Name(attrs + [x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)  # tolerate small clock skew


def _load(cert_path: Path, key_path: Path):
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    return cert, key


def ensure_ca(cert_path: Path, key_path: Path, cn: str):
    """Create a CA at the given paths unless one is there; return (cert, key)."""
    with _locked(cert_path.parent / f".{cert_path.name}.lock"):
        if cert_path.exists() and key_path.exists():
            return _load(cert_path, key_path)
        key = ec.generate_private_key(ec.SECP256R1())
        name = _name(cn)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now())
            .not_valid_after(_now() + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        _write(key_path, _key_pem(key), private=True)
        _write(cert_path, cert.public_bytes(serialization.Encoding.PEM))
        return cert, key


def ensure_leaf(
    cert_path: Path,
    key_path: Path,
    ca,
    *,
    cn: str,
    orgs: list[str] = (),
    sans: list[str] = (),
    server: bool = False,
    client: bool = False,
) -> None:
    """Issue a leaf certificate signed by `ca` = (cert, key) unless a valid one from that CA exists."""
    ca_cert, ca_key = ca
    if cert_path.exists() and key_path.exists():
        existing = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if existing.issuer == ca_cert.subject and existing.not_valid_after_utc > dt.datetime.now(dt.UTC):
            return
    key = ec.generate_private_key(ec.SECP256R1())
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
        [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn, list(orgs)))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now())
        .not_valid_after(_now() + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=True,
                key_cert_sign=False,
                crl_sign=False,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if sans:
        entries = []
        for san in sans:
            try:
                entries.append(x509.IPAddress(ipaddress.ip_address(san)))
            except ValueError:
                entries.append(x509.DNSName(san))
        builder = builder.add_extension(x509.SubjectAlternativeName(entries), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    _write(key_path, _key_pem(key), private=True)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM))


def ensure_rsa_keypair(private_path: Path, public_path: Path) -> None:
    """The service-account signing key pair (RSA: what every Kubernetes token consumer expects)."""
    if private_path.exists() and public_path.exists():
        return
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write(private_path, _key_pem(key), private=True)
    _write(
        public_path,
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
    )


class HomeCerts:
    """The certificate files of one minikube home and one profile in it."""

    def __init__(self, home: Path, profile: str):
        self.home = home
        self.profile = profile
        self.ca_crt = home / "ca.crt"
        self.ca_key = home / "ca.key"
        prof = home / "profiles" / profile
        self.client_crt = prof / "client.crt"
        self.client_key = prof / "client.key"
        self.apiserver_crt = prof / "apiserver.crt"
        self.apiserver_key = prof / "apiserver.key"
        self.docker_dir = home / "certs"
        self.docker_ca = self.docker_dir / "ca.pem"
        self.docker_ca_key = self.docker_dir / "ca-key.pem"
        self.docker_client_crt = self.docker_dir / "cert.pem"
        self.docker_client_key = self.docker_dir / "key.pem"
        machine = home / "machines" / profile
        self.docker_server_crt = machine / "server.pem"
        self.docker_server_key = machine / "server-key.pem"

    def ensure(self) -> None:
        ca = ensure_ca(self.ca_crt, self.ca_key, "minikubeCA")
        ensure_leaf(self.client_crt, self.client_key, ca, cn="minikube-user", orgs=["system:masters"], client=True)
        ensure_leaf(
            self.apiserver_crt, self.apiserver_key, ca, cn="minikube", sans=APISERVER_SANS + [self.profile], server=True
        )
        docker_ca = ensure_ca(self.docker_ca, self.docker_ca_key, "devrig-docker-ca")
        with _locked(self.docker_dir / ".cert.pem.lock"):
            ensure_leaf(
                self.docker_client_crt, self.docker_client_key, docker_ca, cn="minikube-docker-client", client=True
            )
        ensure_leaf(
            self.docker_server_crt,
            self.docker_server_key,
            docker_ca,
            cn=self.profile,
            sans=["127.0.0.1", "localhost", self.profile],
            server=True,
        )

    def ca(self):
        return _load(self.ca_crt, self.ca_key)
