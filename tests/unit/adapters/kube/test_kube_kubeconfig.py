"""devloop.adapters.kube.kubeconfig: read once, merged like kubectl, shared by the guard and the client."""

from __future__ import annotations

import pytest
import yaml

from devloop.adapters.kube import Kube, Kubeconfig, context_info, context_server
from devloop.base.errors import ConfigError

_USER = {"client-certificate": "certs/client.crt", "client-key": "/abs/client.key"}


def _write(path, name, server, user=_USER, **cluster):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        yaml.safe_dump(
            {
                "clusters": [{"name": name, "cluster": {"server": server, **cluster}}],
                "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": "kubeless"}}],
                "users": [{"name": name, "user": user}],
                "current-context": name,
            }
        )
    )
    return path


def test_loaded_once_then_answers_without_the_files(tmp_path):
    path = _write(tmp_path / "config", "p", "https://192.168.49.2:8443", user={"token": "t"})
    config = Kubeconfig.load(str(path))
    path.unlink()  # everything below must come from the object, not from another read
    assert Kubeconfig.load(config) is config
    assert context_server("p", config) == "https://192.168.49.2:8443"
    assert context_info("p", config)["namespace"] == "kubeless"
    with Kube(context="p", kubeconfig=config) as kube:  # the client takes the same object
        assert kube.server == "https://192.168.49.2:8443"
        assert kube.config is config
        assert kube.discovery.default_namespace == "kubeless"


def test_merge_first_file_wins_and_relative_files_follow_their_kubeconfig(tmp_path):
    first = _write(tmp_path / "a" / "config", "p", "https://a:8443", **{"certificate-authority": "ca.crt"})
    second = _write(tmp_path / "b" / "config", "p", "https://b:8443")
    config = Kubeconfig.load(f"{tmp_path / 'missing'}:{first}:{second}")
    assert config.server("p") == "https://a:8443"
    assert config.clusters["p"]["certificate-authority"] == str(tmp_path / "a" / "ca.crt")
    user = config.users["p"]
    assert user["client-certificate"] == str(tmp_path / "a" / "certs" / "client.crt")
    assert user["client-key"] == "/abs/client.key"


def test_exec_plugin_path_follows_its_kubeconfig_but_a_bare_name_uses_path(tmp_path):
    relative = _write(
        tmp_path / "a" / "config",
        "p",
        "https://a:8443",
        user={"exec": {"command": "./bin/auth", "apiVersion": "client.authentication.k8s.io/v1beta1"}},
    )
    bare = _write(tmp_path / "b" / "config", "q", "https://b:8443", user={"exec": {"command": "gke-auth"}})
    config = Kubeconfig.load(f"{relative}:{bare}")
    assert config.users["p"]["exec"] == {
        "command": str(tmp_path / "a" / "bin" / "auth"),
        "apiVersion": "client.authentication.k8s.io/v1beta1",
    }
    assert config.users["q"]["exec"] == {"command": "gke-auth"}


def test_client_dict_holds_only_the_named_context(tmp_path):
    path = _write(tmp_path / "one", "p", "https://a:8443")
    _write(tmp_path / "two", "q", "https://q:8443")
    config = Kubeconfig.load(f"{path}:{tmp_path / 'two'}")
    got = config.client_dict("p")
    assert got["current-context"] == "p"
    assert [c["name"] for c in got["contexts"]] == ["p"]
    assert got["clusters"] == [{"name": "p", "cluster": {"server": "https://a:8443"}}]
    assert [u["name"] for u in got["users"]] == ["p"]


def test_missing_context_and_unreadable_file_name_the_files(tmp_path):
    path = _write(tmp_path / "config", "p", "https://a:8443")
    with pytest.raises(ConfigError) as info:
        Kubeconfig.load(str(path)).server("devloop-kubeless")
    assert "devloop-kubeless" in info.value.message and str(path) in info.value.message
    bad = tmp_path / "bad"
    bad.write_text("clusters: [")
    with pytest.raises(ConfigError, match=f"cannot read kubeconfig {bad}"):
        Kubeconfig.load(str(bad))
    listed = tmp_path / "list"
    listed.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match=f"kubeconfig {listed} is not a mapping"):
        Kubeconfig.load(str(listed))


def test_context_without_a_server(tmp_path):
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump({"contexts": [{"name": "p", "context": {"cluster": "gone"}}]}))
    with pytest.raises(ConfigError, match="names cluster 'gone', which has no server"):
        context_server("p", str(path))


def test_a_session_reads_the_kubeconfig_once_for_guard_and_client(tmp_path):
    from types import SimpleNamespace

    from devloop.output.report import Reporter
    from devloop.profile.lookup import load_profile
    from devloop.session import Session

    profile = load_profile("kubeless", cwd=tmp_path)
    path = _write(tmp_path / "config", profile.cluster.profile, "https://192.168.49.2:8443", user={"token": "t"})
    minikube = SimpleNamespace(api_endpoint=lambda: ("192.168.49.2", 8443), profile_config=lambda: None)
    session = Session(
        profile=profile,
        workspace=tmp_path,
        reporter=Reporter(json_mode=True),
        kubeconfig=str(path),
        cache_dir=tmp_path / "cache",
        make_minikube=lambda name, binary: minikube,
    )
    session.guard_context()
    path.unlink()  # the client must not need the files again
    kube = session.kube()
    try:
        assert kube.config is session.loaded_kubeconfig()
        assert kube.server == "https://192.168.49.2:8443"
    finally:
        kube.close()
    session.forget_cluster_state()  # after a start minikube rewrites the file: read it anew
    with pytest.raises(ConfigError, match="is not in the kubeconfig"):
        session.loaded_kubeconfig().server(profile.cluster.profile)
