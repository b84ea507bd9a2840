"""The images a Kubeless Function's pod needs, built offline here, and the kubeless-config keys that point at them.

A Function's Deployment (kubeless pkg/utils/kubelessutil.go) runs an init container `prepare` in the
*provision image* (sha256sum, cp, base64, unzip, tar, curl) and the function in its *runtime image*; the released
kubeless-config names both by digest on Docker Hub (`kubeless/unzip@sha256:...`, `kubeless/python@sha256:...`),
which no engine here can pull. This module makes them, on demand (they are not loaded into every engine):

- `PROVISION_IMAGE` (`kubeless/unzip:devrig`): kubeless's own docker/unzip/Dockerfile, built by the engine itself
  on the rig's `bitnami/minideb` base (Debian bookworm with unzip, curl, ca-certificates, tar, gzip, bzip2,
  xz-utils and GNU coreutils' `date` pre-installed, see baseimages.py), so its `RUN install_packages ...` runs
  for real, offline.
- `PYTHON_IMAGE` (`kubeless/python:3.9-devrig`): Debian **bullseye**'s Python 3.9 (debootstrap) with pip's
  `PYTHON_REQUIREMENTS` (upstream's pins bottle 0.12.13 and cherrypy 8.9.1, wsgi-request-logger,
  prometheus_client) installed at build time through the host's network (pip in a chroot of the tree, into the
  rig cache only), then upstream's `runtimes/stable/python/_kubeless.py`, unmodified, as Dockerfile.3.8 adds
  it: `WORKDIR /`, `USER 1000`, `PYTHONUNBUFFERED=1`, `CMD ["python", "/_kubeless.py"]`.
  Python 3.9 stands in for 3.8: no 3.8 can be had here (upstream's Dockerfile.3.8 downloads a Bitnami tarball
  and get-pip.py; no Debian suite served has 3.8), and 3.11 (bookworm) breaks bottle 0.12.13 and cherrypy
  8.9.1 (`inspect.getargspec`; cherrypy >= 9 has no `wsgiserver`, which `server='cherrypy'` needs).

`ensure_images(docker_env)` loads/builds both in the engine docker_env reaches and returns their references;
`kubeless_config_overrides(data)` returns the kubeless-config `data` keys to change (`provision-image`, and the
python runtime entries' images in `runtime-images`) so the real function controller uses them. By hand:

    eval "$(minikube -p P docker-env)"
    python -m devrig.functions images          # builds/loads them, prints their references
    python -m devrig.functions config-patch    # a `kubectl patch configmap kubeless-config -n kubeless` body

The function controller reads kubeless-config only when it starts: restart it after the patch.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from . import RigError, baseimages, debootstrap, paths

UPSTREAM = Path(os.environ.get("DEVRIG_UPSTREAM") or Path(__file__).resolve().parents[4] / "shared" / "upstream")
PROVISION_IMAGE = "kubeless/unzip:devrig"
PYTHON_IMAGE = "kubeless/python:3.9-devrig"
PYTHON_SUITE = "bullseye"  # Python 3.9; bookworm's 3.11 breaks bottle 0.12.13 / cherrypy 8.9.1
PYTHON_PACKAGES = ("python3", "python3-pip", "python-is-python3", "ca-certificates")
# upstream's Dockerfile.3.8: pip install bottle==0.12.13 cherrypy==8.9.1 wsgi-request-logger prometheus_client
# (the two it leaves open are pinned here to what pip chose for 3.9 when this was written, for a stable cache)
PYTHON_REQUIREMENTS = ("bottle==0.12.13", "cherrypy==8.9.1", "wsgi-request-logger==0.4.6", "prometheus_client==0.21.1")
PYTHON_RUNTIMES = ("python3.6", "python3.7", "python3.8")  # the kubeless-config entries pointed at PYTHON_IMAGE
VERSION = "2"
LABEL = "devrig.function-image"


def _docker(args: list[str], env: Mapping[str, str], timeout: float = 600, check: bool = True):
    result = subprocess.run(
        [str(paths.docker_cli()), *args], env=dict(env), capture_output=True, text=True, timeout=timeout
    )
    if check and result.returncode != 0:
        raise RigError(f"docker {' '.join(args[:2])} ... failed: {result.stderr.strip() or result.stdout.strip()}")
    return result


def _has(ref: str, env: Mapping[str, str]) -> bool:
    return _docker(["image", "inspect", ref], env, 60, check=False).returncode == 0


def kubeless_py() -> Path:
    path = UPSTREAM / "runtimes" / "stable" / "python" / "_kubeless.py"
    if not path.is_file():
        raise RigError(f"upstream's _kubeless.py is not at {path} (DEVRIG_UPSTREAM names the upstream checkouts)")
    return path


def python_tree() -> Path:
    """The cached tarball of bullseye + python3 + pip with PYTHON_REQUIREMENTS installed (built on first use)."""
    base = debootstrap.rootfs_tarball(PYTHON_SUITE, PYTHON_PACKAGES)
    key = hashlib.sha256("\n".join([VERSION, base.name, *PYTHON_REQUIREMENTS]).encode()).hexdigest()[:16]
    target = paths.cache_dir() / "functions" / f"python3.9-{key}.tar"
    if target.exists():
        return target
    with debootstrap.file_lock(target.with_suffix(".lock")):
        if target.exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".python-", dir=target.parent) as tmp:
            root = Path(tmp, "root")
            root.mkdir()
            subprocess.run(["tar", "--numeric-owner", "-xf", str(base), "-C", str(root)], check=True)
            # pip reaches PyPI as the host does, at build time only: the host's resolver and CA bundle (an
            # egress proxy may sign), copied in for the install and removed before the tree is kept
            resolv = root / "etc" / "resolv.conf"
            shutil.copy("/etc/resolv.conf", resolv)
            host_ca = root / "tmp" / "devrig-host-ca.crt"
            shutil.copy(os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt", host_ca)
            log = target.with_suffix(".log")
            with open(log, "w") as out:
                pip = subprocess.run(
                    ["chroot", str(root), "pip3", "install", "--no-cache-dir", "--no-compile", *PYTHON_REQUIREMENTS],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env={
                        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                        "HOME": "/root",
                        "LANG": "C.UTF-8",
                        "PIP_CERT": "/tmp/devrig-host-ca.crt",
                        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
                    },
                    timeout=900,
                )
            if pip.returncode != 0:
                raise RigError(f"pip install in the {PYTHON_SUITE} tree failed (log {log}):\n{log.read_text()[-2000:]}")
            resolv.unlink()
            host_ca.unlink()
            shutil.rmtree(root / "root" / ".cache", ignore_errors=True)
            # a runtime needs no apt lists, docs, man pages or locales (minideb trims the same)
            for rel in (
                "var/lib/apt/lists",
                "var/cache/apt",
                "usr/share/doc",
                "usr/share/man",
                "usr/share/locale",
                "usr/share/info",
                "dev",
            ):
                for child in (root / rel).glob("*"):
                    shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
            part = Path(tmp, "tree.tar")
            subprocess.run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(part), "."], check=True)
            os.replace(part, target)
    return target


def ensure_python_image(docker_env: Mapping[str, str]) -> str:
    if _has(PYTHON_IMAGE, docker_env):
        return PYTHON_IMAGE
    tree = python_tree()
    pins = " ".join(PYTHON_REQUIREMENTS)
    debootstrap.import_image(
        tree,
        PYTHON_IMAGE,
        docker_env=docker_env,
        context_files={"_kubeless.py": kubeless_py().read_text()},
        dockerfile_lines=[
            f'LABEL {LABEL}="kubeless/python:3.8 stand-in: Debian {PYTHON_SUITE} Python 3.9 + pip {pins}; '
            f'upstream runtimes/stable/python/_kubeless.py unmodified (3.8 cannot be had here)"',
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "WORKDIR /",
            "ADD _kubeless.py .",
            "USER 1000",
            "ENV PYTHONUNBUFFERED 1",
            'CMD ["python", "/_kubeless.py"]',
        ],
    )
    return PYTHON_IMAGE


def ensure_provision_image(docker_env: Mapping[str, str]) -> str:
    """kubeless's docker/unzip/Dockerfile built by the engine on the rig's bitnami/minideb (loaded if missing)."""
    if _has(PROVISION_IMAGE, docker_env):
        return PROVISION_IMAGE
    if not _has("bitnami/minideb:latest", docker_env):
        baseimages.ensure(lambda ref: _has(ref, docker_env), dict(docker_env), "docker-env")
    dockerfile = UPSTREAM / "kubeless" / "docker" / "unzip" / "Dockerfile"
    if not dockerfile.is_file():
        raise RigError(f"kubeless's docker/unzip/Dockerfile is not at {dockerfile}")
    _docker(
        [
            "build",
            "-q",
            "--label",
            f"{LABEL}=kubeless/unzip built from kubeless docker/unzip on the rig's minideb",
            "-t",
            PROVISION_IMAGE,
            str(dockerfile.parent),
        ],
        {**docker_env, "DOCKER_BUILDKIT": "0"},
    )
    return PROVISION_IMAGE


def ensure_images(docker_env: Mapping[str, str]) -> dict[str, str]:
    """Both images in the engine docker_env reaches: {"provision": ref, "python": ref}."""
    return {"provision": ensure_provision_image(docker_env), "python": ensure_python_image(docker_env)}


def kubeless_config_overrides(data: Mapping[str, str], images: Mapping[str, str] | None = None) -> dict[str, str]:
    """The kubeless-config `data` keys to set: provision-image, and runtime-images with every python version's
    runtime and installation images replaced by the python image (the version names stay, so a Function of
    runtime python3.8 runs on 3.9). Images default to PROVISION_IMAGE / PYTHON_IMAGE."""
    images = {"provision": PROVISION_IMAGE, "python": PYTHON_IMAGE, **(images or {})}
    runtimes = json.loads(data["runtime-images"])
    for runtime in runtimes:
        if runtime.get("ID") != "python":
            continue
        for version in runtime.get("versions", []):
            if f"python{version.get('version')}" not in PYTHON_RUNTIMES:
                continue
            for image in version.get("images", []):
                image["image"] = images["python"]
                if image.get("phase") == "runtime":
                    # what the installation phase would have put there: 3.9's site-packages
                    env = image.setdefault("env", {})
                    if "PYTHONPATH" in env:
                        env["PYTHONPATH"] = (
                            "$(KUBELESS_INSTALL_VOLUME)/lib/python3.9/site-packages:$(KUBELESS_INSTALL_VOLUME)"
                        )
    return {"provision-image": images["provision"], "runtime-images": json.dumps(runtimes)}


def _current_config(namespace: str) -> dict:
    kubectl = shutil.which("kubectl") or "kubectl"
    out = subprocess.run(
        [kubectl, "get", "configmap", "kubeless-config", "-n", namespace, "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)["data"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devrig.functions", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("images", help="build/load the provision and python images into docker-env's engine")
    patch = sub.add_parser("config-patch", help="print a kubectl patch body for kubeless-config")
    patch.add_argument("-n", "--namespace", default="kubeless")
    args = parser.parse_args(argv)
    if args.cmd == "images":
        for role, ref in ensure_images(os.environ).items():
            print(f"{role}: {ref}")
    else:
        print(json.dumps({"data": kubeless_config_overrides(_current_config(args.namespace))}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
