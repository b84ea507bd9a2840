"""HTTPS admission server for Ingresses (run as `python -m devrig.ingress.admission`).

It answers AdmissionReview v1 requests the way ingress-nginx's validating webhook does for the case the
rig models: snippet annotations are refused, because ingress-nginx (from v1.9 on) ships with
`allow-snippet-annotations: false` and its webhook then rejects any Ingress that carries one, with the
message below.  Everything else is admitted.  Each decision is logged (one line) for test diagnostics.
"""

from __future__ import annotations

import argparse
import json
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SNIPPET_ANNOTATIONS = (
    "nginx.ingress.kubernetes.io/configuration-snippet",
    "nginx.ingress.kubernetes.io/server-snippet",
    "nginx.ingress.kubernetes.io/auth-snippet",
    "nginx.ingress.kubernetes.io/stream-snippet",
    "nginx.ingress.kubernetes.io/modsecurity-snippet",
)
PATHS = ("/networking/v1/ingresses", "/networking/v1beta1/ingresses")


def review(request: dict) -> dict:
    """The AdmissionReview `response` for one `request`."""
    obj = request.get("object") or {}
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    response = {"uid": request.get("uid", ""), "allowed": True}
    # v1.12 matches on the key's suffix (kubernetes/ingress-nginx#13186), not just the five real names
    for key in sorted(annotations):
        if key in SNIPPET_ANNOTATIONS or key.endswith("-snippet"):
            response["allowed"] = False
            response["status"] = {
                "status": "Failure",
                "code": 400,
                "reason": "BadRequest",
                # the API server prefixes: admission webhook "validate.nginx..." denied the request:
                "message": f"{key} annotation cannot be used. Snippet directives are disabled by the Ingress "
                "administrator",
            }
            break
    return response


class Handler(BaseHTTPRequestHandler):
    server_version = "devrig-ingress-admission/1"

    def do_GET(self) -> None:  # liveness for the stand-in's readiness wait
        body = b"ok" if self.path == "/healthz" else b"not found"
        self.send_response(200 if self.path == "/healthz" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        if self.path.split("?")[0] not in PATHS:
            self.send_error(404)
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            doc = json.loads(self.rfile.read(length))
            resp = review(doc.get("request") or {})
        except ValueError as exc:
            self.send_error(400, f"bad AdmissionReview: {exc}")
            return
        out = json.dumps(
            {"apiVersion": doc.get("apiVersion", "admission.k8s.io/v1"), "kind": "AdmissionReview", "response": resp}
        ).encode()
        req = doc.get("request") or {}
        meta = (req.get("object") or {}).get("metadata") or {}
        print(
            f"{req.get('operation')} ingress {meta.get('namespace', req.get('namespace'))}/"
            f"{meta.get('name', req.get('name'))}: allowed={resp['allowed']}",
            flush=True,
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, fmt: str, *args) -> None:
        pass  # one line per decision is printed above; per-request access logs are noise


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    args = ap.parse_args(argv)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print(f"admission server listening on https://127.0.0.1:{args.port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
