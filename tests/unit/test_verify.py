"""Verify after deploy (devloop.verify) with the cluster answered by FakeKube: a check that passes, one that
fails with its pods' log tail, retries until the deadline (no fixed sleeps), watch going on after a failure,
the events, `status`, and the profile's errors."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import yaml

from devloop.base.errors import ClusterError, ConfigError
from devloop.base.results import CycleResult
from devloop.commands import status as status_cmd
from devloop.loop import steps
from devloop.output import views
from devloop.output.report import Reporter
from devloop.profile.lookup import load_profile
from devloop.session import Session
from devloop.verify import VerifyFailed, check_files, run_checks
from devloop.verify import run as verify_run
from devloop.verify import state as verify_state
from devloop.watch import cycle
from devloop.watch.cycle import WatchStats
from support.cli import parse_events
from support.fakes import FakeKube

REPO = Path(__file__).resolve().parents[2]
BUNDLED = REPO / "devloop" / "profile" / "bundled" / "kubeless.yaml"
NS = "kubeless"

HELLO = {
    "apiVersion": "kubeless.io/v1beta1",
    "kind": "Function",
    "metadata": {"name": "hello"},
    "spec": {
        "runtime": "python3.8",
        "handler": "hello.foobar",
        "function": "def foobar(event, context):\n  return 'hello world'\n",
    },
}
CALL = {
    "name": "hello",
    "timeout": 30,
    "call": {
        "fixture": "verify/hello.yaml",
        "service": "hello",
        "port": "http-function-port",
        "expect": {"status": 200, "body": "hello world"},
    },
}


class Clock:
    """Fake time: sleeping moves it; every sleep is recorded (a fixed sleep would show up here)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def pod(name: str = "hello-7d9f-abcde", *, ready: bool = True, waiting: str | None = None) -> dict:
    state = {"running": {"startedAt": "2026-12-07T00:00:00Z"}} if waiting is None else {"waiting": {"reason": waiting}}
    return {
        "metadata": {"name": name, "namespace": NS, "labels": {"function": "hello"}},
        "spec": {"initContainers": [{"name": "prepare"}], "containers": [{"name": "hello"}]},
        "status": {
            "phase": "Running" if waiting is None else "Pending",
            "conditions": [{"type": "Ready", "status": "True" if ready and waiting is None else "False"}],
            "initContainerStatuses": [{"name": "prepare", "state": {"terminated": {"exitCode": 0}}}],
            "containerStatuses": [{"name": "hello", "ready": ready, "restartCount": 0, "state": state}],
        },
    }


SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "hello", "namespace": NS},
    "spec": {"selector": {"function": "hello"}, "ports": [{"name": "http-function-port", "port": 8080}]},
}


def make_session(tmp_path: Path, checks: list[dict], kube: FakeKube | None, *, dry_run: bool = False) -> Session:
    data = yaml.safe_load(BUNDLED.read_text())
    data["cluster"]["profile"] = f"verify-unit-{uuid.uuid4().hex[:8]}"  # its own lock and cache entry
    data["verify"] = checks
    profile_dir = tmp_path / "profiles"
    profile_dir.mkdir(exist_ok=True)
    path = profile_dir / "p.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    workspace = tmp_path / "ws"
    (workspace / "verify").mkdir(parents=True, exist_ok=True)
    (workspace / "verify" / "hello.yaml").write_text(yaml.safe_dump(HELLO))
    session = Session(
        profile=load_profile(str(path), cwd=tmp_path),
        workspace=workspace,
        reporter=Reporter(json_mode=True),
        dry_run=dry_run,
        cache_dir=tmp_path / "cache",
    )
    session._kube = kube  # the context guard is test_loop's business
    return session


def run(session: Session, clock: Clock, **kwargs):
    return run_checks(session, clock=clock, sleep=clock.sleep, **kwargs)


def events(capsys) -> list[dict]:
    return parse_events(capsys.readouterr().out)


