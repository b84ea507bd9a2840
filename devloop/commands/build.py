"""`devloop build`: images only, into minikube's daemon, skipping what is up to date."""

from __future__ import annotations

from collections.abc import Sequence

from devloop.base.results import BuildResult
from devloop.loop import steps
from devloop.session import Session


def build(session: Session, components: Sequence[str] = (), *, force: bool = False) -> BuildResult:
    return BuildResult(components=steps.build_components(session, list(components) or None, force=force))
