"""cluster.feature_gates: validated in the profile, passed as one sorted --feature-gates, and a running
cluster started with other gates is started again (minikube reconfigures it) instead of used as it is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devloop.adapters.minikube.cli import Minikube, feature_gates_arg
from devloop.adapters.minikube.home import read_profile_config
from devloop.base.errors import ConfigError
from devloop.loop import steps as loop
from devloop.loop.start_plan import feature_gate_drift, parse_feature_gates
from devloop.profile.lookup import load_profile_file
from support.fakes import FakeMinikube
from support.loop_session import make_session, workspace  # noqa: F401 - fixture

BASE = """\
name: gates
cluster:
  profile: gates-test
  kubernetes_version: v1.21.14
{gates}
namespace: demo
manifests: [m.yaml]
"""


def _load(tmp_path: Path, gates: str):
    path = tmp_path / "gates.yaml"
    path.write_text(BASE.format(gates=gates))
    return path, load_profile_file(path)


def test_gates_are_read_as_a_mapping_of_booleans(tmp_path):
    _, profile = _load(tmp_path, "  feature_gates: {ServerSideApply: false, EphemeralContainers: true}")
    assert profile.cluster.feature_gates == {"ServerSideApply": False, "EphemeralContainers": True}
    _, none = _load(tmp_path, "")
    assert none.cluster.feature_gates == {}


@pytest.mark.parametrize(
    "gates, line, expected",
    [
        (
            '  feature_gates:\n    ServerSideApply: "false"',
            6,
            "cluster.feature_gates.ServerSideApply: expected true or false, found string 'false'",
        ),
        (
            "  feature_gates:\n    ServerSideApply: 0",
            6,
            "cluster.feature_gates.ServerSideApply: expected true or false, found number 0",
        ),
        (
            "  feature_gates:\n    server-side-apply: false",
            6,
            "cluster.feature_gates: expected feature gate names in CamelCase like 'ServerSideApply', "
            "found 'server-side-apply'",
        ),
        (
            "  feature_gates: ServerSideApply=false",
            5,
            "cluster.feature_gates: expected a mapping, found string 'ServerSideApply=false'",
        ),
    ],
)
def test_bad_gates_name_file_line_key_expected_and_found(tmp_path, gates, line, expected):
    path = tmp_path / "gates.yaml"
    path.write_text(BASE.format(gates=gates))
    with pytest.raises(ConfigError) as err:
        load_profile_file(path)
    assert f"{path}:{line}: {expected}" in str(err.value)


def test_start_args_pass_one_sorted_flag():
    args = Minikube("p1").start_args(
        driver="docker",
        kubernetes_version="v1.21.14",
        cpus=None,
        memory=None,
        feature_gates={"ServerSideApply": False, "EphemeralContainers": True},
    )
    assert [a for a in args if "feature-gates" in a] == [
        "--feature-gates=EphemeralContainers=true,ServerSideApply=false"
    ]
    none = Minikube("p1").start_args(driver="docker", kubernetes_version=None, cpus=None, memory=None)
    assert not [a for a in none if "feature-gates" in a]
    # an empty map clears what minikube saved (the flag replaces FeatureGates whole)
    cleared = Minikube("p1").start_args(driver=None, kubernetes_version=None, cpus=None, memory=None, feature_gates={})
    assert "--feature-gates=" in cleared
    assert feature_gates_arg({"B": True, "A": False}) == "A=false,B=true"


def test_config_json_feature_gates_are_read(tmp_path):
    config = tmp_path / ".minikube" / "profiles" / "p1" / "config.json"
    config.parent.mkdir(parents=True)
    config.write_text(
        json.dumps({"Driver": "docker", "KubernetesConfig": {"FeatureGates": "ServerSideApply=false"}, "Nodes": []})
    )
    assert read_profile_config("p1", tmp_path / ".minikube").feature_gates == "ServerSideApply=false"


def test_drift():
    assert parse_feature_gates("A=false, B=True,") == {"A": "false", "B": "true"}
    assert feature_gate_drift({"ServerSideApply": False}, "ServerSideApply=false") is None
    assert feature_gate_drift({}, "") is None
    # minikube's own additions (rootless driver, btrfs) are not the profile's business
    assert feature_gate_drift({"ServerSideApply": False}, "ServerSideApply=false,KubeletInUserNamespace=true") is None
    assert feature_gate_drift({"ServerSideApply": False}, "") == (
        "the cluster runs with feature gates none, the profile asks for ServerSideApply=false"
    )
    assert "runs with feature gates ServerSideApply=true" in feature_gate_drift(
        {"ServerSideApply": False}, "ServerSideApply=true"
    )
    assert "asks for none" in feature_gate_drift({}, "ServerSideApply=false")


class _Config:
    endpoint = None  # the probe then asks `minikube status` (FakeMinikube's)

    def __init__(self, gates: str):
        self.feature_gates = gates


class GatedMinikube(FakeMinikube):
    def __init__(self, saved: str | None, **kwargs):
        super().__init__(**kwargs)
        self.saved = saved

    def profile_config(self):
        return None if self.saved is None else _Config(self.saved)


def _gated_session(tmp_path, workspace, saved, gates_line):  # noqa: F811
    path = tmp_path / "kubeless.yaml"
    text = (Path(__file__).resolve().parents[2] / "profiles" / "kubeless.yaml").read_text()
    lines = [ln for ln in text.splitlines() if "feature_gates" not in ln and "ServerSideApply:" not in ln]
    at = lines.index("  addons: [ingress]")
    path.write_text("\n".join(lines[: at + 1] + ([gates_line] if gates_line else []) + lines[at + 1 :]) + "\n")
    mk = GatedMinikube(saved, state="Running")
    return mk, make_session(tmp_path, workspace, minikube=mk, profile=load_profile_file(path))


def test_running_cluster_with_the_profiles_gates_is_left_alone(tmp_path, workspace):  # noqa: F811
    mk, session = _gated_session(
        tmp_path, workspace, "ServerSideApply=false", "  feature_gates: {ServerSideApply: false}"
    )
    assert loop.ensure_cluster(session) is False
    assert [c[0] for c in mk.calls] == ["status"]


def test_running_cluster_with_other_gates_is_started_with_the_profiles(tmp_path, workspace):  # noqa: F811
    mk, session = _gated_session(tmp_path, workspace, "", "  feature_gates: {ServerSideApply: false}")
    assert loop.ensure_cluster(session) is True
    start = [c for c in mk.calls if c[0] == "start"]
    assert len(start) == 1 and start[0][1]["feature_gates"] == {"ServerSideApply": False}


def test_gates_dropped_from_the_profile_are_cleared(tmp_path, workspace):  # noqa: F811
    mk, session = _gated_session(tmp_path, workspace, "ServerSideApply=false", None)
    assert loop.ensure_cluster(session) is True
    start = [c for c in mk.calls if c[0] == "start"][0][1]
    assert start["feature_gates"] == {}


def test_a_new_cluster_gets_the_gates_and_a_profile_without_gates_passes_none(tmp_path, workspace):  # noqa: F811
    mk, session = _gated_session(tmp_path, workspace, None, "  feature_gates: {ServerSideApply: false}")
    mk.state = "Missing"
    loop.ensure_cluster(session)
    assert [c for c in mk.calls if c[0] == "start"][0][1]["feature_gates"] == {"ServerSideApply": False}
    mk2, session2 = _gated_session(tmp_path, workspace, None, None)
    mk2.state = "Missing"
    loop.ensure_cluster(session2)
    assert [c for c in mk2.calls if c[0] == "start"][0][1]["feature_gates"] is None


# -- issue 18 W3: minikube's own gates survive every start devloop drives ---------------------------------
ROOTLESS = "KubeletInUserNamespace=true,ServerSideApply=false"  # what minikube saved on a rootless engine


def _start_gates(mk) -> dict | None:
    starts = [c[1] for c in mk.calls if c[0] == "start"]
    assert len(starts) == 1
    return starts[0]["feature_gates"]


def test_a_restart_keeps_the_gate_minikube_added_for_rootless(tmp_path, workspace):  # noqa: F811
    # a stopped cluster (a reboot): `--feature-gates` replaces the saved text, so minikube's gate must be in it
    mk, session = _gated_session(tmp_path, workspace, ROOTLESS, "  feature_gates: {ServerSideApply: false}")
    mk.state = "Stopped"
    assert loop.ensure_cluster(session) is True
    gates = _start_gates(mk)
    assert gates == {"KubeletInUserNamespace": True, "ServerSideApply": False}
    args = Minikube("p1").start_args(
        driver="docker", kubernetes_version=None, cpus=None, memory=None, feature_gates=gates
    )
    assert "--feature-gates=KubeletInUserNamespace=true,ServerSideApply=false" in args


def test_a_drift_restart_keeps_minikubes_gates_and_fixes_the_profiles(tmp_path, workspace):  # noqa: F811
    saved = "ServerSideApply=true,KubeletInUserNamespace=true,LocalStorageCapacityIsolation=false"
    mk, session = _gated_session(tmp_path, workspace, saved, "  feature_gates: {ServerSideApply: false}")
    assert loop.ensure_cluster(session) is True  # running, with ServerSideApply=true: drift
    assert _start_gates(mk) == {
        "KubeletInUserNamespace": True,
        "LocalStorageCapacityIsolation": False,
        "ServerSideApply": False,
    }


def test_gates_dropped_from_the_profile_are_cleared_but_minikubes_stay(tmp_path, workspace):  # noqa: F811
    mk, session = _gated_session(tmp_path, workspace, ROOTLESS, None)
    assert loop.ensure_cluster(session) is True
    assert _start_gates(mk) == {"KubeletInUserNamespace": True}


def test_minikubes_own_gates_alone_are_no_drift_and_no_flag(tmp_path, workspace):  # noqa: F811
    mk, session = _gated_session(tmp_path, workspace, "KubeletInUserNamespace=true", None)
    assert loop.ensure_cluster(session) is False  # running as the profile wants: left alone
    mk2, session2 = _gated_session(tmp_path, workspace, "KubeletInUserNamespace=true", None)
    mk2.state = "Stopped"
    loop.ensure_cluster(session2)
    assert _start_gates(mk2) is None  # no flag: minikube keeps what it saved


def test_the_profile_wins_on_a_gate_it_names_itself(tmp_path, workspace):  # noqa: F811
    mk, session = _gated_session(
        tmp_path,
        workspace,
        "LocalStorageCapacityIsolation=false",
        "  feature_gates: {LocalStorageCapacityIsolation: true}",
    )
    mk.state = "Stopped"
    loop.ensure_cluster(session)
    assert _start_gates(mk) == {"LocalStorageCapacityIsolation": True}
