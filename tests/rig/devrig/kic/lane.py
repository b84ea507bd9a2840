"""The real minikube on this machine, ready for devloop: one kic engine (host.py) with every offline part in it.

    lane = KicLane(root, "v1.38.1"); lane.start()
    env = lane.user_env("dev1")        # MINIKUBE_HOME (seeded cache), KUBECONFIG, DOCKER_HOST, PATH with minikube
    ... run devloop with env, its profile's extra_start_args = lane.START_ARGS ...
    lane.stop()

START_ARGS are what this machine needs on top of a user's `minikube start` (research/real-minikube-2026-12-07.md):
the offline kicbase image, and kubeadm's HTTPProxyCIDR preflight ignored (kubeadm v1.21 built with a modern Go
fails it: "invalid IP-literal"). Everything else is minikube's own behaviour.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from .. import RigMissing, paths
from . import ingress, kicbase, seed
from .host import KicHost

START_ARGS = (f"--base-image={kicbase.IMAGE}", "--extra-config=kubeadm.ignore-preflight-errors=HTTPProxyCIDR")


def real_minikube(version: str) -> Path:
    binary = paths.cache_dir() / "minikube" / version / "minikube"
    if not binary.exists():
        raise RigMissing(f"no minikube {version} at {binary}: run tests/rig/build-minikube {version}")
    return binary


class KicLane:
    def __init__(self, root: Path, minikube_version: str):
        self.root = root
        self.version = minikube_version
        self.host = KicHost(root / "host")
        self.cache: Path | None = None
        self.addon_images: dict[str, str] = {}

    def start(self) -> None:
        self.host.start()
        env = self.host.docker_env()
        kicbase.ensure_image(env, self.version)
        self.cache = seed.image_cache(env)
        self.addon_images = ingress.build(env)
        self.host.minikube_wrapper(real_minikube(self.version))

    def stop(self) -> None:
        self.host.stop()

    def user_env(self, user: str) -> dict[str, str]:
        """A user's environment: their own minikube home (cache seeded by hard links), kubeconfig and Docker."""
        assert self.cache is not None
        home = self.root / "users" / user
        cache = home / ".minikube" / "cache"
        if not cache.exists():
            cache.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["cp", "-al", str(self.cache), str(cache)], check=True)
            (cache / ".complete").unlink(missing_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "MINIKUBE_", "KUBECONFIG"))}
        env.update(
            MINIKUBE_HOME=str(home),
            KUBECONFIG=str(home / "kubeconfig"),
            DOCKER_HOST=self.host.docker_host,
            DOCKER_CONFIG=str(home / "docker-config"),
            PATH=f"{self.host.bin_dir}{os.pathsep}{env.get('PATH', '')}",
            MINIKUBE_IN_STYLE="false",
            MINIKUBE_WANTUPDATENOTIFICATION="false",
        )
        return env

    def remove_user(self, user: str) -> None:
        shutil.rmtree(self.root / "users" / user, ignore_errors=True)
