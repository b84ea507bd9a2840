"""Verify after deploy on the test cluster: `devloop up` over the sample workspace, then a `call` check whose
fixture (a small HTTP server and its Service) devloop applies, waits for and calls through the API server's
service proxy; a check that passes, one that fails and shows the server's log tail, and `status` showing both.

The server is busybox's httpd from an image the workspace builds (function-image-builder's image is busybox):
the first `up` builds it, and the test tags it under a fixed name the fixture can use.
"""

from __future__ import annotations

import signal
import subprocess
import threading
from pathlib import Path

import pytest
import yaml

from support import parse_events, run_devloop, spawn_devloop, wait_until

PROFILE = "devloop-verify-e2e"
NS = "kubeless"
IMAGE = "devloop-verify/httpd:e2e"

pytestmark = [pytest.mark.rig, pytest.mark.destructive]

SERVER = [
    {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "verify-httpd", "labels": {"app": "verify-httpd"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "verify-httpd"}},
            "template": {
                "metadata": {"labels": {"app": "verify-httpd"}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {
                            "name": "httpd",
                            "image": IMAGE,
                            "imagePullPolicy": "Never",
                            "command": [
                                "/bin/busybox",
                                "sh",
                                "-c",
                                "/bin/busybox mkdir -p /www && echo 'hello world' > /www/index.html"
                                " && echo 'verify-httpd: serving /www on :8080'"
                                " && exec /bin/busybox httpd -f -vv -p 8080 -h /www",
                            ],
                            "ports": [{"name": "http", "containerPort": 8080}],
                        }
                    ],
                },
            },
        },
    },
    {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "verify-httpd"},
        "spec": {"selector": {"app": "verify-httpd"}, "ports": [{"name": "http", "port": 8080, "targetPort": 8080}]},
    },
]


def devloop(cluster, workspace: Path, *args: str, profile: Path | None = None, timeout: float = 900):
    return run_devloop(
        *args,
        workspace=workspace,
        profile=profile or workspace.parent / "profile.yaml",
        env=cluster.env,
        timeout=timeout,
    )


def profile_with(workspace: Path, name: str, checks: list[dict]) -> Path:
    data = yaml.safe_load((workspace.parent / "profile.yaml").read_text())
    data["verify"] = checks
    path = workspace.parent / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def check(body: str, *, timeout: float = 90) -> dict:
    return {
        "name": "httpd",
        "timeout": timeout,
        "call": {
            "fixture": "verify/httpd.yaml",
            "service": "verify-httpd",
            "port": "http",
            "path": "/index.html",
            "expect": {"status": 200, "body": body},
        },
    }


@pytest.fixture(scope="module")
def ready(cluster, workspace):
    """The cluster up with the bundled profile (no checks), and the server's image under its fixed name."""
    done = devloop(cluster, workspace, "up")
    assert done.returncode == 0, done.tail()
    built = done.result["tags"]["function-image-builder"]
    cluster.docker("tag", built, IMAGE)
    (workspace / "verify").mkdir()
    (workspace / "verify" / "httpd.yaml").write_text(yaml.safe_dump_all(SERVER, sort_keys=False))
    return done


def _verify_event(run) -> dict:
    (event,) = [e for e in run.events if e.get("event") == "verify"]
    return event


def test_up_applies_the_fixture_and_the_call_passes_after_the_rollout(ready, cluster, workspace):
    run = devloop(cluster, workspace, "up", profile=profile_with(workspace, "passing", [check("hello world")]))
    assert run.returncode == 0, run.tail()
    steps = run.steps()
    assert steps["rollout"] == "ok" and steps["verify httpd"] == "ok"
    names = [e["step"] for e in run.events if e.get("event") == "step" and e["status"] != "start"]
    assert names.index("verify httpd") > names.index("rollout")  # after the deploy
    event = _verify_event(run)
    assert event["status"] == "ok" and event["trigger"] == "deploy"
    (result,) = event["checks"]
    assert result["status"] == "ok" and result["answer"] == "HTTP 200: 'hello world'"
    assert result["after_ready"] is not None
    step = next(
        e for e in run.events if e.get("event") == "step" and e["step"] == "verify httpd" and e["status"] == "ok"
    )
    print(
        f"verify httpd: {step['seconds']:.3f}s in all, {result['after_ready']:.3f}s from ready pods to the answer, "
        f"{result['attempts']} attempts"
    )
    # the fixture is in the profile's namespace, and it is what answered
    deploy = cluster.kubectl_json("get", "deployment", "verify-httpd", "-n", NS)
    assert deploy["status"]["readyReplicas"] == 1

    st = devloop(cluster, workspace, "status", profile=workspace.parent / "passing.yaml").result
    (shown,) = st["verify"]["checks"]
    assert shown["name"] == "httpd" and shown["status"] == "ok"

    again = devloop(cluster, workspace, "up", profile=workspace.parent / "passing.yaml")
    assert again.returncode == 0, again.tail()
    assert _verify_event(again)["checks"][0]["attempts"] == 1  # nothing changed: it answers at once
    step = next(
        e for e in again.events if e.get("event") == "step" and e["step"] == "verify httpd" and e["status"] == "ok"
    )
    print(f"verify httpd, fixture unchanged: {step['seconds']:.3f}s after the rollout step")


