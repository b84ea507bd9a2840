"""What `minikube start` gets beyond the profile's settings, decided before the long wait.

- `--force`: minikube refuses Kubernetes older than its release's oldest (versions.OLDEST_KUBERNETES; v1.28 from
  1.37) without it (needs_force). It also skips the checks of CPUs and memory against the machine (start.go:2051-2057), so devloop makes them itself:
  more CPUs than the driver's engine has is refused here (Docker refuses such a container later, after
  minikube's retries), more memory than it has is explained as a warning (the node may be OOM-killed).
- `--docker-env DOCKER_MIN_API_VERSION=1.24`: Kubernetes < 1.24 on the docker runtime talks to the node's
  dockerd through the kubelet's dockershim, whose client starts at API 1.41 and negotiates only downwards
  (kubernetes v1.21.14 kube_docker_client.go:94). minikube >= 1.38 ships kicbase with an unpinned docker-ce
  (deploy/kicbase/Dockerfile:162) from Docker 29, which refuses API < 1.44 unless DOCKER_MIN_API_VERSION is
  lowered in the daemon's environment; without it the kubelet never starts and kubeadm init fails twice
  after 4 minutes each (K8S_KUBELET_NOT_RUNNING, exit 109). The profile can opt out.

Pure: the caller passes the minikube version and the machine's resources.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from devloop.adapters.builder import DiskSpace, disk_verdict
from devloop.adapters.host import HostResources
from devloop.adapters.minikube.versions import MinikubeVersion, needs_force, parse_semver
from devloop.base.errors import ClusterError, ConfigError

if TYPE_CHECKING:
    from devloop.profile.schema import Cluster

MIN_CPUS = 2  # RSRC_INSUFFICIENT_CORES (start_flags.go:115)
MIN_MEMORY_MB = 1800  # RSRC_INSUFFICIENT_REQ_MEMORY (start_flags.go:116)
DOCKER_MIN_API = "DOCKER_MIN_API_VERSION=1.24"
_DOCKERSHIM_UNTIL = (1, 24, 0)  # Kubernetes 1.24 removed dockershim
_DOCKER29_FROM = (1, 38, 0)  # the first minikube whose kicbase carries Docker >= 29
# Drivers whose node is minikube's kicbase container (and so its Docker): both KIC drivers (driver.IsKIC)
_KICBASE_DRIVERS = frozenset({"docker", "podman"})
_UNITS = {
    "": 1,
    "b": 1 / (1024 * 1024),
    "k": 1 / 1024,
    "kb": 1 / 1024,
    "m": 1,
    "mb": 1,
    "g": 1024,
    "gb": 1024,
    "t": 1024 * 1024,
    "tb": 1024 * 1024,
}


@dataclass
class StartPlan:
    force: bool = False
    docker_env: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what devloop adds to the start, and why
    warnings: list[str] = field(default_factory=list)


def memory_mb(text: str) -> int | None:
    """minikube's memory sizes (`8g`, `8192mb`, bare = MB); None for `max`/`no-limit`."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not match or match[2].lower() not in _UNITS:
        return None
    return int(float(match[1]) * _UNITS[match[2].lower()])


def old_dockershim_on_docker29(version: MinikubeVersion, *, driver: str, runtime: str, kubernetes: str | None) -> bool:
    wanted = parse_semver(kubernetes or "")
    return (
        version.as_tuple >= _DOCKER29_FROM
        and driver in _KICBASE_DRIVERS
        and runtime == "docker"
        and wanted is not None
        and wanted < _DOCKERSHIM_UNTIL
    )


