"""`devloop down`: clean, then delete everything the manifests made (and the namespace if asked)."""

from __future__ import annotations

from devloop.base.results import DownResult
from devloop.loop import steps
from devloop.manifests import render
from devloop.session import Session


def down(session: Session, *, delete_namespace: bool = False) -> DownResult:
    report = steps.cleanup(session)
    objects = render.load_manifests(session.profile, session.workspace)
    deleted = steps.delete_manifest_objects(session, objects)
    ns = session.profile.namespace
    if delete_namespace and ns:
        with session.reporter.step("namespace", f"delete namespace {ns}") as step:
            step.waiting(f"namespace {ns} to finish Terminating")
            session.kube().delete_namespace(ns, timeout=session.profile.timeouts.delete)
    return DownResult(
        cleaned=report.deleted if report else 0,
        deleted_objects=deleted,
        namespace_deleted=bool(delete_namespace and ns),
    )
