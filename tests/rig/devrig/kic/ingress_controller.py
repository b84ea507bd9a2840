#!/usr/bin/python3
"""devrig stand-in for ingress-nginx's controller (/nginx-ingress-controller in the ingress addon's pod).

ingress-nginx cannot be built here (it needs OpenResty and its Lua modules) and its image cannot be pulled, so
this serves what the addon's objects and its users rely on, with the addon's own arguments:
- /healthz on :10254 (the pod's liveness and readiness probes);
- the validating admission webhook on --validating-webhook (:8443), with the certificate the certgen Job made
  (--validating-webhook-certificate/-key): the rig's admission rules (devrig/ingress/admission.py: snippet
  annotations refused, as ingress-nginx >= 1.9 does by default; everything else admitted);
- routing on :80 (the pod's hostPort 80): Ingresses of class nginx (spec.ingressClassName, the
  kubernetes.io/ingress.class annotation, or none: the addon passes --watch-ingress-without-class=true), by
  Host and path (Exact, or Prefix for Prefix and ImplementationSpecific), longest path first, to the backend
  Service's ClusterIP and port; anything unmatched gets ingress-nginx's "default backend - 404";
- status.loadBalancer.ingress set to the node's address (the pod's hostIP), as ingress-nginx publishes it.
No nginx annotation (rewrite-target, ssl-redirect, auth, rate limits, canary...) is honoured, TLS on :443 is not
served, and there is no leader election: one replica, as the addon runs.
"""

import argparse
import http.client
import os
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, "/devrig")
import admission
import incluster

HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer"}
ROUTES: list = []  # (host, path, exact, namespace, service, port), longest path first
LOCK = threading.Lock()


def ours(ing: dict, args: argparse.Namespace) -> bool:
    spec = ing.get("spec") or {}
    cls = spec.get("ingressClassName") or (ing["metadata"].get("annotations") or {}).get("kubernetes.io/ingress.class")
    return cls == args.ingress_class or (cls is None and args.watch_ingress_without_class)


def refresh(args: argparse.Namespace) -> None:
    status, body = incluster.request("GET", "/apis/networking.k8s.io/v1/ingresses")
    if status != 200:
        print(f"listing ingresses: HTTP {status}", flush=True)
        return
    routes, mine = [], []
    for ing in body.get("items") or []:
        if not ours(ing, args):
            continue
        mine.append(ing)
        ns = ing["metadata"]["namespace"]
        for rule in (ing.get("spec") or {}).get("rules") or []:
            for p in ((rule.get("http") or {}).get("paths")) or []:
                svc = (p.get("backend") or {}).get("service") or {}
                port = svc.get("port") or {}
                routes.append(
                    (
                        rule.get("host", ""),
                        p.get("path") or "/",
                        p.get("pathType") == "Exact",
                        ns,
                        svc.get("name"),
                        port.get("number") or port.get("name"),
                    )
                )
    routes.sort(key=lambda r: (r[0] == "", -len(r[1])))
    with LOCK:
        ROUTES[:] = routes
    publish_status(mine)


def host_ip() -> str:
    ns, name = os.environ.get("POD_NAMESPACE", ""), os.environ.get("POD_NAME", "")
    status, pod = incluster.request("GET", f"/api/v1/namespaces/{ns}/pods/{name}")
    return ((pod.get("status") or {}).get("hostIP") or "") if status == 200 else ""


def publish_status(ingresses: list) -> None:
    ip = host_ip()
    if not ip:
        return
    for ing in ingresses:
        want = [{"ip": ip}]
        if ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") == want:
            continue
        ing["status"] = {"loadBalancer": {"ingress": want}}
        meta = ing["metadata"]
        path = f"/apis/networking.k8s.io/v1/namespaces/{meta['namespace']}/ingresses/{meta['name']}/status"
        status, body = incluster.request("PUT", path, ing)
        print(f"status of ingress {meta['namespace']}/{meta['name']}: {ip} (HTTP {status})", flush=True)


def backend(ns: str, service: str, port) -> tuple[str, int] | None:
    status, svc = incluster.request("GET", f"/api/v1/namespaces/{ns}/services/{service}")
    if status != 200:
        return None
    ip = svc["spec"].get("clusterIP")
    for p in svc["spec"].get("ports") or []:
        if port in (p.get("port"), p.get("name")):
            return ip, p["port"]
    return None


class Router(BaseHTTPRequestHandler):
    server_version = "devrig-ingress-nginx"
    protocol_version = "HTTP/1.1"

    def route(self):
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].lower()
        path = self.path.split("?", 1)[0]
        with LOCK:
            routes = list(ROUTES)
        for rhost, rpath, exact, ns, svc, port in routes:
            if rhost and rhost.lower() != host:
                continue
            if (exact and path == rpath) or (
                not exact and (path == rpath or path.startswith(rpath.rstrip("/") + "/") or rpath == "/")
            ):
                return ns, svc, port
        return None

    def handle_any(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        match = self.route()
        target = backend(*match) if match else None
        if target is None:
            self.reply(
                404 if match is None else 503,
                b"default backend - 404" if match is None else b"503 Service Temporarily Unavailable",
            )
            return
        conn = http.client.HTTPConnection(*target, timeout=30)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
            headers["X-Forwarded-For"] = self.client_address[0]
            conn.request(self.command, self.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except OSError as exc:
            self.reply(502, f"502 Bad Gateway ({exc})".encode())
            return
        finally:
            conn.close()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in HOP and k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def reply(self, code: int, text: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = handle_any

    def log_message(self, fmt: str, *a) -> None:
        print(f"{self.client_address[0]} {fmt % a}", flush=True)


class Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        ok = self.path == "/healthz"
        self.send_response(200 if ok else 404)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok" if ok else b"no")

    def log_message(self, fmt: str, *a) -> None:
        pass


def serve(server: ThreadingHTTPServer) -> None:
    threading.Thread(target=server.serve_forever, daemon=True).start()


def main() -> int:
    ap = argparse.ArgumentParser(prog="nginx-ingress-controller")
    ap.add_argument("--validating-webhook", default="")
    ap.add_argument("--validating-webhook-certificate", default="")
    ap.add_argument("--validating-webhook-key", default="")
    ap.add_argument("--ingress-class", default="nginx")
    ap.add_argument("--watch-ingress-without-class", type=lambda v: v == "true", default=False)
    args, ignored = ap.parse_known_args()
    print(f"devrig ingress controller; ignoring {' '.join(ignored)}", flush=True)
    serve(ThreadingHTTPServer(("0.0.0.0", 10254), Health))
    if args.validating_webhook:
        hook = ThreadingHTTPServer(("0.0.0.0", int(args.validating_webhook.rsplit(":", 1)[1])), admission.Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.validating_webhook_certificate, args.validating_webhook_key)
        hook.socket = ctx.wrap_socket(hook.socket, server_side=True)
        serve(hook)
    serve(ThreadingHTTPServer(("0.0.0.0", 80), Router))
    while True:
        try:
            refresh(args)
        except Exception as exc:  # the API server restarting must not end the controller
            print(f"refresh: {exc}", flush=True)
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
