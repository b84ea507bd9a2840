"""The steps every command composes: cluster, addons, namespace, build, render, clean, apply, wait.

Each step reports itself through the session's reporter and, with --dry-run, says what it
would run instead of running it. Read-only probes (status, image lookups, fingerprints)
still run in a dry run when they can, so the plan shows what would really change.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from typing import Any

from devloop.errors import ClusterError, CommandFailed, DevloopError
from devloop.results import BuildOutcome, CycleResult
from devloop.session import Session

STRATEGIES = ("apply", "recreate")


def _dry(session: Session, what: str) -> None:
    session.reporter.info(f"would {what}")


# -- 1. cluster ------------------------------------------------------------------------------
def ensure_cluster(session: Session, *, fresh: bool = False) -> bool:
    """Start the minikube profile if absent or stopped; delete it first when `fresh`. True if started."""
    mk = session.minikube
    cluster = session.profile.cluster
    if fresh:
        with session.reporter.step("delete", f"delete minikube profile {cluster.profile}") as step:
            if session.dry_run:
                _dry(session, f"run: minikube delete -p {cluster.profile}")
            else:
                mk.delete()
            session.forget_cluster_state()
    with session.reporter.step("cluster", f"cluster {cluster.profile}") as step:
        status = None if (fresh and session.dry_run) else _probe_status(session)
        if status is not None and status.running:
            step.skip("already running")
            return False
        force = _needs_force(session)
        start = dict(driver=cluster.driver, kubernetes_version=cluster.kubernetes_version, cpus=cluster.cpus,
                     memory=cluster.memory, force=force, extra_args=list(cluster.extra_start_args))
        step.detail(state=getattr(status, "state", "Missing"), kubernetes_version=cluster.kubernetes_version)
        if session.dry_run:
            _dry(session, "run: " + shlex.join([mk.binary, *mk.start_args(**start)]))
            return True
        step.waiting(f"minikube start -p {cluster.profile} (Kubernetes {cluster.kubernetes_version})")
        mk.start(**start, timeout=session.profile.timeouts.cluster_start,
                 on_line=lambda line: session.reporter.output_line("cluster", line))
        session.forget_cluster_state()
        step.done("started")
        return True


def _probe_status(session: Session) -> Any:
    try:
        return session.minikube.status()
    except DevloopError:
        if session.dry_run:
            return None
        raise


def _needs_force(session: Session) -> bool:
    from devloop.adapters.minikube import needs_force

    cluster = session.profile.cluster
    if not cluster.kubernetes_version:
        return False
    try:
        version = session.minikube.version()
    except DevloopError:
        if session.dry_run:
            return False
        raise
    return needs_force(version, cluster.kubernetes_version, allow_force=cluster.allow_unsupported_kubernetes)


# -- 2. addons -----------------------------------------------------------------------------
def enable_addons(session: Session) -> list[str]:
    wanted = list(session.profile.cluster.addons)
    enabled: list[str] = []
    if not wanted:
        return enabled
    with session.reporter.step("addons", "addons " + ", ".join(wanted)) as step:
        current = {} if session.dry_run and not _cluster_exists(session) else session.minikube.addons()
        missing = [name for name in wanted if not current.get(name)]
        if not missing:
            step.skip("already enabled")
        for name in missing:
            if session.dry_run:
                _dry(session, f"run: minikube addons enable {name} -p {session.context}")
                continue
            step.waiting(f"minikube addons enable {name}")
            session.minikube.enable_addon(name, timeout=session.profile.timeouts.addons,
                                          on_line=lambda line: session.reporter.output_line("addons", line))
            enabled.append(name)
        if "ingress" in wanted and not session.dry_run:
            step.waiting("the ingress admission webhook to answer")
            _wait_ingress_webhook(session)
        step.detail(enabled=enabled)
    return enabled


def _cluster_exists(session: Session) -> bool:
    status = _probe_status(session)
    return bool(status is not None and status.running)


def _wait_ingress_webhook(session: Session) -> None:
    # minikube returns once the addon's pods run, but the webhook can still refuse Ingresses
    # for a while (minikube's own addons_test waits too): probe it with a server-side dry run.
    kube = session.kube()
    kube.wait_rollout([("ingress-nginx", "ingress-nginx-controller")], timeout=session.profile.timeouts.addons)
    kube.wait_admission(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "devloop-webhook-probe", "namespace": "default"},
            "spec": {"ingressClassName": "nginx", "defaultBackend": {"service": {"name": "devloop-probe", "port": {"number": 80}}}},
        },
        timeout=session.profile.timeouts.addons,
        what="the ingress-nginx admission webhook",
    )


# -- 3. namespace ----------------------------------------------------------------------------
def ensure_namespace(session: Session) -> None:
    ns = session.profile.namespace
    if not ns:
        return
    with session.reporter.step("namespace", f"namespace {ns}") as step:
        if session.dry_run:
            _dry(session, f"create Namespace/{ns} if absent")
            return
        created = session.kube().ensure_namespace(ns)
        if not created:
            step.skip("exists")


# -- 4. build ------------------------------------------------------------------------------
def check_docker_target(session: Session) -> None:
    """Builds must land in this profile's daemon: minikube names its daemon after the profile."""
    name = session.docker().daemon_name()
    if name != session.context:
        raise ClusterError(
            f"docker-env of minikube profile {session.context!r} leads to a daemon named {name!r}",
            hint="the build would not be visible to the cluster; run `devloop reset`",
        )


