"""A rollout judged done while a container of its new pods has already exited or restarted is a failure:
Ready for a moment is not running (diagnosis.crashed_containers; the rig test is in
tests/integration/test_kube_adapter.py)."""

from __future__ import annotations

from devloop.adapters.kube.diagnosis import crashed_containers, is_fresh


def _pod(
    name: str,
    *,
    ready: bool = True,
    restarts: int = 0,
    state: dict | None = None,
    last: dict | None = None,
    deleting: bool = False,
) -> dict:
    meta = {"name": name, "namespace": "ns"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {
        "metadata": meta,
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [
                {
                    "name": "main",
                    "restartCount": restarts,
                    "state": state or {"running": {}},
                    "lastState": {"terminated": last} if last else {},
                }
            ],
        },
    }


def test_a_running_pod_that_never_restarted_is_fine() -> None:
    assert crashed_containers([_pod("a")]) == []


def test_a_restart_during_the_rollout_fails_it_with_the_exit_code() -> None:
    assert is_fresh(_pod("a", ready=False, state={"waiting": {"reason": "ContainerCreating"}}))
    texts = crashed_containers([_pod("a", restarts=1, last={"exitCode": 3, "reason": "Error"})])
    assert texts == ["pod ns/a container main restarted 1 time(s) during the rollout (last exit code 3, Error)"]


def test_an_exited_or_crash_looping_container_fails_it() -> None:
    exited = _pod("a", ready=True, state={"terminated": {"exitCode": 1, "reason": "Error"}})
    looping = _pod(
        "b", ready=False, restarts=2, state={"waiting": {"reason": "CrashLoopBackOff"}}, last={"exitCode": 2}
    )
    texts = crashed_containers([exited, looping])
    assert texts[0] == "pod ns/a container main: terminated (exit code 1, Error)"
    assert texts[1].startswith("pod ns/b container main: CrashLoopBackOff (exit code 2)")


def test_history_is_not_a_crash() -> None:
    """Restarts from before the wait (pods Ready then, e.g. after an engine restart), a container still
    being created, and pods on their way out do not count."""
    old = _pod("old", restarts=4)
    assert not is_fresh(old)  # Ready when the wait began: not this rollout's pod
    # restarted before the wait and not Ready (the engine was restarted under it): not fresh either
    assert not is_fresh(_pod("bounced", ready=False, restarts=1, state={"waiting": {"reason": "ContainerCreating"}}))
    creating = _pod("new", ready=False, state={"waiting": {"reason": "ContainerCreating"}})
    leaving = _pod("gone", deleting=True, state={"terminated": {"exitCode": 137}})
    assert crashed_containers([old, creating, leaving], settled={("ns", "old")}) == []
