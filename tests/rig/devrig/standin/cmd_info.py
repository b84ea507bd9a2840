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
    Flag("light", "bool", False, "l", "If true, returns list of profiles faster by skipping validating the "
         "status of the cluster.", env=False),
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
            raise console.fatal(Kind("GUEST_NODE_RETRIEVE", 85),
                                f"retrieving node: Could not find node {node_name}", new_issue_link=True)
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


def _profile_json(name: str, cfg: dict | None, status: str, active_ctx: str) -> dict:
    return {"Name": name, "Status": status, "Config": cfg,
            "Active": name == home.DEFAULT_PROFILE, "ActiveKubeContext": name == active_ctx}


def _current_context() -> str:
    try:
        import yaml
        data = yaml.safe_load(home.kubeconfig_path().read_text()) or {}
        return data.get("current-context") or ""
    except (OSError, ValueError):
        return ""


def run_profile_list(console, opts) -> int:
    output = (opts.get("output") or "").lower()
    if output not in ("json", "table"):
        raise console.fatal(USAGE, f"invalid output format: {opts.get('output')}. Valid values: 'table', 'json'")
    valid_names, invalid_names = home.list_profiles()
    ctx = _current_context()
    valid = []
    for name in valid_names:
        cfg = home.load_config(name)
        status = "Skipped" if opts.get("light") else cluster.profile_status_name(name, cfg)
        valid.append(_profile_json(name, cfg, status, ctx))
    invalid = [_profile_json(n, None, "", ctx) for n in invalid_names]
    if output == "json":
        console.raw(json.dumps({"invalid": invalid, "valid": valid}, separators=(",", ":")))
        return 0
    if not valid:
        raise console.fatal(Kind("MK_USAGE_NO_PROFILE", 14), "No minikube profile was found.")
    rows = [("Profile", "Driver", "Runtime", "IP", "Port", "Version", "Status", "Nodes", "Active Profile",
             "Active Kubecontext")]
    for p in valid:
        c = p["Config"]
        node = (c.get("Nodes") or [{}])[0]
        rows.append((p["Name"], c.get("Driver", ""), c["KubernetesConfig"].get("ContainerRuntime", ""),
                     node.get("IP", ""), str(node.get("Port", "")), c["KubernetesConfig"].get("KubernetesVersion", ""),
                     p["Status"], str(len(c.get("Nodes") or [])), "*" if p["Active"] else "",
                     "*" if p["ActiveKubeContext"] else ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    line = "|" + "|".join("-" * (w + 2) for w in widths) + "|\n"
    text = line
    for i, r in enumerate(rows):
        text += "|" + "|".join(f" {v.ljust(w)} " for v, w in zip(r, widths)) + "|\n"
        if i == 0:
            text += line
    console.raw(text + line)
    return 0
