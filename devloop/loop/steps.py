"""The steps every command composes: cluster, addons, namespace, build, render, clean, apply, wait.

Each step reports itself through the session's reporter and works only through the adapters
the session hands out; with --dry-run those are the doubles in adapters/dry.py, which say what
they would run instead of running it, so the steps have one code path. Read-only probes
(status, image lookups, fingerprints) still run in a dry run when they can, so the plan shows
what would really change. The numbers are docs/architecture.md's "The loop, step by step": 1-3 (cluster,
addons, namespace) live in devloop.loop.cluster, 4-8 (build, render, clean, apply, wait) here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from devloop.base.errors import ClusterError
from devloop.base.results import BuildOutcome, CycleResult
from devloop.loop import runtimes
from devloop.loop.cluster import enable_addons, ensure_cluster, ensure_namespace, start_plan  # noqa: F401 -- steps 1-3, for callers of steps
from devloop.session import Session


# -- 4. build ------------------------------------------------------------------------------
def component_tags(session: Session, names: Sequence[str] | None = None) -> dict[str, str]:
    from devloop.sources.fingerprint import tag_for

    tags = {}
    for component in _select(session, names):
        fp = session.fingerprinter.fingerprint(session.profile, component, session.workspace)
        tags[component.name] = tag_for(component, fp.digest)
    return tags


def _select(session: Session, names: Sequence[str] | None) -> list[Any]:
    return session.profile.select_components(names)


def build_components(
    session: Session, names: Sequence[str] | None = None, *, force: bool = False
) -> list[BuildOutcome]:
    """Build each selected component whose fingerprint tag is not in minikube's daemon yet."""
    outcomes: list[BuildOutcome] = []
    components = _select(session, names)
    tags = component_tags(session, [c.name for c in components])
    builder = session.builder()
    builder.prepare()  # 4. build starts with docker-env: the daemon builds land in must be this profile's
    for component in components:
        tag = tags[component.name]
        with session.reporter.step(f"build {component.name}", f"build {component.name} → {tag}") as step:
            step.detail(tag=tag)
            if not force and builder.image_exists(tag):
                step.skip("up to date")
                outcomes.append(BuildOutcome(component.name, tag, built=False))
                continue
            step.waiting(f"`{component.build_command(tag)}`")

            def on_line(line: str, n: str = component.name) -> None:
                session.reporter.output_line(f"build {n}", line)

            builder.build(component, tag, cwd=session.workspace / component.dir, on_line=on_line)
            outcomes.append(BuildOutcome(component.name, tag, built=True))
    return outcomes


# -- 5. render -----------------------------------------------------------------------------
def render(session: Session, tags: dict[str, str]) -> Any:
    from devloop.manifests import render as manifests

    with session.reporter.step("render", "render manifests") as step:
        objects = manifests.load_manifests(session.profile, session.workspace)
        rendered = manifests.render(objects, tags, session.profile)
        step.detail(objects=len(rendered.objects), substitutions=len(rendered.substitutions))
        step.done(f"{len(rendered.objects)} objects, {len(rendered.substitutions)} images replaced")
    return rendered


# -- 6. clean ------------------------------------------------------------------------------
def cleanup(session: Session, *, strip_finalizers: bool = True) -> Any:
    resources = list(session.profile.cleanup)
    if not resources:
        return None
    with session.reporter.step("clean", "clean " + ", ".join(resources)) as step:
        kube = session.kube()

        def on_event(kind: str, *args: Any) -> None:
            if kind == "strip":
                resource, ns, name, finalizers = args
                session.reporter.info(f"removed finalizers {', '.join(finalizers)} from {resource} {ns}/{name}")

        grace = session.profile.timeouts.cleanup_grace
        if grace and not _controllers_running(session, kube):
            # Nobody is left to remove the finalizers: waiting would only make the user wait.
            session.reporter.info(
                "no controller of this profile is running: finalizers are stripped without a grace period"
            )
            grace = 0.0
        step.waiting("custom resources to go")
        report = kube.clean_custom_resources(
            resources,
            grace=grace,
            strip_finalizers=strip_finalizers,
            timeout=session.profile.timeouts.cleanup_grace + session.profile.timeouts.cleanup,
            on_event=on_event,
        )
        step.effects(deleted=report.deleted, stripped=len(report.stripped), stuck=len(report.stuck))
        if report.deleted == 0:
            step.did_nothing("nothing to clean")
        else:
            step.did(f"{report.deleted} deleted, {len(report.stripped)} finalizers stripped")
        if report.stuck:
            raise ClusterError(
                "objects still stuck in deletion:\n" + "\n".join(f"  {s}" for s in report.stuck),
                hint="rerun with --strip-finalizers, or remove their finalizers by hand",
            )
    return report


