"""The oldest minikube devloop runs on (issue 18 W5), the versions it reads, and the hint for a failed
`profile list -l` (W6). minikube is faked at its process boundary: a recorded `minikube version` output."""

from __future__ import annotations

import json

import pytest

from devloop.adapters.minikube import cli as mk
from devloop.adapters.minikube import versions
from devloop.adapters.proc import Completed
from devloop.base.errors import ClusterError

P = "devloop-kubeless"


class Run:
    def __init__(self, *results):
        self.results = list(results)
        self.calls = []

    def __call__(self, argv, **kwargs):
        self.calls.append({"argv": list(argv), **kwargs})
        code, out, err = self.results.pop(0)
        return Completed(list(argv), code, out, err, (out + err).strip())


def _version_json(version: str) -> str:
    return json.dumps({"commit": "f8f52f5de11fc6ad8244afac475e1d0f96841df1", "minikubeVersion": version}) + "\n"


def test_minikube_v1_23_is_refused_naming_the_minimum_what_was_found_and_the_fix():
    run = Run((0, _version_json("v1.23.2"), ""))
    with pytest.raises(ClusterError) as err:
        mk.Minikube(P, run=run).version()
    assert run.calls[0]["argv"] == ["minikube", "version", "-o", "json"]
    message = err.value.message
    assert "v1.28.0" in message and "v1.23.2" in message and "too old" in message
    # Everything it lacks, each with the release that brought it.
    assert "docker-env -o json` (the build engine's address) needs v1.24.0" in message
    assert "image ls --format` (the images the cluster holds) needs v1.25.0" in message
    assert "minikube.k8s.io/primary=true" in message
    assert "upgrade minikube to v1.28.0 or newer" in err.value.hint


def test_the_text_form_of_minikube_version_is_judged_too():
    run = Run((0, "minikube version: v1.27.1\ncommit: fe869b5d4da11ba318eb84a3ac00f336411de7ba\n", ""))
    with pytest.raises(ClusterError) as err:
        mk.Minikube(P, run=run).version()
    assert "v1.27.1 is too old" in err.value.message
    assert "primary=true" in err.value.message and "docker-env" not in err.value.message


@pytest.mark.parametrize("version", ["v1.28.0", "v1.36.0", "v1.38.1", "v1.39.0", "v0.0.0-unset"])
def test_the_minimum_and_newer_and_a_development_build_are_accepted(version):
    got = mk.Minikube(P, run=Run((0, _version_json(version), ""))).version()
    assert got.version == version


def test_the_minimum_is_the_newest_feature_in_the_table():
    assert versions.MINIMUM_MINIKUBE == "v1.28.0" == mk.MINIMUM_MINIKUBE
    assert [since for _, since in versions.MINIKUBE_FEATURES] == ["v1.24.0", "v1.25.0", "v1.28.0"]


def test_a_pre_release_comes_before_its_release():
    assert versions.missing_features(mk.MinikubeVersion("v1.28.0-beta.0"))
    assert not versions.missing_features(mk.MinikubeVersion("v1.28.1-beta.0"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("v1.21.14", (1, 21, 14)),
        ("1.41.0", (1, 41, 0)),
        (" v1.38.1\n", (1, 38, 1)),
        ("v1.37.0-beta.0", (1, 37, 0)),
        ("v1.38.1-12-gabcdef", (1, 38, 1)),
        ("v0.0.0-unset", (0, 0, 0)),
        ("v1.2.3.4", (1, 2, 3)),
        ("1.21", None),
        ("latest", None),
        ("", None),
    ],
)
def test_parse_semver_keeps_major_minor_patch_whatever_follows(text, expected):
    assert versions.parse_semver(text) == expected


def test_a_failed_light_profile_list_points_at_the_profile_configs_not_the_kubeconfig():
    run = Run((80, '{"error":{}}', ""))
    with pytest.raises(ClusterError) as err:
        mk.Minikube(P, run=run).profiles()
    hint = err.value.hint
    assert "profiles/*/config.json" in hint and "MINIKUBE_HOME" in hint
    assert "kubeconfig" not in hint  # `profile list -l` never reads it (profile.go:237-254)
