"""Which minikube profile's API server answers at a URL, told by the certificate it proves it holds.

minikube makes one API server certificate per profile, `<home>/profiles/<P>/apiserver.crt`, signed by the
home's CA `<home>/ca.crt` (bootstrapper/certs.go generateProfileCerts), and copies it into the node, where
kube-apiserver serves it. The CA is shared by every profile of a home, so a handshake that verifies against
it says only "some profile of this home"; the leaf certificate itself says which one, and completing the
handshake proves the server holds its private key. A stale forwarded port that another profile's API
server now serves therefore shows that profile's certificate.

Only a TLS handshake is made: no HTTP request, no client certificate, no token (the API server asks for a
client certificate only optionally, so none is sent).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

# A running API server (or the forwarder in front of it) completes a handshake in milliseconds; nothing
# listening is refused at once. Only an address with nothing behind it waits this long.
HANDSHAKE_TIMEOUT = 1.0


@dataclass(frozen=True)
class Serving:
    """What answered at the URL.

    verdict:
      "profile"    the handshake verified against the home's CA and the certificate is `profile`'s
                   apiserver.crt (`profile` says which profile of the home)
      "unlisted"   verified against the home's CA, but no profile's apiserver.crt on disk is that
                   certificate (a deleted profile's server still running, a start regenerating it)
      "foreign"    a TLS server whose certificate the home's CA did not sign: no cluster of this minikube
      "unknown"    no answer, no TLS, or the CA file cannot be read: nothing can be told
    """

    verdict: str
    profile: str = ""
    detail: str = ""


def apiserver_cert_path(home: Path, profile: str) -> Path:
    return Path(home) / "profiles" / profile / "apiserver.crt"


def _der(path: Path) -> bytes | None:
    import ssl

    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return None
    end = "-----END CERTIFICATE-----"
    if end not in text:
        return None
    try:
        return ssl.PEM_cert_to_DER_cert(text[: text.index(end) + len(end)] + "\n")
    except ValueError:
        return None


def presented_certificate(server: str, ca_file: Path, *, timeout: float = HANDSHAKE_TIMEOUT) -> tuple[str, bytes]:
    """("verified", DER) when the server at `server` completed a handshake with a certificate `ca_file` signs;
    ("foreign", b"") when it presented one that CA does not sign; ("unknown", b"") otherwise."""
    import ssl

    parts = urlsplit(server)
    host, port = parts.hostname, parts.port or 443
    if parts.scheme != "https" or not host:
        return "unknown", b""
    try:
        context = ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError):
        return "unknown", b""
    # the leaf is compared whole below, which is stricter than a name check; minikube's certificate names
    # the node's addresses and 127.0.0.1 anyway
    context.check_hostname = False
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            raw.settimeout(timeout)
            with context.wrap_socket(raw, server_hostname=None) as tls:
                der = tls.getpeercert(binary_form=True)
    except ssl.SSLCertVerificationError:
        return "foreign", b""
    except (OSError, ValueError):  # refused, reset, timed out, not TLS (ssl.SSLError is an OSError)
        return "unknown", b""
    return ("verified", der) if der else ("unknown", b"")


def serving_profile(server: str, home: Path, *, timeout: float = HANDSHAKE_TIMEOUT) -> Serving:
    """Which profile of the minikube home `home` serves the API at `server` (see Serving)."""
    ca = Path(home) / "ca.crt"
    if not ca.is_file():
        return Serving("unknown", detail=f"no CA at {ca}")
    how, der = presented_certificate(server, ca, timeout=timeout)
    if how == "foreign":
        return Serving("foreign", detail=f"its certificate is not signed by {ca}")
    if how != "verified":
        return Serving("unknown", detail="no TLS answer")
    profiles = Path(home) / "profiles"
    try:
        names = sorted(p.name for p in profiles.iterdir() if p.is_dir())
    except OSError:
        names = []
    for name in names:
        if _der(apiserver_cert_path(home, name)) == der:
            return Serving("profile", profile=name)
    return Serving("unlisted", detail=f"signed by {ca}, but no profile's apiserver.crt under {profiles}")