# -- call --------------------------------------------------------------------------------------------------
def test_call_applies_the_fixture_waits_for_ready_pods_and_retries_until_the_function_answers(tmp_path, capsys):
    answers = [(503, '{"message": "no endpoints available for service \\"hello\\""}'), (502, "connection refused")]
    kube = FakeKube([pod()], objects={("Service", NS, "hello"): SERVICE}, proxy=[*answers, (200, "hello world")])
    session = make_session(tmp_path, [CALL], kube)
    clock = Clock()

    (result,) = run(session, clock)

    assert result.status == "ok" and result.attempts == 3
    assert result.answer == "HTTP 200: 'hello world'"
    assert result.after_ready is not None and result.after_ready <= 1.0  # two short polls, no fixed sleep
    assert all(s <= verify_run.MAX_POLL for s in clock.sleeps)
    # the fixture went to the profile's namespace; the call is `kubeless function call`'s
    assert kube.applied[0]["kind"] == "Function" and kube.applied[0]["metadata"]["namespace"] == NS
    assert kube.rollouts == []  # no Deployment in the fixture
    assert kube.proxied[-1] == (NS, "hello", "http-function-port", "/")
    assert kube.queries[-1] == (NS, "function=hello")  # the Service's selector

    evs = events(capsys)
    step = [e for e in evs if e["event"] == "step" and e["step"] == "verify hello" and e["status"] != "start"]
    assert step[0]["status"] == "ok"
    assert step[0]["details"]["kind"] == "call" and step[0]["details"]["attempts"] == 3
    (verify,) = [e for e in evs if e["event"] == "verify"]
    assert verify["status"] == "ok" and verify["trigger"] == "deploy"
    (check,) = verify["checks"]
    assert set(check) >= {"name", "kind", "target", "status", "seconds", "message", "attempts", "answer"}
    assert check["target"] == "GET kubeless/services/hello:http-function-port/proxy/ → HTTP 200, body ~ /hello world/"
    assert verify["schema"] == 1


def test_a_failing_call_retries_until_its_deadline_and_shows_the_log_tail(tmp_path, capsys):
    logs = {
        ("hello-7d9f-abcde", "hello"): [f"line {i}" for i in range(30)] + ["KeyError: 'foobar'"],
        ("hello-7d9f-abcde", "prepare"): ["unzipped"],
    }
    kube = FakeKube(
        [pod()], objects={("Service", NS, "hello"): SERVICE}, proxy=[(500, "Internal Server Error")], logs=logs
    )
    session = make_session(tmp_path, [CALL], kube)
    clock = Clock()

    with pytest.raises(VerifyFailed) as info:
        run(session, clock)

    err = info.value
    assert err.exit_code == 1
    assert clock.now - 1000.0 == pytest.approx(30.0)  # retried until the check's timeout, not past it
    assert len(kube.proxied) > 20 and all(s <= verify_run.MAX_POLL for s in clock.sleeps)
    assert "verify failed: hello (1 of 1 checks)" in err.message
    assert "no answer matched (HTTP 200, body ~ /hello world/) within 30s" in err.message
    assert "the last was HTTP 500: 'Internal Server Error'" in err.message
    assert "pod kubeless/hello-7d9f-abcde: ready" in err.message
    assert "| KeyError: 'foobar'" in err.message and "| line 10" not in err.message  # the last 20 lines
    assert "| unzipped" in err.message  # the init container's log too
    assert err.cycle is None

    evs = events(capsys)
    (step,) = [e for e in evs if e["event"] == "step" and e["step"] == "verify hello" and e["status"] == "failed"]
    assert "KeyError" in " ".join(step["details"]["log_tail"])
    (verify,) = [e for e in evs if e["event"] == "verify"]
    assert verify["status"] == "failed" and verify["checks"][0]["status"] == "failed"


def test_a_service_and_pods_that_come_late_are_waited_for_with_what_is_awaited(tmp_path, capsys):
    reads = {"service": 0, "pods": 0}

    def service():
        reads["service"] += 1
        return SERVICE if reads["service"] > 3 else None

    def pods(_ns):
        reads["pods"] += 1
        return [pod(waiting="ContainerCreating")] if reads["pods"] < 3 else [pod()]

    kube = FakeKube(pods, objects={("Service", NS, "hello"): service}, proxy=[(200, "hello world")])
    session = make_session(tmp_path, [CALL], kube)
    (result,) = run(session, Clock())
    assert result.status == "ok" and result.attempts == 1
    waits = [e["waiting_for"] for e in events(capsys) if e["event"] == "wait"]
    assert waits[0] == "Service kubeless/hello to exist"
    assert "the pods behind Service kubeless/hello (function=hello) to be ready" in waits


