"""devloop.adapters.minikube.home: minikube's profile config, CA and docker-env answers read from disk."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from devloop.adapters.minikube.home import (
    DockerEnvCache,
    minikube_home,
    read_profile_config,
    trusts_profile_ca,
)
from devloop.base.errors import ClusterError

# The shape `minikube start` saves (Go field names, no json tags), trimmed to what devloop reads plus
# a few neighbours, for a docker-driver profile with the ingress addon.
CONFIG = {
    "Name": "demo",
    "KeepContext": False,
    "EmbedCerts": False,
    "Driver": "docker",
    "APIServerPort": 8443,
    "KubernetesConfig": {
        "KubernetesVersion": "v1.21.14",
        "ClusterName": "demo",
        "APIServerName": "minikubeCA",
        "ContainerRuntime": "docker",
        "Namespace": "default",
    },
    "Nodes": [
        {
            "Name": "",
            "IP": "192.168.49.2",
            "Port": 8443,
            "KubernetesVersion": "v1.21.14",
            "ContainerRuntime": "docker",
            "ControlPlane": True,
            "Worker": True,
        }
    ],
    "Addons": {"ingress": True, "dashboard": False},
}


def write_config(home: Path, profile: str, data) -> Path:
    path = home / "profiles" / profile / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data, indent="    "))
    return path


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ("/x/.minikube", "/x/.minikube"),  # used as is when it already ends in .minikube
        ("/x/home", "/x/home/.minikube"),  # otherwise minikube appends .minikube (localpath.MiniPath)
    ],
)
def test_home_follows_minikubes_rule(env, expected):
    assert minikube_home({"MINIKUBE_HOME": env}) == Path(expected)


def test_home_defaults_to_dot_minikube_in_home():
    assert minikube_home({}) == Path.home() / ".minikube"


def test_profile_config_fields(tmp_path):
    write_config(tmp_path, "demo", CONFIG)
    cfg = read_profile_config("demo", tmp_path)
    assert (cfg.driver, cfg.container_runtime, cfg.kubernetes_version) == ("docker", "docker", "v1.21.14")
    assert cfg.endpoint == ("192.168.49.2", 8443)
    assert cfg.addon_enabled("ingress") and not cfg.addon_enabled("dashboard") and not cfg.addon_enabled("registry")
    assert cfg.ca_cert == tmp_path / "ca.crt" and cfg.docker_cert_dir == tmp_path / "certs"


def test_missing_profile_is_none(tmp_path):
    assert read_profile_config("nope", tmp_path) is None


def test_endpoint_is_none_before_the_host_has_an_address(tmp_path):
    # minikube saves the profile before it creates the host, and again once the IP is known
    write_config(tmp_path, "demo", {**CONFIG, "Nodes": [{**CONFIG["Nodes"][0], "IP": "", "Port": 8443}]})
    assert read_profile_config("demo", tmp_path).endpoint is None


def test_primary_is_the_unnamed_control_plane(tmp_path):
    worker = {"Name": "m02", "IP": "192.168.49.3", "Port": 0, "ControlPlane": False, "Worker": True}
    write_config(tmp_path, "demo", {**CONFIG, "Nodes": [worker, *CONFIG["Nodes"]]})
    assert read_profile_config("demo", tmp_path).endpoint == ("192.168.49.2", 8443)


def test_broken_config_names_the_file(tmp_path):
    path = write_config(tmp_path, "demo", "{not json")
    with pytest.raises(ClusterError) as err:
        read_profile_config("demo", tmp_path)
    # read twice (minikube may be mid-write, issue 18 W4), and no `minikube delete` for what may be a race
    assert str(path) in err.value.message and "two reads" in err.value.message
    assert "run the command again" in (err.value.hint or "") and "delete" not in (err.value.hint or "")


def test_key_changes_when_minikube_rewrites_the_file(tmp_path):  # by a rename or in place
    path = write_config(tmp_path, "demo", CONFIG)
    first = read_profile_config("demo", tmp_path).key
    assert read_profile_config("demo", tmp_path).key == first
    # a later SaveProfile writes a temp file and renames it over config.json (profile.go:167-171)
    tmp = path.with_name("config.json.tmp")
    tmp.write_text(json.dumps({**CONFIG, "Nodes": [{**CONFIG["Nodes"][0], "Port": 8444}]}, indent="    "))
    tmp.replace(path)
    second = read_profile_config("demo", tmp_path).key
    assert second != first
    # config.Write truncates and writes in place (config.go:234-241): same inode, maybe the same size
    with path.open("r+") as fh:
        text = fh.read()
        fh.seek(0)
        fh.truncate()
        fh.write(text.replace("8444", "8445"))
    assert read_profile_config("demo", tmp_path).key != second


def test_docker_env_cache_is_keyed_by_the_config(tmp_path):
    cache = DockerEnvCache(tmp_path / "cache", "demo")
    env = {"DOCKER_HOST": "tcp://127.0.0.1:32771", "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": "/h/certs"}
    assert cache.get("k1") is None
    cache.put("k1", env)
    assert cache.get("k1") == env
    assert cache.get("k2") is None  # config.json rewritten (a start): ask minikube again
    cache.forget()
    assert cache.get("k1") is None


def test_ca_trust_by_file_or_embedded_data(tmp_path):
    write_config(tmp_path, "demo", CONFIG)
    cfg = read_profile_config("demo", tmp_path)
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\nminikubeCA\n-----END CERTIFICATE-----\n")
    other = tmp_path / "other.crt"
    other.write_text("-----BEGIN CERTIFICATE-----\nsomeone else\n-----END CERTIFICATE-----\n")
    data = base64.b64encode((tmp_path / "ca.crt").read_bytes()).decode()
    assert trusts_profile_ca({"certificate-authority": str(tmp_path / "ca.crt")}, cfg)
    assert trusts_profile_ca({"certificate-authority-data": data}, cfg)
    assert not trusts_profile_ca({"certificate-authority": str(other)}, cfg)
    assert not trusts_profile_ca({"certificate-authority": str(tmp_path / "gone.crt")}, cfg)
    assert not trusts_profile_ca({"insecure-skip-tls-verify": True, "certificate-authority-data": data}, cfg)
    assert not trusts_profile_ca({}, cfg)
