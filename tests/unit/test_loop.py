"""The loop's decisions with the outside world swapped out: what runs, what is refused, what is skipped."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from devloop.adapters.host import HostResources
from devloop.base.errors import ClusterError, CommandFailed, ConfigError, UnsafeContext
from devloop.loop import steps as loop
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


def test_context_pointing_elsewhere_is_refused_before_any_kube_client_exists(tmp_path, workspace):
    session = make_session(tmp_path, workspace, server="https://10.0.0.5:6443")
    with pytest.raises(UnsafeContext) as err:
        session.kube()
    assert "https://10.0.0.5:6443" in err.value.message
    assert "https://127.0.0.1:8443" in err.value.message
    assert session.made_kube == []


def test_context_on_minikubes_server_is_accepted(tmp_path, workspace):
    session = make_session(tmp_path, workspace, kube=object())
    assert session.kube() is not None
    assert session.made_kube[0]["context"] == "devloop-kubeless"


def test_forwarded_port_is_accepted_only_for_a_cluster_minikube_marked(tmp_path, workspace):
    # Docker Desktop: the node is 192.168.49.2:8443 but the kubeconfig says 127.0.0.1:<forwarded>.
    node = FakeMinikube(endpoint=("192.168.49.2", 8443))
    session = make_session(
        tmp_path, workspace, minikube=node, server="https://127.0.0.1:50123", minikube_marked=True, kube=object()
    )
    assert session.kube() is not None
    unmarked = make_session(
        tmp_path,
        workspace,
        minikube=FakeMinikube(endpoint=("192.168.49.2", 8443)),
        server="https://127.0.0.1:50123",
        kube=object(),
    )
    with pytest.raises(UnsafeContext):
        unmarked.kube()
    # When the node itself is on loopback (the test cluster), the port must match exactly.
    loopback = make_session(tmp_path, workspace, server="https://127.0.0.1:1", minikube_marked=True, kube=object())
    with pytest.raises(UnsafeContext):
        loopback.kube()


def test_running_cluster_is_not_started_again(tmp_path, workspace):
    mk = FakeMinikube(state="Running")
    session = make_session(tmp_path, workspace, minikube=mk)
    assert loop.ensure_cluster(session) is False
    assert [c[0] for c in mk.calls] == ["status"]


def test_stopped_cluster_is_started_with_profile_settings(tmp_path, workspace):
    mk = FakeMinikube(state="Stopped")
    session = make_session(tmp_path, workspace, minikube=mk)
    assert loop.ensure_cluster(session) is True
    start = [c for c in mk.calls if c[0] == "start"][0][1]
    assert start["kubernetes_version"] == "v1.21.14"
    assert start["driver"] == "docker"
    assert start["force"] is False  # minikube v1.36 still accepts v1.21


def test_new_minikube_gets_force_only_because_the_profile_allows_it(tmp_path, workspace):
    mk = FakeMinikube(state="Missing", version="v1.38.1")
    session = make_session(tmp_path, workspace, minikube=mk)
    loop.ensure_cluster(session)
    assert [c for c in mk.calls if c[0] == "start"][0][1]["force"] is True

    text = (Path(session.profile.source).read_text()).replace(
        "allow_unsupported_kubernetes: true", "allow_unsupported_kubernetes: false"
    )
    strict = tmp_path / "strict.yaml"
    strict.write_text(text)
    mk2 = FakeMinikube(state="Missing", version="v1.38.1")
    session2 = make_session(tmp_path, workspace, minikube=mk2, profile=load_profile(str(strict), cwd=tmp_path))
    with pytest.raises(ConfigError) as err:
        loop.ensure_cluster(session2)
    assert "cluster.allow_unsupported_kubernetes" in str(err.value)
    assert not [c for c in mk2.calls if c[0] == "start"]


def test_fresh_deletes_before_starting(tmp_path, workspace):
    mk = FakeMinikube(state="Running")
    session = make_session(tmp_path, workspace, minikube=mk)
    loop.ensure_cluster(session, fresh=True)
    names = [c[0] for c in mk.calls]
    assert names.index("delete") < names.index("start")


def test_build_is_refused_when_docker_env_leads_to_another_daemon(tmp_path, workspace):
    session = make_session(tmp_path, workspace, docker=FakeDocker(name="laptop"))
    with pytest.raises(ClusterError) as err:
        loop.build_components(session)
    assert "laptop" in str(err.value)


def test_up_to_date_images_are_not_built(tmp_path, workspace):
    session = make_session(tmp_path, workspace)
    tags = loop.component_tags(session)
    session._docker = FakeDocker(images=tags.values())
    outcomes = loop.build_components(session)
    assert [o.built for o in outcomes] == [False] * len(tags)


def test_failed_build_shows_its_output_tail_and_exit_code(tmp_path, workspace):
    makefile = workspace / "kubeless" / "Makefile"
    makefile.write_text(
        makefile.read_text().replace(
            "function-controller:\n", "function-controller:\n\t@echo compiler says: undefined: frobnicate; exit 3\n", 1
        )
    )
    session = make_session(tmp_path, workspace)
    with pytest.raises(CommandFailed) as err:
        loop.build_components(session, ["function-controller"])
    text = str(err.value)
    assert "build of function-controller failed" in text
    assert "exited with code 2" in text  # make reports the recipe's failure as 2
    assert "undefined: frobnicate" in text


def test_dry_run_builds_and_starts_nothing(tmp_path, workspace, capsys):
    mk = FakeMinikube(state="Missing")
    session = make_session(tmp_path, workspace, minikube=mk, dry_run=True)
    loop.ensure_cluster(session)
    outcomes = loop.build_components(session)
    assert not [c for c in mk.calls if c[0] in ("start", "delete")]
    out = capsys.readouterr().out
    assert "would run: minikube start -p devloop-kubeless" in out
    assert "make function-controller CONTROLLER_IMAGE=kubeless-function-controller:dev-" in out
    assert all(o.built for o in outcomes)
    assert not (workspace / "kubeless" / "bundles").exists()


def test_unknown_component_names_the_known_ones(tmp_path, workspace):
    session = make_session(tmp_path, workspace)
    with pytest.raises(ConfigError) as err:
        loop.build_components(session, ["function-controler"])
    assert "function-controler" in err.value.message
    assert "function-controller" in (err.value.hint or "")


def test_dry_run_plans_the_whole_cycle_without_a_kube_client_or_a_build(tmp_path, workspace, capsys):
    # The context points elsewhere: a real run would refuse it; a plan makes no API call at all.
    mk = FakeMinikube(state="Missing")
    session = make_session(tmp_path, workspace, minikube=mk, dry_run=True, server="https://10.0.0.1:6443")
    loop.prepare_cluster(session)
    result = loop.run_cycle(session, strategy="recreate")
    assert session.made_kube == []  # type: ignore[attr-defined]
    assert not [c for c in mk.calls if c[0] in ("start", "delete")]
    assert not (workspace / "kubeless" / "bundles").exists()
    assert result.changed_objects == [] and result.cleaned == 0
    plan = [e["message"] for e in map(json.loads, capsys.readouterr().out.splitlines()) if e["event"] == "info"]
    assert plan[0].startswith("would run: minikube start -p devloop-kubeless --driver=docker")
    assert "would run: minikube addons enable ingress -p devloop-kubeless" in plan
    assert "would delete Deployment/kubeless/kubeless-controller-manager" in plan
    assert "would create Deployment/kubeless/kubeless-controller-manager" in plan
    assert plan[-1] == "would wait for the rollout of kubeless/kubeless-controller-manager"
