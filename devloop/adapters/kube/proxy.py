"""Reaching a Service from outside the cluster through the API server's service proxy, and the node's address.

`GET /api/v1/namespaces/<ns>/services/<name>:<port>/proxy/<path>` is what `kubeless function call` does
(kubeless cmd/kubeless/function/call.go:79): the API server forwards the request to a ready endpoint of the
Service, so no DNS, ingress or port-forward is needed. Its answer is returned as sent, whatever the status: a
503 (no endpoints yet) or a 502 (nothing listens yet) is what a caller retries on.
"""

from __future__ import annotations

from urllib.parse import quote

from devloop.base.errors import ClusterError

from .transport import Transient, Transport

# What a proxied answer may hold before it is cut: a check reads a greeting, not a download.
MAX_BODY = 64 * 1024


def proxy_path(namespace: str, service: str, port: str | int | None, path: str) -> str:
    target = quote(service, safe="") + (f":{quote(str(port), safe='')}" if port not in (None, "") else "")
    rest = path if path.startswith("/") else "/" + path
    return f"/api/v1/namespaces/{quote(namespace, safe='')}/services/{target}/proxy{rest}"


def service_proxy_get(
    transport: Transport, namespace: str, service: str, port: str | int | None, path: str, *, timeout: float
) -> tuple[int, str]:
    """(status, body text) of one GET through the service proxy; ClusterError when the API server does not answer."""
    try:
        status, data = transport.raw_once(
            "GET", proxy_path(namespace, service, port, path), accept="*/*", timeout=timeout
        )
    except Transient as exc:
        raise ClusterError(str(exc)) from None
    return status, data[:MAX_BODY].decode("utf-8", "replace")


def node_internal_ip(transport: Transport, *, timeout: float) -> str | None:
    """The InternalIP of minikube's primary node (label minikube.k8s.io/primary=true), else of the first node."""
    for query in ({"labelSelector": "minikube.k8s.io/primary=true"}, None):
        try:
            status, payload = transport.request_once("GET", "/api/v1/nodes", query=query, timeout=timeout)
        except Transient as exc:
            raise ClusterError(str(exc)) from None
        items = (payload or {}).get("items") or [] if status == 200 and isinstance(payload, dict) else []
        for node in items:
            for address in ((node.get("status") or {}).get("addresses")) or []:
                if address.get("type") == "InternalIP" and address.get("address"):
                    return str(address["address"])
    return None
