"""`minikube addons enable|disable|list`; the stand-in implements the `ingress` addon for real."""

from __future__ import annotations

import json
import os
import time

from . import addon_images, admission_proc, cluster, faults, home, mustload, versions
from .flags import Flag
from .reasons import ADDON_ENABLE, USAGE, Kind
from .versions import semver

ENABLE_FLAGS = (
    Flag("images", "string", "", "", "Images used by this addon. Separated by commas.", env=False),
    Flag("registries", "string", "", "", "Registries used by this addon. Separated by commas.", env=False),
    Flag("force", "bool", False, "", "If true, will perform potentially dangerous operations.", env=False),
    Flag("refresh", "bool", False, "", "If true, pods might get deleted and restarted on addon enable", env=False),
)
DISABLE_FLAGS = ()
LIST_FLAGS = (
    Flag("output", "string", "list", "o", "minikube addons list --output OUTPUT. json, list", env=False),
    Flag("docs", "bool", False, "d", "If true, print web links to addons' documentation", env=False),
)

# the addon names minikube v1.36 knows (pkg/minikube/assets/addons.go)
ADDONS = sorted(
    (
        "auto-pause",
        "dashboard",
        "default-storageclass",
        "pod-security-policy",
        "storage-provisioner",
        "storage-provisioner-gluster",
        "storage-provisioner-rancher",
        "efk",
        "ingress",
        "istio-provisioner",
        "istio",
        "inspektor-gadget",
        "kong",
        "kubevirt",
        "metrics-server",
        "olm",
        "registry",
        "registry-creds",
        "registry-aliases",
        "freshpod",
        "nvidia-driver-installer",
        "nvidia-gpu-device-plugin",
        "amd-gpu-device-plugin",
        "logviewer",
        "gvisor",
        "ingress-dns",
        "metallb",
        "ambassador",
        "gcp-auth",
        "volcano",
        "volumesnapshots",
        "csi-hostpath-driver",
        "portainer",
        "inaccel",
        "headlamp",
        "cloud-spanner",
        "kubeflow",
        "nvidia-device-plugin",
        "yakd",
    )
)
IMPLEMENTED = ("ingress",)


def known_addons() -> list[str]:
    """ADDONS as the playing release has them (assets/addons.go at each tag; the contract tests found these):
    kubetail from v1.37, storage-provisioner-gluster gone in v1.38."""
    release = semver(versions.current().version)
    names = set(ADDONS)
    if release >= (1, 37):
        names.add("kubetail")
    if release >= (1, 38):
        names.discard("storage-provisioner-gluster")
    return sorted(names)


WAIT_SECONDS = 6 * 60  # kapi.WaitForPods timeout in verifyAddonStatus
WAIT_ENV = "DEVRIG_ADDON_WAIT_TIMEOUT"  # seconds; lets tests see the timeout path without waiting 6 minutes
APPLY_RETRY_SECONDS = 120


def run_list(console, opts) -> int:
    output = opts.get("output")
    cfg = home.load_config(opts.get("profile"))
    if output == "json":
        data = {}
        for name in known_addons():
            if cfg is None:
                data[name] = {}
                continue
            entry = {"Profile": cfg["Name"], "Status": "enabled" if (cfg.get("Addons") or {}).get(name) else "disabled"}
            if opts.get("docs"):
                entry = {"Docs": "", "Maintainer": "", **entry}
            data[name] = entry
        console.raw(json.dumps(data, separators=(",", ":")))
        return 0
    if output != "list":
        raise console.fatal(USAGE, f"invalid output format: {output}. Valid values: 'list', 'json'")
    if cfg is None:
        mustload.partial(console, opts.get("profile"))
    rows = [("ADDON NAME", "PROFILE", "STATUS", "MAINTAINER")]
    for name in known_addons():
        on = (cfg.get("Addons") or {}).get(name)
        rows.append((name, cfg["Name"], "enabled ✅" if on else "disabled", "Kubernetes" if name == "ingress" else ""))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|\n"
    text = (
        sep
        + "".join(
            "|" + "|".join(f" {v.ljust(w)} " for v, w in zip(r, widths)) + "|\n" + (sep if i == 0 else "")
            for i, r in enumerate(rows)
        )
        + sep
    )
    console.raw(text)
    return 0


def _one_arg(console, opts, verb: str) -> str:
    if len(opts.args) != 1:
        raise console.fatal(USAGE, f"usage: minikube addons {verb} ADDON_NAME")
    return opts.args[0]


