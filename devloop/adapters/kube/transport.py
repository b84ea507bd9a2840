"""Plain JSON requests to the API server, with bounded retries and typed errors.

Requests go through the official ApiClient (its auth: certificates, bearer tokens, exec plugins)
but skip model (de)serialisation: cleaning up a thousand objects must take seconds. An error
status becomes an ApiError subclass callers can catch by meaning (NotFound, Conflict,
Unprocessable) rather than by number.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from devloop.base.errors import ClusterError, ConfigError

from .kubeconfig import Kubeconfig

WORKERS = 8  # parallel requests of a bulk operation; the connection pool is sized for them
REQUEST_TIMEOUT = 30
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
# Bulk writes only need to know they worked: a metadata-only answer saves the server serialising
# whole objects a thousand times.
METADATA_ONLY_OBJECT = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
DELETE_IN_BACKGROUND = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
_TRANSIENT_STATUS = {429, 500, 502, 503, 504}


class ApiError(ClusterError):
    """The API server answered with an error status."""

    def __init__(self, message: str, *, status: int, reason: str = "", hint: str | None = None):
        super().__init__(message, hint=hint)
        self.status = status
        self.reason = reason


class NotFound(ApiError):
    """404: the object (or its kind) is not there."""


class Conflict(ApiError):
    """409: it exists already, or changed under the request."""


class Unprocessable(ApiError):
    """422: the server refused the content (e.g. a patch that would change an immutable uid)."""


_BY_STATUS: dict[int, type[ApiError]] = {404: NotFound, 409: Conflict, 422: Unprocessable}


class Transient(Exception):
    """No answer, or one worth retrying (429, 5xx)."""


class Transport:
    def __init__(self, config: Kubeconfig, context: str, *, request_timeout: float = REQUEST_TIMEOUT):
        from .direct import client_cert_pool

        self.context = context
        self.server = config.server(context)
        self.request_timeout = request_timeout
        self._config = config
        # kubernetes.client.ApiClient: the official client publishes no types
        self._api: Any = None
        # minikube's contexts (a client certificate) skip the official client and its import (~0.4 s)
        self.direct = client_cert_pool(config, context, maxsize=WORKERS * 2)
        if self.direct is None:
            self._api = self._official_client()

    def _official_client(self) -> Any:
        from kubernetes import client
        from kubernetes.config import load_kube_config_from_dict

        configuration = client.Configuration()
        configuration.connection_pool_maxsize = WORKERS * 2
        try:
            load_kube_config_from_dict(
                self._config.client_dict(self.context),
                context=self.context,
                client_configuration=configuration,
                persist_config=False,
            )
        except Exception as exc:  # noqa: BLE001 - the loader raises bare exceptions for bad entries
            raise ConfigError(f"cannot load kube context {self.context!r} ({self._config.where}): {exc}") from None
        return client.ApiClient(configuration=configuration)

    @property
    def api(self) -> Any:
        """The official ApiClient (log streaming uses it); made on first use for a direct context."""
        if self._api is None:
            self._api = self._official_client()
        return self._api

    def close(self) -> None:
        if self._api is not None:
            self._api.close()
        if self.direct is not None:
            self.direct.close()

    def request_once(
        self,
        method: str,
        path: str,
        *,
        query: dict | None = None,
        body: Any = None,
        content_type: str | None = None,
        accept: str = "application/json",
        timeout: float | None = None,
    ) -> tuple[int, Any]:
        """One attempt: (status, decoded body) for any answer; Transient when there is none worth keeping."""
        status, data = self.raw_once(
            method, path, query=query, body=body, content_type=content_type, accept=accept, timeout=timeout
        )
        try:
            payload = json.loads(data) if data else None
        except ValueError:
            payload = data.decode(errors="replace")
        if status in _TRANSIENT_STATUS:
            raise Transient(status_text(method, path, status, payload))
        return status, payload

    def raw_once(
        self,
        method: str,
        path: str,
        *,
        query: dict | None = None,
        body: Any = None,
        content_type: str | None = None,
        accept: str = "application/json",
        timeout: float | None = None,
    ) -> tuple[int, bytes]:
        """One attempt, the answer as sent: (status, body bytes) whatever the status (a service proxy's 503
        is an answer too); Transient only when there is no answer at all."""
        import urllib3

        host = self.direct.host if self.direct is not None else self.api.configuration.host
        url = host + path
        if query:
            url += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        headers = {"Accept": accept, "Content-Type": content_type or "application/json"}
        try:
            if self.direct is not None:
                payload_bytes = body if body is None or isinstance(body, (str, bytes)) else json.dumps(body)
                response = self.direct.pool.request(
                    method,
                    url,
                    headers=headers,
                    body=payload_bytes,
                    retries=False,
                    preload_content=True,
                    timeout=urllib3.Timeout(total=timeout or self.request_timeout),
                )
                data = response.data
            else:
                # Auth the way the generated client does (bearer tokens, exec plugins refresh there).
                self.api.update_params_for_auth(headers, [], ["BearerToken"], url, method, body)
                response = self.api.rest_client.request(
                    method, url, headers=headers, body=body, _request_timeout=timeout or self.request_timeout
                )
                data = response.read()
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise Transient(f"cannot reach the API server at {self.server} (context {self.context}): {exc}") from None
        return response.status, data or b""

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One API call with bounded retries for transient failures; returns the decoded body.

        A status outside 2xx raises ApiError (NotFound, Conflict, Unprocessable for 404, 409, 422).
        """
        try:
            status, payload = self.request_once(method, path, **kwargs)
        except Transient:
            # The common case costs nothing; only a failed call builds the retry machinery.
            from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

            try:
                for attempt in Retrying(
                    stop=stop_after_attempt(3),
                    wait=wait_exponential(multiplier=0.2, max=2),
                    retry=retry_if_exception_type(Transient),
                    reraise=True,
                ):
                    with attempt:
                        status, payload = self.request_once(method, path, **kwargs)
            except Transient as exc:
                raise ClusterError(
                    f"{exc} (after 4 attempts)", hint=f"is the cluster up? `minikube status -p {self.context}`"
                ) from None
        if 200 <= status < 300:
            return payload
        raise self.error(method, path, status, payload)

    def error(self, method: str, path: str, status: int, payload: Any) -> ApiError:
        reason = payload.get("reason", "") if isinstance(payload, dict) else ""
        hint = None
        if status in (401, 403):
            hint = f"the credentials of context {self.context!r} are not allowed to do this"
        cls = _BY_STATUS.get(status, ApiError)
        return cls(status_text(method, path, status, payload), status=status, reason=reason, hint=hint)

    def get(self, path: str, **kwargs: Any) -> Any | None:
        """GET, with None for 404."""
        try:
            return self.request("GET", path, **kwargs)
        except NotFound:
            return None


def status_text(method: str, path: str, status: int, payload: Any) -> str:
    message = payload.get("message") if isinstance(payload, dict) else str(payload)[:300]
    return f"{method} {path}: HTTP {status}: {message}"