def _controllers_running(session: Session, kube: Any) -> bool:
    """Whether any Deployment of the profile's manifests has a ready pod that could finish finalizers."""
    from devloop.manifests import render as manifests

    objects = manifests.load_manifests(session.profile, session.workspace)
    for ns, name in deployments_of(session, objects):
        deploy = kube.deployment(ns, name)
        if deploy and (deploy.get("status") or {}).get("readyReplicas"):
            return True
    return False


def delete_manifest_objects(session: Session, objects: Iterable[dict]) -> int:
    from devloop.manifests import render as manifests

    ordered = manifests.order_for_delete(list(objects))
    with session.reporter.step("delete", "delete manifest objects") as step:
        kube = session.kube()
        present = [obj for obj in ordered if kube.exists(obj)]
        if not present:
            step.skip("none present")
            return 0
        step.waiting(f"{len(present)} objects to be gone")
        kube.delete_objects(present, timeout=session.profile.timeouts.delete)
        step.did(f"{len(present)} deleted")
        return len(present)


# -- 7. apply ------------------------------------------------------------------------------


def apply_objects(session: Session, rendered: Any, *, strategy: str) -> CycleResult:
    from devloop.manifests import render as manifests

    result = CycleResult()
    objects = manifests.order_for_apply(list(rendered.objects))
    if strategy == "recreate":
        cleanup_report = cleanup(session)
        if cleanup_report is not None:
            result.cleaned = cleanup_report.deleted
            result.stripped = len(cleanup_report.stripped)
        delete_manifest_objects(session, objects)
    with session.reporter.step("apply", f"apply ({strategy})") as step:
        kube = session.kube()
        changed_configmaps: set[str] = set()
        crds: list[str] = []
        # the profile started the cluster without server-side apply: merge client-side from the first object
        ssa_off = session.profile.cluster.feature_gates.get("ServerSideApply") is False
        for index, obj in enumerate(objects):
            if strategy == "recreate":
                # Kube.create returns None once it created the object; the dry-run double, False.
                changed = kube.create(obj) is not False
            else:
                changed = kube.server_side_apply(
                    obj, field_manager="devloop", on_fallback=session.reporter.info, known_off=ssa_off
                )
            if changed:
                result.changed_objects.append(manifests.object_ref(obj))
                if obj.get("kind") == "ConfigMap":
                    changed_configmaps.add(obj["metadata"]["name"])
            if obj.get("kind") == "CustomResourceDefinition":
                crds.append(obj["metadata"]["name"])
                following = objects[index + 1] if index + 1 < len(objects) else None
                if following is None or following.get("kind") != "CustomResourceDefinition":
                    step.waiting("CRDs to be Established: " + ", ".join(crds))
                    kube.wait_crds_established(crds, timeout=session.profile.timeouts.crd_established)
        if strategy == "apply" and changed_configmaps:
            # Kubeless reads its ConfigMap only at start-up: a changed config needs new pods.
            for obj in objects:
                if obj.get("kind") != "Deployment" or manifests.object_ref(obj) in result.changed_objects:
                    continue
                if manifests.configmaps_read_by(obj) & changed_configmaps:
                    ns = obj["metadata"].get("namespace") or session.profile.namespace
                    kube.restart_deployment(ns, obj["metadata"]["name"])
                    result.restarted.append(manifests.object_ref(obj))
        step.effects(changed=result.changed_objects, restarted=result.restarted)
        if not result.changed_objects and not result.restarted:
            step.did_nothing("no changes")
        else:
            step.did(
                f"{len(result.changed_objects)} changed"
                + (f", {len(result.restarted)} restarted" if result.restarted else "")
            )
    return result


