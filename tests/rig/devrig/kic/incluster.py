"""A stdlib-only client for the API server from inside a pod (its service account), for the addon stand-ins.

Copied into the ingress addon's stand-in images as /devrig/incluster.py; nothing here imports the rig.
"""

from __future__ import annotations

import json
import os
import ssl
import urllib.error
import urllib.request

SA = "/var/run/secrets/kubernetes.io/serviceaccount"


def _base() -> str:
    host = os.environ["KUBERNETES_SERVICE_HOST"]
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    return f"https://{host}:{port}"


def request(method: str, path: str, body: object = None, *, content_type: str = "application/json") -> tuple[int, dict]:
    with open(f"{SA}/token") as fh:
        token = fh.read().strip()
    ctx = ssl.create_default_context(cafile=f"{SA}/ca.crt")
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(_base() + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"{}")
        except ValueError:
            return exc.code, {}
