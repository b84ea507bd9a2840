"""`devloop apply`: clean custom resources, re-apply the manifests with the tags of the current sources."""

from __future__ import annotations

from devloop.base.errors import ClusterError
from devloop.base.results import ApplyResult
from devloop.loop import steps
from devloop.session import Session


def apply(session: Session, *, strategy: str = "recreate") -> ApplyResult:
    tags = steps.component_tags(session)
    missing = session.builder().missing(tags.values())
    if missing:
        # Applying a tag nobody built would only end in ImagePullBackOff.
        raise ClusterError(
            "these images are not built for the current sources: " + ", ".join(missing),
            hint="run `devloop build` (or `devloop up`) first",
        )
    rendered = steps.render(session, tags)
    cycle = steps.apply_objects(session, rendered, strategy=strategy)
    steps.wait_rollout(session, rendered)
    cycle.tags = tags
    return ApplyResult(strategy=strategy, cycle=cycle)
