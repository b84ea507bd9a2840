"""The oldest Kubernetes each minikube starts without --force, per release (W5: constants.OldestKubernetesVersion
read at every tag): v1.16.0 for minikube v1.28-v1.32, v1.20.0 for v1.33-v1.36, v1.28.0 from v1.37. A single
v1.20.0 floor below v1.37 refused Kubernetes v1.16-v1.19 on minikube v1.28-v1.32, which starts them unforced."""

from __future__ import annotations

import pytest

from devloop.adapters.minikube.versions import MinikubeVersion, minikubes_accepting, needs_force, oldest_kubernetes
from devloop.base.errors import ConfigError


@pytest.mark.parametrize(
    ("minikube", "oldest"),
    [
        ("v1.28.0", "v1.16.0"),
        ("v1.30.1", "v1.16.0"),
        ("v1.32.0", "v1.16.0"),
        ("v1.33.0-beta.0", "v1.20.0"),
        ("v1.33.0", "v1.20.0"),
        ("v1.36.0", "v1.20.0"),
        ("v1.37.0", "v1.28.0"),
        ("v1.38.1", "v1.28.0"),
        ("v1.39.0", "v1.28.0"),
        ("v0.0.0-unset", None),
    ],
)
def test_the_floor_is_the_one_each_release_has(minikube, oldest):
    assert oldest_kubernetes(MinikubeVersion(minikube)) == oldest


@pytest.mark.parametrize("minikube", ["v1.28.0", "v1.30.0", "v1.32.0"])
def test_minikube_1_28_to_1_32_start_kubernetes_1_16_to_1_19_unforced(minikube):
    for kubernetes in ("v1.16.0", "v1.18.20", "v1.19.16"):
        assert needs_force(minikube, kubernetes, allow_force=False) is False


def test_below_the_floor_still_needs_force_and_the_hint_names_the_minikubes_that_accept_it():
    assert needs_force("v1.32.0", "v1.15.12", allow_force=True) is True
    with pytest.raises(ConfigError) as err:
        needs_force("v1.36.0", "v1.18.20", allow_force=False)
    assert "its oldest supported version is v1.20.0" in err.value.message
    assert "minikube that supports it: v1.28-v1.32" in err.value.hint
    with pytest.raises(ConfigError) as err:
        needs_force("v1.38.1", "v1.21.14", allow_force=False)
    assert "v1.28.0" in err.value.message and "v1.28-v1.36" in err.value.hint
    with pytest.raises(ConfigError) as err:
        needs_force("v1.30.0", "v1.15.0", allow_force=False)
    assert "supports it" not in err.value.hint  # no minikube devloop runs on starts it unforced


def test_the_span_runs_from_the_minimum_minikube():
    assert minikubes_accepting((1, 30, 0)) == "v1.28 or newer"
    assert minikubes_accepting((1, 21, 14)) == "v1.28-v1.36"
