"""Fixtures for the adapter integration tests: one rig machine (real control plane, node, TLS engine)."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from devrig.machine import Machine
from support import require_rig


@dataclass(frozen=True)
class KubeTarget:
    context: str  # named after the profile, as minikube names it
    kubeconfig: Path
    server: str


@dataclass(frozen=True)
class DockerTarget:
    profile: str
    env: dict[str, str]  # what `minikube docker-env --shell none` gives


@pytest.fixture(scope="session")
def adapter_machine(tmp_path_factory):
    require_rig(root=True, busybox=True)
    # A short home: the kubelet puts unix sockets below the machine dir (108-byte path limit),
    # and pytest's tmp paths are long.
    root = Path(tempfile.mkdtemp(prefix="dla-", dir="/tmp"))
    machine = Machine(f"dl-adapters-{os.getpid()}", root / ".minikube")
    try:
        info = machine.boot(timeout=300)
        yield info
    finally:
        machine.destroy()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def kube_target(adapter_machine, tmp_path_factory) -> KubeTarget:
    """A kubeconfig written the way minikube writes it: cluster, user and context named after the profile."""
    info = adapter_machine
    name = info.name
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": name, "cluster": {"server": info.apiserver_url, "certificate-authority": str(info.ca_cert)}}
        ],
        "users": [
            {"name": name, "user": {"client-certificate": str(info.client_cert), "client-key": str(info.client_key)}}
        ],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": "default"}}],
        "current-context": name,
        "preferences": {},
    }
    path = tmp_path_factory.mktemp("kubeconfig") / "config"
    path.write_text(yaml.safe_dump(config))
    return KubeTarget(context=name, kubeconfig=path, server=info.apiserver_url)


@pytest.fixture(scope="session")
def docker_target(adapter_machine) -> DockerTarget:
    info = adapter_machine
    return DockerTarget(
        profile=info.name,
        env={
            "DOCKER_TLS_VERIFY": "1",
            "DOCKER_HOST": info.docker_host,
            "DOCKER_CERT_PATH": str(info.docker_cert_path),
            "MINIKUBE_ACTIVE_DOCKERD": info.name,
        },
    )
