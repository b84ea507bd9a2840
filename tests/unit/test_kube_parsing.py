"""Pure parts of the Kube adapter: kubeconfig reading, rollout status, pod diagnosis."""

from __future__ import annotations

import pytest
import yaml

from devloop.adapters import kube
from devloop.base.errors import ConfigError


def _kubeconfig(tmp_path, name, server, current="other"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "clusters": [{"name": name, "cluster": {"server": server}}],
                "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
                "users": [{"name": name, "user": {}}],
                "current-context": current,
            }
        )
    )
    return path


def test_context_server_reads_the_named_context_not_the_current(tmp_path):
    path = _kubeconfig(tmp_path, "devloop-kubeless", "https://192.168.49.2:8443", current="prod")
    assert kube.context_server("devloop-kubeless", str(path)) == "https://192.168.49.2:8443"


def test_context_server_merges_like_kubectl_first_file_wins(tmp_path, monkeypatch):
    a = _kubeconfig(tmp_path, "p", "https://a:8443")
    b_dir = tmp_path / "b"
    b_dir.mkdir()
    b = _kubeconfig(b_dir, "p", "https://b:8443")
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'missing'}:{a}:{b}")
    assert kube.context_server("p", None) == "https://a:8443"
    assert kube.kubeconfig_paths(None)[0] == tmp_path / "missing"


def test_context_server_missing_context(tmp_path):
    path = _kubeconfig(tmp_path, "p", "https://a:8443")
    with pytest.raises(ConfigError) as info:
        kube.context_server("devloop-kubeless", str(path))
    assert "devloop-kubeless" in str(info.value) and str(path) in str(info.value)
    assert "devloop up" in info.value.hint


def test_default_kubeconfig_is_home(monkeypatch, tmp_path):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert kube.kubeconfig_paths(None) == [tmp_path / ".kube" / "config"]


def _deploy(**status):
    return {
        "metadata": {"name": "d", "namespace": "ns", "generation": status.pop("generation", 2)},
        "spec": {"replicas": 2},
        "status": {"observedGeneration": 2, **status},
    }


@pytest.mark.parametrize(
    ("status", "done", "words"),
    [
        ({"generation": 3}, False, "observe the new spec"),
        ({"updatedReplicas": 1}, False, "1 of 2 new replicas have been updated"),
        ({"updatedReplicas": 2, "replicas": 3}, False, "1 old replicas are pending termination"),
        ({"updatedReplicas": 2, "replicas": 2, "availableReplicas": 1}, False, "1 of 2 updated replicas are available"),
        ({"updatedReplicas": 2, "replicas": 2, "availableReplicas": 2}, True, "successfully rolled out"),
        ({"conditions": [{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}]}, False, "progress deadline"),
    ],
)
def test_rollout_status_like_kubectl(status, done, words):
    got_done, message = kube.rollout_status(_deploy(**status))
    assert got_done is done and words in message


def _pod(phase="Pending", conditions=(), statuses=(), node=None):
    return {
        "metadata": {"name": "web-abc", "namespace": "ns"},
        "spec": {"nodeName": node},
        "status": {"phase": phase, "conditions": list(conditions), "containerStatuses": list(statuses)},
    }


def test_pod_ready_has_no_problem():
    assert kube.pod_problem(_pod("Running", [{"type": "Ready", "status": "True"}])) is None


def test_pod_image_pull_backoff_names_pod_image_and_message():
    status = {
        "name": "main",
        "image": "app:latest",
        "state": {"waiting": {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "app:latest"'}},
    }
    reason, text = kube.pod_problem(_pod(statuses=[status], node="n1"))
    assert reason == "ImagePullBackOff"
    assert "pod ns/web-abc container main: ImagePullBackOff" in text and "app:latest" in text


def test_pod_crashloop_includes_last_exit():
    status = {
        "name": "main",
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}},
        "lastState": {"terminated": {"exitCode": 2, "reason": "Error"}},
    }
    reason, text = kube.pod_problem(_pod("Running", statuses=[status]))
    assert reason == "CrashLoopBackOff" and "last exit code 2" in text


def test_pod_unschedulable_quotes_the_scheduler():
    cond = {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": "0/1 nodes are available: 1 Insufficient cpu.",
    }
    reason, text = kube.pod_problem(_pod(conditions=[cond]))
    assert reason == "Unschedulable" and "Insufficient cpu" in text


def test_pod_pending_without_node():
    assert kube.pod_problem(_pod())[1] == "pod ns/web-abc is Pending (not yet scheduled)"


def test_selector_string():
    sel = {
        "matchLabels": {"b": "2", "a": "1"},
        "matchExpressions": [{"key": "c", "operator": "In", "values": ["x", "y"]}, {"key": "d", "operator": "Exists"}],
    }
    assert kube.label_selector(sel) == "a=1,b=2,c in (x,y),d"


def test_objref_text():
    assert str(kube.ObjRef("kubeless.io/v1beta1", "Function", "default", "hello")) == "Function default/hello"
    assert str(kube.ObjRef("v1", "Namespace", None, "kubeless")) == "Namespace kubeless"


def test_context_info_reads_minikube_provider(tmp_path):
    path = tmp_path / "config"
    path.write_text(
        yaml.safe_dump(
            {
                "clusters": [
                    {
                        "name": "p",
                        "cluster": {
                            "server": "https://192.168.49.2:8443",
                            "extensions": [
                                {
                                    "name": "cluster_info",
                                    "extension": {
                                        "last-update": "Thu, 14 Mar 2024 21:38:07 GMT",
                                        "provider": "minikube.sigs.k8s.io",
                                        "version": "v1.32.0",
                                    },
                                }
                            ],
                        },
                    }
                ],
                "contexts": [{"name": "p", "context": {"cluster": "p", "user": "p", "namespace": "default"}}],
                "users": [{"name": "p", "user": {}}],
            }
        )
    )
    info = kube.context_info("p", str(path))
    assert info == {
        "server": "https://192.168.49.2:8443",
        "cluster": "p",
        "user": "p",
        "namespace": "default",
        "provider": "minikube.sigs.k8s.io",
        "unlike_minikubes_entry": None,  # the context leads to the first file's entry named after the profile
    }
