"""`devloop render`: the manifests exactly as `up` would apply them, with tags from the current sources."""

from __future__ import annotations

from devloop.base.results import RenderResult
from devloop.loop import steps
from devloop.manifests import render as manifests
from devloop.session import Session


def render(session: Session) -> RenderResult:
    tags = steps.component_tags(session)
    objects = manifests.load_manifests(session.profile, session.workspace)
    rendered = manifests.render(objects, tags, session.profile)
    ordered = manifests.order_for_apply(list(rendered.objects))
    return RenderResult(tags=tags, yaml=manifests.dump_yaml(ordered), objects=ordered)
