"""Issue 18's fragile assumptions about the real minikube (F1-F11 of shared/research/minikube-audit-2026-12-07.md),
each against minikube's output or files as the real binary leaves them."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from devloop.adapters import builder as builder_mod
from devloop.adapters.minikube import cli as mk
from devloop.adapters.minikube import image_cache
from devloop.adapters.minikube.home import Node
from devloop.adapters.proc import Completed
from devloop.base.errors import ClusterError, UnsafeContext

P = "devloop-kubeless"


class FakeRun:
    """minikube's runs: each call pops (exit code, stdout, stderr); `effect` runs first (a file minikube writes)."""

    def __init__(self, *results: tuple[int, str, str], effect=None):
        self.results = list(results)
        self.calls: list[dict] = []
        self.effect = effect

    def __call__(self, argv, **kwargs):
        self.calls.append({"argv": list(argv), **kwargs})
        if self.effect is not None:
            self.effect(list(argv))
        code, out, err = self.results.pop(0)
        return Completed(list(argv), code, out, err, (out + err).strip())


# -- F1: image load --daemon, and the cache tarballs it leaves -------------------------------------------------


def test_f1_image_load_takes_the_image_from_the_daemon_only(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIKUBE_HOME", str(tmp_path))
    run = FakeRun((0, "", ""))
    mk.Minikube(P, run=run).image_load("devloop/fn:abc", env={"DOCKER_HOST": "unix:///x.sock"}, timeout=60)
    argv = run.calls[0]["argv"]
    # without --daemon (or --remote) minikube turns on both and may pull a registry's image instead
    assert argv == ["minikube", "image", "load", "-p", P, "--daemon", "devloop/fn:abc"]
    assert run.calls[0]["env"]["DOCKER_HOST"] == "unix:///x.sock"


def test_f1_image_load_removes_only_the_tarball_it_created(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIKUBE_HOME", str(tmp_path))
    images = tmp_path / ".minikube" / "cache" / "images" / "amd64"
    seeded = images / "registry.k8s.io" / "pause_3.9"  # a start's cache: not devloop's
    earlier = images / "docker.io" / "me" / "tool_1"  # the user's own earlier load of another image
    for path in (seeded, earlier):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"tar")
    made = images / "localhost_5000" / "devloop" / "fn_abc"  # image.SaveToDir: every ':' made '_'

    def minikube_caches(_argv):
        made.parent.mkdir(parents=True)
        made.write_bytes(b"tar")

    monkeypatch.setattr(image_cache.platform, "machine", lambda: "x86_64")
    run = FakeRun((0, "", ""), effect=minikube_caches)
    mk.Minikube(P, run=run).image_load("localhost:5000/devloop/fn:abc", timeout=60)
    assert not made.exists() and not (images / "localhost_5000").exists()
    assert seeded.read_bytes() == b"tar" and earlier.read_bytes() == b"tar"
    assert images.is_dir()


def test_f1_a_tarball_that_was_there_before_the_load_stays(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIKUBE_HOME", str(tmp_path))
    there = tmp_path / ".minikube" / "cache" / "images" / "arm64" / "devloop" / "fn_abc"
    there.parent.mkdir(parents=True)
    there.write_bytes(b"the user's")
    run = FakeRun((0, "", ""))
    mk.Minikube(P, run=run).image_load("devloop/fn:abc", timeout=60)
    assert there.read_bytes() == b"the user's"


def test_f1_a_failed_load_leaves_no_tarball_either(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIKUBE_HOME", str(tmp_path))
    monkeypatch.setattr(image_cache.platform, "machine", lambda: "aarch64")
    made = tmp_path / ".minikube" / "cache" / "images" / "arm64" / "devloop" / "fn_abc"

    def minikube_caches(_argv):
        made.parent.mkdir(parents=True)
        made.write_bytes(b"half")

    run = FakeRun((80, "", "X Exiting due to GUEST_IMAGE_LOAD: Failed to load image\n"), effect=minikube_caches)
    with pytest.raises(mk.MinikubeError):
        mk.Minikube(P, run=run).image_load("devloop/fn:abc", timeout=60)
    assert not made.exists() and not made.parent.exists()


# -- F2: the proof after a load is per node -------------------------------------------------------------------


def test_f2_node_images_asks_one_node_with_minikubes_own_list_command():
    run = FakeRun((0, "devloop/fn:abc\nregistry.k8s.io/pause:3.9\n<none>:<none>\n", ""))
    assert mk.Minikube(P, run=run).node_images("m02", "docker") == ["devloop/fn:abc", "registry.k8s.io/pause:3.9"]
    assert run.calls[0]["argv"] == [
        "minikube",
        "ssh",
        "-p",
        P,
        "-n",
        "m02",
        "--",
        "docker images --no-trunc --format '{{.Repository}}:{{.Tag}}'",
    ]


def test_f2_node_images_on_containerd_reads_crictl_json_and_primary_has_no_node_flag():
    listing = {"images": [{"id": "sha256:1", "repoTags": ["docker.io/devloop/fn:abc"], "repoDigests": []}]}
    run = FakeRun((0, json.dumps(listing), ""))
    assert mk.Minikube(P, run=run).node_images("", "containerd") == ["docker.io/devloop/fn:abc"]
    assert run.calls[0]["argv"] == ["minikube", "ssh", "-p", P, "--", "sudo crictl images --output json"]


class TwoNodes:
    """`image ls` merges the nodes: the merged list has the image although node m02 lacks it."""

    def __init__(self, m02_has_it: bool):
        self.m02_has_it = m02_has_it
        self.loaded: list[str] = []

    def profile_config(self):
        nodes = (Node("", "192.168.49.2", 8443, True, True), Node("m02", "192.168.49.3", 8443, False, True))
        return SimpleNamespace(nodes=nodes, container_runtime="containerd")

    def images(self):
        return ["docker.io/devloop/fn:abc"] if self.loaded else []

    def node_images(self, node, runtime):
        assert runtime == "containerd"
        has = self.loaded and (node == "" or self.m02_has_it)
        return ["docker.io/devloop/fn:abc"] if has else []

    def image_load(self, tag, **_):
        self.loaded.append(tag)


def _load_builder(minikube, monkeypatch):
    monkeypatch.setattr(builder_mod, "run_build", lambda *a, **k: None)
    engine = SimpleNamespace(image_exists=lambda tag: True)
    return builder_mod.LoadBuilder(
        context=P,
        minikube=minikube,
        engine_env=lambda: {"DOCKER_HOST": "unix:///nonexistent/docker.sock"},
        make_docker=lambda env: engine,
        reporter=None,
        timeout=60,
    )


def test_f2_multi_node_load_fails_when_one_node_lacks_the_image(monkeypatch, tmp_path):
    minikube = TwoNodes(m02_has_it=False)
    b = _load_builder(minikube, monkeypatch)
    with pytest.raises(ClusterError, match="'m02'"):
        b.build(SimpleNamespace(name="fn"), "devloop/fn:abc", cwd=tmp_path)
    assert not b.image_exists("devloop/fn:abc")


def test_f2_multi_node_load_passes_when_every_node_has_it(monkeypatch, tmp_path):
    minikube = TwoNodes(m02_has_it=True)
    b = _load_builder(minikube, monkeypatch)
    b.build(SimpleNamespace(name="fn"), "devloop/fn:abc", cwd=tmp_path)
    assert b.image_exists("devloop/fn:abc") and minikube.loaded == ["devloop/fn:abc"]


# -- F3: under --force devloop checks the engine's disk itself --------------------------------------------------


def _kubeless_cluster(**changes):
    from devloop.profile.lookup import load_profile

    return load_profile("kubeless", cwd=Path("/")).cluster.model_copy(update=changes)


LAPTOP = SimpleNamespace(cpus=8, memory_mb=16384, source="a laptop")
GIB = 1024**3


def _space(free_gib: float, total_gib: float = 100):
    return builder_mod.DiskSpace("/var/lib/docker", int(free_gib * GIB), int(total_gib * GIB), "the Docker engine")


def test_f3_forced_start_on_a_full_data_root_is_refused():
    from devloop.loop.start_plan import plan_start

    cluster = _kubeless_cluster(kubernetes_version="v1.21.14", allow_unsupported_kubernetes=True)
    with pytest.raises(ClusterError) as err:
        plan_start(cluster, mk.MinikubeVersion("v1.37.0"), lambda: LAPTOP, read_disk=lambda: _space(1))
    assert "/var/lib/docker" in err.value.message and "99% full" in err.value.message
    assert "--force skips" in err.value.message and "docker system prune" in err.value.hint


def test_f3_forced_start_on_a_nearly_full_root_warns_and_a_roomy_one_says_nothing():
    from devloop.loop.start_plan import plan_start

    cluster = _kubeless_cluster(kubernetes_version="v1.21.14", allow_unsupported_kubernetes=True)
    version = mk.MinikubeVersion("v1.37.0")
    plan = plan_start(cluster, version, lambda: LAPTOP, read_disk=lambda: _space(10))
    assert plan.force and any("90% full" in w for w in plan.warnings)
    # minikube's rule: 20 GiB left is enough however full the disk is
    plan = plan_start(cluster, version, lambda: LAPTOP, read_disk=lambda: _space(25, 1000))
    assert not any("full" in w for w in plan.warnings)


def test_f3_the_disk_is_not_read_unless_forced():
    from devloop.loop.start_plan import plan_start

    def never():
        raise AssertionError("disk read although minikube checks it itself")

    cluster = _kubeless_cluster(kubernetes_version="v1.30.0")
    assert not plan_start(cluster, mk.MinikubeVersion("v1.37.0"), lambda: LAPTOP, read_disk=never).force


def test_f3_engine_disk_space_reads_the_data_root_docker_info_names(tmp_path, monkeypatch):
    sock = tmp_path / "docker.sock"
    sock.touch()

    class Engine:
        def __init__(self, env, timeout):
            assert env["DOCKER_HOST"] == f"unix://{sock}"

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def info(self):
            return {"DockerRootDir": str(tmp_path)}

    monkeypatch.setattr("devloop.adapters.docker_engine.DockerEngine", Engine)
    space = builder_mod.engine_disk_space({"DOCKER_HOST": f"unix://{sock}"})
    assert space is not None and space.path == str(tmp_path) and 0 < space.free_bytes <= space.total_bytes
    # a remote engine's root is not on this machine: no answer rather than a wrong one
    assert builder_mod.engine_disk_space({"DOCKER_HOST": "tcp://192.168.49.2:2376"}) is None


def test_f3_a_load_build_on_a_full_engine_is_refused_before_it_runs(monkeypatch, tmp_path):
    ran = []
    b = _load_builder(TwoNodes(m02_has_it=True), monkeypatch)
    monkeypatch.setattr(builder_mod, "run_build", lambda *a, **k: ran.append(a))
    monkeypatch.setattr(builder_mod, "engine_disk_space", lambda env: _space(0.2))
    with pytest.raises(ClusterError, match="out of disk space"):
        b.build(SimpleNamespace(name="fn"), "devloop/fn:abc", cwd=tmp_path)
    assert ran == []


# -- F4: the podman driver runs the same kicbase, so the same Docker API floor -----------------------------------


def test_f4_podman_driver_gets_docker_min_api_like_the_docker_driver():
    from devloop.loop.start_plan import DOCKER_MIN_API, plan_start

    cluster = _kubeless_cluster(driver="podman", kubernetes_version="v1.21.14", allow_unsupported_kubernetes=True)
    plan = plan_start(cluster, mk.MinikubeVersion("v1.38.1"), lambda: LAPTOP)
    assert plan.docker_env == [DOCKER_MIN_API]
    vm = _kubeless_cluster(driver="kvm2", kubernetes_version="v1.21.14", allow_unsupported_kubernetes=True)
    assert plan_start(vm, mk.MinikubeVersion("v1.38.1"), lambda: LAPTOP).docker_env == []


# -- F5: `status -o json` printing null is no proof the host is gone -------------------------------------------


def test_f5_null_status_is_unknown_not_missing():
    run = FakeRun((7, "null", ""))
    status = mk.Minikube(P, run=run).status()
    assert status.state == "Unknown" and not status.missing and not status.running


# -- F9: an addon minikube enables under another name -----------------------------------------------------------


def test_f9_a_replaced_addon_counts_as_enabled_when_its_replacement_is(tmp_path, monkeypatch):
    profile = tmp_path / ".minikube" / "profiles" / P
    profile.mkdir(parents=True)
    # `minikube addons enable heapster` saved metrics-server (addons.Deprecations), never heapster
    config = {"Name": P, "Driver": "docker", "KubernetesConfig": {}, "Nodes": [], "Addons": {"metrics-server": True}}
    (profile / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("MINIKUBE_HOME", str(tmp_path))
    addons = mk.Minikube(P, run=FakeRun()).addons()
    assert addons["heapster"] is True and addons["metrics-server"] is True
    assert "nvidia-gpu-device-plugin" not in addons


def test_f9_the_listed_form_too():
    listed = json.dumps({"metrics-server": {"Profile": P, "Status": "disabled"}, "ingress": {"Status": "enabled"}})
    run = FakeRun((0, listed, ""))
    minikube = mk.Minikube(P, run=run)
    minikube.profile_config = lambda: None
    addons = minikube.addons()
    assert addons == {"heapster": False, "ingress": True, "metrics-server": False}


# -- F11: docker-env exit 85 is also a control-plane host that is gone -----------------------------------------


def test_f11_docker_env_85_names_the_gone_host_too():
    err = "* The control-plane node devloop-kubeless host does not exist\n"
    run = FakeRun((85, "false exit code 85\n", err))
    with pytest.raises(mk.MinikubeError) as info:
        mk.Minikube(P, run=run).docker_env()
    hint = info.value.hint or ""
    assert "does not exist" in hint and "control-plane host" in hint and "gone" in hint and "devloop up" in hint


# -- F10: MINIKUBE_HOME with a `~` minikube does not expand ----------------------------------------------------


def test_f10_a_tilde_home_is_read_where_minikube_keeps_it(tmp_path, monkeypatch):
    from devloop.adapters.minikube.home import home_notice, minikube_home, read_profile_config
    from devloop.base import lock

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MINIKUBE_HOME", "~/mk")
    # localpath.MiniPath: filepath.Join("~/mk", ".minikube"), relative to minikube's working directory
    assert minikube_home() == Path("~/mk/.minikube")
    assert lock.minikube_home() == tmp_path / "~" / "mk" / ".minikube"
    where = tmp_path / "~" / "mk" / ".minikube" / "profiles" / P
    where.mkdir(parents=True)
    (where / "config.json").write_text(json.dumps({"Name": P, "Driver": "docker", "Nodes": []}))
    config = read_profile_config(P)
    assert config is not None and config.driver == "docker"
    notice = home_notice() or ""
    assert "does not expand" in notice and str(tmp_path / "~" / "mk" / ".minikube") in notice
    assert f"MINIKUBE_HOME={tmp_path / 'home' / 'mk'}" in notice


def test_f10_the_start_plan_carries_the_notice(monkeypatch):
    from devloop.loop.start_plan import plan_start

    monkeypatch.setenv("MINIKUBE_HOME", "~/mk")
    plan = plan_start(_kubeless_cluster(), mk.MinikubeVersion("v1.36.0"), None)
    assert any("does not expand" in w for w in plan.warnings)
    monkeypatch.setenv("MINIKUBE_HOME", "/abs/mk")
    assert not any(
        "does not expand" in w for w in plan_start(_kubeless_cluster(), mk.MinikubeVersion("v1.36.0"), None).warnings
    )


# -- F6 / F7: the context guard on a forwarded (loopback) port --------------------------------------------------

MINIKUBE_EXT = [{"name": "cluster_info", "extension": {"provider": "minikube.sigs.k8s.io"}}]


def _kubeconfig_file(path: Path, *, clusters: dict[str, str], contexts: dict[str, str]) -> Path:
    import yaml

    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": n, "cluster": {"server": s, "extensions": MINIKUBE_EXT, "certificate-authority": "ca.crt"}}
                    for n, s in clusters.items()
                ],
                "users": [{"name": n, "user": {}} for n in contexts],
                "contexts": [{"name": n, "context": {"cluster": c, "user": n}} for n, c in contexts.items()],
            }
        )
    )
    return path