def test_pods_that_never_get_ready_fail_naming_why(tmp_path):
    kube = FakeKube([pod(waiting="ImagePullBackOff")], objects={("Service", NS, "hello"): SERVICE}, proxy=[(200, "")])
    session = make_session(tmp_path, [CALL], kube)
    with pytest.raises(VerifyFailed) as info:
        run(session, Clock())
    assert "the pods behind Service kubeless/hello (function=hello) were not ready within 30s" in info.value.message
    assert "container hello: ImagePullBackOff" in info.value.message
    assert kube.proxied == []  # no call before the pods are ready


def test_a_pod_that_can_never_start_fails_at_once(tmp_path):
    kube = FakeKube([pod(waiting="ErrImageNeverPull")], objects={("Service", NS, "hello"): SERVICE})
    session = make_session(tmp_path, [CALL], kube)
    clock = Clock()
    with pytest.raises(VerifyFailed) as info:
        run(session, clock)
    assert "cannot start" in info.value.message and clock.now == 1000.0


def test_a_changed_fixture_deployment_rolls_out_before_the_call(tmp_path):
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "hello"}, "spec": {}}
    kube = FakeKube([pod()], objects={("Service", NS, "hello"): SERVICE}, proxy=[(200, "hello world")])
    session = make_session(tmp_path, [CALL], kube)
    (session.workspace / "verify" / "hello.yaml").write_text(yaml.safe_dump_all([deployment, SERVICE]))
    run(session, Clock())
    assert kube.rollouts == [[(NS, "hello")]]
    run(session, Clock())  # unchanged now: nothing to wait for
    assert kube.rollouts == [[(NS, "hello")]]


def test_no_answer_from_the_api_server_is_retried_like_a_bad_answer(tmp_path):
    kube = FakeKube(
        [pod()],
        objects={("Service", NS, "hello"): SERVICE},
        proxy=[ClusterError("cannot reach the API server"), (200, "hello world")],
    )
    (result,) = run(make_session(tmp_path, [CALL], kube), Clock())
    assert result.status == "ok" and result.attempts == 2


def test_every_check_runs_even_after_one_failed(tmp_path):
    second = {"name": "second", "timeout": 5, "call": {"service": "hello"}}
    kube = FakeKube(
        [pod()],
        objects={("Service", NS, "hello"): SERVICE},
        proxy=lambda ns, svc, port, path: (200, "hi") if port is None else (200, "bye"),
    )
    session = make_session(tmp_path, [CALL, second], kube)
    with pytest.raises(VerifyFailed) as info:
        run(session, Clock())
    assert [r.status for r in info.value.results] == ["failed", "ok"]
    assert "verify failed: hello (1 of 2 checks)" in info.value.message


# -- http, job ----------------------------------------------------------------------------------------------
def test_http_check_puts_in_the_node_address_and_sends_the_host_header(tmp_path):
    calls = []

    def http_get(url, *, host, timeout):
        calls.append((url, host))
        return (404, "default backend") if len(calls) == 1 else (200, "hello world")

    check = {
        "name": "ingress",
        "http": {"url": "http://{node_ip}/hello", "host": "hello.example.com", "expect": {"body": "^hello"}},
    }
    (result,) = run(make_session(tmp_path, [check], FakeKube()), Clock(), http_get=http_get)
    assert result.status == "ok" and result.attempts == 2
    assert calls[-1] == ("http://192.168.49.2/hello", "hello.example.com")
    assert result.target == "GET http://192.168.49.2/hello (Host: hello.example.com) → HTTP 2xx, body ~ /^hello/"


JOB = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "smoke"},
    "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "curl", "image": "x"}]}}},
}


def _job_session(tmp_path, kube):
    session = make_session(tmp_path, [{"name": "smoke", "timeout": 20, "job": {"manifest": "verify/job.yaml"}}], kube)
    (session.workspace / "verify" / "job.yaml").write_text(yaml.safe_dump(JOB))
    return session