def component_tags(session: Session, names: Sequence[str] | None = None) -> dict[str, str]:
    from devloop.fingerprint import tag_for

    tags = {}
    for component in _select(session, names):
        fp = session.fingerprinter.fingerprint(session.profile, component, session.workspace)
        tags[component.name] = tag_for(component, fp.digest)
    return tags


def _select(session: Session, names: Sequence[str] | None) -> list[Any]:
    return session.profile.select_components(names)


def build_components(session: Session, names: Sequence[str] | None = None, *, force: bool = False) -> list[BuildOutcome]:
    """Build each selected component whose fingerprint tag is not in minikube's daemon yet."""
    from devloop.adapters import proc

    outcomes: list[BuildOutcome] = []
    components = _select(session, names)
    tags = component_tags(session, [c.name for c in components])
    reachable = True
    if session.dry_run:
        try:
            session.docker()
        except DevloopError:
            reachable = False
    else:
        with session.reporter.step("docker-env", f"docker-env of {session.context}") as step:
            check_docker_target(session)
            step.done(session.docker_env().get("DOCKER_HOST", ""))
    for component in components:
        tag = tags[component.name]
        with session.reporter.step(f"build {component.name}", f"build {component.name} → {tag}") as step:
            step.detail(tag=tag)
            if not force and reachable and session.docker().image_exists(tag):
                step.skip("up to date")
                outcomes.append(BuildOutcome(component.name, tag, built=False))
                continue
            command = component.build_command(tag)
            cwd = session.workspace / component.dir
            if session.dry_run:
                _dry(session, f"run in {cwd}: {command}")
                outcomes.append(BuildOutcome(component.name, tag, built=True))
                continue
            step.waiting(f"`{command}`")
            env = {**session.docker_env(), **dict(component.env)}
            try:
                proc.run_shell(
                    command, env=env, cwd=cwd, timeout=session.profile.timeouts.build,
                    on_line=lambda line, n=component.name: session.reporter.output_line(f"build {n}", line),
                )
            except CommandFailed as exc:
                raise CommandFailed(
                    exc.argv, exc.exit_code_of_command, exc.output_tail,
                    message=f"build of {component.name} failed: `{command}` exited with code {exc.exit_code_of_command} (in {cwd})",
                ) from None
            if not session.docker().image_exists(tag):
                raise ClusterError(
                    f"build of {component.name} succeeded but {tag} is not in minikube's daemon",
                    hint="the build command must tag its image with {image} and build with the docker-env it is given",
                )
            outcomes.append(BuildOutcome(component.name, tag, built=True))
    return outcomes


# -- 5. render -----------------------------------------------------------------------------
def render(session: Session, tags: dict[str, str]) -> Any:
    from devloop import manifests

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
        if session.dry_run:
            for resource in resources:
                _dry(session, f"delete all {resource} in all namespaces, then strip finalizers still holding them")
            return None
        kube = session.kube()

        def on_event(kind: str, *args: Any) -> None:
            if kind == "strip":
                resource, ns, name, finalizers = args
                session.reporter.info(f"removed finalizers {', '.join(finalizers)} from {resource} {ns}/{name}")

        grace = session.profile.timeouts.cleanup_grace
        if grace and not _controllers_running(session, kube):
            # Nobody is left to remove the finalizers: waiting would only make the user wait.
            session.reporter.info("no controller of this profile is running: finalizers are stripped without a grace period")
            grace = 0.0
        step.waiting("custom resources to go")
        report = kube.clean_custom_resources(
            resources,
            grace=grace,
            strip_finalizers=strip_finalizers,
            timeout=session.profile.timeouts.cleanup_grace + session.profile.timeouts.cleanup,
            on_event=on_event,
        )
        step.detail(deleted=report.deleted, stripped=len(report.stripped), stuck=len(report.stuck))
        if report.deleted == 0:
            step.skip("nothing to clean")
        else:
            step.done(f"{report.deleted} deleted, {len(report.stripped)} finalizers stripped")
        if report.stuck:
            raise ClusterError(
                "objects still stuck in deletion:\n" + "\n".join(f"  {s}" for s in report.stuck),
                hint="rerun with --strip-finalizers, or remove their finalizers by hand",
            )
    return report


