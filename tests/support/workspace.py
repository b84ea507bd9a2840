"""The sample workspace (three Kubeless checkouts) copied for a test to edit."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
FIXTURE_WORKSPACE = REPO / "tests" / "fixtures" / "workspace"


def bundled_profile() -> Path:
    """The bundled Kubeless profile (the package's copy when the top-level one is not there)."""
    top = REPO / "profiles" / "kubeless.yaml"
    return top if top.exists() else REPO / "devloop" / "profile" / "bundled" / "kubeless.yaml"


def copy_workspace(dest: Path, *, minikube_profile: str | None = None) -> Path:
    """Copy tests/fixtures/workspace to `dest` (symlinks kept as links) and return `dest`.

    With `minikube_profile`, also write `dest.parent/profile.yaml`: the bundled profile with only its
    cluster.profile changed, so a test module gets a cluster of its own."""
    shutil.copytree(FIXTURE_WORKSPACE, dest, symlinks=True)
    if minikube_profile is not None:
        profile = yaml.safe_load(bundled_profile().read_text())
        profile["cluster"]["profile"] = minikube_profile
        (dest.parent / "profile.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return dest
