"""A tiny Kubernetes REST client for the rig's own probes (stdlib only, bounded timeouts, no env magic).

It deliberately ignores REQUESTS_CA_BUNDLE & co: the rig always knows its own CA.
"""

from __future__ import annotations

import datetime
import http.client
import json
import ssl
from pathlib import Path


class ApiError(Exception):
    def __init__(self, status: int, body: str):
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status


class Api:
    def __init__(self, port: int, ca: Path, cert: Path, key: Path, host: str = "127.0.0.1"):
        self.host, self.port = host, port
        self.ctx = ssl.create_default_context(cafile=str(ca))
        self.ctx.load_cert_chain(str(cert), str(key))

    def request(
        self,
        method: str,
        path: str,
        body: dict | None = None,
        timeout: float = 5,
        content_type: str = "application/json",
    ) -> tuple[int, str]:
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=timeout)
        try:
            payload = json.dumps(body).encode() if body is not None else None
            headers = {"Content-Type": content_type, "Accept": "application/json"} if payload else {}
            conn.request(method, path, body=payload, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read().decode(errors="replace")
        finally:
            conn.close()

    def get(self, path: str, timeout: float = 5) -> dict | None:
        """The object at `path`, or None if it does not exist (404)."""
        status, text = self.request("GET", path, timeout=timeout)
        if status == 404:
            return None
        if status != 200:
            raise ApiError(status, text)
        return json.loads(text)

    def create(self, path: str, obj: dict) -> dict | None:
        """POST `obj`; None if it already exists."""
        status, text = self.request("POST", path, obj)
        if status == 409:
            return None
        if status not in (200, 201, 202):
            raise ApiError(status, text)
        return json.loads(text)

    def patch(self, path: str, patch: dict) -> dict:
        status, text = self.request("PATCH", path, patch, content_type="application/merge-patch+json")
        if status != 200:
            raise ApiError(status, text)
        return json.loads(text)

    def readyz(self) -> bool:
        status, _ = self.request("GET", "/readyz", timeout=3)
        return status == 200


def node_ready(node: dict | None, since: float = 0) -> bool:
    """Node has condition Ready=True, heartbeated at or after `since` (epoch seconds)."""
    if not node:
        return False
    for cond in node.get("status", {}).get("conditions", []):
        if cond.get("type") == "Ready":
            if cond.get("status") != "True":
                return False
            beat = cond.get("lastHeartbeatTime")
            if since and beat:
                when = datetime.datetime.strptime(beat, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
                return when.timestamp() >= since
            return True
    return False
