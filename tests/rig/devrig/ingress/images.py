"""The ingress addon's images, built locally (no registry here): FROM scratch + Debian's static busybox.

They carry the real images' names and tags (without the registry digest, which only a registry can give),
so the Deployment and Jobs reference them as minikube's addon does, with `imagePullPolicy: IfNotPresent`.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from devrig import RigError, paths
from devrig.engine import unix_http

CONTROLLER_IMAGE = "registry.k8s.io/ingress-nginx/controller:v1.12.2"  # minikube v1.36.0's tags
CERTGEN_IMAGE = "registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.5.3"
BUSYBOX = Path("/bin/busybox")

_CONTROLLER = """#!/bin/busybox sh
# devrig stand-in for the ingress-nginx controller: answers /healthz on :10254 (what the probes check).
echo "NGINX Ingress controller (devrig stand-in image, busybox)"
echo "  args: $*"
echo "  the validating webhook is served by the rig's admission server on the host's loopback"
exec /bin/busybox httpd -f -p 10254 -h /www
"""
_WAIT_SHUTDOWN = """#!/bin/busybox sh
exit 0
"""
_CERTGEN = """#!/bin/busybox sh
# devrig stand-in for kube-webhook-certgen: the minikube stand-in made the webhook certificate (secret
# ingress-nginx-admission) and registered its caBundle before this Job ran; nothing is left to do here.
echo "kube-webhook-certgen (devrig stand-in image) $1: certificate and caBundle provided by the minikube stand-in"
exit 0
"""

_DOCKERFILES = {
    "controller": (
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY controller /nginx-ingress-controller\n"
        "COPY wait-shutdown /wait-shutdown\nCOPY healthz /www/healthz\n"
        'USER 101\nCMD ["/nginx-ingress-controller"]\n',
        {"controller": _CONTROLLER, "wait-shutdown": _WAIT_SHUTDOWN, "healthz": "ok"},
    ),
    "certgen": (
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY certgen /kube-webhook-certgen\n"
        'USER 65532\nENTRYPOINT ["/kube-webhook-certgen"]\n',
        {"certgen": _CERTGEN},
    ),
}


def has_image(socket: Path, ref: str) -> bool:
    status, _ = unix_http(socket, "GET", f"/images/{ref}/json")
    return status == 200


def ensure_images(socket: Path, controller: str = CONTROLLER_IMAGE, certgen: str = CERTGEN_IMAGE) -> list[str]:
    """Build whichever of the addon's images the engine lacks; returns the ones built."""
    refs = {"controller": controller, "certgen": certgen}
    if not BUSYBOX.exists():
        raise RigError(f"{BUSYBOX} is missing: install Debian's busybox-static (apt-get install busybox-static)")
    built = []
    for kind, (dockerfile, files) in _DOCKERFILES.items():
        ref = refs[kind]
        if has_image(socket, ref):
            continue
        with tempfile.TemporaryDirectory(prefix="devrig-ingress-") as ctx:
            Path(ctx, "Dockerfile").write_text(dockerfile)
            Path(ctx, "busybox").write_bytes(BUSYBOX.read_bytes())
            Path(ctx, "busybox").chmod(0o755)
            for name, text in files.items():
                Path(ctx, name).write_text(text)
                Path(ctx, name).chmod(0o755)
            env = {"DOCKER_HOST": f"unix://{socket}", "DOCKER_BUILDKIT": "0", "PATH": "/usr/bin:/bin"}
            result = subprocess.run(
                [str(paths.docker_cli()), "build", "-q", "-t", ref, ctx],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
        if result.returncode != 0:
            raise RigError(
                f"building {ref} in the profile's engine ({socket}) failed: {(result.stderr or result.stdout).strip()}"
            )
        built.append(ref)
    return built
