"""The client-side apply skips its write when a JSON merge patch (RFC 7386) would change nothing."""

import pytest

from devloop.adapters.kube.objects import _merge_changes_nothing


@pytest.mark.parametrize(
    "live, patch, noop",
    [
        ({"a": 1, "b": {"c": 2, "d": 3}}, {"b": {"c": 2}}, True),  # a subset: the server's additions stay
        ({"a": 1}, {"a": 2}, False),  # a changed scalar
        ({"a": [1, 2, 3]}, {"a": [1, 2]}, False),  # lists are replaced whole
        ({"a": [{"x": 1, "y": 2}]}, {"a": [{"x": 1}]}, False),  # ... even when the server defaulted items
        ({"a": 1}, {"b": None}, True),  # deleting an absent key
        ({"a": 1, "b": 2}, {"b": None}, False),  # deleting a present key
        ({"a": 1}, {"b": {}}, False),  # merging {} creates the key
        ({"a": "x"}, {"a": {"k": "v"}}, False),  # a scalar becomes a mapping
        (
            {"metadata": {"name": "n", "uid": "u", "labels": {"l": "1"}}},
            {"metadata": {"name": "n", "labels": {"l": "1"}}},
            True,
        ),
        ({"data": {"k": "1"}}, {"data": {"k": 1}}, False),  # "1" and 1 differ in JSON
        ({"spec": {"paused": 1}}, {"spec": {"paused": True}}, False),  # ... and so do 1 and true
        ({"a": [True]}, {"a": [1]}, False),
    ],
)
def test_merge_changes_nothing(live, patch, noop):
    assert _merge_changes_nothing(live, patch) is noop
