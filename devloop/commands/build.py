"""`devloop build`: images only, into minikube's daemon, skipping what is up to date."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

from devloop import loop
from devloop.session import Session


def build(session: Session, components: Sequence[str] = (), *, force: bool = False) -> dict:
    outcomes = loop.build_components(session, list(components) or None, force=force)
    return {"command": "build", "components": [asdict(o) for o in outcomes]}
