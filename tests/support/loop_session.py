"""A Session over the unit tests' fakes (support.fakes), for tests of the loop's decisions: the sample
workspace copied, a kubeconfig naming the minikube profile's context, FakeMinikube/FakeDocker and a
kube client factory that records what it was asked for (`session.made_kube`).

Shared here so that no test module imports another (`from tests.unit.test_loop import ...` needs the
repository root on sys.path, which plain `pytest` does not give; tests/ is on it through pyproject.toml's
`pythonpath`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from devloop.adapters.host import HostResources
from devloop.output.report import Reporter
from devloop.profile.lookup import load_profile
from devloop.session import Session
from support.fakes import FakeDocker, FakeMinikube

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "workspace"


def write_kubeconfig(path: Path, context: str, server: str, *, minikube_marked: bool = False) -> str:
    cluster: dict = {"server": server}
    if minikube_marked:
        cluster["extensions"] = [{"name": "cluster_info", "extension": {"provider": "minikube.sigs.k8s.io"}}]
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": context, "cluster": cluster}],
                "users": [{"name": context, "user": {}}],
                "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
                "current-context": context,
            }
        )
    )
    return str(path)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """The sample workspace (tests/fixtures/workspace), copied."""
    dest = tmp_path / "ws"
    shutil.copytree(FIXTURES, dest)
    return dest


def make_session(
    tmp_path: Path,
    workspace: Path,
    *,
    minikube=None,
    docker=None,
    server="https://127.0.0.1:8443",
    dry_run=False,
    kube=None,
    profile=None,
    minikube_marked=False,
) -> Session:
    prof = profile or load_profile("kubeless", cwd=tmp_path)
    kubeconfig = write_kubeconfig(
        tmp_path / "kubeconfig", prof.cluster.profile, server, minikube_marked=minikube_marked
    )
    mk = minikube or FakeMinikube()
    made_kube = []

    def make_kube(**kwargs):
        made_kube.append(kwargs)
        return kube

    session = Session(
        profile=prof,
        workspace=workspace,
        reporter=Reporter(json_mode=True),
        dry_run=dry_run,
        kubeconfig=kubeconfig,
        cache_dir=tmp_path / "cache",
        make_minikube=lambda name, binary: mk,
        make_kube=make_kube,
        make_docker=lambda env: docker or FakeDocker(),
        make_host=lambda driver: HostResources(cpus=8, memory_mb=16384, source="a developer's laptop"),
    )
    session.made_kube = made_kube  # type: ignore[attr-defined]
    return session
