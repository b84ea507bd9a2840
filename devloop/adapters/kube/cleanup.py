"""Removing custom resources safely: delete while controllers run, then strip what they leave.

Never hangs: what cannot be removed within the deadline is reported, object by object, with why.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import cast

from devloop.base.errors import ClusterError, WaitTimeout
from devloop.base.waits import wait_for

from .diagnosis import meta_of, namespace_of, owner_text
from .discovery import ObjRef, Resource
from .objects import POLL, Objects, OnEvent
from .transport import (
    DELETE_IN_BACKGROUND,
    METADATA_ONLY,
    METADATA_ONLY_OBJECT,
    WORKERS,
    Conflict,
    NotFound,
    Unprocessable,
)

# Right after finalizer patches most objects are gone already: look again soon.
_POLL_AFTER_WORK = 0.02


@dataclass
class StrippedObject:
    ref: ObjRef
    finalizers: list[str]

    def __str__(self) -> str:
        return f"{self.ref} (finalizers removed: {', '.join(self.finalizers)})"


@dataclass
class StuckObject:
    ref: ObjRef
    finalizers: list[str]
    owner: str | None
    reason: str
    deletion_timestamp: str | None = None

    def __str__(self) -> str:
        parts = [str(self.ref), f"finalizers {self.finalizers or '[]'}"]
        if self.deletion_timestamp:
            parts.append(f"deleting since {self.deletion_timestamp}")
        parts.append(f"owner {self.owner or 'none'}")
        return f"{', '.join(parts)}: {self.reason}"


@dataclass
class CleanReport:
    deleted: int = 0
    stripped: list[StrippedObject] = field(default_factory=list)
    stuck: list[StuckObject] = field(default_factory=list)
    seconds: float = 0.0


class Cleaner:
    def __init__(self, objects: Objects):
        self.objects = objects
        self.transport = objects.transport
        self.discovery = objects.discovery
        self._lock = threading.Lock()

    def clean_custom_resources(
        self,
        resources: list[str],
        *,
        grace: float,
        strip_finalizers: bool,
        timeout: float,
        on_event: OnEvent | None = None,
    ) -> CleanReport:
        """Delete every object of these kinds in all namespaces, giving controllers `grace` seconds
        to finish their finalizers; then (if allowed) strip what is left, object by object.

        With no grace (nobody to wait for) finalizers are stripped before the delete. Objects that
        cannot be removed within `timeout` are returned in `stuck` with the reason, never waited on
        forever. on_event(event, kind, namespace, name, detail): ("delete", kind, ns, "*", count),
        ("strip", kind, ns, name, finalizers)."""
        started = time.monotonic()
        deadline = started + timeout
        report = CleanReport()
        kinds = [res for name in resources if (res := self.discovery.crd_resource(name)) is not None]
        if not kinds:
            return report
        stripped_uids: set[str] = set()
        errors: dict[str, str] = {}

        def strip(pool: ThreadPoolExecutor, res: Resource, meta: dict) -> Future[None]:
            return pool.submit(self._strip, res, meta, report, stripped_uids, errors, on_event)

        with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="devloop-clean") as pool:
            # 1. delete while controllers still run: one deletecollection per namespace and kind
            jobs = []
            for res in kinds:
                present = self.objects.list(res, metadata_only=True)
                report.deleted += len(present)
                if grace <= 0 and strip_finalizers:
                    # No grace: nobody will be waited for, so strip first and the delete becomes a
                    # single write per object instead of three (mark deleting, strip, remove).
                    held = [item for item in present if meta_of(item).get("finalizers")]
                    for job in [strip(pool, res, meta_of(item)) for item in held]:
                        job.result()
                by_namespace: dict[str | None, int] = {}
                for item in present:
                    ns = namespace_of(item) if res.namespaced else None
                    by_namespace[ns] = by_namespace.get(ns, 0) + 1
                for ns, count in sorted(by_namespace.items(), key=lambda kv: kv[0] or ""):
                    jobs.append(pool.submit(self._delete_collection, res, ns))
                    if on_event:
                        on_event("delete", res.kind, ns, "*", count)
            for job in jobs:
                job.result()

            # 2. grace: controllers remove their finalizers; stop early when everything is gone
            remaining: list[tuple[Resource, dict]] = []

            def all_gone() -> bool:
                nonlocal remaining
                remaining = self._remaining(kinds)
                return not remaining

            try:
                wait_for(
                    all_gone, timeout=min(grace, deadline - time.monotonic()), interval=POLL, describe="grace over"
                )
            except WaitTimeout:
                pass  # what the controllers left is stripped next

            # 3. strip finalizers nobody is going to remove, then wait until all are gone
            listed, worked = True, False

            def settled() -> bool:
                nonlocal remaining, listed, worked
                if not listed:
                    remaining = self._remaining(kinds)
                listed = False
                if not remaining:
                    return True
                work = []
                for res, item in remaining:
                    meta = meta_of(item)
                    if not meta.get("deletionTimestamp"):
                        work.append(pool.submit(self._delete_one, res, meta))  # created after step 1
                    elif strip_finalizers and meta.get("finalizers"):
                        work.append(strip(pool, res, meta))
                for job in work:
                    job.result()
                worked = bool(work)
                return False

            try:
                wait_for(
                    settled,
                    timeout=deadline - time.monotonic(),
                    interval=lambda: _POLL_AFTER_WORK if worked else POLL,
                    describe="clean deadline",
                )
            except WaitTimeout:
                pass  # what is left is reported below, object by object, with why

        for res, item in remaining:
            report.stuck.append(self._stuck(res, meta_of(item), errors, strip_finalizers, timeout))
        report.seconds = time.monotonic() - started
        return report

    @staticmethod
    def _stuck(
        res: Resource, meta: dict, errors: dict[str, str], strip_finalizers: bool, timeout: float
    ) -> StuckObject:
        ref = ObjRef(res.api_version, res.kind, meta.get("namespace"), meta.get("name", ""))
        finalizers = list(meta.get("finalizers") or [])
        if meta.get("uid") in errors:
            reason = f"removing its finalizers failed: {errors[meta['uid']]}"
        elif finalizers and not strip_finalizers:
            reason = (
                f"its finalizers were not removed within {timeout:g}s (is their controller running?); "
                "`--strip-finalizers` removes them"
            )
        elif finalizers:
            reason = "its finalizers came back after being removed (a controller keeps adding them)"
        else:
            reason = "still present though it has no finalizers"
        return StuckObject(ref, finalizers, owner_text(meta), reason, meta.get("deletionTimestamp"))

    def _remaining(self, kinds: list[Resource]) -> list[tuple[Resource, dict]]:
        return [(res, item) for res in kinds for item in self.objects.list(res, metadata_only=True)]

    def _delete_collection(self, res: Resource, namespace: str | None) -> None:
        try:
            self.transport.request("DELETE", res.path(namespace), body=DELETE_IN_BACKGROUND, accept=METADATA_ONLY)
        except NotFound:
            pass

    def _delete_one(self, res: Resource, meta: dict) -> None:
        try:
            self.transport.request(
                "DELETE", res.path(meta.get("namespace"), meta.get("name")), body=DELETE_IN_BACKGROUND
            )
        except (NotFound, Conflict):
            pass

    def _strip(
        self,
        res: Resource,
        meta: dict,
        report: CleanReport,
        stripped_uids: set[str],
        errors: dict[str, str],
        on_event: OnEvent | None,
    ) -> None:
        namespace, uid = meta.get("namespace"), meta.get("uid", "")
        name = cast(str, meta.get("name"))  # a listed object always has one
        finalizers = list(meta.get("finalizers") or [])
        try:
            self.transport.request(
                "PATCH",
                res.path(namespace, name),
                # The uid makes the patch fail (422, uid is immutable) on a same-named object
                # created meanwhile: never strip something we did not delete.
                body={"metadata": {"finalizers": [], "uid": uid}},
                content_type="application/merge-patch+json",
                accept=METADATA_ONLY_OBJECT,
            )
        except (NotFound, Conflict, Unprocessable):
            return  # gone already, or not the object we deleted
        except ClusterError as exc:
            errors[uid] = exc.message
            return
        with self._lock:
            first = uid not in stripped_uids
            if first:
                stripped_uids.add(uid)
                report.stripped.append(StrippedObject(ObjRef(res.api_version, res.kind, namespace, name), finalizers))
        if first and on_event:
            on_event("strip", res.kind, namespace, name, finalizers)