class GuardMinikube:
    def __init__(self, endpoint=("192.168.49.2", 8443), kubeconfig="Configured", config=None):
        self.endpoint, self.kubeconfig, self.config, self.status_calls = endpoint, kubeconfig, config, 0

    def api_endpoint(self):
        return self.endpoint

    def profile_config(self):
        return self.config

    def status(self):
        self.status_calls += 1
        return mk.ClusterStatus(
            "Running", name=P, host="Running", kubelet="Running", apiserver="Running", kubeconfig=self.kubeconfig
        )


def _session(tmp_path, kubeconfig: str, mini, *, cached: bool = False):
    from devloop.output.report import Reporter
    from devloop.profile.lookup import load_profile
    from devloop.session import Session

    session = Session(
        profile=load_profile("kubeless", cwd=Path("/")),
        workspace=tmp_path,
        reporter=Reporter(json_mode=True),
        kubeconfig=kubeconfig,
        cache_dir=tmp_path / "cache",
        **({} if cached else {"make_minikube": lambda *_: mini}),
    )
    if cached:
        session._minikube = mini  # the real adapter's place: the remembered confirmation is used
    return session


def test_f7_minikube_checks_the_first_files_entry_named_after_the_profile(tmp_path):
    from devloop.adapters.kube import Kubeconfig

    first = _kubeconfig_file(tmp_path / "first", clusters={P: "https://127.0.0.1:50123"}, contexts={})
    # a later file's context P leads to another cluster entry: minikube's Configured says nothing about it
    later = _kubeconfig_file(tmp_path / "later", clusters={"other": "https://127.0.0.1:50999"}, contexts={P: "other"})
    kc = Kubeconfig.load(f"{first}:{later}")
    assert "'other'" in (kc.unlike_minikubes_entry(P) or "")
    only_later = _kubeconfig_file(tmp_path / "l2", clusters={P: "https://127.0.0.1:50999"}, contexts={P: P})
    empty = _kubeconfig_file(tmp_path / "empty", clusters={}, contexts={})
    assert "first kubeconfig file" in (Kubeconfig.load(f"{empty}:{only_later}").unlike_minikubes_entry(P) or "")
    assert Kubeconfig.load(f"{first}:{only_later}").unlike_minikubes_entry(P) is None  # the first file's P wins


