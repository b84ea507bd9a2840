"""`devloop reset`: minikube delete + start + addons + namespace, for a cluster that is broken."""

from __future__ import annotations

from devloop.base.results import ResetResult
from devloop.loop import steps
from devloop.session import Session


def reset(session: Session) -> ResetResult:
    # minikube delete only ever removes a minikube profile by name, so this is the one
    # destructive step that needs no context guard: it cannot reach another cluster.
    steps.prepare_cluster(session, fresh=True, needs_workspace=False)
    return ResetResult(profile=session.profile.name, cluster=session.context)
