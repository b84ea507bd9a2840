"""Versions: minikube's and Kubernetes', what devloop needs of minikube (the oldest minikube it runs on),
and the --force rule for old Kubernetes versions.

Pure functions; output.py reads `minikube version`, cli.py refuses a minikube that is too old.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from devloop.base.errors import ClusterError, ConfigError

# A version is at least MAJOR.MINOR.PATCH, `v` optional; what follows may be a pre-release (`-beta.0`), a
# build (`+abc`) or anything a development build appends (`-unset`, `-12-gabcdef`).
_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)")

# The oldest Kubernetes each minikube line accepts without --force (constants.go
# OldestKubernetesVersion; raised to v1.28.0 by v1.37.0).
_OLDEST_K8S_BEFORE_1_37 = (1, 20, 0)
_OLDEST_K8S_FROM_1_37 = (1, 28, 0)

# What devloop needs of minikube, each with the first release that has it (shared/research/minikube-audit
# W5). Older, a run would end mid-loop in cobra's "unknown flag" or find no node; refused up front instead.
MINIKUBE_FEATURES: tuple[tuple[str, str], ...] = (
    ("`minikube docker-env -o json` (the build engine's address)", "v1.24.0"),
    ("`minikube image ls --format` (the images the cluster holds)", "v1.25.0"),
    ("the primary node's label minikube.k8s.io/primary=true (the API server's node)", "v1.28.0"),
)
MINIMUM_MINIKUBE = max((since for _, since in MINIKUBE_FEATURES), key=lambda text: Version(text))


def release(text: str) -> Version | None:
    """The version in `text` (`v1.38.1`, `1.28.0-beta.0`), ordered as semver orders it (a pre-release comes
    before its release); None without MAJOR.MINOR.PATCH. A suffix PEP 440 cannot read (`v0.0.0-unset`) leaves
    MAJOR.MINOR.PATCH."""
    text = text.strip()
    match = _VERSION_RE.match(text)
    if not match:
        return None
    try:
        return Version(text)
    except InvalidVersion:
        return Version(match[0])


def parse_semver(text: str) -> tuple[int, int, int] | None:
    """(major, minor, patch) of `text`, whatever follows them; None when it has no MAJOR.MINOR.PATCH."""
    version = release(text)
    return None if version is None else (version.major, version.minor, version.micro)


@dataclass(frozen=True)
class MinikubeVersion:
    version: str  # "v1.36.0"
    commit: str = ""

    @property
    def as_tuple(self) -> tuple[int, int, int]:
        """(0, 0, 0) for builds without a version ("v0.0.0-unset") or anything unparsable."""
        return parse_semver(self.version) or (0, 0, 0)

    @property
    def known(self) -> bool:
        return self.as_tuple != (0, 0, 0)


def missing_features(version: MinikubeVersion) -> list[tuple[str, str]]:
    """The (feature, first version) pairs this minikube lacks; none for a build without a version."""
    found = release(version.version)
    if not version.known or found is None:
        return []  # a development build: its features can't be told from its version
    return [(feature, since) for feature, since in MINIKUBE_FEATURES if found < Version(since)]


class MinikubeTooOld(ClusterError):
    """The minikube found is older than MINIMUM_MINIKUBE: a verdict on a version that was read, which a dry run
    reports as the real run would (a version that could not be read is not one)."""


def require_supported(version: MinikubeVersion) -> MinikubeVersion:
    """`version` when devloop can run on it; else MinikubeTooOld naming the minimum, what was found, and the fix."""
    missing = missing_features(version)
    if not missing:
        return version
    lacks = "; ".join(f"{feature} needs {since}" for feature, since in missing)
    raise MinikubeTooOld(
        f"minikube {version.version} is too old: devloop needs minikube {MINIMUM_MINIKUBE} or newer ({lacks})",
        hint=f"upgrade minikube to {MINIMUM_MINIKUBE} or newer: https://minikube.sigs.k8s.io/docs/start/ "
        "(`minikube version` shows the one on PATH)",
    )


def needs_force(minikube_version: MinikubeVersion | str, kubernetes_version: str, *, allow_force: bool) -> bool:
    """Whether `minikube start` needs --force for this Kubernetes version.

    minikube ≥ 1.37 refuses Kubernetes older than v1.28.0 (exit 106, K8S_OLD_UNSUPPORTED)
    unless --force; up to 1.36 the oldest was v1.20.0. Raises ConfigError when --force would be
    needed but the profile does not allow it.
    """
    if isinstance(minikube_version, str):
        minikube_version = MinikubeVersion(version=minikube_version)
    wanted = parse_semver(kubernetes_version)
    if wanted is None:
        raise ConfigError(f"cluster.kubernetes_version {kubernetes_version!r} is not a version like v1.21.14")
    if not minikube_version.known:
        # A development build: we can't tell its limits; minikube itself will say (exit 106).
        return False
    oldest = _OLDEST_K8S_FROM_1_37 if minikube_version.as_tuple >= (1, 37, 0) else _OLDEST_K8S_BEFORE_1_37
    if wanted >= oldest:
        return False
    if allow_force:
        return True
    oldest_text = "v" + ".".join(map(str, oldest))
    raise ConfigError(
        f"minikube {minikube_version.version} refuses Kubernetes {kubernetes_version}: its oldest supported "
        f"version is {oldest_text} (it would exit 106, K8S_OLD_UNSUPPORTED)",
        hint="set `cluster.allow_unsupported_kubernetes: true` in the profile to start it with --force, "
        "or install minikube v1.36 or older",
    )
