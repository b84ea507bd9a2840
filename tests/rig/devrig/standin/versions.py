"""Which minikube release the stand-in plays (`DEVRIG_MINIKUBE_VERSION`), and what that release does.

Every value is read from minikube's repository at the release's tag (file:line in the README's
"Versions" table): pkg/minikube/constants/constants.go (Kubernetes range, the runtime warning),
pkg/minikube/assets/addons.go (ingress images), cmd/minikube/cmd/status.go (exit code of `null`),
pkg/drivers/kic/types.go (the kicbase image, whose Docker decides the engine's API floor).
v1.39.0 has no tag yet (master at 2026-08-23 still defaults to docker); it is modelled as announced
by v1.38.1's warning: v1.38.1 with containerd as the default runtime.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

DEFAULT_MINIKUBE_VERSION = "v1.36.0"
VERSION_ENV = "DEVRIG_MINIKUBE_VERSION"
# Overrides the engine's minimum API version ("1.44", or "off"); else the release's kicbase decides.
ENGINE_MIN_API_ENV = "DEVRIG_ENGINE_MIN_API"

# The warning v1.38.1 prints on `start` when the runtime is docker (constants.go:71, start.go:349-353).
RUNTIME_CHANGE_WARNING = (
    'Starting v1.39.0, minikube will default to "containerd" container runtime. See #21973 for more info.'
)


@dataclass(frozen=True)
class Release:
    version: str
    commit: str
    oldest_k8s: str
    default_k8s: str
    newest_k8s: str
    ingress_controller_tag: str
    ingress_certgen_tag: str
    default_runtime: str = "docker"
    warns_runtime_change: bool = False
    kicbase: str = ""
    # The lowest Docker API version the kicbase's dockerd serves, unless the daemon's environment lowers
    # it (DOCKER_MIN_API_VERSION); None = low enough for every client the rig runs (Docker <= 28: 1.24).
    engine_min_api: str | None = None

    @property
    def ingress_images(self) -> tuple[str, str]:
        return (
            f"registry.k8s.io/ingress-nginx/controller:{self.ingress_controller_tag}",
            f"registry.k8s.io/ingress-nginx/kube-webhook-certgen:{self.ingress_certgen_tag}",
        )

    @property
    def klog_lines(self) -> dict[str, str]:
        """file:line of the klog errors a vanished host makes minikube print (the calls' lines at the tag)."""
        minor = semver(self.version)[:2]
        return {
            "host gone": "status.go:183" if minor >= (1, 38) else "status.go:184",  # pkg/minikube/cluster
            "status error": "status.go:127" if minor >= (1, 38) else "status.go:126",  # cmd/minikube/cmd
            "profile list": {(1, 36): "profile_list.go:118", (1, 37): "profile_list.go:122"}.get(
                minor, "profile_list.go:125"
            ),
        }

    @property
    def kicbase_image(self) -> str:
        """KicBaseImage a start without --base-image saves: kic.BaseImage (pkg/drivers/kic/types.go)."""
        return f"gcr.io/k8s-minikube/kicbase:{self.kicbase}@sha256:{KICBASE_SHA.get(self.kicbase, '')}"

    @property
    def status_exit_when_host_gone(self) -> int:
        # cluster.GetStatus errors when the host is gone, leaving no statuses; v1.38.0 added
        # `if len(statuses) == 0 { return 7 }` to exitCode (status.go:162-164); before, exit 0
        return 7 if semver(self.version) >= (1, 38, 0) else 0


# baseImageSHA at each release's pkg/drivers/kic/types.go (master for the unreleased v1.39 stand-in)
KICBASE_SHA = {
    "v0.0.47": "6ed579c9292b4370177b7ef3c42cc4b4a6dcd0735a1814916cbc22c8bf38412b",
    "v0.0.48": "7171c97a51623558720f8e5878e4f4637da093e2f2ed589997bedc6c1549b2b1",
    "v0.0.49": "e6daddbb1dc09ccd195c5605f65e2d38406c36ef36c5a492ffe805d9d36f4945",
    "v0.0.50": "eb4fec00e8ad70adf8e6436f195cc429825ffb85f95afcdb5d8d9deb576f3e93",
    "(unreleased)": "ad915173564dafc80f319101ab6082c6779bda10dec9b8460494c9a2917ddab9",
}

_RELEASES = {
    r.version: r
    for r in (
        # kicbase v0.0.47 (May 2025): Docker 28 (API floor 1.24)
        Release(
            "v1.36.0",
            "f8f52f5de11fc6ad8244afac475e1d0f96841df1",
            "v1.20.0",
            "v1.33.1",
            "v1.33.1",
            "v1.12.2",
            "v1.5.3",
            kicbase="v0.0.47",
        ),
        # kicbase v0.0.48 (Sep 2025), before Docker 29.0 (2025-11-11)
        Release(
            "v1.37.0",
            "65318f4cfff9c12cc87ec9eb8f4cdd57b25047f3",
            "v1.28.0",
            "v1.34.0",
            "v1.34.0",
            "v1.13.2",
            "v1.6.2",
            kicbase="v0.0.48",
        ),
        # kicbase v0.0.49 (2026-01-27) installs the newest docker-ce unpinned (deploy/kicbase/Dockerfile:161):
        # Docker 29.0-29.2, whose daemon refuses API versions below 1.44 (moby#51186)
        Release(
            "v1.38.0",
            "de81223c61ab1bd97dcfcfa6d9d5c59e5da4a0cf",
            "v1.28.0",
            "v1.35.0",
            "v1.35.0",
            "v1.14.1",
            "v1.6.5",
            kicbase="v0.0.49",
            engine_min_api="1.44",
        ),
        Release(
            "v1.38.1",
            "c93a4cb9311efc66b90d33ea03f75f2c4120e9b0",
            "v1.28.0",
            "v1.35.1",
            "v1.35.1",
            "v1.14.3",
            "v1.6.7",
            warns_runtime_change=True,
            kicbase="v0.0.50",
            engine_min_api="1.44",
        ),
        # not released: v1.38.1 plus the announced default. Its kicbase would carry Docker >= 29.3, whose
        # floor went back to 1.40 (still above dockershim's fallbacks, below its 1.41 default).
        Release(
            "v1.39.0",
            "0" * 40,
            "v1.28.0",
            "v1.35.1",
            "v1.35.1",
            "v1.14.3",
            "v1.6.7",
            default_runtime="containerd",
            kicbase="(unreleased)",
            engine_min_api="1.40",
        ),
    )
}
# `DEVRIG_MINIKUBE_VERSION=v1.38` means the newest patch of that minor
_LATEST_PATCH = {"v1.36": "v1.36.0", "v1.37": "v1.37.0", "v1.38": "v1.38.1", "v1.39": "v1.39.0"}


def semver(v: str) -> tuple[int, int, int]:
    m = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)(?:[-+].*)?", v.strip())
    if not m:
        raise ValueError(v)
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def known() -> tuple[str, ...]:
    return tuple(_RELEASES)


