"""Base images a registry would have served, preloaded into each profile's engine (a documented deviation).

No registry is reachable here, so `FROM bitnami/minideb:jessie` and `FROM fedora:27` (what the Kubeless
Dockerfiles start from) are local images built at profile start: Debian's static busybox with its applets,
the host's glibc loader and libraries (what a Debian or Fedora base carries, and what a Go binary built with
cgo needs to start), and package managers that install nothing and say so:
`install_packages` (minideb) and `dnf` (Fedora).  Everything built on top of them is built for real.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from . import RigError, paths

# Every base named by the upstream Dockerfiles devloop builds (kubeless, http-trigger, cronjob-trigger).
BASE_IMAGES = {
    "bitnami/minideb:jessie": {"ID": "debian", "VERSION_ID": "8", "PRETTY_NAME": "Debian GNU/Linux 8 (jessie)"},
    "fedora:27": {"ID": "fedora", "VERSION_ID": "27", "PRETTY_NAME": "Fedora 27 (Twenty Seven)"},
}
LABEL = "devrig.base-image"  # marks the stand-ins, so `docker inspect` tells them from real images
GLIBC = (
    "/lib64/ld-linux-x86-64.so.2",
    "/lib/x86_64-linux-gnu/libc.so.6",
    "/lib/x86_64-linux-gnu/libm.so.6",
    "/lib/x86_64-linux-gnu/libpthread.so.0",
    "/lib/x86_64-linux-gnu/libdl.so.2",
    "/lib/x86_64-linux-gnu/libresolv.so.2",
    "/lib/x86_64-linux-gnu/librt.so.1",
    "/lib/x86_64-linux-gnu/libnss_files.so.2",
    "/lib/x86_64-linux-gnu/libnss_dns.so.2",
)

_NO_OP = """#!/bin/sh
# devrig: {name} of a stand-in base image ({image}); no registry or mirror is reachable here.
echo "{name} $*: nothing installed (devrig stand-in for {image})"
exit 0
"""
_BASH = """#!/bin/sh
# devrig: bash is busybox's sh in this stand-in base image
exec /bin/sh "$@"
"""


def _rootfs(root: Path, image: str, os_release: dict[str, str]) -> None:
    bb = paths.busybox_bin()
    if not os.access(bb, os.X_OK):
        raise RigError(f"busybox not found at {bb}; apt-get install busybox-static ({paths.BUILD_HINT})")
    for d in ("bin", "usr/bin", "usr/sbin", "etc", "tmp", "root", "lib/x86_64-linux-gnu", "lib64"):
        (root / d).mkdir(parents=True, exist_ok=True)
    os.chmod(root / "tmp", 0o1777)
    shutil.copy(bb, root / "bin/busybox")
    applets = subprocess.run([str(bb), "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox" and not (root / "bin" / applet).exists():
            (root / "bin" / applet).symlink_to("busybox")
    for lib in GLIBC:
        if Path(lib).exists():
            shutil.copy(Path(lib).resolve(), root / lib.lstrip("/"))
    scripts = {
        "bin/bash": _BASH,
        "usr/sbin/install_packages": _NO_OP.format(name="install_packages", image=image),
        "usr/bin/dnf": _NO_OP.format(name="dnf", image=image),
    }
    for rel, text in scripts.items():
        (root / rel).write_text(text)
        os.chmod(root / rel, 0o755)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    (root / "etc/group").write_text("root:x:0:\nnogroup:x:65534:\n")
    (root / "etc/os-release").write_text("".join(f'{k}="{v}"\n' for k, v in os_release.items()))


def ensure(has_image, build_env: dict[str, str], engine_name: str) -> list[str]:
    """Build the base images the engine lacks; return the references built."""
    built = []
    for image, os_release in BASE_IMAGES.items():
        if has_image(image):
            continue
        with tempfile.TemporaryDirectory(prefix="devrig-base-") as ctx:
            _rootfs(Path(ctx, "rootfs"), image, os_release)
            Path(ctx, "Dockerfile").write_text(
                f'FROM scratch\nCOPY rootfs/ /\nLABEL {LABEL}="stand-in for {image}: busybox, glibc, no-op '
                f'package manager"\nENV PATH=/usr/sbin:/usr/bin:/sbin:/bin\nCMD ["/bin/sh"]\n'
            )
            result = subprocess.run(
                [str(paths.docker_cli()), "build", "-q", "-t", image, ctx],
                env=build_env,
                capture_output=True,
                text=True,
                timeout=180,
            )
        if result.returncode != 0:
            raise RigError(
                f"building base image {image} in the {engine_name!r} engine failed: "
                f"{result.stderr.strip() or result.stdout.strip()}"
            )
        built.append(image)
    return built
