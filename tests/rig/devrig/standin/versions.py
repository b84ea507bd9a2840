"""Which minikube release the stand-in plays, and what that release says about Kubernetes versions.

Default: minikube v1.36.0 (oldest supported Kubernetes v1.20.0).  `DEVRIG_MINIKUBE_VERSION=v1.38.1` (or any
release from v1.37.0 on) plays a release whose oldest supported version is v1.28.0 (commit ce0ab00360).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

DEFAULT_MINIKUBE_VERSION = "v1.36.0"

# version -> (commit, oldest, default, newest Kubernetes, ingress controller tag, kube-webhook-certgen tag),
# read from each release's pkg/minikube/constants/constants.go and pkg/minikube/assets/addons.go
_RELEASES = {
    "v1.36.0": ("f8f52f5de11fc6ad8244afac475e1d0f96841df1", "v1.20.0", "v1.33.1", "v1.33.1", "v1.12.2", "v1.5.3"),
    "v1.38.1": ("c93a4cb9311efc66b90d33ea03f75f2c4120e9b0", "v1.28.0", "v1.35.1", "v1.35.1", "v1.14.3", "v1.6.7"),
}


@dataclass(frozen=True)
class Release:
    version: str
    commit: str
    oldest_k8s: str
    default_k8s: str
    newest_k8s: str
    ingress_controller_tag: str
    ingress_certgen_tag: str

    @property
    def ingress_images(self) -> tuple[str, str]:
        return (f"registry.k8s.io/ingress-nginx/controller:{self.ingress_controller_tag}",
                f"registry.k8s.io/ingress-nginx/kube-webhook-certgen:{self.ingress_certgen_tag}")

    @property
    def status_exit_when_host_gone(self) -> int:
        # cluster.GetStatus errors when the host is gone; v1.35-v1.37 then exit 0 (bug), v1.38 exits 7
        return 7 if semver(self.version) >= (1, 38, 0) else 0


def semver(v: str) -> tuple[int, int, int]:
    m = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)(?:[-+].*)?", v.strip())
    if not m:
        raise ValueError(v)
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def current() -> Release:
    wanted = os.environ.get("DEVRIG_MINIKUBE_VERSION") or DEFAULT_MINIKUBE_VERSION
    if not wanted.startswith("v"):
        wanted = "v" + wanted
    if wanted in _RELEASES:
        return Release(wanted, *_RELEASES[wanted])
    # an unknown release: the oldest supported version moved to v1.28.0 in v1.37.0
    try:
        newer = semver(wanted) >= (1, 37, 0)
    except ValueError:
        newer = False
    base = _RELEASES["v1.38.1" if newer else "v1.36.0"]
    return Release(wanted, "0" * 40, *base[1:])