def test_a_failing_call_fails_up_with_the_servers_log_tail(ready, cluster, workspace):
    run = devloop(cluster, workspace, "up", profile=profile_with(workspace, "failing", [check("goodbye", timeout=6)]))
    assert run.returncode == 1, run.tail()
    assert run.steps()["verify httpd"] == "failed"
    error = run.last
    assert error["event"] == "error" and error["kind"] == "VerifyFailed" and error["exit_code"] == 1
    message = error["message"]
    assert "verify failed: httpd (1 of 1 checks)" in message
    assert "no answer matched (HTTP 200, body ~ /goodbye/) within 6s" in message
    assert "the last was HTTP 200: 'hello world'" in message
    assert f"pod {NS}/verify-httpd-" in message
    # the container's own log, its last 20 lines: httpd's lines for the check's requests
    assert "log of container httpd (last 20 lines):" in message
    assert ": url:/index.html" in message and ": response:200" in message
    (result,) = _verify_event(run)["checks"]
    assert result["status"] == "failed" and any("url:/index.html" in line for line in result["log_tail"])

    st = devloop(cluster, workspace, "status", profile=workspace.parent / "failing.yaml").result
    assert st["verify"]["checks"][0]["status"] == "failed" and st["healthy"] is False


def test_watch_reports_a_failing_check_goes_on_and_the_next_save_retries(ready, cluster, workspace):
    profile = profile_with(workspace, "watching", [check("goodbye", timeout=5)])
    proc = spawn_devloop(
        "watch", "--no-live-update", workspace=workspace, profile=profile, env=cluster.env, json_mode=True
    )
    events: list[dict] = []
    threading.Thread(target=lambda: [events.extend(parse_events(line)) for line in proc.stdout], daemon=True).start()

    def verify_events(status: str) -> list[dict]:
        if proc.poll() is not None:
            raise AssertionError(f"devloop watch exited {proc.returncode}: {proc.stderr.read()[-3000:]}")
        return [e for e in list(events) if e.get("event") == "verify" and e["status"] == status]

    try:
        # the first cycle deploys, its check fails: shown, and watch goes on without a timed retry
        wait_until(lambda: verify_events("failed"), 300, "the first cycle's failing check")
        cycle = wait_until(lambda: [e for e in list(events) if e.get("event") == "cycle"], 30, "the cycle event")[0]
        assert cycle["status"] == "failed" and cycle["kind"] == "VerifyFailed", cycle
        assert ": url:/index.html" in cycle["message"]  # the log tail
        assert not [e for e in events if e.get("event") == "retry_scheduled"]
        assert proc.poll() is None

        # a save that changes nothing would skip the cycle; after a failed check it runs it, and the check again
        main = workspace / "http-trigger" / "cmd" / "http-trigger-controller" / "main.go"
        main.write_text(main.read_text())
        wait_until(lambda: len(verify_events("failed")) >= 2, 120, "the check run again after an unchanged save")

        # the fix, saved: the profile is reloaded, a cycle runs, the check passes
        profile_with(workspace, "watching", [check("hello world", timeout=30)])
        (passed,) = wait_until(lambda: verify_events("ok"), 120, "the check to pass after the profile was fixed")
        assert passed["checks"][0]["answer"] == "HTTP 200: 'hello world'"
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
