"""Live update: the profile block, which containers get the files, the record kept for status and watch."""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from devloop.adapters.containers import archive, docker_id
from devloop.liveupdate import state
from devloop.liveupdate.plan import targets_of
from devloop.liveupdate.schema import LiveUpdate

BLOCK = {
    "build": "make http-controller-build",
    "inputs": ["cmd/http-trigger-controller", "pkg", "go.mod"],
    "sync": {"bundles/kubeless_linux-amd64/http-controller": "/http-controller"},
}


# -- the profile block ------------------------------------------------------------------------------
def test_block_defaults():
    lu = LiveUpdate(**BLOCK)
    assert lu.enabled and lu.restart == "container" and lu.converge == "stop"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"colour": "red"}, "Extra inputs are not permitted"),
        ({"restart": "pod"}, "'container'"),
        ({"converge": "never"}, "'stop' or 'next-up'"),
        ({"build": "make img IMAGE={image}"}, "not an image"),
        ({"inputs": ["docker/http-controller/Dockerfile"]}, "always needs the image build"),
        ({"inputs": ["../elsewhere"]}, "inside it"),
        ({"inputs": []}, "at least 1 item"),
        ({"sync": {"bundles/x": "relative/path"}}, "absolute file path in the container"),
        ({"sync": {"bundles/x": "/dir/"}}, "absolute file path in the container"),
        ({"sync": {"/abs/x": "/x"}}, "relative to the component directory"),
        ({"sync": {"a": "/x", "b": "/x"}}, "one file per container path"),
    ],
)
def test_block_errors_say_what_was_expected(change, expected):
    with pytest.raises(ValidationError) as err:
        LiveUpdate(**{**BLOCK, **change})
    assert expected in str(err.value)


# -- which containers -------------------------------------------------------------------------------
def pod(name, image, *, cid="docker://" + "a" * 64, running=True, deleting=False, container="http-trigger-controller"):
    meta = {
        "name": name,
        "namespace": "kubeless",
        **({"deletionTimestamp": "2026-01-01T00:00:00Z"} if deleting else {}),
    }
    state_ = {"running": {"startedAt": "x"}} if running else {"waiting": {"reason": "ContainerCreating"}}
    return {
        "metadata": meta,
        "spec": {"containers": [{"name": "other", "image": "other:1"}, {"name": container, "image": image}]},
        "status": {
            "containerStatuses": [
                {"name": container, "containerID": cid, "state": state_},
                {"name": "other", "containerID": "docker://o", "state": state_},
            ]
        },
    }


def test_targets_are_the_running_containers_of_the_image():
    targets, problems = targets_of([pod("p1", "http:dev-1"), pod("p2", "http:dev-0")], "http:dev-1")
    assert problems == []
    assert [(t.pod, t.container, t.container_id) for t in targets] == [("p1", "http-trigger-controller", "a" * 64)]
    assert targets[0].where == "kubeless/p1/http-trigger-controller"


def test_a_deleting_pod_or_a_waiting_container_rules_live_update_out():
    _, problems = targets_of([pod("p1", "http:dev-1", deleting=True)], "http:dev-1")
    assert problems == ["pod kubeless/p1 is being deleted"]
    _, problems = targets_of([pod("p1", "http:dev-1", running=False)], "http:dev-1")
    assert problems == ["container http-trigger-controller of pod kubeless/p1 is not running"]


def test_only_docker_containers_can_be_synced():
    assert docker_id("docker://abc") == "abc"
    assert docker_id("containerd://abc") is None and docker_id("") is None
    _, problems = targets_of([pod("p1", "http:dev-1", cid="containerd://abc")], "http:dev-1")
    assert problems and "not running" in problems[0]


