"""The ingress addon's images, built offline for the real minikube: its controller and its webhook certgen.

minikube pins them by registry digest (pkg/minikube/assets/addons.go), so no local build can stand in under
their own names. Instead devloop passes them with minikube's own override, the one air-gapped and mirrored
users use: `minikube addons enable ingress --images=IngressController=<ref>,KubeWebhookCertgenCreate=<ref>,
KubeWebhookCertgenPatch=<ref>` (a custom image drops the default registry). What each image is:
ingress_controller.py and certgen.py (their docstrings list what they do and what they lack), on the slim Debian
of seed.py, with python3 allowed to bind port 80 as uid 101 (the addon drops every capability but
NET_BIND_SERVICE, which ingress-nginx's binary holds as a file capability; here python3 holds it).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from .. import paths
from ..ingress import admission
from . import seed

HERE = Path(__file__).resolve().parent
CONTROLLER = "local/ingress-nginx-controller:devrig"
CERTGEN = "local/kube-webhook-certgen:devrig"
IMAGES = {"IngressController": CONTROLLER, "KubeWebhookCertgenCreate": CERTGEN, "KubeWebhookCertgenPatch": CERTGEN}

# security.capability v2 (VFS_CAP_REVISION_2 | effective): permitted = CAP_NET_BIND_SERVICE (bit 10)
_SETCAP = (
    "import os, struct; p = os.path.realpath('/usr/bin/python3'); "
    "os.setxattr(p, 'security.capability', struct.pack('<IIIII', 0x02000001, 1 << 10, 0, 0, 0))"
)


def build(docker_env: dict[str, str]) -> dict[str, str]:
    """Build both images in the engine docker_env reaches; returns IMAGES (addon image name -> ref)."""
    base = seed.slim_image(docker_env)
    for ref, entry, script in (
        (CONTROLLER, "/nginx-ingress-controller", "ingress_controller.py"),
        (CERTGEN, "/kube-webhook-certgen", "certgen.py"),
    ):
        with tempfile.TemporaryDirectory(prefix="devrig-kic-ingress-") as ctx:
            for name in (script, "incluster.py"):
                shutil.copy2(HERE / name, Path(ctx, name))
            shutil.copy2(admission.__file__, Path(ctx, "admission.py"))
            lines = [
                f"FROM {base}",
                "COPY incluster.py admission.py /devrig/",
                f"COPY {script} {entry}",
                f"RUN chmod 0755 {entry} && chmod 0644 /devrig/*.py",
            ]
            if ref == CONTROLLER:
                lines += [
                    f'RUN python3 -c "{_SETCAP}"',
                    "RUN printf '#!/bin/sh\\nexit 0\\n' > /wait-shutdown && chmod 0755 /wait-shutdown",
                ]
            lines.append(f'ENTRYPOINT ["{entry}"]' if ref == CERTGEN else f'CMD ["{entry}"]')
            Path(ctx, "Dockerfile").write_text("\n".join(lines) + "\n")
            result = subprocess.run(
                [str(paths.docker_cli()), "build", "-q", "-t", ref, ctx],
                env=docker_env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            if result.returncode != 0:
                from .. import RigError

                raise RigError(f"building {ref} failed: {result.stderr.strip()[-1500:]}")
    return dict(IMAGES)
