"""A build that runs out of disk says so (the engine's ENOSPC in its output), with what frees room,
instead of a generic "build failed" that sends the developer to their sources."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from devloop.adapters.builder import minikube_disk_hint, run_build
from devloop.base.errors import BuildFailed


def _component(build: str):
    return SimpleNamespace(name="web", env={}, build_command=lambda tag: build.replace("{image}", tag))


# The legacy builder's words when the context does not fit into the engine's data root (seen on the rig).
ENGINE_SAYS = (
    "Error response from daemon: Error processing tar file(exit status 1): write /fill: no space left on device"
)


def test_a_full_disk_is_named_with_what_frees_room(tmp_path: Path) -> None:
    build = f"echo step 1/3; echo '{ENGINE_SAYS}' >&2; exit 1"
    with pytest.raises(BuildFailed) as err:
        run_build(
            _component(build),
            "web:1",
            env={},
            cwd=tmp_path,
            timeout=30,
            on_line=None,
            hint=lambda: "the build's own output is above",
            engine="minikube's Docker engine (p1)",
            disk_hint=minikube_disk_hint("p1"),
        )
    first, *tail = err.value.message.splitlines()
    assert first.startswith("build of web failed: no space left on device in minikube's Docker engine (p1)")
    assert any(ENGINE_SAYS in line for line in tail)  # the build's output is shown under it
    assert "docker system prune" in err.value.hint and "minikube -p p1 docker-env" in err.value.hint
    assert "--disk-size" in err.value.hint


def test_other_failures_keep_their_own_hint(tmp_path: Path) -> None:
    with pytest.raises(BuildFailed) as err:
        run_build(
            _component("echo 'main.go:3: syntax error' >&2; exit 2"),
            "web:1",
            env={},
            cwd=tmp_path,
            timeout=30,
            on_line=None,
            hint=lambda: "fix it and save",
            disk_hint=minikube_disk_hint("p1"),
        )
    assert "no space" not in err.value.message and err.value.hint == "fix it and save"
