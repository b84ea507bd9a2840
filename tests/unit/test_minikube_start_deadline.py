"""F8 (shared/research/minikube-audit-2026-12-07.md): `timeouts.cluster_start` (900 s) counts from the start,
downloads included, but minikube sets its downloads no time limit (download/download.go, node/cache.go), while
the steps after them give up by themselves (host creation, kubeadm init twice, --wait-timeout). So a deadline
that passes says which it was: minikube's own give-up is minikube's error, a download is devloop's deadline
alone (with a way to download first), anything else the step minikube had not given up on."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from devloop.adapters.minikube import cli as mk
from devloop.adapters.minikube.output import LastStep
from devloop.base.errors import WaitTimeout

P = "devloop-kubeless"


def _minikube(tmp_path: Path, body: str) -> mk.Minikube:
    path = tmp_path / "minikube"
    path.write_text("#!/bin/sh\n" + body + "exec sleep 30\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return mk.Minikube(P, binary=str(path))


def _start(minikube: mk.Minikube) -> None:
    minikube.start(driver="docker", kubernetes_version="v1.21.14", cpus=2, memory="4g", timeout=1.5)


def test_a_deadline_during_a_download_says_minikube_never_gives_up_on_it(tmp_path):
    minikube = _minikube(
        tmp_path,
        'echo "* Starting \\"devloop-kubeless\\" primary control-plane node in \\"devloop-kubeless\\" cluster"\n'
        'echo "* Pulling base image v0.0.48 ..."\n'
        'echo "* Downloading Kubernetes v1.21.14 preload ..."\n',
    )
    with pytest.raises(WaitTimeout) as err:
        _start(minikube)
    message = err.value.message
    assert "still downloading ('* Downloading Kubernetes v1.21.14 preload ...')" in message
    assert "minikube sets no time limit on its downloads" in message
    assert "downloads included" in message
    assert "--download-only" in err.value.hint and "timeouts.cluster_start" in err.value.hint
    assert f"start -p {P}" in err.value.hint


def test_a_deadline_after_minikube_gave_up_itself_is_minikubes_error(tmp_path):
    gave_up = "! StartHost failed, but will try again: creating host: create host timed out in 360.000000 seconds"
    minikube = _minikube(
        tmp_path, f'echo "* Creating docker container (CPUs=2, Memory=4096MB) ..."\necho "{gave_up}" >&2\n'
    )
    with pytest.raises(mk.MinikubeError) as err:
        _start(minikube)
    assert not isinstance(err.value, WaitTimeout)
    assert f"minikube gave up by itself: {gave_up!r}" in err.value.message
    assert err.value.reason_line == gave_up
    assert "minikube logs -p devloop-kubeless" in err.value.hint


def test_minikubes_final_give_up_keeps_its_reason_and_hint(tmp_path):
    minikube = _minikube(
        tmp_path,
        'echo "! initialization failed, will try again: wait: kubeadm init: exit status 1" >&2\n'
        'echo "X Exiting due to K8S_KUBELET_NOT_RUNNING: wait: kubeadm init: exit status 1" >&2\n',
    )
    with pytest.raises(mk.MinikubeError) as err:
        _start(minikube)
    assert err.value.reason == "K8S_KUBELET_NOT_RUNNING"
    assert "lower_docker_min_api" in err.value.hint  # the reason's own hint


def test_a_deadline_in_a_step_minikube_times_itself_names_the_step(tmp_path):
    minikube = _minikube(tmp_path, 'echo "* Preparing Kubernetes v1.21.14 on Docker 28.1.1 ..."\n')
    with pytest.raises(WaitTimeout) as err:
        _start(minikube)
    assert "'* Preparing Kubernetes v1.21.14 on Docker 28.1.1 ...'" in err.value.message
    assert "had not given up by itself" in err.value.message
    assert "download" not in err.value.message


def test_a_download_ends_when_minikube_moves_on():
    seen = LastStep()
    seen.take("* Pulling base image v0.0.48 ...")
    assert seen.downloading
    seen.take("* Creating docker container (CPUs=2, Memory=4096MB) ...")
    assert not seen.downloading and not seen.gave_up
