"""`up` asks `minikube docker-env` in the background when no answer is recorded (issue 18, Done when: a
no-change `up` with an empty cache on the Docker Desktop layout within 1.0 s), and never beside a start or a
delete: those wait for it and drop its answer."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from devloop.adapters.minikube.engine_endpoint import read_only_docker_env
from devloop.adapters.minikube.home import read_profile_config
from devloop.output.report import Reporter
from devloop.profile.lookup import load_profile
from devloop.session import Session

P = "devloop-kubeless"
FORWARDED = {
    "DOCKER_TLS_VERIFY": "1",
    "DOCKER_HOST": "tcp://127.0.0.1:55124",
    "DOCKER_CERT_PATH": "/h/.minikube/certs",
    "MINIKUBE_ACTIVE_DOCKERD": P,
}


def _lay_out(root: Path) -> Path:
    home = root / ".minikube"
    (home / "profiles" / P).mkdir(parents=True)
    config = {
        "Name": P,
        "Driver": "docker",
        "KubernetesConfig": {"KubernetesVersion": "v1.21.14", "ContainerRuntime": "docker"},
        "Nodes": [{"Name": "", "IP": "192.168.49.2", "Port": 8443, "ControlPlane": True, "Worker": True}],
    }
    (home / "profiles" / P / "config.json").write_text(json.dumps(config))
    return home


class SlowDockerEnv:
    """minikube whose docker-env takes a while; every call is recorded in order, from whichever thread."""

    binary, profile_name = "minikube", P

    def __init__(self):
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def _note(self, what: str) -> None:
        with self.lock:
            self.calls.append(what)

    def profile_config(self):
        return read_profile_config(P)

    def docker_env(self):
        self._note("docker-env begins")
        time.sleep(0.2)
        self._note("docker-env ends")
        return dict(FORWARDED)

    def start(self, **_):
        self._note("start")
        return True

    def delete(self, **_):
        self._note("delete")


class Engine:
    made: list[dict] = []

    def __init__(self, env):
        Engine.made.append(env)
        self.closed = False

    def daemon_name(self):
        return P

    def close(self):
        self.closed = True


def _session(tmp_path: Path, monkeypatch, mini: SlowDockerEnv) -> Session:
    monkeypatch.setenv("MINIKUBE_HOME", str(_lay_out(tmp_path)))
    Engine.made = []
    session = Session(
        profile=load_profile("kubeless", cwd=Path("/")),
        workspace=tmp_path,
        reporter=Reporter(json_mode=True),
        cache_dir=tmp_path / "cache",
        make_docker=Engine,
    )
    session._minikube = mini  # type: ignore[assignment]  # the real adapter's place (`up` with no double)
    return session


def test_nothing_recorded_asks_docker_env_in_the_background_once(tmp_path, monkeypatch):
    mini = SlowDockerEnv()
    session = _session(tmp_path, monkeypatch, mini)
    assert session.prefetch_engine() is False  # nothing recorded for this config.json
    session.prefetch_docker_env()
    assert session.docker_env() == FORWARDED
    engine = session.docker()
    assert mini.calls == ["docker-env begins", "docker-env ends"]
    assert Engine.made == [FORWARDED] and not engine.closed  # the engine it connected to is the one used
    assert read_only_docker_env(P, tmp_path / "cache")[0] == FORWARDED  # recorded for status, as before


def test_a_start_waits_for_the_background_docker_env_and_drops_its_answer(tmp_path, monkeypatch):
    mini = SlowDockerEnv()
    session = _session(tmp_path, monkeypatch, mini)
    session.prefetch_docker_env()
    session.minikube.start(driver="docker", kubernetes_version=None, cpus=None, memory=None)
    assert mini.calls == ["docker-env begins", "docker-env ends", "start"]
    session.forget_cluster_state()  # what ensure_cluster does after a start
    session.docker_env()  # asked again of the started cluster
    assert mini.calls[3:] == ["docker-env begins", "docker-env ends"]


def test_a_delete_waits_for_it_too(tmp_path, monkeypatch):
    mini = SlowDockerEnv()
    session = _session(tmp_path, monkeypatch, mini)
    session.prefetch_docker_env()
    session.minikube.delete()
    assert mini.calls == ["docker-env begins", "docker-env ends", "delete"]


def test_read_only_dry_run_and_loading_profiles_never_ask(tmp_path, monkeypatch):
    for change in ({"read_only": True}, {"dry_run": True}):
        mini = SlowDockerEnv()
        session = _session(tmp_path / next(iter(change)), monkeypatch, mini)
        for key, value in change.items():
            setattr(session, key, value)
        session.prefetch_docker_env()
        assert session._docker_env_prefetch is None and mini.calls == []
    mini = SlowDockerEnv()
    session = _session(tmp_path / "load", monkeypatch, mini)
    monkeypatch.setattr(Session, "image_transfer", lambda self: ("load", "a test"))
    session.prefetch_docker_env()
    assert session._docker_env_prefetch is None and mini.calls == []


def test_no_profile_yet_is_not_asked(tmp_path, monkeypatch):
    mini = SlowDockerEnv()
    session = _session(tmp_path, monkeypatch, mini)
    (tmp_path / ".minikube" / "profiles" / P / "config.json").unlink()
    (tmp_path / ".minikube" / "profiles" / P).rmdir()
    session.prefetch_docker_env()
    assert session._docker_env_prefetch is None and mini.calls == []