def run_enable(console, opts) -> int:
    addon = _one_arg(console, opts, "enable")
    profile = opts.get("profile")
    cfg = mustload.partial(console, profile)
    if addon not in known_addons():
        raise console.fatal(
            ADDON_ENABLE, f"enable failed: run callbacks: {addon} is not a valid addon", new_issue_link=True
        )
    if addon not in IMPLEMENTED:
        raise console.fatal(
            ADDON_ENABLE,
            f"enable failed: run callbacks: running callbacks: [the minikube "
            f"stand-in implements only the {', '.join(IMPLEMENTED)} addon, not {addon}]",
        )
    console.styled(
        "tip",
        f"{addon} is an addon maintained by Kubernetes. For any concerns contact minikube on "
        "GitHub.\nYou can view the list of minikube maintainers at: "
        "https://github.com/kubernetes/minikube/blob/master/OWNERS",
    )
    faults.fail_addon(console, addon)
    _enable_ingress(console, profile, cfg, images_flag=opts.get("images"), registries_flag=opts.get("registries"))
    cfg.setdefault("Addons", {})[addon] = True
    home.save_config(profile, cfg)
    console.step("addon_enable", f"The '{addon}' addon is enabled")
    return 0


def run_disable(console, opts) -> int:
    addon = _one_arg(console, opts, "disable")
    profile = opts.get("profile")
    cfg = mustload.partial(console, profile)
    if addon not in known_addons():
        raise console.fatal(Kind("SVC_ADDON_UNSUPPORTED", 116), f"\"'{addon}' is not a valid minikube addon")
    if addon == "ingress" and cluster.host_state(profile) == cluster.RUNNING:
        from devrig.ingress import manifests

        info = cluster.machine(profile).info()
        _kubectl(
            info,
            ["delete", "--ignore-not-found", "--wait=false", "-f", "-"],
            stdin=_render(manifests.objects(webhook_url="https://127.0.0.1:1/", ca_pem=b"", cert_pem=b"", key_pem=b"")),
        )
        admission_proc.stop(profile)
    cfg.setdefault("Addons", {})[addon] = False
    home.save_config(profile, cfg)
    console.styled("addon_disable", f"\"The '{addon}' addon is disabled")
    return 0


def reenable_on_start(console, profile: str, addon: str) -> None:
    """minikube re-applies enabled addons (and verifies them) on every start."""
    if addon in IMPLEMENTED:
        _enable_ingress(console, profile, home.load_config(profile), quiet=True)


def _render(objs: list[dict]) -> str:
    return "".join("---\n" + json.dumps(o) + "\n" for o in objs)


