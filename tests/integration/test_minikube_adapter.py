"""Minikube adapter against the rig's minikube stand-in (real flags, outputs and exit codes).

The shared session cluster is only read here; the failure paths use profiles that do not exist.
"""

from __future__ import annotations

import subprocess
import uuid

import pytest

from devloop.adapters.docker_engine import DockerEngine
from devloop.adapters.kube import Kube, context_info, context_server
from devloop.adapters.minikube import cli as mk
from devloop.base.errors import ClusterError, ConfigError

pytestmark = pytest.mark.rig


@pytest.fixture
def missing_profile(rig_built) -> mk.Minikube:
    return mk.Minikube(f"dl-missing-{uuid.uuid4().hex[:6]}")


def test_version(rig_built):
    version = mk.Minikube("any").version()
    assert version.version.startswith("v") and version.known and len(version.commit) == 40


def test_running_cluster_status_profile_and_endpoint(rig_cluster):
    minikube = mk.Minikube(rig_cluster.profile)
    status = minikube.status()
    assert status.running and status.state == "Running" and status.name == rig_cluster.profile
    endpoint = minikube.api_endpoint()
    assert endpoint is not None
    ip, port = endpoint
    # `minikube ip` names the node the endpoint belongs to (the port may be a forwarded one).
    node_ip = subprocess.run(
        ["minikube", "ip", "-p", rig_cluster.profile], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    assert minikube.profile_config().primary.ip == node_ip
    # The context guard's facts: the context named after the profile points at that profile's API server.
    # The rig's nodes live in their own network namespace, as the docker driver's do on macOS: the kubeconfig
    # holds a forwarded loopback port, which minikube vouches for with `Kubeconfig: Configured`.
    server = context_server(rig_cluster.profile, str(rig_cluster.kubeconfig))
    assert server in (f"https://{ip}:{port}",) or server.startswith("https://127.0.0.1:")
    assert status.kubeconfig == "Configured"
    assert context_info(rig_cluster.profile, str(rig_cluster.kubeconfig))["provider"] == "minikube.sigs.k8s.io"
    with Kube(context=rig_cluster.profile, kubeconfig=str(rig_cluster.kubeconfig)) as kube:
        assert kube.get({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})


def test_addons_read_from_config_json_agree_with_addons_list(rig_cluster):
    addons = mk.Minikube(rig_cluster.profile).addons()
    assert all(isinstance(v, bool) for v in addons.values())
    listed = subprocess.run(
        ["minikube", "addons", "list", "-p", rig_cluster.profile, "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert {k for k, v in addons.items() if v} == {k for k, v in mk.parse_addons(listed).items() if v}


def test_docker_env_reaches_the_profiles_daemon_despite_ca_bundle(rig_cluster, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    env = mk.Minikube(rig_cluster.profile).docker_env()
    assert env["DOCKER_HOST"].startswith("tcp://") and env["DOCKER_TLS_VERIFY"] == "1"
    assert env["MINIKUBE_ACTIVE_DOCKERD"] == rig_cluster.profile
    assert not any(k.startswith("SSH_") and not v for k, v in env.items())
    with DockerEngine(env) as engine:
        assert engine.daemon_name() == rig_cluster.profile


def test_missing_profile_status_delete_and_docker_env(missing_profile):
    status = missing_profile.status()
    assert status.state == "Missing" and not status.running
    missing_profile.delete()  # idempotent: exits 0 for a missing profile
    assert missing_profile.profile() is None and missing_profile.api_endpoint() is None
    with pytest.raises(ClusterError) as info:
        missing_profile.docker_env()
    assert "code 85" in str(info.value) and "does not exist" in (info.value.hint or "")


def test_new_minikube_refuses_old_kubernetes(missing_profile, monkeypatch):
    monkeypatch.setenv("DEVRIG_MINIKUBE_VERSION", "v1.38.1")
    version = missing_profile.version()
    assert version.as_tuple == (1, 38, 1)
    with pytest.raises(ConfigError, match="cluster.allow_unsupported_kubernetes"):
        mk.needs_force(version, "v1.21.14", allow_force=False)
    # What minikube itself says when started anyway without --force.
    with pytest.raises(mk.MinikubeError) as info:
        missing_profile.start(driver="docker", kubernetes_version="v1.21.14", cpus=2, memory="2g", timeout=120)
    err = info.value
    assert err.minikube_exit_code == 106 and err.reason == "K8S_OLD_UNSUPPORTED"
    assert "Exiting due to K8S_OLD_UNSUPPORTED" in str(err)
    assert "cluster.allow_unsupported_kubernetes" in (err.hint or "")
    assert missing_profile.status().state == "Missing"