def test_job_check_recreates_the_job_and_waits_until_it_succeeds(tmp_path):
    reads = [0]
    key = ("Job", NS, "smoke")
    kube = FakeKube(objects={key: {**JOB, "status": {"succeeded": 1}}})  # last run's Job is still there

    def live():
        reads[0] += 1
        return {**JOB, "status": {"active": 1} if reads[0] < 3 else {"succeeded": 1}}

    original_create = kube.create

    def create(obj):
        original_create(obj)
        kube.objects[key] = live

    kube.create = create  # type: ignore[method-assign]
    (result,) = run(_job_session(tmp_path, kube), Clock())
    assert result.status == "ok"
    assert [o["metadata"]["name"] for o in kube.deleted] == ["smoke"] and len(kube.created) == 1
    assert kube.created[0]["metadata"]["namespace"] == NS


def test_a_failed_job_shows_its_pods_log_tail(tmp_path):
    failed = {
        **JOB,
        "spec": {**JOB["spec"], "selector": {"matchLabels": {"controller-uid": "u1"}}},
        "status": {"failed": 1, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]},
    }
    job_pod = pod("smoke-x1", waiting="CrashLoopBackOff")
    job_pod["spec"]["containers"] = [{"name": "curl"}]
    job_pod["status"]["containerStatuses"] = [
        {"name": "curl", "restartCount": 0, "state": {"terminated": {"exitCode": 7, "reason": "Error"}}}
    ]
    kube = FakeKube(
        [job_pod], selector="controller-uid=u1", logs={("smoke-x1", "curl"): ["curl: (7) Failed to connect"]}
    )
    session = _job_session(tmp_path, kube)
    original_create = kube.create
    kube.create = lambda obj: (original_create(obj), kube.objects.__setitem__(("Job", NS, "smoke"), failed))  # type: ignore[method-assign]
    with pytest.raises(VerifyFailed) as info:
        run(session, Clock())
    assert "Job kubeless/smoke failed: BackoffLimitExceeded" in info.value.message
    assert "| curl: (7) Failed to connect" in info.value.message


def test_a_job_manifest_must_hold_one_job(tmp_path):
    session = _job_session(tmp_path, FakeKube())
    (session.workspace / "verify" / "job.yaml").write_text(yaml.safe_dump_all([JOB, SERVICE]))
    with pytest.raises(ConfigError) as info:
        check_files(session)
    assert "verify[smoke].job.manifest): expected exactly one Job, found Job, Service" in info.value.message


# -- dry run, files ----------------------------------------------------------------------------------------
def test_dry_run_plans_the_checks_and_calls_nothing(tmp_path, capsys):
    kube = FakeKube()
    session = make_session(tmp_path, [CALL], kube, dry_run=True)
    (result,) = run(session, Clock())
    assert result.status == "planned" and kube.applied == [] and kube.proxied == []
    evs = events(capsys)
    assert any(e["event"] == "info" and e["message"].startswith("would verify hello: GET") for e in evs)
    assert not verify_state.state_file(session.cache_dir, session.context).exists()


def test_a_fixture_is_found_beside_the_profile_when_the_workspace_has_none(tmp_path):
    check = {**CALL, "call": {**CALL["call"], "fixture": "kubeless-verify/hello.yaml"}}
    session = make_session(tmp_path, [check], FakeKube())
    (tmp_path / "profiles" / "kubeless-verify").mkdir()
    (tmp_path / "profiles" / "kubeless-verify" / "hello.yaml").write_text(yaml.safe_dump(HELLO))
    check_files(session)  # found
    (tmp_path / "profiles" / "kubeless-verify" / "hello.yaml").unlink()
    with pytest.raises(ConfigError) as info:
        check_files(session)
    text = info.value.message
    assert "verify[hello].call.fixture: 'kubeless-verify/hello.yaml' is not a file" in text
    assert str(session.workspace / "kubeless-verify" / "hello.yaml") in text
    assert str(tmp_path / "profiles" / "kubeless-verify" / "hello.yaml") in text


def test_the_bundled_hello_fixture_is_a_python_function_answering_hello_world():
    (fn,) = yaml.safe_load_all((REPO / "devloop/profile/bundled/kubeless-verify/hello.yaml").read_text())
    assert fn["kind"] == "Function" and fn["spec"]["handler"] == "hello.foobar"
    assert fn["spec"]["runtime"].startswith("python")
    scope: dict = {}
    exec(fn["spec"]["function"], scope)  # the fixture's own source
    assert scope["foobar"]({}, {}) == "hello world"


