"""Which files are a component's inputs: ignore rules, .dockerignore of build contexts, and
path -> component (what the watcher routes with). Digests: test_fingerprint.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from devloop.profile.lookup import Profile, load_profile
from devloop.sources.inputs import PathMapper, build_contexts, ignore_rules

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "tests" / "fixtures" / "workspace"


@pytest.fixture
def ws(tmp_path) -> Path:
    dest = tmp_path / "ws"
    shutil.copytree(SAMPLE, dest, symlinks=True)
    return dest


@pytest.fixture(scope="module")
def profile() -> Profile:
    return load_profile("kubeless", cwd=REPO)


def test_dockerignore_found_from_a_dockerfile_input(profile, ws):
    ctx_dir = ws / "kubeless" / "docker" / "function-controller"
    (ctx_dir / ".dockerignore").write_text("*.md\n")
    comp = profile.component("function-controller")
    assert build_contexts(comp, ws) == ["docker/function-controller"]
    rules = ignore_rules(profile, comp, ws)
    assert rules.ignored("docker/function-controller/NOTES.md")
    assert not rules.ignored("NOTES.md")


# --------------------------------------------------------------------------- path -> component


@pytest.mark.parametrize(
    "path,expected",
    [
        ("kubeless/cmd/function-controller/main.go", ["function-controller"]),
        ("kubeless/pkg/controller/function_controller.go", ["function-controller"]),
        ("kubeless/pkg/function-image-builder/imbuilder.go", ["function-image-builder"]),
        ("kubeless/go.mod", ["function-controller", "function-image-builder"]),
        ("kubeless/Makefile", ["function-controller", "function-image-builder"]),
        ("kubeless/docker/function-image-builder/entrypoint.sh", ["function-image-builder"]),
        ("kubeless/docker/function-image-builder/imbuilder", []),
        ("kubeless/docker/function-controller/kubeless-function-controller", []),
        ("kubeless/bundles/kubeless_linux-amd64/imbuilder", []),
        ("kubeless/pkg/function-proxy/proxy.go", []),
        ("kubeless/cmd/kubeless/main.go", []),
        ("kubeless/kubeless.yaml", []),
        ("kubeless/pkg/controller/.function_controller.go.swp", []),
        ("kubeless/pkg/controller/4913", []),
        ("kubeless/.git/index", []),
        ("http-trigger/pkg/controller/http_trigger_controller.go", ["http-trigger-controller"]),
        ("http-trigger/vendor/k8s.io/x.go", []),
        ("cronjob-trigger/vendor/modules.txt", ["cronjob-trigger-controller"]),
        ("cronjob-trigger/docker/cronjob-controller/Dockerfile", ["cronjob-trigger-controller"]),
        ("custom-resources.yaml", []),
    ],
)
def test_components_for_path(profile, path, expected):
    mapper = PathMapper(profile, SAMPLE)
    assert [c.name for c in mapper.components_for(path)] == expected
    assert [c.name for c in mapper.components_for(SAMPLE / path)] == expected


def test_directory_events_use_directory_patterns(profile):
    mapper = PathMapper(profile, SAMPLE)
    assert mapper.components_for(SAMPLE / "kubeless" / "bundles", is_dir=True) == []
    assert [c.name for c in mapper.components_for(SAMPLE / "kubeless" / "pkg" / "utils", is_dir=True)] == [
        "function-controller"
    ]
