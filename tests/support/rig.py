"""The one check that a test's part of the rig is there: skip without it -- or, with CI=true, fail.

A CI run that silently skips every cluster test would pass while testing nothing, so there a missing
rig is an error that says how to build it."""

from __future__ import annotations

import os

import pytest

from devrig import paths as rig_paths
from devrig.testing import busybox as find_busybox


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def real_minikube() -> bool:
    """DEVLOOP_REAL_MINIKUBE=1: a real minikube stands in for the stand-in, so the rig's binaries are not needed."""
    return os.environ.get("DEVLOOP_REAL_MINIKUBE") == "1"


def missing(
    *,
    parts: bool = True,
    kwok: bool = False,
    root: bool = False,
    busybox: bool = False,
    version: str = rig_paths.DEFAULT_KUBERNETES_VERSION,
) -> list[str]:
    """What is not there, as readable reasons (empty: go ahead). `parts`: the binaries scripts/build-rig makes."""
    reasons = []
    if root and os.geteuid() != 0:
        reasons.append("root (the rig uses mount/UTS/network namespaces, dockerd, a kubelet)")
    if parts and not real_minikube():
        parts = rig_paths.missing_parts(version, kwok=kwok)
        if parts:
            reasons.append(f"rig parts: {', '.join(parts)}; {rig_paths.BUILD_HINT}")
    if busybox and find_busybox() is None:
        reasons.append("busybox-static (apt-get install busybox-static)")
    return reasons


def require_rig(*, parts: bool = True, kwok: bool = False, root: bool = False, busybox: bool = False) -> None:
    """Skip the test unless the rig's binaries (and, when asked, kwok, root, busybox) are there; under CI=true,
    fail instead. parts=False checks only what is asked for (e.g. root for a network namespace)."""
    reasons = missing(parts=parts, kwok=kwok, root=root, busybox=busybox)
    if not reasons:
        return
    message = f"test rig not ready, missing: {'; '.join(reasons)}"
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
