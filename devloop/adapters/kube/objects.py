"""Objects of any kind: read, create, server-side apply, delete and wait, namespaces, CRDs, lists."""

from __future__ import annotations

import builtins
import json
import re
import time
from collections.abc import Callable
from typing import Any

from devloop.base.errors import ClusterError
from devloop.base.waits import wait_for

from .diagnosis import conditions_text, content, describe_remaining, meta_of, status_of
from .discovery import CRDS, NAMESPACES, Discovery, ObjRef, Resource
from .transport import (
    DELETE_IN_BACKGROUND,
    METADATA_ONLY,
    ApiError,
    Conflict,
    NotFound,
    Transient,
    Transport,
    status_text,
)

OnEvent = Callable[[str, str, "str | None", "str | None", Any], None]

# List-poll interval of the waits: short, so a clean of objects the API server removes at once
# does not sit out a whole second.
POLL = 0.2


def _copy(obj: dict, namespace: str | None) -> dict:
    body = json.loads(json.dumps(obj))
    if namespace:
        body.setdefault("metadata", {})["namespace"] = namespace
    return body


def _without_status(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k != "status"}


def _merge_changes_nothing(live: Any, patch: Any) -> bool:
    """Whether a JSON merge patch (RFC 7386) of `patch` onto `live` would leave it as it is."""
    if not isinstance(patch, dict):  # as JSON: True == 1 in Python, not on the wire
        return json.dumps(live, sort_keys=True) == json.dumps(patch, sort_keys=True)
    if not isinstance(live, dict):
        return False
    for key, value in patch.items():
        if value is None:
            if key in live:
                return False
        elif key not in live or not _merge_changes_nothing(live[key], value):
            return False
    return True


