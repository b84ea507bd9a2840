"""adapters.containers against a rig Docker engine over TCP+TLS: files into a running container, a restart
that keeps the container's ID, and a copy that fails (the live update fallback)."""

from __future__ import annotations

import shutil
import time
import uuid

import pytest

from devloop.adapters import containers, proc
from devloop.adapters.docker_engine import DockerEngine

pytestmark = pytest.mark.rig


@pytest.fixture
def engine(docker_target):
    with DockerEngine(docker_target.env) as e:
        yield e


@pytest.fixture
def running(engine, docker_target, tmp_path):
    """A container whose entrypoint is a script printing its version, as the sample controllers do."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    ref = f"devloop-test/live-{uuid.uuid4().hex[:8]}:dev-1"
    shutil.copy(busybox, tmp_path / "busybox")
    app = tmp_path / "app"
    app.write_text("#!/bin/busybox sh\ntrap 'exit 0' TERM\necho app v1\n/bin/busybox sleep 100000 & wait\n")
    app.chmod(0o755)
    (tmp_path / "Dockerfile").write_text('FROM scratch\nADD busybox /bin/busybox\nADD app /app\nENTRYPOINT ["/app"]\n')
    proc.run(
        ["docker", "build", "-q", "-t", ref, "."],
        env={**docker_target.env, "DOCKER_BUILDKIT": "0"},
        cwd=tmp_path,
        timeout=120,
    )
    api = engine.client.api
    cid = api.create_container(ref)["Id"]
    api.start(cid)
    yield cid
    import docker.errors

    try:
        api.remove_container(cid, force=True)
    except docker.errors.NotFound:
        pass
    api.remove_image(ref, force=True)


def logs(engine, cid: str) -> str:
    return engine.client.api.logs(cid).decode()


def test_files_are_copied_and_the_restart_keeps_the_container(engine, running, tmp_path):
    new = tmp_path / "app-v2"
    new.write_text("#!/bin/busybox sh\ntrap 'exit 0' TERM\necho app v2 live\n/bin/busybox sleep 100000 & wait\n")
    new.chmod(0o755)
    before = containers.state(engine, running)
    containers.put_files(engine, running, containers.archive({new: "/app"}))
    after = containers.restart(engine, running)
    assert after.id == before.id and after.running and after.started_at != before.started_at
    deadline = time.monotonic() + 30
    while "app v2 live" not in logs(engine, running):
        assert time.monotonic() < deadline, logs(engine, running)
        time.sleep(0.05)


def test_a_copy_the_engine_cannot_unpack_fails_with_the_reason(engine, running, tmp_path):
    new = tmp_path / "app"
    new.write_text("x")
    # /app is a file in the container, so /app/sub cannot be made: the engine refuses the archive
    with pytest.raises(containers.SyncFailed) as err:
        containers.put_files(engine, running, containers.archive({new: "/app/sub/app"}))
    assert err.value.message.startswith(f"copying into container {running[:12]} failed")
    assert "app v1" in logs(engine, running)


def test_a_copy_into_a_removed_container_fails(engine, running, tmp_path):
    new = tmp_path / "app"
    new.write_text("x")
    engine.client.api.remove_container(running, force=True)
    with pytest.raises(containers.SyncFailed):
        containers.put_files(engine, running, containers.archive({new: "/app"}))


def test_a_gone_container_cannot_be_restarted(engine):
    assert containers.state(engine, "0" * 64) is None
    with pytest.raises(containers.SyncFailed) as err:
        containers.restart(engine, "0" * 64)
    assert "is gone" in err.value.message
