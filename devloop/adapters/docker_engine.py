"""minikube's Docker daemon, configured only from a parsed docker-env (a urllib3 pool for its TCP+TLS
endpoint, the docker SDK for the rest).

The process environment is never consulted: requests (under the SDK) lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE
override the CA a session was given (Session.merge_environment_settings; docker-py issues 2433,
2598), and this very machine exports both. So the client is built with an explicit TLSConfig, a
fixed API version (the SDK would otherwise probe the daemon inside its constructor, before we
can switch the environment off) and `trust_env = False`; then the version is negotiated.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from devloop.base.errors import ClusterError

if TYPE_CHECKING:
    import urllib3

# Used only for the first request (GET /version); the daemon's own version replaces it.
_BOOTSTRAP_API_VERSION = "1.24"
_TIMEOUT = 60


def _truthy(value: str | None) -> bool:
    return value is not None and bool(value) and value.strip().lower() not in ("0", "false", "no")


class DockerEngine:
    """One Docker engine. A tcp:// or https:// host (docker-env's) is asked through a urllib3 pool of its
    own: no docker SDK, no requests (their import costs ~0.2 s of every command, and requests is where
    the CA-bundle trap lives). The SDK client (`client`) is made on first use, for what the pool does not
    do (archives, restarts, logs); a unix socket always goes through it."""

    def __init__(self, env: Mapping[str, str], *, timeout: float = _TIMEOUT):
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
        self.timeout = timeout
        self._scheme = scheme
        self._tls = self._tls_files(scheme) if scheme in ("tcp", "https") else None
        self._pool: urllib3.HTTPConnectionPool | None = None
        self._name: str | None = None
        # docker.DockerClient / docker.APIClient: the SDK publishes no types (Any either way).
        self._client: Any = None
        self._api: Any = None
        if scheme in ("tcp", "https"):
            self._pool = self._make_pool()
            server = self._get("/version", versioned=False, reaching=True)
        else:
            self._connect_sdk()
            server = self._sdk_version
        self.api_version = str(server.get("ApiVersion") or _BOOTSTRAP_API_VERSION)
        self.server_version: dict[str, Any] = server

    # -- TLS, from docker-env only ------------------------------------------------------------------
    def _tls_files(self, scheme: str) -> tuple[str | None, str | None, str | None, bool] | None:
        """(ca, cert, key, verify) as docker-env gives them; None for plain tcp."""
        verify = _truthy(self.env.get("DOCKER_TLS_VERIFY"))
        cert_path = self.env.get("DOCKER_CERT_PATH")
        if not cert_path:
            if verify:
                raise ClusterError("docker-env sets DOCKER_TLS_VERIFY but no DOCKER_CERT_PATH")
            return None if scheme == "tcp" else (None, None, None, False)
        cert_dir = Path(os.path.expanduser(cert_path))
        ca, cert, key = cert_dir / "ca.pem", cert_dir / "cert.pem", cert_dir / "key.pem"
        missing = [p.name for p in (cert, key) + ((ca,) if verify else ()) if not p.is_file()]
        if missing:
            raise ClusterError(
                f"docker-env's DOCKER_CERT_PATH {cert_dir} lacks {', '.join(missing)}",
                hint="recreate the cluster's certificates: `devloop reset`",
            )
        return (str(ca) if verify else None), str(cert), str(key), verify

    def _make_pool(self) -> urllib3.HTTPConnectionPool:
        import urllib3

        parts = urlparse(self.host)
        port = parts.port or 2376
        if self._tls is None:
            return urllib3.HTTPConnectionPool(
                parts.hostname or "", port, maxsize=4, timeout=self.timeout, retries=False
            )
        ca, cert, key = self._tls[:3]
        try:
            return urllib3.HTTPSConnectionPool(
                # "" fails exactly as None does (urllib3: "No host specified.")
                parts.hostname or "",
                port,
                maxsize=4,
                timeout=self.timeout,
                retries=False,
                cert_reqs="CERT_REQUIRED" if self._tls[3] else "CERT_NONE",
                ca_certs=ca,
                cert_file=cert,
                key_file=key,
                assert_hostname=None if self._tls[3] else False,
            )
        except (OSError, ValueError) as exc:
            raise ClusterError(f"bad TLS files in {Path(cert or '').parent}: {exc}") from None

    def _get(self, path: str, *, versioned: bool = True, reaching: bool = False, ok404: bool = False) -> Any:
        import json

        import urllib3

        url = f"/v{self.api_version}{path}" if versioned else path
        # only a tcp/https engine is asked through the pool (the constructor made it)
        assert self._pool is not None
        try:
            response = self._pool.request("GET", url, preload_content=True)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if reaching:
                raise ClusterError(
                    f"cannot reach minikube's Docker daemon at {self.host}: {_short(exc)}",
                    hint="is the minikube cluster running? `minikube status`; a stale docker-env is re-read by "
                    "`devloop up`",
                ) from None
            raise ClusterError(f"cannot reach the Docker daemon at {self.host}: {_short(exc)}") from None
        if response.status == 404 and ok404:
            return None
        if response.status == 400 and ok404:
            return None  # an invalid reference is "not there" as far as a build decision goes
        try:
            payload = json.loads(response.data) if response.data else {}
        except ValueError:
            payload = {"message": response.data.decode(errors="replace")[:300]}
        if response.status != 200:
            message = payload.get("message") if isinstance(payload, dict) else str(payload)
            raise ClusterError(f"Docker daemon at {self.host}: GET {path}: HTTP {response.status}: {message}")
        return payload

    # -- the SDK, for everything else -------------------------------------------------------------
    def _connect_sdk(self) -> None:
        import docker
        import docker.errors
        import docker.tls
        import requests

        tls: Any = False
        if self._tls is not None:
            ca, cert, key, verify = self._tls
            try:
                tls = docker.tls.TLSConfig(client_cert=(cert, key) if cert else None, ca_cert=ca, verify=verify)
            except docker.errors.TLSParameterError as exc:
                raise ClusterError(f"bad TLS files for {self.host}: {exc}") from None
        try:
            client = docker.DockerClient(
                base_url=self.host, tls=tls, version=_BOOTSTRAP_API_VERSION, timeout=self.timeout
            )
        except docker.errors.DockerException as exc:
            raise ClusterError(f"cannot configure a Docker client for {self.host}: {exc}") from None
        api = client.api
        # The trap: never let os.environ choose the CA, a proxy or .netrc (docker-py issues 2433, 2598).
        api.trust_env = False
        if tls:
            api.verify = tls.ca_cert if tls.verify else False
            api.cert = tls.cert
        try:
            server = api.version(api_version=False)
        except (requests.exceptions.RequestException, docker.errors.DockerException) as exc:
            raise ClusterError(
                f"cannot reach minikube's Docker daemon at {self.host}: {_short(exc)}",
                hint="is the minikube cluster running? `minikube status`; a stale docker-env is re-read by "
                "`devloop up`",
            ) from None
        api._version = str(server.get("ApiVersion") or _BOOTSTRAP_API_VERSION)
        self._sdk_version = server
        self._api = api
        self._client = client

    @property
    def client(self) -> Any:
        """The docker.DockerClient for the same engine (already safe from the environment), made on first use."""
        if self._client is None:
            self._connect_sdk()
        return self._client

    # -- queries ----------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        if self._pool is not None:
            return self._get("/info")
        return self._call("read the daemon's info", self._api.info)

    def daemon_name(self) -> str:
        """The daemon's Name; minikube's node (and so its dockerd) is named after the profile. Asked once:
        /info is the engine's slowest read, and a daemon keeps its name (a restarted one at the same address
        is the same node's)."""
        if self._name is None:
            self._name = str(self.info().get("Name", ""))
        return self._name

    def alive(self) -> bool:
        """Whether the daemon answers now (GET /_ping)."""
        try:
            if self._pool is not None:
                return self._pool.request("GET", "/_ping", preload_content=True, timeout=10).status == 200
            return bool(self._api.ping())
        except Exception:  # noqa: BLE001 - every way of not answering is "no"
            return False

    def image_id(self, ref: str) -> str | None:
        if self._pool is not None:
            from urllib.parse import quote

            found = self._get(f"/images/{quote(ref, safe='/:@')}/json", ok404=True)
            return str(found["Id"]) if found else None
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

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        import docker.errors
        import requests

        try:
            return fn(*args, **kwargs)
        except (requests.exceptions.RequestException, docker.errors.DockerException) as exc:
            raise ClusterError(f"Docker daemon at {self.host}: could not {what}: {_short(exc)}") from None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
        if self._api is not None:
            self._api.close()

    def __enter__(self) -> DockerEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 400 else text[:400] + "…"
