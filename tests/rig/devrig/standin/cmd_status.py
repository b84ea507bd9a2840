"""`minikube status`: text or JSON, bit-mask exit code (1 host, 2 cluster, 4 kubeconfig)."""

from __future__ import annotations

import json
import re

from . import cluster, mustload, versions
from .flags import Flag
from .out import klog_error
from .reasons import USAGE

FLAGS = (
    Flag("output", "string", "text", "o", "minikube status --output OUTPUT. json, text", env=False),
    Flag("format", "string", "", "f", "Go template format string for the status output.", env=False),
    Flag("layout", "string", "nodes", "l", "output layout (EXPERIMENTAL, JSON only): 'nodes' or 'cluster'", env=False),
    Flag("node", "string", "", "n", "The node to check status for. Defaults to control plane.", env=False),
    Flag(
        "watch",
        "duration",
        "1s",
        "w",
        "Continuously listing/getting the status with optional interval duration.",
        env=False,
        no_opt="1s",
    ),
)

TEXT = "{Name}\ntype: Control Plane\nhost: {Host}\nkubelet: {Kubelet}\napiserver: {APIServer}\nkubeconfig: {Kubeconfig}\n\n"
MISCONFIGURED = (
    "\nWARNING: Your kubectl is pointing to stale minikube-vm.\n"
    "To fix the kubectl context, run `minikube update-context`\n"
)


def run(console, opts) -> int:
    output = (opts.get("output") or "").lower()
    if output != "text" and opts.get("format"):
        raise console.fatal(USAGE, "Cannot use both --output and --format options")
    console.json = output == "json"
    profile = opts.get("profile")
    cfg = mustload.partial(console, profile)
    st = cluster.node_status(profile, cfg)
    if st is None:
        lines = versions.current().klog_lines
        klog_error(lines["host gone"], f'the "{profile}" host does not exist')
        klog_error(lines["status error"], f'status error: the "{profile}" host does not exist')
    if output == "text":
        if st is not None:
            data = st.to_json()
            fmt = opts.get("format")
            console.raw(
                re.sub(r"\{\{\s*\.(\w+)\s*\}\}", lambda m: str(data.get(m.group(1), "")), fmt)
                if fmt
                else TEXT.format(**data)
            )
            if st.Kubeconfig == "Misconfigured":
                console.raw(MISCONFIGURED)
    elif output == "json":
        console.raw(json.dumps(st.to_json() if st else None, separators=(",", ":")))
    else:
        console.json = False
        raise console.fatal(USAGE, f"invalid output format: {output}. Valid values: 'text', 'json'")
    if st is None:
        return versions.current().status_exit_when_host_gone
    return cluster.exit_code(st)