def plan_start(
    cluster: Cluster,
    version: MinikubeVersion,
    read_host: Callable[[], HostResources] | None,
    *,
    source: str = "the profile",
    read_disk: Callable[[], DiskSpace | None] | None = None,
) -> StartPlan:
    """`cluster` is the profile's Cluster; `read_host` says what the driver has and `read_disk` how full the
    driver's engine is (both called only under --force; None: no check, as in a dry run)."""
    plan = StartPlan()
    from devloop.adapters.minikube.home import home_notice

    if (notice := home_notice()) is not None:
        plan.warnings.append(notice)  # a start creates the profile where minikube, not the user, expects it
    if cluster.kubernetes_version:
        plan.force = needs_force(version, cluster.kubernetes_version, allow_force=cluster.allow_unsupported_kubernetes)
    if plan.force:
        plan.notes.append(
            f"--force: minikube {version.version} supports Kubernetes {cluster.kubernetes_version} "
            "only when forced (cluster.allow_unsupported_kubernetes)"
        )
    elif "--force" in cluster.extra_start_args or "--force=true" in cluster.extra_start_args:
        # forced by the profile itself (e.g. as root: DRV_AS_ROOT): minikube's checks are skipped all the same
        plan.force = True
        plan.notes.append("--force: from cluster.extra_start_args; devloop checks resources and disk itself")
    if plan.force:
        if read_host is not None:
            _check_resources(cluster, read_host(), plan, source)
        if read_disk is not None:
            _check_disk(cluster, read_disk(), plan)
    if old_dockershim_on_docker29(
        version, driver=cluster.driver, runtime=cluster.container_runtime, kubernetes=cluster.kubernetes_version
    ):
        why = (
            f"Kubernetes {cluster.kubernetes_version} reaches Docker through dockershim at API 1.41, and the "
            f"Docker >= 29 in minikube {version.version}'s node refuses APIs below 1.44"
        )
        if cluster.lower_docker_min_api:
            plan.docker_env.append(DOCKER_MIN_API)
            plan.notes.append(f"--docker-env {DOCKER_MIN_API}: {why}")
        else:
            plan.warnings.append(
                f"{why}; the profile sets cluster.lower_docker_min_api: false, so the kubelet will likely not start "
                "and minikube gives up after two 4-minute kubeadm waits (K8S_KUBELET_NOT_RUNNING). Ways through: "
                "remove that setting, minikube <= 1.37, or the kvm2/qemu driver (their ISO pins Docker 28)"
            )
    return plan


def _check_disk(cluster: Cluster, space: DiskSpace | None, plan: StartPlan) -> None:
    """--force also skips minikube's check that the node's /var is not full (machine/start.go): with the
    docker and podman drivers that /var is a volume on the engine's data root, so devloop checks that root
    by minikube's own thresholds, and refuses where minikube would have."""
    verdict = disk_verdict(space)
    if verdict is None:
        return
    kind, said = verdict
    why = f"{said}; minikube would {'refuse to start' if kind == 'refuse' else 'warn'}, but --force skips its check"
    if kind == "refuse":
        raise ClusterError(
            f"not starting minikube profile {cluster.profile!r}: {why}, and the node's pods would fail to deploy",
            hint=f"free space on {space.path if space else 'the engine'}: `docker system prune` (stopped containers, "
            "unused networks, dangling images, build cache), then `devloop up` again",
        )
    plan.warnings.append(f"{why}: deployments may fail. `docker system prune` frees space")


def _check_resources(cluster: Cluster, host: HostResources, plan: StartPlan, source: str) -> None:
    cpus = cluster.cpus
    if isinstance(cpus, int):
        if cpus < MIN_CPUS:
            raise ConfigError(
                f"cluster.cpus is {cpus}; a minikube node needs at least {MIN_CPUS} (minikube would "
                "refuse with RSRC_INSUFFICIENT_CORES, but --force skips that check)",
                hint=f"set `cluster.cpus: {MIN_CPUS}` or more in {source}",
            )
        if cpus > host.cpus:
            raise ConfigError(
                f"cluster.cpus is {cpus}, but {host.source} has {host.cpus} CPUs. minikube would refuse that "
                f"(RSRC_INSUFFICIENT_CORES), but devloop starts it with --force, which skips the check, and Docker "
                f"then refuses a container with more CPUs than it has",
                hint=f"set `cluster.cpus: {host.cpus}` (or `max`) in {source}, or give Docker more CPUs",
            )
    requested = memory_mb(cluster.memory) if isinstance(cluster.memory, str) else None
    if requested is not None:
        if requested < MIN_MEMORY_MB:
            raise ConfigError(
                f"cluster.memory is {cluster.memory} ({requested} MB); a minikube node needs at least "
                f"{MIN_MEMORY_MB} MB (RSRC_INSUFFICIENT_REQ_MEMORY, skipped under --force)",
                hint=f"set `cluster.memory: 2g` or more in {source}",
            )
        if requested > host.memory_mb:
            plan.warnings.append(
                f"cluster.memory is {cluster.memory} ({requested} MB), more than the {host.memory_mb} MB of "
                f"{host.source}: minikube would refuse it (RSRC_OVER_ALLOC_MEM) but --force skips that check; the "
                f"node may run out of memory. Set `cluster.memory` to at most {max(MIN_MEMORY_MB, host.memory_mb - 1024)}mb "
                f"in {source} to be safe"
            )


