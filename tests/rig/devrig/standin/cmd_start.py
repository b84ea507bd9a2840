"""`minikube start` (and `stop`): validate like minikube, boot the profile's machine, write config + kubeconfig."""

from __future__ import annotations

import json
import os
import platform
import re
import time

from . import cluster, faults, home, kubeconfig, mustload, versions
from .flags import Flag, parse_duration
from .reasons import (
    DRV_UNSUPPORTED_OS,
    GUEST_DRIVER_MISMATCH,
    GUEST_PROVISION,
    GUEST_START,
    K8S_DOWNGRADE_UNSUPPORTED,
    K8S_INSTALL_FAILED,
    K8S_NEW_UNSUPPORTED,
    K8S_OLD_UNSUPPORTED,
    RSRC_INSUFFICIENT_CORES,
    RSRC_INSUFFICIENT_REQ_MEMORY,
    USAGE,
    Kind,
)
from .versions import semver

FLAGS = (
    Flag("driver", "string", "", "d", "Driver is one of: docker (the only one the stand-in has)"),
    Flag("vm-driver", "string", "", "", "DEPRECATED, use `driver` instead."),
    Flag(
        "kubernetes-version",
        "string",
        "",
        "",
        "The Kubernetes version that the minikube VM will use "
        "(ex: v1.2.3, 'stable' for the default, 'latest' for the newest).",
    ),
    Flag(
        "cpus",
        "string",
        "2",
        "",
        'Number of CPUs allocated to Kubernetes. Use "max" to use the maximum '
        'number of CPUs. Use "no-limit" to not specify a limit (Docker/Podman only)',
    ),
    Flag(
        "memory",
        "string",
        "",
        "m",
        "Amount of RAM to allocate to Kubernetes (format: <number>[<unit>], "
        'where unit = b, k, m or g). Use "max" to use the maximum amount of memory.',
    ),
    Flag("disk-size", "string", "20000mb", "", "Disk size allocated to the minikube VM"),
    Flag(
        "container-runtime",
        "string",
        "",
        "c",
        "The container runtime to be used. Valid options: docker, containerd (the stand-in has no cri-o)",
    ),
    Flag("force", "bool", False, "", "Force minikube to perform possibly dangerous operations"),
    Flag(
        "keep-context",
        "bool",
        False,
        "",
        "This will keep the existing kubectl context and will create a minikube context.",
    ),
    Flag("embed-certs", "bool", False, "", "if true, will embed the certs in kubeconfig."),
    Flag(
        "wait",
        "slice",
        ("apiserver", "system_pods"),
        "",
        "comma separated list of Kubernetes components to verify and wait for after starting a cluster.",
    ),
    Flag("wait-timeout", "duration", "6m0s", "", "max time to wait per Kubernetes or host to be healthy."),
    Flag("delete-on-failure", "bool", False, "", "If set, delete the current cluster if start fails and try again."),
    Flag("output", "string", "text", "o", "Format to print stdout in. Options include: [text,json]"),
    Flag("addons", "slice", (), "", "Enable addons. see `minikube addons list` for a list of valid addon names."),
    Flag("install-addons", "bool", True, "", "If set, install addons."),
    Flag("interactive", "bool", True, "", "Allow user prompts for more information"),
    Flag("download-only", "bool", False, "", "If true, only download and cache files for later use."),
    Flag("nodes", "int", 1, "n", "The total number of nodes to spin up. Defaults to 1."),
    Flag(
        "extra-config",
        "slice",
        (),
        "",
        "A set of key=value pairs that describe configuration that may be passed to different components.",
    ),
    Flag(
        "feature-gates",
        "string",
        "",
        "",
        "A set of key=value pairs that describe feature gates for alpha/experimental features.",
    ),
    Flag("cni", "string", "", "", "CNI plug-in to use."),
    Flag("insecure-registry", "slice", (), "", "Insecure Docker registries to pass to the Docker daemon."),
    Flag(
        "no-kubernetes",
        "bool",
        False,
        "",
        "If set, minikube VM/container will start without starting or configuring Kubernetes.",
    ),
    Flag("preload", "bool", True, "", "If set, download tarball of preloaded images if available."),
    Flag("base-image", "string", "", "", "The base image to use for docker/podman drivers."),
    Flag("docker-env", "slice", (), "", "Environment variables to pass to the Docker daemon. (format: key=value)"),
    Flag("static-ip", "string", "", "", "Set a static IP for the minikube cluster."),
    Flag("ports", "slice", (), "", "List of ports that should be exposed (docker and podman driver only)"),
)
STOP_FLAGS = (
    Flag("all", "bool", False, "", "Set flag to stop all profiles (clusters)"),
    Flag("keep-context-active", "bool", False, "", "keep the kube-context active after cluster is stopped."),
    Flag("output", "string", "text", "o", "Format to print stdout in. Options include: [text,json]"),
)