def test_f7_the_guard_refuses_a_context_minikubes_configured_does_not_cover(tmp_path):
    first = _kubeconfig_file(tmp_path / "first", clusters={P: "https://127.0.0.1:50123"}, contexts={})
    later = _kubeconfig_file(tmp_path / "later", clusters={"other": "https://127.0.0.1:50999"}, contexts={P: "other"})
    mini = GuardMinikube(kubeconfig="Configured")  # minikube checked the first file's P: it is right
    with pytest.raises(UnsafeContext) as err:
        _session(tmp_path, f"{first}:{later}", mini).guard_context()
    assert "vouches only for that entry" in err.value.message and "update-context" in err.value.hint
    ok = _kubeconfig_file(tmp_path / "ok", clusters={P: "https://127.0.0.1:50123"}, contexts={P: P})
    _session(tmp_path, str(ok), GuardMinikube()).guard_context()


def test_f6_a_remembered_confirmation_is_refused_once_the_port_serves_another_profile(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIKUBE_HOME", str(tmp_path / "mkhome"))
    kc = _kubeconfig_file(tmp_path / "kc", clusters={P: "https://127.0.0.1:50123"}, contexts={P: P})
    config = SimpleNamespace(key="k1", profile=P)
    monkeypatch.setattr(
        "devloop.adapters.minikube.engine_endpoint.confirmed_server", lambda *a: "https://127.0.0.1:50123"
    )
    monkeypatch.setattr("devloop.adapters.minikube.home.trusts_profile_ca", lambda cluster, cfg: True)
    answers = {"profile": P}

    class NodeAsker:
        closed = False

        def __init__(self, **_):
            pass

        def minikube_primary_node(self, *, timeout):
            return {"profile": answers["profile"], "ready": True}

        def close(self):
            NodeAsker.closed = True

    monkeypatch.setattr("devloop.adapters.kube.Kube", NodeAsker)
    mini = GuardMinikube(config=config)
    _session(tmp_path, str(kc), mini, cached=True).guard_context()  # the profile's own cluster answers
    assert mini.status_calls == 0
    # `minikube stop --keep-context-active`, then Docker gives port 50123 to another profile's API server
    answers["profile"] = "someone-else"
    with pytest.raises(UnsafeContext) as err:
        _session(tmp_path, str(kc), mini, cached=True).guard_context()
    assert "'someone-else'" in err.value.message and "stale" in err.value.message and NodeAsker.closed
