"""minikube's Docker daemon through the docker SDK, configured only from a parsed docker-env.

The process environment is never consulted: requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE
override the CA a session was given (Session.merge_environment_settings; docker-py issues 2433,
2598), and this very machine exports both. So the client is built with an explicit TLSConfig, a
fixed API version (the SDK would otherwise probe the daemon inside its constructor, before we
can switch the environment off) and `trust_env = False`; then the version is negotiated.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from devloop.errors import ClusterError

# Used only for the first request (GET /version); the daemon's own version replaces it.
_BOOTSTRAP_API_VERSION = "1.24"
_TIMEOUT = 60


def _truthy(value: str | None) -> bool:
    return bool(value) and value.strip().lower() not in ("0", "false", "no")


class DockerEngine:
    def __init__(self, env: Mapping[str, str], *, timeout: float = _TIMEOUT):
        import docker
        import docker.errors
        import requests

        self.env = dict(env)
        host = self.env.get("DOCKER_HOST", "").strip()
        if not host:
            raise ClusterError("docker-env has no DOCKER_HOST: cannot tell which Docker daemon to use")
        scheme = urlparse(host).scheme
        if scheme == "ssh":
            raise ClusterError(
                f"docker-env points at {host} over ssh (containerd runtime); devloop talks to dockerd over TCP+TLS",
                hint="use the docker container runtime for the minikube profile",
            )
        self.host = host
        tls = self._tls_config(scheme) if scheme in ("tcp", "https") else False
        try:
            client = docker.DockerClient(base_url=host, tls=tls, version=_BOOTSTRAP_API_VERSION, timeout=timeout)
        except docker.errors.DockerException as exc:
            raise ClusterError(f"cannot configure a Docker client for {host}: {exc}") from None
        api = client.api
        # The trap this class exists for: never let os.environ choose the CA, a proxy or .netrc.
        api.trust_env = False
        if tls:
            api.verify = tls.ca_cert if tls.verify else False
            api.cert = tls.cert
        try:
            server = api.version(api_version=False)
        except (requests.exceptions.RequestException, docker.errors.DockerException) as exc:
            raise ClusterError(
                f"cannot reach minikube's Docker daemon at {host}: {_short(exc)}",
                hint="is the minikube cluster running? `minikube status`; a stale docker-env is re-read by "
                "`devloop up`",
            ) from None
        api._version = str(server.get("ApiVersion") or _BOOTSTRAP_API_VERSION)
        self.server_version: dict[str, Any] = server
        self._api = api
        self._client = client

    def _tls_config(self, scheme: str):
        import docker.errors
        import docker.tls

        verify = _truthy(self.env.get("DOCKER_TLS_VERIFY"))
        cert_path = self.env.get("DOCKER_CERT_PATH")
        if not cert_path:
            if verify:
                raise ClusterError("docker-env sets DOCKER_TLS_VERIFY but no DOCKER_CERT_PATH")
            return False if scheme == "tcp" else docker.tls.TLSConfig(verify=False)
        cert_dir = Path(os.path.expanduser(cert_path))
        ca, cert, key = cert_dir / "ca.pem", cert_dir / "cert.pem", cert_dir / "key.pem"
        missing = [p.name for p in (cert, key) + ((ca,) if verify else ()) if not p.is_file()]
        if missing:
            raise ClusterError(
                f"docker-env's DOCKER_CERT_PATH {cert_dir} lacks {', '.join(missing)}",
                hint="recreate the cluster's certificates: `devloop reset`",
            )
        try:
            return docker.tls.TLSConfig(
                client_cert=(str(cert), str(key)), ca_cert=str(ca) if verify else None, verify=verify
            )
        except docker.errors.TLSParameterError as exc:
            raise ClusterError(f"bad TLS files in {cert_dir}: {exc}") from None

    @property
    def client(self):
        """The underlying docker.DockerClient (already safe from the environment)."""
        return self._client

    def info(self) -> dict[str, Any]:
        return self._call("read the daemon's info", self._api.info)

    def daemon_name(self) -> str:
        """The daemon's Name; minikube's node (and so its dockerd) is named after the profile."""
        return str(self.info().get("Name", ""))

    def image_id(self, ref: str) -> str | None:
        import docker.errors

        try:
            return str(self._api.inspect_image(ref)["Id"])
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.NotFound:
            return None
        except docker.errors.APIError as exc:
            # An invalid reference is "not there" as far as a build decision goes.
            if exc.status_code == 400:
                return None
            raise ClusterError(f"Docker daemon at {self.host} could not inspect image {ref}: {_short(exc)}") from None
        except Exception as exc:  # noqa: BLE001 - connection errors of every flavour
            raise ClusterError(f"cannot reach the Docker daemon at {self.host}: {_short(exc)}") from None

    def image_exists(self, ref: str) -> bool:
        return self.image_id(ref) is not None

    def _call(self, what: str, fn, *args, **kwargs):
        import docker.errors
        import requests

        try:
            return fn(*args, **kwargs)
        except (requests.exceptions.RequestException, docker.errors.DockerException) as exc:
            raise ClusterError(f"Docker daemon at {self.host}: could not {what}: {_short(exc)}") from None

    def close(self) -> None:
        self._api.close()

    def __enter__(self) -> DockerEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 400 else text[:400] + "…"