# -- the archive ----------------------------------------------------------------------------------
def test_archive_puts_each_file_at_its_container_path_executable_and_owned_by_root(tmp_path):
    binary = tmp_path / "http-controller"
    binary.write_text("#!/bin/sh\necho v2\n")
    binary.chmod(0o755)
    data = archive({binary: "/opt/bin/tool"})
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        (member,) = tar.getmembers()
        assert member.name == "opt/bin/tool" and member.mode & 0o111 and member.uid == 0
        assert tar.extractfile(member).read() == b"#!/bin/sh\necho v2\n"


# -- the record --------------------------------------------------------------------------------------
def test_records_round_trip_and_forget(tmp_path):
    rec = state.LiveRecord(
        component="http",
        base_tag="http:dev-1",
        live_tag="http:dev-2",
        files=["/http-controller"],
        at=time.time(),
        containers={"abc": "kubeless/p1/http"},
    )
    state.save(tmp_path, "prof", {"http": rec})
    assert state.load(tmp_path, "prof") == {"http": rec}
    assert rec.describe().startswith("live-updated from http:dev-1 + synced /http-controller at ")
    assert state.forget(tmp_path, "prof", ["other"]) == []
    assert state.forget(tmp_path, "prof") == ["http"]
    assert state.load(tmp_path, "prof") == {} and not state.state_file(tmp_path, "prof").exists()


def test_a_corrupt_record_file_counts_as_none(tmp_path):
    path = state.state_file(tmp_path, "prof")
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert state.load(tmp_path, "prof") == {}


# -- in a profile ------------------------------------------------------------------------------------
def _profile_with(tmp_path, change):
    import yaml

    from devloop.profile.lookup import load_profile

    data = yaml.safe_load((Path(__file__).resolve().parents[2] / "devloop/profile/bundled/kubeless.yaml").read_text())
    http = next(c for c in data["components"] if c["name"] == "http-trigger-controller")
    change(http["live_update"])
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_profile(str(path), cwd=tmp_path)


def test_the_bundled_profile_ships_live_update_for_the_three_controllers():
    from devloop.profile.lookup import load_profile

    profile = load_profile(
        str(Path(__file__).resolve().parents[2] / "devloop/profile/bundled/kubeless.yaml"), cwd=Path("/")
    )
    live = {c.name: c.live_update for c in profile.components if c.live_update is not None}
    assert sorted(live) == ["cronjob-trigger-controller", "function-controller", "http-trigger-controller"]
    assert live["http-trigger-controller"].build == "make http-controller-build"
    assert live["http-trigger-controller"].sync == {"bundles/kubeless_linux-amd64/http-controller": "/http-controller"}
    assert live["function-controller"].build == "make controller-build"
    assert live["cronjob-trigger-controller"].sync == {
        "bundles/kubeless_linux-amd64/cronjob-controller": "/cronjob-controller"
    }


def test_an_unknown_key_in_the_block_names_file_line_and_key(tmp_path):
    from devloop.base.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        _profile_with(tmp_path, lambda lu: lu.update(restart_policy="always"))
    import re

    assert re.search(
        r"p\.yaml:\d+: components\[http-trigger-controller\]\.live_update\.restart_policy: unknown key",
        err.value.message,
    ), err.value.message


def test_a_live_input_must_be_an_image_input(tmp_path):
    from devloop.base.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        _profile_with(tmp_path, lambda lu: lu["inputs"].append("docs"))
    assert "live_update.inputs" in err.value.message and "must also be an image input" in err.value.message


def test_toggling_live_update_keeps_the_image_tag(tmp_path):
    import shutil

    from devloop.sources.fingerprint import Fingerprinter, tag_for

    ws = tmp_path / "ws"
    shutil.copytree(Path(__file__).resolve().parents[2] / "tests/fixtures/workspace", ws)
    on = _profile_with(tmp_path, lambda lu: None)
    off = _profile_with(tmp_path, lambda lu: lu.update(enabled=False))
    fp = Fingerprinter(tmp_path / "cache")
    tags = [
        tag_for(
            p.component("http-trigger-controller"), fp.fingerprint(p, p.component("http-trigger-controller"), ws).digest
        )
        for p in (on, off)
    ]
    assert tags[0] == tags[1]