class Objects:
    def __init__(self, transport: Transport, discovery: Discovery):
        self.transport = transport
        self.discovery = discovery
        self._client_side = False  # server-side apply was refused with 415 (see server_side_apply)

    # -- single objects ----------------------------------------------------------------------

    def get(self, obj: dict) -> dict | None:
        try:
            res, namespace, name = self.discovery.locate(obj)
        except ClusterError:
            return None  # its kind is not served: it cannot exist
        return self.transport.get(res.path(namespace, name))

    def exists(self, obj: dict) -> bool:
        return self.get(obj) is not None

    def create(self, obj: dict) -> None:
        res, namespace, name = self.discovery.locate(obj)
        try:
            self.transport.request("POST", res.path(namespace), body=_copy(obj, namespace))
        except Conflict as exc:
            ref = ObjRef(res.api_version, res.kind, namespace, name)
            raise Conflict(
                f"{ref} already exists",
                status=exc.status,
                reason=exc.reason,
                hint="delete it first (`devloop apply --strategy recreate` does) or use `--strategy apply`",
            ) from None

    def server_side_apply(
        self,
        obj: dict,
        *,
        field_manager: str = "devloop",
        force: bool = True,
        on_fallback: Callable[[str], None] | None = None,
        known_off: bool = False,
    ) -> bool:
        """Server-side apply; returns whether the object changed (created, or its content differs).

        An API server with the ServerSideApply feature gate off (Kubernetes <= 1.21 can turn it off) refuses
        the apply patch type with 415; from then on this client creates the object or merges the manifest into
        it instead (_create_or_merge), and says so once through `on_fallback`. `known_off`: the caller started
        the cluster with the gate off (the profile's feature_gates), so the first write need not be refused."""
        res, namespace, name = self.discovery.locate(obj)
        path = res.path(namespace, name)
        before = self.transport.get(path)
        body = _copy(obj, namespace)
        if not self._client_side and not known_off:
            try:
                after = self.transport.request(
                    "PATCH",
                    path,
                    query={"fieldManager": field_manager, "force": "true" if force else None},
                    body=body,
                    content_type="application/apply-patch+yaml",
                )
                return before is None or content(before) != content(after)
            except ApiError as exc:
                if exc.status != 415:
                    raise
                self._client_side = True
                if on_fallback is not None:
                    on_fallback(
                        f"the API server does not take server-side apply ({exc}; its ServerSideApply "
                        "feature gate is off): creating each object, or merging the manifest into it, instead"
                    )
        return self._create_or_merge(res, namespace, name, body, before, field_manager)

    def _create_or_merge(
        self, res: Resource, namespace: str | None, name: str, body: dict, before: dict | None, field_manager: str
    ) -> bool:
        """Client-side: POST a missing object, else merge the manifest into it (JSON merge patch, RFC 7386).

        Like server-side apply, and unlike a replace, this keeps what others set on the object (the
        Deployment controller's revision annotation, `rollout restart`'s stamp, a Service's clusterIP):
        dropping those would bump the generation and roll the pods out on every apply. Lists are taken
        whole from the manifest; a key removed from the manifest stays until `--strategy recreate`."""
        query = {"fieldManager": field_manager}
        if before is None:
            try:
                self.transport.request("POST", res.path(namespace), body=body, query=query)
                return True
            except Conflict:  # made meanwhile: merge into it
                before = self.transport.get(res.path(namespace, name))
        if before is not None and _merge_changes_nothing(before, body):
            return False  # the common no-change `up`: one read instead of a write per object
        after = self.transport.request(
            "PATCH", res.path(namespace, name), body=body, query=query, content_type="application/merge-patch+json"
        )
        # status is the controllers' (a Deployment's moves on its own between the read and the write)
        return before is None or _without_status(content(before)) != _without_status(content(after))

    def delete_objects(self, objs: list[dict], *, timeout: float, on_event: OnEvent | None = None) -> None:
        """Delete in the given order (background propagation), then wait until all are gone."""
        deadline = time.monotonic() + timeout
        pending: list[tuple[Resource, str | None, str, str, ObjRef]] = []
        for obj in objs:
            try:
                res, namespace, name = self.discovery.locate(obj)
            except ClusterError:
                continue  # kind no longer served (its CRD is gone): nothing to delete
            try:
                payload = self.transport.request("DELETE", res.path(namespace, name), body=DELETE_IN_BACKGROUND)
            except NotFound:
                continue
            uid = meta_of(payload).get("uid", "") if isinstance(payload, dict) else ""
            if on_event:
                on_event("delete", res.kind, namespace, name, None)
            pending.append((res, namespace, name, uid, ObjRef(res.api_version, res.kind, namespace, name)))

        last: dict[ObjRef, dict] = {}

        def all_gone() -> bool:
            nonlocal pending
            still = []
            for entry in pending:
                res, namespace, name, uid, ref = entry
                current = self.transport.get(res.path(namespace, name))
                if current is None or (uid and meta_of(current).get("uid") not in (uid, None)):
                    continue  # gone, or recreated by someone else (so ours is gone)
                last[ref] = current
                still.append(entry)
            pending = still
            if pending and on_event:
                on_event("wait", "", None, None, len(pending))
            return not pending

        wait_for(
            all_gone,
            timeout=deadline - time.monotonic(),
            interval=POLL,
            describe=lambda _: (
                f"{len(pending)} object(s) still exist {timeout:g}s after deleting them:\n"
                + "\n".join(f"  - {describe_remaining(last[ref], ref)}" for *_, ref in pending)
            ),
            hint="a finalizer is removed by the controller that set it; if that controller is gone or "
            "lacks permissions the object stays (for the profile's cleanup kinds `devloop clean "
            "--strip-finalizers` removes them)",
        )

    def wait_admission(self, obj: dict, *, timeout: float, what: str | None = None) -> None:
        """Wait until the API server admits `obj` in a server-side dry run.

        A validating webhook registered moments ago (ingress-nginx's) refuses every request
        until its server answers; a dry run proves it does without creating anything.
        """
        res, namespace, name = self.discovery.locate(obj)
        what = what or f"admission of {res.kind} {name}"
        path = res.path(namespace)
        last = "no answer yet"

        def admitted() -> bool:
            nonlocal last
            try:
                status, payload = self.transport.request_once(
                    "POST", path, query={"dryRun": "All"}, body=_copy(obj, None)
                )
            except Transient as exc:
                last = str(exc)
                return False
            if 200 <= status < 300 or status == 409:
                return True
            last = status_text("POST", path, status, payload)
            return False

        wait_for(
            admitted,
            timeout=timeout,
            interval=POLL * 2,
            describe=lambda _: f"{what} did not admit a dry-run {res.kind} within {timeout:g}s; last answer: {last}",
        )

    # -- lists -------------------------------------------------------------------------------

    def list(
        self, res: Resource, *, namespace: str | None = None, metadata_only: bool = False, selector: str | None = None
    ) -> list[dict]:
        items: list[dict] = []
        token = None
        while True:
            payload = self.transport.get(
                res.path(namespace),
                query={"limit": 500, "continue": token, "labelSelector": selector},
                accept=METADATA_ONLY if metadata_only else "application/json",
            )
            if payload is None:
                return []
            for item in payload.get("items") or []:
                # Items of built-in lists carry no apiVersion/kind; metadata-only ones say PartialObjectMetadata.
                if item.get("kind") in (None, "PartialObjectMetadata"):
                    item["apiVersion"], item["kind"] = res.api_version, res.kind
                items.append(item)
            token = meta_of(payload).get("continue")
            if not token:
                return items

    def list_custom(self, resource: str) -> builtins.list[dict]:
        """All objects of a custom resource ("functions.kubeless.io") in all namespaces."""
        res = self.discovery.crd_resource(resource)
        return self.list(res) if res else []

    # -- CRDs --------------------------------------------------------------------------------

    # builtins.list: in the class body below `list` is the method above
    def wait_crds_established(self, names: builtins.list[str], *, timeout: float) -> None:
        seen: dict[str, str] = {}
        remaining = list(names)

        def established() -> bool:
            nonlocal remaining
            still = []
            for name in remaining:
                crd = self.transport.get(CRDS.path(name=name))
                if crd is None:
                    seen[name] = "not found"
                    still.append(name)
                    continue
                conditions = {c.get("type"): c for c in status_of(crd).get("conditions") or []}
                if conditions.get("Established", {}).get("status") == "True":
                    continue
                seen[name] = conditions_text(crd, only_true=False) or "no conditions yet"
                still.append(name)
            remaining = still
            return not remaining

        wait_for(
            established,
            timeout=timeout,
            interval=POLL,
            describe=lambda _: (
                f"CRDs not Established within {timeout:g}s:\n" + "\n".join(f"  - {n}: {seen[n]}" for n in remaining)
            ),
        )
        self.discovery.forget()

    # -- namespaces --------------------------------------------------------------------------

    def ensure_namespace(self, name: str, *, timeout: float = 120) -> bool:
        """Create the namespace unless it exists; waits out a namespace still Terminating."""
        current = self.transport.get(NAMESPACES.path(name=name))
        if current is not None and status_of(current).get("phase") != "Terminating":
            return False
        if current is not None:
            self._wait_namespace_gone(name, timeout=timeout)
        try:
            self.transport.request(
                "POST", NAMESPACES.path(), body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            )
        except Conflict:
            return False
        return True

    def delete_namespace(self, name: str, *, timeout: float) -> None:
        try:
            self.transport.request("DELETE", NAMESPACES.path(name=name), body=DELETE_IN_BACKGROUND)
        except NotFound:
            return
        self._wait_namespace_gone(name, timeout=timeout)

    def _wait_namespace_gone(self, name: str, *, timeout: float) -> None:
        last: dict = {}

        def gone() -> bool:
            nonlocal last
            current = self.transport.get(NAMESPACES.path(name=name))
            last = current or last
            return current is None

        wait_for(
            gone,
            timeout=timeout,
            interval=POLL,
            describe=lambda _: self._namespace_stuck_message(name, last, timeout),
            hint="objects held by finalizers keep a namespace Terminating; `devloop clean "
            "--strip-finalizers` removes the custom resources' finalizers",
        )

    def _namespace_stuck_message(self, name: str, ns: dict, timeout: float) -> str:
        lines = [f"namespace {name} is still {status_of(ns).get('phase', 'present')} after {timeout:g}s"]
        conditions = conditions_text(ns)
        if conditions:
            lines.append(f"  conditions: {conditions}")
        else:
            lines.append("  no conditions reported: is kube-controller-manager (the namespace controller) running?")
        # "functions.kubeless.io has 1 resource instances" → name those objects and their finalizers
        mentioned = set(re.findall(r"([a-z0-9-]+(?:\.[a-z0-9-]+)+) has \d+ resource instances", conditions))
        for resource in sorted(mentioned):
            try:
                res = self.discovery.crd_resource(resource)
                items = self.list(res, namespace=name, metadata_only=True) if res and res.namespaced else []
            except ClusterError:
                continue
            if res is None:
                continue  # nothing listed (items is empty)
            for item in items[:20]:
                ref = ObjRef.of(item, api_version=res.api_version, kind=res.kind)
                lines.append(f"  - {describe_remaining(item, ref)}")
            if len(items) > 20:
                lines.append(f"  … and {len(items) - 20} more {resource}")
        return "\n".join(lines)
