"""Kinds to resources by asking only for the group-version at hand (`GET /apis/<group>/<version>`).

The official dynamic client discovers every group of the server before it answers one question (some
thirty requests on Kubernetes 1.21, and the import of `kubernetes`); a manifest names a handful of
group-versions, so devloop asks for those, once per process.
"""

from __future__ import annotations

import threading
from typing import Any


def group_version_path(api_version: str) -> str:
    return "/api/v1" if api_version == "v1" else f"/apis/{api_version}"


class GroupVersions:
    def __init__(self, transport: Any):
        self.transport = transport
        self._lists: dict[str, list[dict]] = {}
        self._lock = threading.Lock()

    def _resources(self, api_version: str, *, refresh: bool) -> tuple[list[dict], bool]:
        """The group-version's resources, and whether they were just asked for."""
        with self._lock:
            if not refresh and api_version in self._lists:
                return self._lists[api_version], False
        payload = self.transport.get(group_version_path(api_version))  # None: the server has no such group-version
        found = [r for r in (payload or {}).get("resources") or [] if isinstance(r, dict)]
        with self._lock:
            self._lists[api_version] = found
        return found, True

    def lookup(self, api_version: str, kind: str) -> tuple[str, bool] | None:
        """(plural name, namespaced) of `kind` in `api_version`; None when the server does not serve it.
        A miss asks again once: a CRD created since the first answer adds its kinds."""
        for refresh in (False, True):
            resources, fresh = self._resources(api_version, refresh=refresh)
            for r in resources:
                if r.get("kind") == kind and "/" not in str(r.get("name", "")):  # not a subresource
                    return str(r["name"]), bool(r.get("namespaced"))
            if fresh:
                return None
        return None

    def forget(self) -> None:
        with self._lock:
            self._lists.clear()