# -- where results go: run_cycle, watch, status ------------------------------------------------------------
def test_run_cycle_verifies_after_the_rollout_and_a_failure_carries_the_deploy(tmp_path, monkeypatch):
    order = []
    monkeypatch.setattr(steps, "build_components", lambda *a, **k: [])
    monkeypatch.setattr(steps, "render", lambda *a, **k: order.append("render"))
    monkeypatch.setattr(steps, "apply_objects", lambda *a, **k: CycleResult(changed_objects=["x"]))
    monkeypatch.setattr(steps, "wait_rollout", lambda *a, **k: order.append("rollout"))
    kube = FakeKube([pod()], objects={("Service", NS, "hello"): SERVICE}, proxy=[(200, "nope")])
    session = make_session(tmp_path, [{**CALL, "timeout": 0.5}], kube)
    with pytest.raises(VerifyFailed) as info:
        steps.run_cycle(session)
    assert order == ["render", "rollout"] and kube.proxied
    assert info.value.cycle is not None and info.value.cycle.changed_objects == ["x"]
    assert steps.run_cycle(session, verify=False).changed_objects == ["x"]


def _watch_session(tmp_path, monkeypatch, outcomes):
    session = make_session(tmp_path, [CALL], FakeKube())
    monkeypatch.setattr(steps, "prepare_cluster", lambda *a, **k: None)

    def run_cycle(session, **kwargs):
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(steps, "run_cycle", run_cycle)
    monkeypatch.setattr(steps, "component_tags", lambda session, names: {"function-controller": "fc:dev-1"})
    return session


def test_watch_reports_a_failed_verify_goes_on_and_the_next_save_retries(tmp_path, monkeypatch, capsys):
    deployed = CycleResult(tags={"function-controller": "fc:dev-1"}, built=["function-controller"])
    failed = VerifyFailed(
        [verify_run.CheckResult(name="hello", kind="call", target="GET ...", status="failed", message="HTTP 500")],
        cycle=deployed,
    )
    session = _watch_session(tmp_path, monkeypatch, [failed, CycleResult(tags=deployed.tags)])
    stats = WatchStats()

    cycle.run(session, stats, components=["function-controller"], strategy="apply", prepare=True)
    assert stats.failed == 1 and stats.verify_failed
    assert stats.retry_at is None and stats.attempts == 0 and not stats.needs_prepare  # no retry schedule
    assert stats.tags == deployed.tags  # it was deployed
    # the same fingerprints would skip the cycle; after a failed verify the save runs it (and the checks) again
    assert not cycle.unchanged(session, stats, ["function-controller"])
    evs = events(capsys)
    (cyc,) = [e for e in evs if e["event"] == "cycle"]
    assert cyc["status"] == "failed" and cyc["kind"] == "VerifyFailed" and "HTTP 500" in cyc["message"]
    assert not [e for e in evs if e["event"] == "retry_scheduled"]

    cycle.run(session, stats, components=["function-controller"], strategy="apply", prepare=False)
    assert not stats.verify_failed and stats.last_error is None
    assert cycle.unchanged(session, stats, ["function-controller"])


def test_watch_verifies_after_a_live_update(tmp_path, capsys):
    from types import SimpleNamespace

    kube = FakeKube([pod()], objects={("Service", NS, "hello"): SERVICE}, proxy=[(200, "bye")])
    session = make_session(tmp_path, [{**CALL, "timeout": 0.3}], kube)

    class Live:
        def try_update(self, components, paths):
            record = SimpleNamespace(live_tag="fc:live-1", files=["/kubeless-function-controller"])
            return SimpleNamespace(updated={"function-controller": record}, full={}, seconds=0.5)

    stats = WatchStats()
    assert cycle.live_update(session, stats, Live(), ["function-controller"], []) == []
    assert stats.verify_failed and kube.proxied
    verify = [e for e in events(capsys) if e["event"] == "verify"]
    assert verify[0]["trigger"] == "live-update" and verify[0]["status"] == "failed"


