"""LiveUpdater on the sample workspace: the real fast build (make + busybox script) and real fingerprints,
with the cluster and the engine played by small fakes that record what they were asked.

Each fallback the issue names is here: a Dockerfile change, a change outside live_update.inputs, a pod
recreated since the last live update, a failed copy; and the container that comes back from its image.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
from pathlib import Path

import pytest
import yaml

from devloop.liveupdate import state
from devloop.output.report import Reporter
from devloop.profile.lookup import load_profile
from devloop.watch.live_update import LiveUpdater
from support.fakes import FakeKube

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "workspace"
BUNDLED = REPO / "devloop" / "profile" / "bundled" / "kubeless.yaml"
HTTP = "http-trigger-controller"
CID_A, CID_B = "a" * 64, "b" * 64

pytestmark = pytest.mark.skipif(
    shutil.which("make") is None or not os.access("/bin/busybox", os.X_OK),
    reason="needs make and busybox-static (the sample's fast build)",
)


class FakeDockerAPI:
    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.started = 0
        self.fail_copy: Exception | None = None

    def put_archive(self, container, path, data):
        self.calls.append(("put_archive", container, path, data))
        if self.fail_copy is not None:
            raise self.fail_copy
        return True

    def restart(self, container, timeout):
        self.calls.append(("restart", container, timeout))
        self.started += 1

    def inspect_container(self, container):
        return {"Id": container, "State": {"Running": True, "StartedAt": f"t{self.started}"}}


class FakeEngine:
    def __init__(self) -> None:
        self.api = FakeDockerAPI()
        self.client = self


class ControllerPod:
    """The controller's pod as the kubelet runs it; a test changes its container or state between two reads."""

    def __init__(self, image: str, container_id: str = CID_A) -> None:
        self.image, self.container_id = image, container_id
        self.state: dict = {"running": {}}
        self.pod_name = "ctrl-1"

    def pods(self, namespace):
        return [
            {
                "metadata": {"name": self.pod_name, "namespace": namespace},
                "spec": {"containers": [{"name": HTTP, "image": self.image}]},
                "status": {
                    "containerStatuses": [
                        {"name": HTTP, "containerID": f"docker://{self.container_id}", "state": self.state}
                    ]
                },
            }
        ]


class FakeSession:
    def __init__(self, tmp_path: Path, profile_path: Path, workspace: Path) -> None:
        from devloop.sources.fingerprint import Fingerprinter

        self.profile = load_profile(str(profile_path), cwd=tmp_path)
        self.workspace = workspace
        self.reporter = Reporter(json_mode=True)
        self.cache_dir = tmp_path / "cache"
        self.fingerprinter = Fingerprinter(self.cache_dir / "fingerprints")
        self.engine = FakeEngine()
        self.controller: ControllerPod | None = None
        self.dry_run = False

    @property
    def context(self) -> str:
        return self.profile.cluster.profile

    def kube(self):
        return FakeKube(self.controller.pods) if self.controller is not None else None

    def docker(self):
        return self.engine

    def docker_env(self):
        return {}


