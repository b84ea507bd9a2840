"""`devloop up`: the whole loop once — cluster, addons, namespace, build, render, apply, rollout."""

from __future__ import annotations

from devloop.base.results import UpResult
from devloop.loop import steps
from devloop.session import Session


def up(session: Session, *, fresh: bool = False, strategy: str = "apply", force_build: bool = False) -> UpResult:
    if not fresh and not session.prefetch_engine():
        session.prefetch_docker_env()  # nothing recorded: minikube's answer, asked beside the cluster step
    steps.prepare_cluster(session, fresh=fresh)
    cycle = steps.run_cycle(session, strategy=strategy, force_build=force_build)
    return UpResult(profile=session.profile.name, strategy=strategy, cycle=cycle)
