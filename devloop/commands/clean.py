"""`devloop clean`: remove the profile's custom resources everywhere, without ever hanging."""

from __future__ import annotations

from devloop.base.results import CleanResult
from devloop.loop import steps
from devloop.session import Session


def clean(session: Session, *, strip_finalizers: bool = True) -> CleanResult:
    report = steps.cleanup(session, strip_finalizers=strip_finalizers)
    if report is None:
        return CleanResult()
    return CleanResult(
        deleted=report.deleted, stripped=[str(s) for s in report.stripped], stuck=[str(s) for s in report.stuck]
    )