def _controllers_running(session: Session, kube: Any) -> bool:
    """Whether any Deployment of the profile's manifests has a ready pod that could finish finalizers."""
    from devloop import manifests

    objects = manifests.load_manifests(session.profile, session.workspace)
    for ns, name in deployments_of(session, objects):
        deploy = kube.deployment(ns, name)
        if deploy and (deploy.get("status") or {}).get("readyReplicas"):
            return True
    return False


# -- 7. apply ------------------------------------------------------------------------------
def delete_manifest_objects(session: Session, objects: Iterable[dict]) -> int:
    from devloop import manifests

    ordered = manifests.order_for_delete(list(objects))
    with session.reporter.step("delete", "delete manifest objects") as step:
        if session.dry_run:
            for obj in ordered:
                _dry(session, f"delete {manifests.object_ref(obj)}")
            return len(ordered)
        kube = session.kube()
        present = [obj for obj in ordered if kube.exists(obj)]
        if not present:
            step.skip("none present")
            return 0
        step.waiting(f"{len(present)} objects to be gone")
        kube.delete_objects(present, timeout=session.profile.timeouts.delete)
        step.done(f"{len(present)} deleted")
        return len(present)


def apply_objects(session: Session, rendered: Any, *, strategy: str) -> CycleResult:
    from devloop import manifests

    result = CycleResult()
    objects = manifests.order_for_apply(list(rendered.objects))
    if strategy == "recreate":
        cleanup_report = cleanup(session)
        if cleanup_report is not None:
            result.cleaned = cleanup_report.deleted
            result.stripped = len(cleanup_report.stripped)
        delete_manifest_objects(session, objects)
    with session.reporter.step("apply", f"apply ({strategy})") as step:
        if session.dry_run:
            verb = "create" if strategy == "recreate" else "server-side apply"
            for obj in objects:
                _dry(session, f"{verb} {manifests.object_ref(obj)}")
            return result
        kube = session.kube()
        changed_configmaps: set[str] = set()
        crds: list[str] = []
        for index, obj in enumerate(objects):
            if strategy == "recreate":
                kube.create(obj)
                changed = True
            else:
                changed = kube.server_side_apply(obj, field_manager="devloop")
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
        step.detail(changed=result.changed_objects, restarted=result.restarted)
        if not result.changed_objects and not result.restarted:
            step.skip("no changes")
        else:
            step.done(f"{len(result.changed_objects)} changed" + (f", {len(result.restarted)} restarted" if result.restarted else ""))
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
        if session.dry_run:
            _dry(session, f"wait for the rollout of {names}")
            return
        step.waiting(f"rollout of {names}")
        session.kube().wait_rollout(deployments, timeout=session.profile.timeouts.rollout, on_wait=step.waiting)


# -- the whole cycle -------------------------------------------------------------------------
def check_workspace(session: Session) -> None:
    """Every component's checkout must be there before minutes go into starting a cluster."""
    from devloop.errors import ConfigError

    missing = [f"{c.name}: {session.workspace / c.dir}" for c in session.profile.components
               if not (session.workspace / c.dir).is_dir()]
    if missing:
        raise ConfigError(
            "the workspace lacks the checkouts of profile " + repr(session.profile.name) + ":\n  "
            + "\n  ".join(missing),
            hint=f"run devloop from the directory holding them, or pass --workspace DIR (now {session.workspace})",
        )


def prepare_cluster(session: Session, *, fresh: bool = False, needs_workspace: bool = True) -> None:
    if needs_workspace:
        check_workspace(session)
    ensure_cluster(session, fresh=fresh)
    if not session.dry_run:
        session.guard_context()
    enable_addons(session)
    ensure_namespace(session)


def run_cycle(
    session: Session,
    *,
    triggered_by: Sequence[str] | None = None,
    strategy: str = "apply",
    force_build: bool = False,
) -> CycleResult:
    """Build what changed, render, (clean and recreate | apply), wait for the rollout.

    `triggered_by` names the components whose changes started the cycle (watch passes the
    batch's); it is only recorded. Every component is still checked, because a tag is only rendered once it is built: one whose last build failed
    is retried here rather than deployed as an image nobody has.
    """
    outcomes = build_components(session, None, force=force_build)
    tags = {o.component: o.tag for o in outcomes}
    rendered = render(session, tags)
    result = apply_objects(session, rendered, strategy=strategy)
    wait_rollout(session, rendered)
    result.built = [o.component for o in outcomes if o.built]
    result.tags = tags
    result.triggered_by = list(triggered_by or [])
    return result
