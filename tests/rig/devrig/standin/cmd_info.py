"""`minikube ip`, `minikube version`, `minikube profile list`."""

from __future__ import annotations

import json

from . import cluster, home, mustload, versions
from .flags import Flag
from .reasons import OUTPUT_USAGE, USAGE, Kind

IP_FLAGS = (Flag("node", "string", "", "n", "The node to get IP. Defaults to the primary control plane.", env=False),)
VERSION_FLAGS = (
    Flag("output", "string", "", "o", "One of 'yaml' or 'json'.", env=False),
    Flag("short", "bool", False, "", "Print just the version number.", env=False),
    Flag("components", "bool", False, "", "list versions of all components included with minikube.", env=False),
)
PROFILE_LIST_FLAGS = (
    Flag("output", "string", "table", "o", "The output format. One of 'json', 'table'", env=False),
    Flag(
        "light",
        "bool",
        False,
        "l",
        "If true, returns list of profiles faster by skipping validating the status of the cluster.",
        env=False,
    ),
)


def run_ip(console, opts) -> int:
    profile = opts.get("profile")
    cfg = mustload.running(console, profile)
    node_name = opts.get("node")
    nodes = cfg.get("Nodes") or []
    if node_name:
        wanted = "" if node_name == profile else node_name
        match = [n for n in nodes if n.get("Name") == wanted]
        if not match:
            raise console.fatal(
                Kind("GUEST_NODE_RETRIEVE", 85),
                f"retrieving node: Could not find node {node_name}",
                new_issue_link=True,
            )
        nodes = match
    console.raw((nodes[0].get("IP") if nodes else "127.0.0.1") + "\n")
    return 0


def run_version(console, opts) -> int:
    rel = versions.current()
    output = opts.get("output")
    if opts.get("components"):
        raise console.fatal(USAGE, "--components needs a running minikube VM; the stand-in has none")
    if output == "":
        if opts.get("short"):
            console.raw(rel.version + "\n")
        else:
            console.raw(f"minikube version: {rel.version}\ncommit: {rel.commit}\n")
        return 0
    data = {"commit": rel.commit, "minikubeVersion": rel.version}
    if output == "json":
        console.raw(json.dumps(data, separators=(",", ":")) + "\n")
    elif output == "yaml":
        console.raw(f"commit: {rel.commit}\nminikubeVersion: {rel.version}\n\n")
    else:
        raise console.fatal(OUTPUT_USAGE, "error: --output must be 'yaml' or 'json'")
    return 0


def _profile_json(name: str, cfg: dict | None, status: str, active_ctx: str, active: str) -> dict:
    return {
        "Name": name,
        "Status": status,
        "Config": cfg,
        "Active": cfg is not None and name == active,
        "ActiveKubeContext": cfg is not None and name == active_ctx,
    }


class KubeconfigUnreadable(Exception):
    pass


def _current_context() -> str:
    """kubeconfig.GetCurrentContext: a missing file is an empty config; an unreadable one is an error."""
    import yaml

    path = home.kubeconfig_path()
    try:
        text = path.read_text()
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise KubeconfigUnreadable(str(exc)) from exc
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise KubeconfigUnreadable(str(exc)) from exc
    if not isinstance(data, dict):
        raise KubeconfigUnreadable(f"{path}: not a kubeconfig")
    return data.get("current-context") or ""


def run_profile_list(console, opts) -> int:
    output = (opts.get("output") or "").lower()
    if output not in ("json", "table"):
        raise console.fatal(USAGE, f"invalid output format: {opts.get('output')}. Valid values: 'table', 'json'")
    console.json = output == "json"
    light = bool(opts.get("light"))
    valid_names, invalid_names = home.list_profiles()
    # -l (config.ListValidProfiles): valid profiles only, no kubeconfig read, no status checks
    # (profile_list.go:75-82); without it ListProfiles reads the kubeconfig's current context, and an
    # error there prints {"error":{}} (a wrapped Go error marshals to an empty object) and exits 80 (:242-245)
    ctx = ""
    if not light and home.profiles_dir().is_dir():  # without one, ListProfiles returns before the kubeconfig
        try:
            ctx = _current_context()
        except KubeconfigUnreadable:
            if output == "json":
                console.raw(json.dumps({"error": {}}, separators=(",", ":")))
                raise console.exit_code(80)
            valid_names, invalid_names = [], []
    valid = []
    for name in valid_names:
        cfg = home.load_config(name)
        if not light and not any(n.get("ControlPlane") for n in (cfg.get("Nodes") or [])):
            # profileStatus (profile_list.go:118-121): one such profile ends the whole command
            raise console.fatal(Kind("GUEST_CP_CONFIG", 88), "No control-plane nodes found.")
        status = "Skipped" if light else cluster.profile_status_name(name, cfg)
        if not light and cluster.node_status(name, cfg) is None:
            from .out import klog_error

            lines = versions.current().klog_lines
            klog_error(lines["host gone"], f'the "{name}" host does not exist')
            klog_error(lines["profile list"], f'error getting statuses: the "{name}" host does not exist')
        valid.append(_profile_json(name, cfg, status, ctx, opts.get("profile")))
    invalid = [] if light else [_profile_json(n, None, "", ctx, "") for n in invalid_names]
    if output == "json":
        console.raw(json.dumps({"invalid": invalid, "valid": valid}, separators=(",", ":")))
        return 0
    if not valid:
        raise console.fatal(Kind("MK_USAGE_NO_PROFILE", 14), "No minikube profile was found.")
    rows = [
        (
            "Profile",
            "Driver",
            "Runtime",
            "IP",
            "Port",
            "Version",
            "Status",
            "Nodes",
            "Active Profile",
            "Active Kubecontext",
        )
    ]
    for p in valid:
        c = p["Config"]
        node = (c.get("Nodes") or [{}])[0]
        rows.append(
            (
                p["Name"],
                c.get("Driver", ""),
                c["KubernetesConfig"].get("ContainerRuntime", ""),
                node.get("IP", ""),
                str(node.get("Port", "")),
                c["KubernetesConfig"].get("KubernetesVersion", ""),
                p["Status"],
                str(len(c.get("Nodes") or [])),
                "*" if p["Active"] else "",
                "*" if p["ActiveKubeContext"] else "",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    line = "|" + "|".join("-" * (w + 2) for w in widths) + "|\n"
    text = line
    for i, r in enumerate(rows):
        text += "|" + "|".join(f" {v.ljust(w)} " for v, w in zip(r, widths)) + "|\n"
        if i == 0:
            text += line
    console.raw(text + line)
    return 0