def current() -> Release:
    wanted = (os.environ.get(VERSION_ENV) or DEFAULT_MINIKUBE_VERSION).strip()
    if not wanted.startswith("v"):
        wanted = "v" + wanted
    wanted = _LATEST_PATCH.get(wanted, wanted)
    if wanted in _RELEASES:
        return _RELEASES[wanted]
    # another patch release: the nearest known release at or below it, under the asked-for name
    try:
        asked = semver(wanted)
    except ValueError:
        raise SystemExit(f"{VERSION_ENV}={wanted!r}: not a minikube version; known: {', '.join(_RELEASES)}")
    below = [r for r in _RELEASES.values() if semver(r.version) <= asked] or [_RELEASES[DEFAULT_MINIKUBE_VERSION]]
    base = max(below, key=lambda r: semver(r.version))
    return Release(
        wanted,
        "0" * 40,
        *[
            getattr(base, f)
            for f in (
                "oldest_k8s",
                "default_k8s",
                "newest_k8s",
                "ingress_controller_tag",
                "ingress_certgen_tag",
                "default_runtime",
                "warns_runtime_change",
                "kicbase",
                "engine_min_api",
            )
        ],
    )


def api_tuple(v: str) -> tuple[int, int]:
    major, _, minor = v.partition(".")
    return int(major), int(minor)


def engine_min_api(release: Release, driver: str, docker_env: list[str] | None) -> str | None:
    """The API floor of the profile's engine: the release's kicbase Docker (docker driver only), unless
    `DEVRIG_ENGINE_MIN_API` overrides it or `--docker-env DOCKER_MIN_API_VERSION=X` lowers it in the
    daemon's environment (dockerd reads it at start, moby#46887; valid from 1.24 up to its own version)."""
    forced = os.environ.get(ENGINE_MIN_API_ENV, "").strip()
    floor = (
        None
        if forced.lower() in ("off", "none", "0")
        else (forced or (release.engine_min_api if driver == "docker" else None))
    )
    for entry in docker_env or []:
        key, _, value = entry.partition("=")
        if key == "DOCKER_MIN_API_VERSION" and value:
            return value  # dockerd takes it as its minimum, replacing the built-in one
    return floor