def _kubectl(info, args: list[str], stdin: str | None = None, timeout: float = 60):
    import subprocess

    from devrig import paths

    kubectl = paths.k8s_bin(info.kubernetes_version, "kubectl")
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    return subprocess.run(
        [str(kubectl), f"--kubeconfig={info.kubeconfig}", *args],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _enable_ingress(
    console, profile: str, cfg: dict, *, quiet: bool = False, images_flag: str = "", registries_flag: str = ""
) -> None:
    from devrig import RigError
    from devrig.ingress import images, manifests

    release = versions.current()
    defaults, registries = addon_images.ingress_defaults(release)
    # SelectAndPersistImages: the flags' warnings, and config.json written, before the host is looked at
    chosen, custom, changed = addon_images.select_and_persist(console, cfg, defaults, images_flag, registries_flag)
    if changed:
        home.save_config(profile, cfg)
    refs = addon_images.resolve(cfg, chosen, registries, custom)
    deadline = time.monotonic() + float(os.environ.get(WAIT_ENV) or WAIT_SECONDS)
    if cluster.host_state(profile) != cluster.RUNNING:
        # EnableOrDisableAddon only records the flag for a stopped host; verify then polls in vain
        cfg.setdefault("Addons", {})["ingress"] = True
        home.save_config(profile, cfg)
        if not quiet:
            console.step("health_check", "Verifying ingress addon...")
        _wait_pods(console, None, deadline)
        return
    if not quiet:
        for line in addon_images.using_lines(cfg, chosen, registries, custom):
            console.info(line)
    info = cluster.machine(profile).info()
    try:
        url = admission_proc.ensure(profile)
        ca, cert, key = admission_proc.certs(profile)
        _pull(info.docker_socket, release, cfg, refs, images)
    except (RigError, OSError) as exc:
        raise console.fatal(
            ADDON_ENABLE, f"enable failed: run callbacks: running callbacks: [{exc}]", new_issue_link=True
        )
    objs = manifests.objects(
        webhook_url=url,
        ca_pem=ca.read_bytes(),
        cert_pem=cert.read_bytes(),
        key_pem=key.read_bytes(),
        controller_image=refs["IngressController"],
        certgen_image=refs["KubeWebhookCertgenCreate"],
    )
    for obj in objs:  # the template gives the patch Job its own image (KubeWebhookCertgenPatch)
        if obj.get("kind") == "Job" and obj["metadata"]["name"].endswith("-patch"):
            for container in obj["spec"]["template"]["spec"]["containers"]:
                container["image"] = refs["KubeWebhookCertgenPatch"]
    _apply_with_retries(console, info, _render(objs))
    if not quiet:
        console.step("health_check", "Verifying ingress addon...")
    _wait_pods(console, info, deadline)


def _pull(socket, release, cfg: dict, refs: dict[str, str], images) -> None:
    """What the kubelet would pull: the rig has no registry, so minikube's own images are built into the node
    (as the rig always did), and one asked for from another registry (a mirror serving minikube's image) is
    that image under the mirror's name. An image named with --images is the user's: it is used only if the
    node has it (a local image loaded beforehand), else its pods never run, as offline."""
    from urllib.parse import quote

    from devrig.engine import unix_http

    controller, certgen = release.ingress_images
    images.ensure_images(socket, controller, certgen)
    default_ref = {
        "IngressController": controller,
        "KubeWebhookCertgenCreate": certgen,
        "KubeWebhookCertgenPatch": certgen,
    }
    custom = cfg.get("CustomAddonImages") or {}
    for name, ref in refs.items():
        if name in custom or ref == default_ref[name] or images.has_image(socket, ref):
            continue
        repo, _, tag = ref.rpartition(":")  # minikube's image under another registry: the rig's carry a tag
        query = f"repo={quote(repo, safe='')}&tag={quote(tag, safe='')}"
        status, body = unix_http(socket, "POST", f"/images/{default_ref[name]}/tag?{query}")
        if status != 201:
            raise OSError(f"tagging {default_ref[name]} as {ref} in {socket}: {status} {body[:200]!r}")


def _apply_with_retries(console, info, doc: str) -> None:
    """addons.go applies with exponential back-off for up to 2 minutes (the API may still be settling); from
    v1.30.0 every attempt after the first is `kubectl apply --force`, which deletes and recreates an object
    apply cannot change (a Job whose image changed: its pod template is immutable)."""
    deadline, delay, last, force = time.monotonic() + APPLY_RETRY_SECONDS, 0.5, "", False
    while True:
        result = _kubectl(info, ["apply", *(["--force"] if force else []), "-f", "-"], stdin=doc)
        if result.returncode == 0:
            return
        last = (result.stderr or result.stdout).strip()
        if time.monotonic() + delay > deadline:
            raise console.fatal(
                ADDON_ENABLE,
                "enable failed: run callbacks: running callbacks: [sudo "
                f"KUBECONFIG=/var/lib/minikube/kubeconfig kubectl apply {'--force ' if force else ''}-f "
                f"/etc/kubernetes/addons/ingress-deploy.yaml: Process exited with status "
                f"{result.returncode}\nstdout:\n\nstderr:\n{last}\n]",
                new_issue_link=True,
            )
        force = True
        time.sleep(delay)
        delay = min(delay * 2, 10)


def _wait_pods(console, info, deadline: float) -> None:
    """kapi.WaitForPods: every pod labelled app.kubernetes.io/name=ingress-nginx Running or Succeeded."""
    from devrig.ingress.manifests import NAMESPACE, POD_LABEL

    api = None
    if info is not None:
        from devrig.kapi import Api

        api = Api(info.apiserver_port, info.ca_cert, info.client_cert, info.client_key)
    path = f"/api/v1/namespaces/{NAMESPACE}/pods?labelSelector={POD_LABEL}"
    while True:
        try:
            pods = (api.get(path) or {}).get("items", []) if api else []
        except Exception:  # a temporary API error counts as "not yet", as kapi does
            pods = []
        if pods and all(p.get("status", {}).get("phase") in ("Running", "Succeeded") for p in pods):
            return
        if time.monotonic() >= deadline:
            raise console.fatal(
                ADDON_ENABLE,
                "enable failed: run callbacks: running callbacks: [waiting for "
                f"{POD_LABEL} pods: context deadline exceeded]",
                new_issue_link=True,
            )
        time.sleep(0.5)