# Gates minikube adds to FeatureGates by itself when it creates the profile (start_flags.go:694-713), each with
# why: not drift unless the profile names them.
MINIKUBE_OWN_GATES: dict[str, tuple[bool, str]] = {
    "KubeletInUserNamespace": (True, "the driver's engine is rootless Docker or Podman"),
    "LocalStorageCapacityIsolation": (False, "the engine stores on btrfs with Kubernetes older than 1.25"),
}
_MINIKUBE_OWN_GATES = frozenset(MINIKUBE_OWN_GATES)


def minikube_added_gates(wanted: dict[str, bool], saved: str) -> dict[str, str]:
    """The gates in minikube's saved FeatureGates that minikube added itself (the profile does not name them),
    name -> value as saved."""
    return {k: v for k, v in parse_feature_gates(saved).items() if k in _MINIKUBE_OWN_GATES and k not in wanted}


def parse_feature_gates(text: str) -> dict[str, str]:
    """minikube's FeatureGates text (`A=false,B=true`) as name -> value as written, lowercased."""
    out: dict[str, str] = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        if name.strip():
            out[name.strip()] = value.strip().lower() if sep else ""
    return out


def feature_gate_drift(wanted: dict[str, bool], saved: str) -> str | None:
    """How the gates minikube saved for the profile differ from the profile's, or None when they agree.

    `minikube start` on an existing profile replaces the saved gates with the flag's and, seeing its kubeadm
    config change, reconfigures the running control plane (kubeadm.go restartPrimaryControlPlane: "detected
    kubeadm config drift"); so the caller starts it again rather than run with the wrong gates."""
    have = {k: v for k, v in parse_feature_gates(saved).items() if k not in _MINIKUBE_OWN_GATES or k in wanted}
    want = {k: "true" if v else "false" for k, v in wanted.items()}
    if have == want:
        return None
    show = lambda gates: ",".join(f"{k}={v}" for k, v in sorted(gates.items())) or "none"  # noqa: E731
    return f"the cluster runs with feature gates {show(have)}, the profile asks for {show(want)}"


def start_feature_gates(wanted: dict[str, bool], saved: str, *, drift: bool) -> dict[str, bool] | None:
    """The gates devloop passes to `minikube start` (None: leave the flag out, minikube keeps what it saved).

    The flag replaces the saved FeatureGates outright on an existing profile (start_flags.go:888), while
    minikube adds its own gates only when it creates the profile (start_flags.go:687-719): passing the
    profile's gates alone would strip KubeletInUserNamespace from a rootless cluster (the kubelet then fails
    and minikube falls back to kubeadm reset and a fresh init, kubeadm.go:418-446). So the gates minikube
    added ride along, and the profile's win only on their own names. Any other saved gate counts as drift
    (feature_gate_drift), so it is left out, which is what clears it."""
    if not wanted and not drift:
        return None
    kept = {
        name: value == "true"
        for name, value in parse_feature_gates(saved).items()
        if name in _MINIKUBE_OWN_GATES and name not in wanted and value in ("true", "false")
    }
    return {**kept, **wanted}
