"""`devloop up`: the whole loop once — cluster, addons, namespace, build, render, apply, rollout."""

from __future__ import annotations

from dataclasses import asdict

from devloop import loop
from devloop.session import Session


def up(session: Session, *, fresh: bool = False, strategy: str = "apply", force_build: bool = False) -> dict:
    loop.prepare_cluster(session, fresh=fresh)
    result = loop.run_cycle(session, strategy=strategy, force_build=force_build)
    return {"command": "up", "profile": session.profile.name, "strategy": strategy, **asdict(result)}
