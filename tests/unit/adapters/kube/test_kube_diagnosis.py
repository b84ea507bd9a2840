"""devloop.adapters.kube.diagnosis: the one label-selector helper and the accessors."""

from __future__ import annotations

import pytest

from devloop.adapters.kube import diagnosis
from devloop.base.errors import ClusterError


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ({"matchLabels": {"b": "2", "a": "1"}}, "a=1,b=2"),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]}]}, "tier in (web,api)"),
        ({"matchExpressions": [{"key": "track", "operator": "NotIn", "values": ["canary"]}]}, "track notin (canary)"),
        ({"matchExpressions": [{"key": "app", "operator": "Exists"}]}, "app"),
        ({"matchExpressions": [{"key": "legacy", "operator": "DoesNotExist"}]}, "!legacy"),
        (
            {
                "matchLabels": {"app": "fc"},
                "matchExpressions": [
                    {"key": "tier", "operator": "In", "values": ["web"]},
                    {"key": "legacy", "operator": "DoesNotExist"},
                ],
            },
            "app=fc,tier in (web),!legacy",
        ),
        ({}, ""),
        (None, ""),
    ],
)
def test_label_selector_string_form(selector, expected):
    assert diagnosis.label_selector(selector) == expected


def test_unknown_operator_is_an_error_not_a_wider_selection():
    with pytest.raises(ClusterError, match=r"operator 'Gt' \(key 'x'\) is not one of In, NotIn, Exists, DoesNotExist"):
        diagnosis.label_selector({"matchExpressions": [{"key": "x", "operator": "Gt", "values": ["1"]}]})


def test_workload_selector_reads_spec_selector_with_expressions():
    deploy = {
        "spec": {
            "selector": {
                "matchLabels": {"app": "fc"},
                "matchExpressions": [{"key": "track", "operator": "NotIn", "values": ["canary"]}],
            }
        }
    }
    assert diagnosis.workload_selector(deploy) == "app=fc,track notin (canary)"
    assert diagnosis.workload_selector({"spec": None}) == ""


def test_accessors_tolerate_missing_and_null_parts():
    for obj in ({}, {"metadata": None, "spec": None, "status": None}, None):
        assert diagnosis.meta_of(obj) == {} and diagnosis.spec_of(obj) == {} and diagnosis.status_of(obj) == {}
        assert diagnosis.namespace_of(obj) is None
        assert diagnosis.is_deleting(obj) is False
    pod = {"metadata": {"name": "p", "namespace": "", "deletionTimestamp": "2026-11-28T21:00:00Z"}}
    assert diagnosis.namespace_of(pod) is None  # "" means cluster-scoped, as ObjRef has it
    assert diagnosis.is_deleting(pod) is True


def test_describe_remaining_names_finalizers_deletion_owner_and_namespace_conditions():
    from devloop.adapters.kube import ObjRef

    ns = {
        "metadata": {
            "finalizers": ["kubernetes"],
            "deletionTimestamp": "t0",
            "ownerReferences": [{"kind": "Thing", "name": "a"}],
        },
        "status": {
            "conditions": [
                {
                    "type": "NamespaceContentRemaining",
                    "status": "True",
                    "reason": "SomeResourcesRemain",
                    "message": "functions.kubeless.io has 1",
                },
                {"type": "Other", "status": "False"},
            ]
        },
    }
    text = diagnosis.describe_remaining(ns, ObjRef("v1", "Namespace", None, "kubeless"))
    assert text == (
        "Namespace kubeless, finalizers ['kubernetes'], deletionTimestamp t0, owner Thing a, conditions: "
        "NamespaceContentRemaining=True (SomeResourcesRemain): functions.kubeless.io has 1"
    )


def test_content_ignores_what_every_write_changes():
    a = {"metadata": {"name": "x", "resourceVersion": "1", "managedFields": [{}]}, "data": {"k": "v"}}
    b = {"metadata": {"name": "x", "resourceVersion": "2"}, "data": {"k": "v"}}
    assert diagnosis.content(a) == diagnosis.content(b)
    assert diagnosis.content(a) != diagnosis.content({**b, "data": {"k": "w"}})
    assert a["metadata"]["resourceVersion"] == "1"  # the input is not changed
