#!/usr/bin/python3
"""devrig stand-in for kube-webhook-certgen (the ingress addon's admission Jobs), offline.

The real image (registry.k8s.io/ingress-nginx/kube-webhook-certgen, pinned by digest) cannot be pulled here,
and its source is not served by the Go module proxy (github.com/jet/kube-webhook-certgen: 403; k8s.io/ingress-nginx:
no vanity host). This does what the addon's two Jobs ask of it, with openssl and the Job's service account:

    create --host=a,b --namespace=NS --secret-name=S   a CA and a serving cert for the hosts, in Secret S
                                                       (keys ca, cert, key), unless S exists (as upstream)
    patch --webhook-name=W --namespace=NS --secret-name=S --patch-mutating=false --patch-failure-policy=Fail
                                                       S's ca as every webhook's caBundle in the
                                                       ValidatingWebhookConfiguration W, and its failurePolicy
"""

import argparse
import base64
import subprocess
import sys
import tempfile

sys.path.insert(0, "/devrig")
import incluster


def create(args: argparse.Namespace) -> int:
    path = f"/api/v1/namespaces/{args.namespace}/secrets/{args.secret_name}"
    status, _ = incluster.request("GET", path)
    if status == 200:
        print(f"secret {args.namespace}/{args.secret_name} already exists")
        return 0
    hosts = [h for h in args.host.split(",") if h]
    with tempfile.TemporaryDirectory() as tmp:

        def openssl(*argv: str) -> None:
            subprocess.run(["openssl", *argv], cwd=tmp, check=True, capture_output=True)

        openssl(
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "36500",
            "-subj",
            "/O=nil1",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        )
        openssl(
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            "/O=nil2",
            "-keyout",
            "tls.key",
            "-out",
            "tls.csr",
        )
        with open(f"{tmp}/ext.cnf", "w") as fh:
            fh.write("subjectAltName=" + ",".join(f"DNS:{h}" for h in hosts) + "\n")
        openssl(
            "x509",
            "-req",
            "-in",
            "tls.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "36500",
            "-extfile",
            "ext.cnf",
            "-out",
            "tls.crt",
        )
        data = {}
        for key, name in (("ca", "ca.crt"), ("cert", "tls.crt"), ("key", "tls.key")):
            with open(f"{tmp}/{name}", "rb") as fh:
                data[key] = base64.b64encode(fh.read()).decode()
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": args.secret_name}, "data": data}
    status, body = incluster.request("POST", f"/api/v1/namespaces/{args.namespace}/secrets", secret)
    if status not in (200, 201, 409):
        print(f"creating secret {args.secret_name}: HTTP {status} {body.get('message', '')}", file=sys.stderr)
        return 1
    print(f"created secret {args.namespace}/{args.secret_name} for {', '.join(hosts)}")
    return 0


def patch(args: argparse.Namespace) -> int:
    status, secret = incluster.request("GET", f"/api/v1/namespaces/{args.namespace}/secrets/{args.secret_name}")
    if status != 200:
        print(f"secret {args.namespace}/{args.secret_name}: HTTP {status}", file=sys.stderr)
        return 1
    ca = secret["data"]["ca"]
    if args.patch_validating:
        path = f"/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/{args.webhook_name}"
        status, cfg = incluster.request("GET", path)
        if status != 200:
            print(f"validatingwebhookconfiguration {args.webhook_name}: HTTP {status}", file=sys.stderr)
            return 1
        for hook in cfg.get("webhooks") or []:
            hook.setdefault("clientConfig", {})["caBundle"] = ca
            if args.patch_failure_policy:
                hook["failurePolicy"] = args.patch_failure_policy
        status, body = incluster.request("PUT", path, cfg)
        if status != 200:
            print(f"patching {args.webhook_name}: HTTP {status} {body.get('message', '')}", file=sys.stderr)
            return 1
        print(f"patched validatingwebhookconfiguration {args.webhook_name}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(prog="kube-webhook-certgen")
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("create")
    c.add_argument("--host", required=True)
    c.add_argument("--namespace", required=True)
    c.add_argument("--secret-name", required=True)
    p = sub.add_parser("patch")
    p.add_argument("--webhook-name", required=True)
    p.add_argument("--namespace", required=True)
    p.add_argument("--secret-name", required=True)
    p.add_argument("--patch-mutating", type=lambda v: v == "true", default=True)
    p.add_argument("--patch-validating", type=lambda v: v == "true", default=True)
    p.add_argument("--patch-failure-policy", default="")
    args = ap.parse_args()
    return create(args) if args.command == "create" else patch(args)


if __name__ == "__main__":
    sys.exit(main())
