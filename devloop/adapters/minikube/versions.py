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

# The oldest Kubernetes minikube accepts without --force, per release: (first minikube, its
# constants.OldestKubernetesVersion), read at every tag from v1.28.0 (MINIMUM_MINIKUBE) to v1.38.1 and master
# eb25dbc. validateKubernetesVersion exits K8S_OLD_UNSUPPORTED below it unless forced (start.go).
OLDEST_KUBERNETES: tuple[tuple[str, str], ...] = (
    ("v1.27.0", "v1.16.0"),  # v1.27.0-v1.32.0 (v1.23-v1.26: v1.14.0, below devloop's minimum)
    ("v1.33.0-beta.0", "v1.20.0"),  # to v1.36.0
    ("v1.37.0", "v1.28.0"),  # v1.37.0-v1.38.1, master
)

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


def oldest_kubernetes(version: MinikubeVersion) -> str | None:
    """The oldest Kubernetes this minikube starts without --force (OLDEST_KUBERNETES); None when unknown (a
    development build, or one older than the table)."""
    found = release(version.version)
    if not version.known or found is None:
        return None
    floors = [oldest for since, oldest in OLDEST_KUBERNETES if found >= (release(since) or found)]
    return floors[-1] if floors else None


def minikubes_accepting(kubernetes: tuple[int, int, int]) -> str | None:
    """The supported minikube releases that start this Kubernetes without --force (`v1.28-v1.36`), or None.
    The floors only rise, so they are one span from MINIMUM_MINIKUBE."""
    minimum = release(MINIMUM_MINIKUBE)
    assert minimum is not None
    for since, oldest in OLDEST_KUBERNETES:
        first = release(since)
        floor = parse_semver(oldest)
        if first is None or floor is None or kubernetes >= floor:
            continue
        if first <= minimum:
            return None  # even the oldest minikube devloop runs on refuses it
        return f"v{minimum.major}.{minimum.minor}-v{first.major}.{first.minor - 1}"
    return f"v{minimum.major}.{minimum.minor} or newer"


def needs_force(minikube_version: MinikubeVersion | str, kubernetes_version: str, *, allow_force: bool) -> bool:
    """Whether `minikube start` needs --force for this Kubernetes version.

    minikube refuses Kubernetes older than its oldest supported one (OLDEST_KUBERNETES: v1.16.0 for 1.28-1.32,
    v1.20.0 for 1.33-1.36, v1.28.0 from 1.37) with exit 106, K8S_OLD_UNSUPPORTED, unless --force. Raises
    ConfigError when --force would be needed but the profile does not allow it.
    """
    if isinstance(minikube_version, str):
        minikube_version = MinikubeVersion(version=minikube_version)
    wanted = parse_semver(kubernetes_version)
    if wanted is None:
        raise ConfigError(f"cluster.kubernetes_version {kubernetes_version!r} is not a version like v1.21.14")
    if not minikube_version.known:
        # A development build: we can't tell its limits; minikube itself will say (exit 106).
        return False
    oldest_text = oldest_kubernetes(minikube_version)
    if oldest_text is None or wanted >= (parse_semver(oldest_text) or (0, 0, 0)):
        return False
    if allow_force:
        return True
    raise ConfigError(
        f"minikube {minikube_version.version} refuses Kubernetes {kubernetes_version}: its oldest supported "
        f"version is {oldest_text} (it would exit 106, K8S_OLD_UNSUPPORTED)",
        hint="set `cluster.allow_unsupported_kubernetes: true` in the profile to start it with --force"
        + (f", or use a minikube that supports it: {accepting}" if (accepting := minikubes_accepting(wanted)) else ""),
    )