# -- 8. wait -------------------------------------------------------------------------------
def deployments_of(session: Session, objects: Iterable[dict]) -> list[tuple[str, str]]:
    return [
        (obj["metadata"].get("namespace") or session.profile.namespace or "default", obj["metadata"]["name"])
        for obj in objects
        if obj.get("kind") == "Deployment"
    ]


def wait_rollout(session: Session, rendered: Any) -> None:
    deployments = deployments_of(session, rendered.objects)
    if not deployments:
        return
    names = ", ".join(f"{ns}/{name}" for ns, name in deployments)
    with session.reporter.step("rollout", f"rollout {names}") as step:
        step.waiting(f"rollout of {names}")
        session.kube().wait_rollout(deployments, timeout=session.profile.timeouts.rollout, on_wait=step.waiting)


# -- the whole cycle -------------------------------------------------------------------------
def check_workspace(session: Session) -> None:
    """Every component's checkout must be there before minutes go into starting a cluster."""
    from devloop.base.errors import ConfigError

    missing = [
        f"components[{c.name}].dir: {session.workspace / c.dir}"
        for c in session.profile.components
        if not (session.workspace / c.dir).is_dir()
    ]
    if missing:
        where = f"{session.profile.source}: " if session.profile.source else ""
        raise ConfigError(
            f"{where}the workspace lacks the checkouts of profile {session.profile.name!r}:\n  " + "\n  ".join(missing),
            hint=f"run devloop from the directory holding them, or pass --workspace DIR (now {session.workspace})",
        )


def check_manifests(session: Session) -> None:
    """Load and render the manifests (with stand-in tags) before anything touches the cluster: a
    broken manifest found after the start, the addons and the builds would leave a half-done loop."""
    from devloop.manifests import render as manifests

    objects = manifests.load_manifests(session.profile, session.workspace)
    manifests.render(objects, {c.name: f"{c.image}:dev-check" for c in session.profile.components}, session.profile)
    if session.profile.verify:
        from devloop.verify import check_files

        check_files(session)  # the verify fixtures and Jobs load too


def prepare_cluster(session: Session, *, fresh: bool = False, needs_workspace: bool = True) -> None:
    if needs_workspace:
        check_workspace(session)
        check_manifests(session)
    started = ensure_cluster(session, fresh=fresh)
    session.guard_context()  # the context guard, between 1 and 2: before the first API call (the ingress webhook probe)
    enable_addons(session, cluster_started=started)
    ensure_namespace(session)


def run_cycle(
    session: Session,
    *,
    triggered_by: Sequence[str] | None = None,
    strategy: str = "apply",
    force_build: bool = False,
    keep_tags: dict[str, str] | None = None,
    verify: bool = True,
) -> CycleResult:
    """Build what changed, render, (clean and recreate | apply), wait for the rollout, verify.

    `triggered_by` names the components whose changes started the cycle (watch passes the
    batch's); it is only recorded. Every component is still checked, because a tag is only rendered once it is built: one whose last build failed
    is retried here rather than deployed as an image nobody has. `keep_tags` (watch: components whose
    directory is gone) are rendered with the tag given, neither fingerprinted nor built. With `verify`, the
    profile's verify checks run last (devloop.verify); a failed one raises VerifyFailed carrying this result.
    """
    keep = dict(keep_tags or {})
    names = [c.name for c in session.profile.components if c.name not in keep] if keep else None
    outcomes = build_components(session, names, force=force_build) if names is None or names else []
    tags = {**keep, **{o.component: o.tag for o in outcomes}}
    rendered = render(session, tags)
    runtime_before = runtimes.live_images(session, rendered)  # what the cluster's runtime list names now
    result = apply_objects(session, rendered, strategy=strategy)
    wait_rollout(session, rendered)
    # -- 8b. runtimes: a changed runtime image restarts its controller and moves its Functions
    runtimes.move_functions(session, rendered, runtime_before, result)
    result.built = [o.component for o in outcomes if o.built]
    result.tags = tags
    if not session.dry_run:
        # every component now runs the image of its sources: no live update is left to converge
        from devloop.liveupdate import state as live_state

        live_state.forget(session.cache_dir, session.context)
    result.triggered_by = list(triggered_by or [])
    if verify and session.profile.verify:
        # -- 9. verify: the deploy worked; does the loop's work happen?
        from devloop.verify import run_checks

        run_checks(session, trigger="deploy", cycle=result)
    return result