MIN_CPUS, MIN_MEMORY_MB = 2, 1800
DEFAULT_MEMORY_MB = 4000
FAKE_NODES_ENV = "DEVRIG_FAKE_NODES"


def _platform() -> str:
    """start.go platform(): gopsutil's distro and version, plus " (<virt>/<arch>)" inside a guest (gopsutil
    calls a machine with /.dockerenv a docker guest)."""
    try:
        text = f"Debian {open('/etc/debian_version').read().strip()}"
    except OSError:
        text = platform.system().lower()
    if os.path.exists("/.dockerenv"):
        text += " (docker/amd64)"
    return text


def _memory_mb(raw: str) -> int | None:
    m = re.fullmatch(r"\s*(\d+)\s*([bkmg]?)b?\s*", raw.lower())
    if not m:
        return None
    n, unit = int(m.group(1)), m.group(2) or "m"
    return {"b": n // (1024 * 1024), "k": n // 1024, "m": n, "g": n * 1024}[unit]


def _system_memory_mb() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return DEFAULT_MEMORY_MB


def _resolve_version(console, raw: str, existing: dict | None, rel: versions.Release, force: bool) -> str:
    raw = raw or ((existing or {}).get("KubernetesConfig", {}).get("KubernetesVersion") or "")
    if raw in ("", "stable"):
        raw = rel.default_k8s
    elif raw.lower() in ("latest", "newest"):
        raw = rel.newest_k8s
    try:
        nvs = semver(raw)
    except ValueError:
        raise console.fatal(USAGE, f'Unable to parse "{raw.lstrip("v")}": No Major.Minor.Patch elements found')
    plain = ".".join(map(str, nvs))
    if nvs > semver(rel.newest_k8s):
        console.warning(
            f"Specified Kubernetes version {plain} is newer than the newest supported version: "
            f"{rel.newest_k8s}. Use `minikube config defaults kubernetes-version` for details."
        )
        console.warning(f"Specified Kubernetes version {plain} not found in Kubernetes version list")
        if not force:
            console.warning(
                "Kubernetes version not found in GitHub version list. You can force a Kubernetes "
                "version via the --force flag"
            )
            _exit_if_not_forced(
                console,
                K8S_NEW_UNSUPPORTED,
                f"Kubernetes version {plain} is not supported by this release of minikube",
                force,
            )
    if nvs < semver(rel.oldest_k8s):
        console.warning(
            f"Specified Kubernetes version {plain} is less than the oldest supported version: "
            f"{rel.oldest_k8s}. Use `minikube config defaults kubernetes-version` for details."
        )
        if not force:
            console.warning("You can force an unsupported Kubernetes version via the --force flag")
        _exit_if_not_forced(
            console, K8S_OLD_UNSUPPORTED, f"Kubernetes {plain} is not supported by this release of minikube", force
        )
    old = (existing or {}).get("KubernetesConfig", {}).get("KubernetesVersion")
    if old and nvs < semver(old):
        name = existing["Name"]
        prof = "" if name == home.DEFAULT_PROFILE else f" -p {name}"
        kind = Kind(
            K8S_DOWNGRADE_UNSUPPORTED.id,
            K8S_DOWNGRADE_UNSUPPORTED.code,
            advice=(
                f"\n\n    1) Recreate the cluster with Kubernetes {plain}, by running:\n    \n"
                f"    minikube delete{prof}\n    minikube start{prof} --kubernetes-version=v{plain}\n    \n"
                f"    2) Create a second cluster with Kubernetes {plain}, by running:\n    \n"
                f"    minikube start -p {name}2 --kubernetes-version=v{plain}\n    \n"
                f"    3) Use the existing cluster at version Kubernetes {old.lstrip('v')}, by running:\n    \n"
                f"    minikube start{prof} --kubernetes-version={old}\n    "
            ),
        )
        raise console.fatal(kind, f"Unable to safely downgrade existing Kubernetes {old} cluster to v{plain}")
    return "v" + plain


def _exit_if_not_forced(console, kind: Kind, message: str, force: bool) -> None:
    if force:
        # exitIfNotForced (start.go:2051): under --force, out.Error prints the reason's block and start goes on
        console.reason_error(kind, message)
        return
    raise console.fatal(kind, message)


RUNTIMES = ("docker", "containerd")


def _runtime(console, opts, existing: dict | None, rel: versions.Release) -> str:
    """getContainerRuntime (start.go:1525): the flag (or MINIKUBE_CONTAINER_RUNTIME), else the profile's,
    else the release's default. cri-o is a real runtime the stand-in does not have."""
    asked = (opts.get("container-runtime") or "").strip()
    if asked and asked not in RUNTIMES + ("cri-o", "crio"):
        raise console.fatal(USAGE, f"Invalid Container Runtime: {asked}. Valid runtimes are: [docker cri-o containerd]")
    if asked in ("cri-o", "crio"):
        raise console.fatal(USAGE, "the minikube stand-in has no cri-o runtime (it has: docker, containerd)")
    if asked:
        return asked
    if existing is not None:
        return existing.get("KubernetesConfig", {}).get("ContainerRuntime") or rel.default_runtime
    return rel.default_runtime


def _check_rig_has(console, version: str) -> None:
    """Refuse a version the rig has not built, as minikube fails when it cannot fetch the binaries."""
    from devrig import paths

    missing = paths.missing_parts(version)
    if not missing:
        return
    built = paths.built_kubernetes_versions()
    reason = (
        f"the test rig has no Kubernetes {version} binaries (missing: {', '.join(missing)}); "
        f"built versions: {', '.join(built) or 'none'}; {paths.BUILD_HINT}"
    )
    raise console.fatal(
        K8S_INSTALL_FAILED,
        "Failed to update cluster: update primary control-plane node: "
        f"downloading binaries: downloading kubelet: download failed: {reason}",
        new_issue_link=True,
    )


def _extra_options(values) -> list[dict] | None:
    """--extra-config=component.key=value, as minikube saves it (config.ExtraOptionSlice)."""
    out = []
    for item in values or ():
        head, _, value = item.partition("=")
        component, _, key = head.partition(".")
        out.append({"Component": component, "Key": key, "Value": value})
    return out or None


def _new_config(profile: str, opts, version: str, cpus: int, memory: int, runtime: str = "docker") -> dict:
    """Every key real minikube writes (config_defaults, recorded from v1.38.1), with what this start computes."""
    from . import config_defaults

    kubernetes = dict(config_defaults.KUBERNETES_CONFIG)
    kubernetes.update(
        KubernetesVersion=version,
        ClusterName=profile,
        ContainerRuntime=runtime,
        # minikube sets the CNI network plugin only where the runtime needs one: not for docker before 1.24,
        # which the kubelet's dockershim networks itself (cni.go chooseDefault; kubeadm's config has none)
        NetworkPlugin="" if runtime == "docker" and semver(version)[:2] < (1, 24) else "cni",
        FeatureGates=opts.get("feature-gates") or "",
        ExtraOptions=_extra_options(opts.get("extra-config")),
    )
    cfg = config_defaults.top_for(semver(versions.current().version))
    cfg.update(
        Name=profile,
        KeepContext=bool(opts.get("keep-context")),
        EmbedCerts=bool(opts.get("embed-certs")),
        KicBaseImage=opts.get("base-image") or versions.current().kicbase_image,
        Memory=memory,
        CPUs=cpus,
        Driver="docker",
        DockerEnv=list(opts.get("docker-env") or []) or None,
        KubernetesConfig=kubernetes,
        # the first save, before the host exists: no address yet, the in-node API port (configureNodes,
        # start.go:1724-1733); the boot fills in the node's own address (machine.go:138-152)
        Nodes=[
            {
                "Name": "",
                "IP": "",
                "Port": 8443,
                "KubernetesVersion": version,
                "ContainerRuntime": runtime,
                "ControlPlane": True,
                "Worker": True,
            }
        ],
        Addons={},
    )
    return cfg


def run(console, opts) -> int:
    # The order of minikube's checks (start.go runStart -> provisionWithDriver), so that the lines printed
    # before a refusal are the lines minikube prints: version banner, environment, the --force warning,
    # profile name, existing driver, Kubernetes version, runtime, driver choice, CPUs and memory,
    # the runtime-change warning.
    console.json = (opts.get("output") or "text").lower() == "json"
    profile = opts.get("profile")
    rel = versions.current()
    force = bool(opts.get("force"))
    prefix = "" if profile == home.DEFAULT_PROFILE else f"[{profile}] "
    console.step("happy", f"{prefix}minikube {rel.version} on {_platform()}", name="Initial Minikube Setup")
    if "/" not in profile and profile not in ("", ".", ".."):
        # register.SetEventLogPath: start logs its events to profiles/P/events.json from its first line on, so
        # a refused start leaves a profile dir without config (listed as invalid by `profile list`)
        events = home.profile_dir(profile) / "events.json"
        events.parent.mkdir(parents=True, exist_ok=True)
        events.touch()
    for key, value in os.environ.items():  # displayEnviron: in the environment's own order
        if key.startswith("MINIKUBE_") or key == "KUBECONFIG":
            console.info(f"{key}={value}")
    if force:
        console.warning(
            "minikube skips various validations when --force is supplied; this may lead to unexpected behavior"
        )
    if not home.PROFILE_NAME_RE.match(profile) or len(profile) < 2 or profile.endswith("-") or ".." in profile:
        console.warning(f"Profile name '{profile}' is not valid")
        raise console.fatal(
            USAGE, "Only alphanumeric and dashes '-' are permitted. Minimum 2 characters, starting with alphanumeric."
        )
    existing = home.load_config(profile)

    driver = opts.get("driver") or opts.get("vm-driver")
    if existing is not None and driver and driver != existing.get("Driver"):
        kind = Kind(
            GUEST_DRIVER_MISMATCH.id,
            GUEST_DRIVER_MISMATCH.code,
            advice=(
                f"Delete the existing '{profile}' cluster using: '{mustload.example_cmd(profile, 'delete')}', or "
                f"start the existing '{profile}' cluster using: '{mustload.example_cmd(profile, 'start')} "
                f"--driver={existing.get('Driver')}'"
            ),
        )
        raise console.fatal(
            kind,
            f'The existing "{profile}" cluster was created using the '
            f'"{existing.get("Driver")}" driver, which is incompatible with requested '
            f'"{driver}" driver.',
        )
    version = _resolve_version(console, opts.get("kubernetes-version"), existing, rel, force)

    if existing is not None:
        console.step("sparkle", "Using the docker driver based on existing profile", name="Selecting Driver")
    elif driver:
        if driver != "docker":
            raise console.fatal(DRV_UNSUPPORTED_OS, f"The driver '{driver}' is not supported on linux/amd64")
        console.step("sparkle", "Using the docker driver based on user configuration", name="Selecting Driver")
    else:
        console.step("sparkle", "Automatically selected the docker driver", name="Selecting Driver")

    if opts.get("nodes") != 1:
        raise console.fatal(
            USAGE, f"the minikube stand-in runs one real node; for more nodes use {FAKE_NODES_ENV}=N (kwok fake nodes)"
        )
    cpus, memory = _resources(console, opts, existing, force)  # validateFlags: CPUs, memory, then the runtime
    runtime = _runtime(console, opts, existing, rel)
    if (
        rel.warns_runtime_change
        and runtime == "docker"
        and (existing is None or "container-runtime" in opts.changed or os.environ.get("MINIKUBE_CONTAINER_RUNTIME"))
    ):
        console.warning(versions.RUNTIME_CHANGE_WARNING)
    _check_rig_has(console, version)

    cfg = existing or _new_config(profile, opts, version, cpus, memory, runtime)
    cfg["KubernetesConfig"]["KubernetesVersion"] = version
    cfg["Nodes"][0]["KubernetesVersion"] = version
    cfg["KeepContext"] = bool(opts.get("keep-context"))
    if "embed-certs" in opts.changed:
        cfg["EmbedCerts"] = bool(opts.get("embed-certs"))
    if "feature-gates" in opts.changed:  # updateExistingConfigFromFlags: the flag replaces the saved gates whole
        cfg["KubernetesConfig"]["FeatureGates"] = opts.get("feature-gates") or ""
    for addon in opts.get("addons") or []:
        cfg.setdefault("Addons", {})[addon] = True
    home.save_config(profile, cfg)  # minikube saves the profile before it creates the host

    rig = home.load_rig_state(profile)
    fake_env = os.environ.get(FAKE_NODES_ENV)
    fake_nodes = int(fake_env) if fake_env and fake_env.isdigit() else int(rig.get("fake_nodes", 0))

    console.step(
        "thumbs_up", f'Starting "{profile}" primary control-plane node in "{profile}" cluster', name="Starting Node"
    )
    state = cluster.host_state(profile)
    if existing is None or state == cluster.NONEXISTENT:
        console.step(
            "starting_vm",
            f"Creating docker container (CPUs={cpus or 'no-limit'}, "
            f"Memory={str(memory) + 'MB' if memory else 'no-limit'}) ...",
            name="Creating Container",
        )
    elif state == cluster.RUNNING:
        console.step("running", f'Updating the running docker "{profile}" container ...', name="Running on Localhost")
    else:
        console.step(
            "restarting", f'Restarting existing docker container for "{profile}" ...', name="Creating Container"
        )

    if os.environ.get("DEVRIG_FAIL_START") not in (None, "", "0"):
        err = (
            f"creating host: create: creating: setting up container node: preparing volume for {profile} "
            f"container: docker run --rm --name {profile}-preload-sidecar: exit status 125 "
            "(fault injected by DEVRIG_FAIL_START)"
        )
        console.err(
            "sad",
            f'Failed to start docker container. Running "{mustload.example_cmd(profile, "delete")}" may fix it: {err}',
        )
        raise console.fatal(
            GUEST_PROVISION, f"error provisioning guest: Failed to start host: {err}", new_issue_link=True
        )

    timeout = parse_duration(opts.get("wait-timeout")) or 360.0
    gated = _engine_gate(profile, rel, cfg, runtime)
    # changed gates reach a running control plane too (minikube: kubeadm config drift -> reconfigure)
    info = _boot(
        console,
        profile,
        version,
        fake_nodes,
        timeout,
        delete_on_failure=bool(opts.get("delete-on-failure")),
        gated=gated,
        feature_gates=cfg["KubernetesConfig"].get("FeatureGates") or "",
    )

    console.step(
        "docker", f"Preparing Kubernetes {version} on Docker {_docker_version(info)} ...", name="Preparing Kubernetes"
    )
    console.step("sub_step", "Generating certificates and keys ...", name="Generating certificates")
    console.step("sub_step", "Booting up control plane ...", name="Booting control plane")
    console.step("sub_step", "Configuring RBAC rules ...", name="Configuring RBAC rules")

    # the node's own address and port; with a node network the kubeconfig gets the forwarded loopback port
    # instead, as minikube's docker driver writes on macOS
    cfg["Nodes"][0].update(IP=info.node_ip, Port=info.node_port)
    cfg["APIServerPort"] = info.node_port
    home.save_config(profile, cfg)
    rig.update(
        fake_nodes=fake_nodes, apiserver_url=info.apiserver_url, docker_host=info.docker_host, started_at=time.time()
    )
    home.save_rig_state(profile, rig)
    kubeconfig.write_profile(
        profile,
        server=info.apiserver_url,
        ca=info.ca_cert,
        client_cert=info.client_cert,
        client_key=info.client_key,
        minikube_version=rel.version,
        keep_context=bool(opts.get("keep-context")),
        embed_certs=bool(opts.get("embed-certs") or cfg.get("EmbedCerts")),
    )

    _label_node(info, rel)
    console.step("health_check", "Verifying Kubernetes components...", name="Verifying Kubernetes")
    enabled = [a for a, on in (cfg.get("Addons") or {}).items() if on]
    if enabled:
        from . import cmd_addons

        for addon in enabled:
            cmd_addons.reenable_on_start(console, profile, addon)
        console.step("addon_enable", f"Enabled addons: {', '.join(enabled)}", name="Enabling Addons")
    faults.arm(profile, info)
    if opts.get("keep-context"):
        console.step("kubectl", f"To connect to this cluster, use:  --context={profile}", name="Done")
    else:
        console.step(
            "ready",
            f'Done! kubectl is now configured to use "{profile}" cluster and "default" namespace by default',
            name="Done",
        )
    return 0


def _resources(console, opts, existing: dict | None, force: bool) -> tuple[int, int]:
    raw_cpus = opts.get("cpus")
    if raw_cpus == "max":
        cpus = os.cpu_count() or 2
    elif raw_cpus == "no-limit":
        cpus = 0
    elif raw_cpus.isdigit():
        cpus = int(raw_cpus)
    else:
        raise console.fatal(USAGE, f'Unable to parse cpus "{raw_cpus}"')
    raw_mem = opts.get("memory")
    if raw_mem in ("", None):
        memory = min(DEFAULT_MEMORY_MB, max(_system_memory_mb() // 4 // 100 * 100, 2200))
    elif raw_mem == "max":
        memory = _system_memory_mb()
    elif raw_mem == "no-limit":
        memory = 0
    else:
        parsed = _memory_mb(raw_mem)
        if parsed is None:
            raise console.fatal(Kind("MK_USAGE", 14), f"Generate unable to parse memory '{raw_mem}': invalid size")
        memory = parsed
    if existing is not None:
        if "memory" in opts.changed and memory != existing.get("Memory"):
            console.warning(
                "You cannot change the memory size for an existing minikube cluster. Please first delete the cluster."
            )
        if "cpus" in opts.changed and cpus != existing.get("CPUs"):
            console.warning(
                "You cannot change the CPUs for an existing minikube cluster. Please first delete the cluster."
            )
        return existing.get("CPUs", cpus), existing.get("Memory", memory)
    # validateCPUCount (start.go:1226): the docker driver compares with `docker info` NCPU, i.e. the host's
    available = _host_cpus()
    if cpus and cpus < MIN_CPUS:
        _exit_if_not_forced(
            console,
            RSRC_INSUFFICIENT_CORES,
            f"Requested cpu count {cpus} is less than the minimum allowed of {MIN_CPUS}",
            force,
        )
    if cpus and available < cpus:
        _exit_if_not_forced(
            console,
            RSRC_INSUFFICIENT_CORES,
            f"Requested cpu count {cpus} is greater than the available cpus of {available}",
            force,
        )
    # validateRequestedMemorySize (start.go:1162)
    system = _host_memory_mb()
    if memory and memory < MIN_MEMORY_MB:
        _exit_if_not_forced(
            console,
            RSRC_INSUFFICIENT_REQ_MEMORY,
            f"Requested memory allocation {memory}MiB is less than the usable minimum of {MIN_MEMORY_MB}MB",
            force,
        )
    if memory and memory > system:
        advised = _suggest_memory(system, memory)
        kind = Kind(
            "RSRC_OVER_ALLOC_MEM",
            10,
            advice=f"Start minikube with less memory allocated: 'minikube start --memory={advised}mb'",
        )
        _exit_if_not_forced(
            console, kind, f"Requested memory allocation {memory}MB is more than your system limit {system}MB.", force
        )
    if memory and memory > system - 1024:
        # out.WarnReason: a warning event in JSON, else the reason block in KnownIssue style
        text = (
            f"The requested memory allocation of {memory}MiB does not leave room for system overhead "
            f"(total system memory: {system}MiB). You may face stability issues."
        )
        kind = Kind(
            "RSRC_OVER_ALLOC_MEM",
            10,
            advice="Start minikube with less memory allocated: "
            f"'minikube start --memory={_suggest_memory(system, memory)}mb'",
        )
        console.warning(text) if console.json else console.reason_error(kind, text)
    return cpus, memory


HOST_CPUS_ENV, HOST_MEMORY_ENV = "DEVRIG_HOST_CPUS", "DEVRIG_HOST_MEMORY_MB"


def _host_cpus() -> int:
    """What the driver's `docker info` reports as NCPU: this machine's CPUs, or DEVRIG_HOST_CPUS (to play a
    bigger or smaller machine)."""
    raw = os.environ.get(HOST_CPUS_ENV, "").strip()
    return int(raw) if raw.isdigit() else (os.cpu_count() or 1)


def _host_memory_mb() -> int:
    raw = os.environ.get(HOST_MEMORY_ENV, "").strip()
    return int(raw) if raw.isdigit() else _system_memory_mb()


def _suggest_memory(system_mb: int, requested: int = 0) -> int:
    """suggestMemoryAllocation (start.go) for one node on the docker driver (container limit = the host's)."""
    if requested and requested < system_mb:
        return requested
    fallback, maximum = 3072, system_mb - 48
    if fallback > system_mb:
        return system_mb
    suggested = int(system_mb / 400.0) * 100
    return max(fallback, min(maximum, suggested))


def _engine_gate(profile: str, rel: versions.Release, cfg: dict, runtime: str) -> str | None:
    """Put the Docker >= 29 API gate in front of the engine when this release's kicbase Docker refuses
    dockershim's API 1.41 (the kubelet talks to Docker only with the docker runtime); else make sure none is
    left from an earlier start. Returns the gate's minimum API version, or None."""
    from . import apigate

    floor = versions.engine_min_api(rel, cfg.get("Driver") or "docker", cfg.get("DockerEnv"))
    if runtime != "docker" or floor is None or versions.api_tuple(floor) <= DOCKERSHIM_API:
        apigate.stop(profile, forget=True)
        return None
    apigate.ensure(profile, floor)
    return floor


DOCKERSHIM_API = (1, 41)  # the kubelet's dockershim client (docker v20.10 client, negotiates only downwards)
KUBEADM_TIMEOUT_ENV = "DEVRIG_KUBEADM_INIT_TIMEOUT"
KUBELET_NOT_RUNNING = Kind(
    "K8S_KUBELET_NOT_RUNNING",
    109,
    advice="Check output of 'journalctl -xeu kubelet', try passing --extra-config=kubelet.cgroup-driver=systemd "
    "to minikube start",
    issues=("https://github.com/kubernetes/minikube/issues/4172",),
)


def _kubeadm_init_error(version: str) -> str:
    """The error minikube's bootstrapper returns when kubeadm init (v1.21) waited 4m0s for a kubelet that never
    served the control plane (kubeadm's waitcontrolplane.go template)."""
    return (
        f'wait: /bin/bash -c "sudo env PATH="/var/lib/minikube/binaries/{version}:$PATH" kubeadm init --config '
        "/var/tmp/minikube/kubeadm.yaml  --ignore-preflight-errors=DirAvailable--etc-kubernetes-manifests,"
        "DirAvailable--var-lib-minikube,DirAvailable--var-lib-minikube-etcd,FileAvailable--etc-kubernetes-"
        "manifests-kube-scheduler.yaml,FileAvailable--etc-kubernetes-manifests-kube-apiserver.yaml,"
        "FileAvailable--etc-kubernetes-manifests-kube-controller-manager.yaml,FileAvailable--etc-kubernetes-"
        "manifests-etcd.yaml,Port-10250,Swap,NumCPU,Mem,SystemVerification,FileContent--proc-sys-net-bridge-"
        'bridge-nf-call-iptables": Process exited with status 1\nstdout:\n'
        f"[init] Using Kubernetes version: {version}\n"
        "[wait-control-plane] Waiting for the kubelet to boot up the control plane as static Pods from directory "
        '"/etc/kubernetes/manifests". This can take up to 4m0s\n'
        "[kubelet-check] Initial timeout of 40s passed.\n\n"
        "\tUnfortunately, an error has occurred:\n\t\ttimed out waiting for the condition\n\n"
        "\tThis error is likely caused by:\n\t\t- The kubelet is not running\n"
        "\t\t- The kubelet is unhealthy due to a misconfiguration of the node in some way (required cgroups "
        "disabled)\n\nstderr:\n"
        "error execution phase wait-control-plane: couldn't initialize a Kubernetes cluster\n"
        "To see the stack trace of this error execute with --v=5 or higher"
    )


def _kubeadm_gives_up(console, profile: str, version: str, refusal: str, machine) -> None:
    """What minikube does when the kubelet never comes up: kubeadm init waits its 4m0s, minikube says
    "initialization failed, will try again" and runs it once more (kubeadm.go:439-447), then start fails with
    the known issue K8S_KUBELET_NOT_RUNNING (exit 109). The real kubelet is restarted meanwhile, as systemd
    does, and is refused each time. DEVRIG_KUBEADM_INIT_TIMEOUT shortens each wait (seconds)."""
    import time as _time

    from devrig import RigError

    per_attempt = float(os.environ.get(KUBEADM_TIMEOUT_ENV) or 240)
    err = _kubeadm_init_error(version)
    console.step("docker", f"Preparing Kubernetes {version} on Docker 29.1.3 ...", name="Preparing Kubernetes")
    for attempt in (1, 2):
        console.step("sub_step", "Generating certificates and keys ...", name="Generating certificates")
        console.step("sub_step", "Booting up control plane ...", name="Booting control plane")
        deadline = _time.monotonic() + per_attempt
        while (left := deadline - _time.monotonic()) > 0:
            _time.sleep(min(10.0, left))  # systemd's RestartSec=10 for minikube's kubelet unit
            if deadline - _time.monotonic() <= 0:
                break
            try:
                machine.boot(kubernetes_version=version, timeout=max(5.0, min(30.0, deadline - _time.monotonic())))
                return  # the gate let it through after all (its minimum was lowered meanwhile)
            except RigError:
                pass
        if attempt == 1:
            console.err("conflict", f"initialization failed, will try again: {err}")
    # out.LogEntries (out.go:418-444): the error between blank lines, the issue box, then the log's problems
    console.err("empty", "")
    console.err("failure", f"Error starting cluster: {err}")
    console.err("empty", "")
    console._stderr(console._issue_box())
    console.step("failure", "Problems detected in kubelet:")
    console.step("log_entry", refusal.strip())
    raise console.fatal(KUBELET_NOT_RUNNING, err)


def _boot(
    console,
    profile: str,
    version: str,
    fake_nodes: int,
    timeout: float,
    *,
    delete_on_failure: bool,
    gated: str | None = None,
    feature_gates: str = "",
):
    from devrig import RigError

    machine = cluster.machine(profile)
    try:
        return machine.boot(
            kubernetes_version=version, fake_nodes=fake_nodes, timeout=timeout, feature_gates=feature_gates
        )
    except RigError as exc:
        from . import apigate

        refusal = apigate.kubelet_refused(profile) if gated else ""
        if not refusal:
            return _boot_failed(console, profile, machine, exc, timeout, delete_on_failure)
    _kubeadm_gives_up(console, profile, version, refusal, machine)
    return machine.info()


def _boot_failed(console, profile: str, machine, exc, timeout: float, delete_on_failure: bool):
    from devrig import RigError, RigMissing, RigTimeout

    try:
        raise exc
    except RigMissing as exc:
        raise console.fatal(K8S_INSTALL_FAILED, f"Failed to update cluster: {exc}", new_issue_link=True)
    except RigTimeout as exc:
        raise console.fatal(
            GUEST_START, f"failed to start node: wait {timeout:.0f}s for node: {exc}", new_issue_link=True
        )
    except RigError as exc:
        if delete_on_failure:
            machine.destroy()
        console.err(
            "sad",
            f'Failed to start docker container. Running "{mustload.example_cmd(profile, "delete")}" may fix it: {exc}',
        )
        raise console.fatal(
            GUEST_PROVISION, f"error provisioning guest: Failed to start host: {exc}", new_issue_link=True
        )


def _label_node(info, rel: versions.Release) -> None:
    """The labels minikube puts on its primary node (addons select `minikube.k8s.io/primary: "true"`)."""
    from devrig.kapi import Api

    api = Api(info.apiserver_port, info.ca_cert, info.client_cert, info.client_key)
    api.patch(
        f"/api/v1/nodes/{info.node_name}",
        {
            "metadata": {
                "labels": {
                    "minikube.k8s.io/commit": rel.commit,
                    "minikube.k8s.io/name": info.name,
                    "minikube.k8s.io/primary": "true",
                    "minikube.k8s.io/version": rel.version,
                    "minikube.k8s.io/updated_at": time.strftime("%Y_%m_%dT%H_%M_%S_0000", time.gmtime()),
                }
            }
        },
    )


def _docker_version(info) -> str:
    from devrig.engine import unix_http

    try:
        status, body = unix_http(info.docker_socket, "GET", "/version", timeout=3)
        return json.loads(body).get("Version", "") if status == 200 else ""
    except (OSError, ValueError):
        return ""


def run_stop(console, opts) -> int:
    console.json = (opts.get("output") or "text").lower() == "json"
    profile = opts.get("profile")
    cfg = home.load_config(profile)
    if cfg is None:
        mustload.partial(console, profile)
    state = cluster.host_state(profile)
    if state == cluster.NONEXISTENT:
        console.styled("meh", f'"{profile}" does not exist, nothing to stop')
        console.step("stopped", "0 nodes stopped.")
        return 0
    console.step("stopping", f'Stopping node "{profile}"  ...', name="Stopping")
    from . import admission_proc
    from . import faults as _faults

    _faults.disarm(profile)
    admission_proc.stop(profile)
    from . import apigate

    apigate.stop(profile)
    cluster.machine(profile).stop()
    console.step("stopped", "1 node stopped.", name="Done")
    return 0
