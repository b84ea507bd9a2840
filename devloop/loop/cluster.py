"""The loop's first steps, which make the cluster ready: start (or restart) the minikube profile with the
profile's resources and feature gates, enable its addons, create its namespace."""

from __future__ import annotations

from typing import Any

from devloop.session import Session


# -- 1. cluster ----------------------------------------------------------------------------
def ensure_cluster(session: Session, *, fresh: bool = False) -> bool:
    """Start the minikube profile if absent or stopped; delete it first when `fresh`. True if started."""
    mk = session.minikube
    cluster = session.profile.cluster
    if fresh:
        with session.reporter.step("delete", f"delete minikube profile {cluster.profile}"):
            mk.delete()
            session.forget_cluster_state()
    with session.reporter.step("cluster", f"cluster {cluster.profile}") as step:
        from devloop.adapters.minikube import probe as cluster_probe

        # minikube's files and the API server say it runs: no `minikube status` (seconds on a busy machine)
        status = None if fresh else cluster_probe.running(session)
        status = status or mk.status()
        drift = _feature_gate_drift(session) if status.running else None
        if status.running and drift is None:
            step.skip("already running")
            return False
        if drift:
            # minikube applies changed gates to a running cluster (it reconfigures the control plane)
            session.reporter.info(f"{drift}: minikube start applies them (it restarts the control plane)")
        plan = start_plan(session)
        step.detail(
            state=status.state,
            kubernetes_version=cluster.kubernetes_version,
            container_runtime=cluster.container_runtime,
            force=plan.force,
            docker_env=plan.docker_env,
        )
        for note in plan.notes:
            session.reporter.info(note)
        for warning in plan.warnings:
            session.reporter.warn(warning)
        added = "".join(
            f", {flag}" for flag in (["--force"] if plan.force else []) + [f"--docker-env {v}" for v in plan.docker_env]
        )
        # the deadline counts from here, minikube's downloads included (it sets them no limit of its own)
        step.waiting(
            f"minikube start -p {cluster.profile} (Kubernetes {cluster.kubernetes_version}, "
            f"{cluster.container_runtime} runtime{added}; deadline {session.profile.timeouts.cluster_start:g}s "
            "including first downloads)"
        )
        started = mk.start(
            driver=cluster.driver,
            kubernetes_version=cluster.kubernetes_version,
            cpus=cluster.cpus,
            memory=cluster.memory,
            container_runtime=cluster.container_runtime,
            force=plan.force,
            docker_env=plan.docker_env,
            # the profile's gates plus those minikube added itself (the flag replaces the saved text whole)
            feature_gates=_start_gates(session, drift=bool(drift)),
            extra_args=list(cluster.extra_start_args),
            timeout=session.profile.timeouts.cluster_start,
            on_line=lambda line: session.reporter.output_line("cluster", line),
        )
        if started:
            session.forget_cluster_state()
            step.did("started")
        return True


def _feature_gate_drift(session: Session) -> str | None:
    """How the running cluster's feature gates (minikube's config.json, a file read) differ from the profile's."""
    from devloop.loop.start_plan import feature_gate_drift

    config = session.minikube.profile_config()
    if config is None:
        return None  # nothing saved to compare with (a dry run's double): minikube's own start decides
    return feature_gate_drift(dict(session.profile.cluster.feature_gates), config.feature_gates)


def _start_gates(session: Session, *, drift: bool) -> dict[str, bool] | None:
    from devloop.loop.start_plan import start_feature_gates

    config = session.minikube.profile_config()
    saved = config.feature_gates if config is not None else ""
    return start_feature_gates(dict(session.profile.cluster.feature_gates), saved, drift=drift)


def start_plan(session: Session) -> Any:
    """--force, the checks it skips, and --docker-env, decided before minikube's long wait (start_plan.py).
    A dry run reads no machine resources: its plan must not depend on the machine it runs on."""
    from devloop.adapters.host import driver_resources
    from devloop.loop.start_plan import plan_start

    cluster = session.profile.cluster
    version = session.minikube.version()
    read = session.make_host or driver_resources
    read_host = None if session.dry_run else (lambda: read(cluster.driver))
    # the docker driver's node /var is a volume on the user's engine (a test's machine double has no disk)
    read_disk = None
    if read_host is not None and session.make_host is None and cluster.driver == "docker":
        from devloop.adapters.builder import engine_disk_space
        from devloop.adapters.host import user_docker_env

        read_disk = lambda: engine_disk_space(user_docker_env())  # noqa: E731
    return plan_start(
        cluster, version, read_host, source=str(session.profile.source or "the profile"), read_disk=read_disk
    )