def test_status_shows_the_last_results_and_a_failure_makes_it_unhealthy(tmp_path):
    kube = FakeKube([pod()], objects={("Service", NS, "hello"): SERVICE}, proxy=[(500, "boom")], logs={})
    session = make_session(tmp_path, [{**CALL, "timeout": 0.3}], kube)
    section = status_cmd._verify(session)
    assert section["checks"] == [] and "not run yet" in section["note"]
    with pytest.raises(VerifyFailed):
        run_checks(session)
    section = status_cmd._verify(session)
    (check,) = section["checks"]
    assert check["name"] == "hello" and check["status"] == "failed" and section["trigger"] == "deploy"
    lines = views.verify_lines(section)
    assert lines[0].startswith("verify     0 of 1 passed (after the deploy at ")
    assert lines[1].startswith("  hello: FAILED in ") and "GET kubeless/services/hello" in lines[1]
    assert any("the last was HTTP 500: 'boom'" in line for line in lines)
    assert any("pod kubeless/hello-7d9f-abcde: ready" in line for line in lines)
    report = {
        "cluster": {"state": "Running"},
        "docker_env": {"matches": True},
        "deployments": [],
        "stuck": [],
        "components": [],
        "verify": section,
    }
    assert status_cmd._healthy(report) is False
    report["verify"] = {"checks": [{**check, "status": "ok"}]}
    assert status_cmd._healthy(report) is True
    record = json.loads(verify_state.state_file(session.cache_dir, session.context).read_text())
    assert record["format"] == 1 and record["checks"][0]["log_tail"]


# -- the profile ---------------------------------------------------------------------------------------------
def profile_error(tmp_path: Path, checks) -> tuple[Path, str]:
    data = yaml.safe_load(BUNDLED.read_text())
    data["verify"] = checks
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ConfigError) as info:
        load_profile(str(path), cwd=tmp_path)
    assert info.value.exit_code == 2
    return path, str(info.value)


def _line_of(path: Path, text: str) -> int:
    return next(i for i, ln in enumerate(path.read_text().splitlines(), 1) if text in ln)


def test_profile_errors_name_the_file_line_and_key_path(tmp_path):
    path, msg = profile_error(tmp_path, [{"name": "hello", "call": {"service": "hello", "servce": "hello"}}])
    assert msg.startswith(f"{path}:{_line_of(path, 'servce')}: verify[hello].call.servce: unknown key 'servce'"), msg

    _, msg = profile_error(tmp_path, [{"name": "hello"}])
    assert "verify[hello]: expected exactly one of 'call', 'http' or 'job', found none" in msg

    _, msg = profile_error(tmp_path, [{"name": "hello", "call": {"service": "hello"}, "job": {"manifest": "j.yaml"}}])
    assert "found call, job" in msg

    _, msg = profile_error(tmp_path, [{"name": "in", "http": {"url": "http://{nodeip}/"}}])
    assert "verify[in].http.url: expected only the placeholders {node_ip} in the URL, found {nodeip}" in msg

    _, msg = profile_error(tmp_path, [{"name": "hello", "call": {"service": "hello", "expect": {"body": "(hello"}}}])
    assert "verify[hello].call.expect.body: expected a regular expression (Python `re`), found '(hello'" in msg

    _, msg = profile_error(tmp_path, [{"name": "hello", "call": {"service": "hello", "fixture": "../x.yaml"}}])
    assert "verify[hello].call.fixture: expected a verify fixture to stay inside the workspace" in msg

    _, msg = profile_error(tmp_path, [{"name": "hello", "call": {"service": "hello", "path": "x"}}])
    assert "verify[hello].call.path: expected a path starting with '/', found 'x'" in msg

    _, msg = profile_error(
        tmp_path, [{"name": "a", "job": {"manifest": "j.yaml"}}, {"name": "a", "job": {"manifest": "k.yaml"}}]
    )
    assert "verify[a].name: expected unique check names, found 'a' again (first at verify[0])" in msg

    _, msg = profile_error(tmp_path, [{"name": "a", "timeout": 0, "job": {"manifest": "j.yaml"}}])
    assert "verify[a].timeout" in msg


def test_a_profile_without_verify_runs_no_checks(tmp_path, capsys):
    session = make_session(tmp_path, [], FakeKube())
    assert run_checks(session) == []
    assert not [e for e in events(capsys) if e["event"] == "verify"]
