"""`devloop status` and `devloop logs` ask for a Deployment's pods with its whole selector.

matchExpressions used to be dropped (only matchLabels were joined), which selects pods the
Deployment does not own, e.g. the canary next to it. Both commands now go through
devloop.adapters.kube.workload_selector.
"""

from __future__ import annotations

from types import SimpleNamespace

from devloop.commands import logs, status
from devloop.manifests import render as manifests
from devloop.profile.lookup import load_profile
from support.fakes import FakeKube

SELECTOR = {
    "matchLabels": {"app": "fc"},
    "matchExpressions": [
        {"key": "track", "operator": "NotIn", "values": ["canary"]},
        {"key": "legacy", "operator": "DoesNotExist"},
    ],
}
WANTED = "app=fc,track notin (canary),!legacy"


def _deployment(*, ready: bool) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "function-controller", "namespace": "kubeless", "generation": 1},
        "spec": {"replicas": 1, "selector": SELECTOR},
        "status": {
            "observedGeneration": 1,
            "replicas": 1,
            "updatedReplicas": 1,
            "availableReplicas": 1 if ready else 0,
        },
    }


def _pod(image: str, *, deleting: bool = False) -> dict:
    meta = {"name": "fc-abc", "namespace": "kubeless"}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-28T21:00:00Z"
    return {
        "metadata": meta,
        "spec": {"containers": [{"name": "main", "image": image}]},
        "status": {
            "phase": "Pending",
            "containerStatuses": [
                {"name": "main", "image": image, "state": {"waiting": {"reason": "ErrImageNeverPull"}}}
            ],
        },
    }


def test_status_asks_for_pods_with_match_expressions(tmp_path):
    session = SimpleNamespace(profile=SimpleNamespace(namespace="kubeless"))
    deploy = _deployment(ready=False)
    kube = FakeKube(deployment=deploy, selector=WANTED, pods=[_pod("kubeless-function-controller:dev-1")])
    [entry] = status._deployments(session, kube, [deploy], [deploy])
    assert kube.queries == [("kubeless", WANTED)]
    assert entry["state"] == "progressing"
    assert entry["pods"] == [
        "pod kubeless/fc-abc container main: ErrImageNeverPull [image kubeless-function-controller:dev-1]"
    ]


def test_logs_finds_containers_through_match_expressions(tmp_path, monkeypatch):
    profile = load_profile("kubeless", cwd=tmp_path)
    session = SimpleNamespace(profile=profile, workspace=tmp_path)
    deploy = _deployment(ready=True)
    monkeypatch.setattr(manifests, "load_manifests", lambda prof, ws: [deploy])
    image = "kubeless-function-controller:dev-1"
    kube = FakeKube(deployment=deploy, selector=WANTED, pods=[_pod(image), _pod(image, deleting=True)])
    targets = logs.find_targets(session, kube, ["function-controller"])
    assert kube.queries == [("kubeless", WANTED)]
    assert [(t.namespace, t.pod, t.container, t.image, t.component) for t in targets] == [
        ("kubeless", "fc-abc", "main", image, "function-controller")
    ]