@pytest.fixture
def session(tmp_path) -> FakeSession:
    ws = tmp_path / "ws"
    shutil.copytree(FIXTURES, ws)
    data = yaml.safe_load(BUNDLED.read_text())
    data["cluster"]["profile"] = "live-unit"
    (tmp_path / "profile.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return FakeSession(tmp_path, tmp_path / "profile.yaml", ws)


def deployed(session: FakeSession) -> tuple[LiveUpdater, str]:
    """A LiveUpdater after a full cycle deployed the current sources; returns it and the http tag."""
    from devloop.loop import steps as loop

    updater = LiveUpdater(session)
    snapshot = updater.snapshot()
    tags = loop.component_tags(session, None)
    updater.note_deployed(tags, snapshot)
    session.controller = ControllerPod(tags[HTTP])
    return updater, tags[HTTP]


def edit(session: FakeSession, rel: str) -> Path:
    path = session.workspace / "http-trigger" / rel
    path.write_text(
        path.read_text() + "\n# edited\n" if not rel.endswith(".go") else path.read_text() + "\n// edited\n"
    )
    return path


def synced_script(api: FakeDockerAPI) -> str:
    ((_, _, path, data),) = [c for c in api.calls if c[0] == "put_archive"]
    assert path == "/"
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.getmember("http-controller")
        return tar.extractfile(member).read().decode()


def test_an_edit_of_a_live_input_is_synced_and_restarted(session):
    updater, base = deployed(session)
    changed = edit(session, "cmd/http-trigger-controller/main.go")
    result = updater.try_update([HTTP], [changed])
    assert result.full == {} and list(result.updated) == [HTTP]
    script = synced_script(session.engine.api)
    assert script.startswith("#!/bin/busybox sh") and "sources " in script
    assert ("restart", CID_A, 0) in session.engine.api.calls
    record = state.load(session.cache_dir, session.context)[HTTP]
    assert record.base_tag == base and record.live_tag != base
    assert record.files == ["/http-controller"] and record.containers == {CID_A: "kubeless/ctrl-1/" + HTTP}


def test_no_change_is_no_live_update(session):
    updater, _ = deployed(session)
    result = updater.try_update([HTTP], [])
    assert result.unchanged == [HTTP] and not result.updated and session.engine.api.calls == []


@pytest.mark.parametrize("rel", ["docker/http-controller/Dockerfile", "Makefile", "script/binary-controller"])
def test_a_change_outside_the_live_inputs_takes_the_image_build(session, rel):
    updater, _ = deployed(session)
    changed = edit(session, rel)
    result = updater.try_update([HTTP], [changed])
    assert result.updated == {} and result.full[HTTP] == f"a change outside live_update.inputs ({rel})"
    assert session.engine.api.calls == []


def test_a_pod_recreated_since_the_last_live_update_takes_the_image_build(session):
    updater, _ = deployed(session)
    assert updater.try_update([HTTP], [edit(session, "pkg/utils/k8sutil.go")]).updated
    session.controller.container_id = CID_B  # the kubelet made a new container from the image
    calls = len(session.engine.api.calls)
    result = updater.try_update([HTTP], [edit(session, "pkg/utils/k8sutil.go")])
    assert "recreated since the last live update" in result.full[HTTP] and not result.updated
    assert len(session.engine.api.calls) == calls  # nothing copied into the new container


def test_a_failed_copy_takes_the_image_build(session):
    import docker.errors

    updater, _ = deployed(session)
    session.engine.api.fail_copy = docker.errors.NotFound("Could not find the file /no/such/dir in container")
    result = updater.try_update([HTTP], [edit(session, "cmd/http-trigger-controller/main.go")])
    assert "copying into container" in result.full[HTTP] and "/no/such/dir" in result.full[HTTP]
    assert not result.updated and state.load(session.cache_dir, session.context) == {}
    assert not [c for c in session.engine.api.calls if c[0] == "restart"]


def test_a_container_back_from_its_image_is_lost(session):
    updater, _ = deployed(session)
    updater.try_update([HTTP], [edit(session, "cmd/http-trigger-controller/main.go")])
    assert updater.lost() == {}
    session.controller.container_id = CID_B
    lost = updater.lost()
    assert list(lost) == [HTTP] and "came back from image" in lost[HTTP]
    assert updater.pending_convergence() == [HTTP]


def test_the_live_updates_own_restart_is_not_a_loss(session):
    """Right after `docker restart` the pod's status may still say the container is not running (the kubelet
    saw it die and start again): same container ID, so nothing came back from the image."""
    updater, _ = deployed(session)
    updater.try_update([HTTP], [edit(session, "cmd/http-trigger-controller/main.go")])
    session.controller.state = {"terminated": {"exitCode": 0}}
    assert updater.lost() == {}
    session.controller.state = {"waiting": {"reason": "ContainerCreating"}}
    assert updater.lost() == {}


def test_a_recreated_pod_is_lost(session):
    updater, _ = deployed(session)
    updater.try_update([HTTP], [edit(session, "cmd/http-trigger-controller/main.go")])
    session.controller.pod_name, session.controller.container_id = "ctrl-2", CID_B
    lost = updater.lost()
    assert list(lost) == [HTTP] and "ctrl-1" in lost[HTTP]


def test_a_full_cycle_forgets_the_live_updates(session):
    updater, _ = deployed(session)
    updater.try_update([HTTP], [edit(session, "cmd/http-trigger-controller/main.go")])
    assert state.load(session.cache_dir, session.context)
    deployed_again, _ = deployed(session)
    assert state.load(session.cache_dir, session.context) == {} and deployed_again.lost() == {}


def test_live_update_off_means_the_image_build_without_a_reason(session):
    updater = LiveUpdater(session, enabled=False)
    assert not updater.active
    assert updater.try_update([HTTP], []).full == {HTTP: ""}