# -- 2. addons -----------------------------------------------------------------------------
def enable_addons(session: Session, *, cluster_started: bool = True) -> list[str]:
    wanted = list(session.profile.cluster.addons)
    enabled: list[str] = []
    if not wanted:
        return enabled
    cluster = session.profile.cluster
    with session.reporter.step("addons", "addons " + ", ".join(wanted)) as step:
        current = session.minikube.addons()
        drift = {name: why for name in wanted if current.get(name) and (why := _override_drift(session, name))}
        missing = [name for name in wanted if not current.get(name) or name in drift]
        if not missing:
            step.skip("already enabled")
        for name in missing:
            if name in drift:
                session.reporter.info(f"{drift[name]}: minikube addons enable {name} applies them")
            images, registries = cluster.addon_overrides(name)
            # the image overrides only when the profile has some (a fake or an older adapter takes none)
            overrides: dict[str, Any] = {"images": images, "registries": registries} if images or registries else {}
            if images:
                _load_local_addon_images(session, name, images, registries, step)
            step.waiting(f"minikube addons enable {name}")
            if session.minikube.enable_addon(
                name,
                timeout=session.profile.timeouts.addons,
                on_line=lambda line: session.reporter.output_line("addons", line),
                **overrides,
            ):
                enabled.append(name)
        # Its webhook is probed after it came up (enabled now, or the cluster just started): an `up` that
        # found both running already had it probed by the `up` that started them.
        if "ingress" in enabled or (cluster_started and current.get("ingress")):
            step.waiting("the ingress admission webhook to answer")
            _wait_ingress_webhook(session)
        step.detail(enabled=enabled)
    return enabled


def _load_local_addon_images(
    session: Session, addon: str, images: dict[str, str], registries: dict[str, str], step: Any
) -> None:
    """Load into the node each addon image that only the user's own Docker holds, before the addon is enabled.

    On an air-gapped or mirror-less machine an image built or imported locally reaches the node no other way:
    the addon's pods would sit in ImagePullBackOff until minikube's verify gives up (6 minutes for ingress).
    An image with a registry in addon_registries, one the node already has, or one the user's Docker lacks is
    left to the node's runtime to pull, as minikube would."""
    from devloop.adapters.builder import normalize_ref
    from devloop.base.errors import DevloopError

    candidates = {name: ref for name, ref in images.items() if not registries.get(name)}
    if not candidates:
        return
    user = session.user_engine()
    if user is None:
        return
    env, engine = user
    try:
        local = {name: ref for name, ref in candidates.items() if engine.image_exists(ref)}
    except DevloopError:
        return  # the user's engine does not answer: the node pulls, as without devloop
    finally:
        engine.close()
    if not local:
        return
    on_node = {normalize_ref(ref) for ref in session.minikube.images()}
    for name, ref in sorted(local.items()):
        if normalize_ref(ref) in on_node:
            continue
        step.waiting(f"minikube image load {ref} (the {addon} addon's {name}, from your Docker)")
        session.minikube.image_load(
            ref,
            env=env,
            timeout=session.profile.timeouts.addons,
            on_line=lambda line: session.reporter.output_line("addons", line),
        )
        on_node.add(normalize_ref(ref))


def _override_drift(session: Session, addon: str) -> str | None:
    """How the images minikube saved for an enabled addon (config.json CustomAddonImages/Registries) differ from
    the profile's addon_images/addon_registries, or None. Only for the addons whose image names devloop knows:
    minikube drops a name it does not know without saving it, which would read as drift on every `up`."""
    from devloop.profile.cluster import ADDON_IMAGE_NAMES

    cluster = session.profile.cluster
    if addon not in ADDON_IMAGE_NAMES:
        return None
    images, registries = cluster.addon_overrides(addon)
    if not images and not registries:
        return None  # nothing asked: whatever minikube saved stays (removing an override needs a reset)
    config = session.minikube.profile_config()
    if config is None:
        return None
    saved_images, saved_registries = config.custom_addon_images, config.custom_addon_registries
    changed = [n for n, image in images.items() if saved_images.get(n) != image] + [
        n for n, registry in registries.items() if saved_registries.get(n, "") != registry
    ]
    if not changed:
        return None
    return f"the {addon} addon runs with other images than the profile asks for ({', '.join(sorted(set(changed)))})"


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
            "spec": {
                "ingressClassName": "nginx",
                "defaultBackend": {"service": {"name": "devloop-probe", "port": {"number": 80}}},
            },
        },
        timeout=session.profile.timeouts.addons,
        what="the ingress-nginx admission webhook",
    )


# -- 3. namespace: made with the cluster, so it exists before any apply ---------------------
def ensure_namespace(session: Session) -> None:
    ns = session.profile.namespace
    if not ns:
        return
    with session.reporter.step("namespace", f"namespace {ns}") as step:
        created = session.kube().ensure_namespace(ns)
        if not created:
            step.skip("exists")
