"""What minikube prints, read: its version, status, docker-env, addons, profiles, exit reasons
(see shared/research/minikube-cli.md); versions.py judges versions.

Pure functions, tested against the outputs minikube is known to print; cli.py runs the commands.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from devloop.adapters.minikube.versions import MinikubeVersion, parse_semver
from devloop.base.errors import ClusterError

# minikube prints emoji only when it thinks it talks to a colour terminal; we parse its output.
_ENV = {"MINIKUBE_IN_STYLE": "false"}

# pkg/minikube/reason/exitcodes.go, the codes devloop meets in practice.
EXIT_REASONS: dict[int, str] = {
    1: "general failure",
    2: "interrupted",
    10: "MK_* internal error (e.g. MK_ADDON_ENABLE)",
    11: "MK_ADDON_ENABLE_PAUSED: the cluster is paused",
    14: "MK_USAGE: bad usage",
    23: "RSRC_INSUFFICIENT_REQ_MEMORY: not enough memory requested",
    29: "RSRC_INSUFFICIENT_CORES: not enough CPUs",
    51: "ENV_DRIVER_CONFLICT: the none driver has no separate docker daemon",
    55: "DRV_NOT_FOUND: driver not found",
    56: "DRV_UNSUPPORTED_OS: driver not supported on this OS",
    63: "PROVIDER_DOCKER_NOT_RUNNING: the docker daemon is not running",
    65: "PROVIDER_DOCKER_NOT_FOUND: docker is not installed",
    80: "GUEST_ERROR: the minikube machine failed",
    81: "GUEST_DRIVER_MISMATCH / ENV_MULTINODE_CONFLICT",
    83: "GUEST_NOT_RUNNING: the minikube host is not running",
    85: "GUEST_NOT_FOUND: the profile or its host does not exist",
    90: "RUNTIME_ERROR: the container runtime failed",
    102: "K8S_APISERVER_TIMEOUT: the control plane did not come up in time",
    106: "K8S_UNSUPPORTED: Kubernetes version not supported (too old, too new or a downgrade)",
    109: "K8S_CLIENT_ERROR",
}

_REASON_HINTS: dict[str, str] = {
    "K8S_OLD_UNSUPPORTED": "set `cluster.allow_unsupported_kubernetes: true` in the profile so devloop passes "
    "--force, or use minikube v1.36 or older",
    "K8S_DOWNGRADE_UNSUPPORTED": "the existing cluster runs a newer Kubernetes: `devloop reset` deletes and "
    "recreates it",
    "GUEST_DRIVER_MISMATCH": "the existing cluster uses another driver: `devloop reset` recreates it with the "
    "profile's driver",
    "RSRC_INSUFFICIENT_CORES": "lower `cluster.cpus` in the profile (minikube needs at least 2)",
    "RSRC_INSUFFICIENT_REQ_MEMORY": "raise `cluster.memory` in the profile (minikube needs at least 1800mb)",
    # validateUser (start.go): as root, every driver but none exits 57 unless forced (CI containers, root shells)
    "DRV_AS_ROOT": "run devloop as a regular user (in the docker group), or add `--force` to "
    "`cluster.extra_start_args` (devloop then checks CPUs, memory and disk itself, since --force skips minikube's "
    "checks)",
    "PROVIDER_DOCKER_NOT_RUNNING": "start the docker daemon, e.g. `sudo systemctl start docker`",
    "PROVIDER_DOCKER_NOT_FOUND": "install docker, or pick another `cluster.driver` in the profile",
    "MK_ADDON_ENABLE_PAUSED": "unpause the cluster: `minikube unpause -p <profile>`",
    "MK_ADDON_ENABLE": "rerun `devloop up` (addons are enabled again on every up); if it keeps failing, "
    "`devloop reset` recreates the cluster",
    "GUEST_PROVISION": "rerun `devloop up`; if minikube fails the same way again, `devloop reset` deletes and "
    "recreates the profile",
    "GUEST_START": "rerun `devloop up`; if minikube fails the same way again, `devloop reset` deletes and "
    "recreates the profile",
    # kubeadm waited for a kubelet that never served the control plane. Known cause here: Kubernetes < 1.24
    # (dockershim, API 1.41) against the Docker >= 29 of minikube >= 1.38's node (start_plan.py).
    "K8S_KUBELET_NOT_RUNNING": "if this is Kubernetes < 1.24 on minikube >= 1.38 with the docker driver, its node's "
    "Docker refuses the kubelet's API 1.41: leave `cluster.lower_docker_min_api` on (devloop then passes "
    "--docker-env DOCKER_MIN_API_VERSION=1.24) and `devloop reset`; or use minikube <= 1.37; else "
    "`minikube logs -p <profile>` shows the kubelet's own error",
}
# Whatever minikube said, there is always something to try next.
_DEFAULT_HINT = (
    "rerun the command; if minikube fails the same way again, `devloop reset` deletes and "
    "recreates the profile (`minikube logs -p <profile>` shows minikube's side)"
)

_EXITING_RE = re.compile(r"^(?:X\s+|[^\w\s]+\s*)?Exiting due to (?P<reason>[A-Z][A-Z0-9_]*): (?P<message>.*)$")


# --------------------------------------------------------------------------------------------
# Values


@dataclass(frozen=True)
class ClusterStatus:
    state: str  # Running, Stopped, Paused, Starting, Missing, Error, … (minikube's host states)
    name: str = ""
    host: str = ""
    kubelet: str = ""
    apiserver: str = ""
    kubeconfig: str = ""
    detail: str = ""  # why, when the state is not Running
    exit_code: int = 0

    @property
    def running(self) -> bool:
        return self.state == "Running"

    @property
    def missing(self) -> bool:
        return self.state == "Missing"


class MinikubeError(ClusterError):
    """A minikube command failed; carries minikube's own reason line and exit code."""

    def __init__(
        self,
        what: str,
        *,
        argv: Sequence[str],
        exit_code: int,
        reason: str | None,
        reason_line: str | None,
        output_tail: str,
        hint: str | None = None,
        message: str | None = None,
    ) -> None:
        """`message` replaces the one made from the exit code (minikube stopped by devloop after it gave up)."""
        self.argv = list(argv)
        self.minikube_exit_code = exit_code
        self.reason = reason
        self.reason_line = reason_line
        self.output_tail = output_tail
        if message is None:
            cause = reason_line or EXIT_REASONS.get(exit_code) or "no reason printed"
            message = f"{what}: `{' '.join(self.argv)}` exited with code {exit_code}: {cause}"
            if not reason_line and output_tail.strip():
                tail = "\n".join("  | " + line for line in output_tail.rstrip().splitlines()[-15:])
                message = f"{message}\n{tail}"
        if hint is None:
            hint = _REASON_HINTS.get(reason or "") or _DEFAULT_HINT
        super().__init__(message, hint=hint)


# The steps of `minikube start` that download (the kicbase image, the preload tarball, the ISO, the Kubernetes
# binaries; another minikube downloading the same files). minikube sets them no time limit (download/download.go:
# go-getter without a deadline; node/cache.go's kicbase pull), unlike the steps after them, which give up by
# themselves (host creation 6 min, machine/start.go:160; kubeadm init 2 x 4 min, kubeadm.go:441; --wait-timeout
# 6 min, node/start.go:238): while they last, devloop's deadline is the only one running.
_DOWNLOAD_STEPS = (
    "Pulling base image",
    "Downloading Kubernetes",
    "Downloading VM boot image",
    "Another minikube instance is downloading",
)
# minikube's own give-ups that it retries once (node/start.go:741, kubeadm.go:441), and its final one
_GAVE_UP_RE = re.compile(r"(StartHost failed, but will try again|initialization failed, will try again|Exiting due to)")


class LastStep:
    """What a running minikube command was doing, from its low-fi output: the last step line (`* `, or
    a `  - `/`    ▪ ` sub-step), the last line of any kind (out/out.go, style/style.go), and the last time
    minikube gave up by itself (a retried host start or kubeadm init, or its final `Exiting due to`)."""

    def __init__(self) -> None:
        self.step = ""
        self.line = ""
        self.gave_up = ""

    def take(self, raw: str) -> None:
        line = raw.rstrip()
        if not line.strip():
            return
        self.line = line.strip()
        if line.startswith(("* ", "  - ", "    ▪ ")):
            self.step = line.strip()
        if _GAVE_UP_RE.search(line):
            self.gave_up = line.strip()

    @property
    def downloading(self) -> bool:
        """minikube's last step is one of its downloads, which it never gives up on by itself."""
        return any(marker in self.step for marker in _DOWNLOAD_STEPS)

    def describe(self) -> str:
        if not self.line:
            return "nothing printed yet"
        if not self.step or self.step == self.line:
            return repr(self.line)
        return f"{self.step!r} (last line: {self.line!r})"


# --------------------------------------------------------------------------------------------
# Pure parsing


def _json_values(text: str) -> tuple[list[dict], list[Any]]:
    """Split minikube JSON-mode stdout into (CloudEvents, other JSON values).

    minikube writes one JSON document per line (events), and its payload often without a
    trailing newline; lines that are not JSON (stray chatter) are ignored.
    """
    events: list[dict] = []
    values: list[Any] = []
    decoder = json.JSONDecoder()
    for raw in text.splitlines():
        line = raw.strip()
        position = 0
        while position < len(line):
            try:
                value, end = decoder.raw_decode(line, position)
            except json.JSONDecodeError:
                break
            if isinstance(value, dict) and "specversion" in value and "type" in value:
                events.append(value)
            else:
                values.append(value)
            position = end
            while position < len(line) and line[position].isspace():
                position += 1
    return events, values


def error_event(events: list[dict]) -> tuple[str | None, str | None]:
    """(reason name, message) of the last error CloudEvent, if any."""
    for event in reversed(events):
        if str(event.get("type", "")).endswith(".error"):
            data = event.get("data") or {}
            return data.get("name") or None, data.get("message") or None
    return None, None


def find_exit_reason(output: str) -> tuple[str | None, str | None]:
    """Find `X Exiting due to REASON: message` (or its emoji form); returns (reason, full line)."""
    found: tuple[str | None, str | None] = (None, None)
    for raw in output.splitlines():
        line = raw.strip()
        match = _EXITING_RE.match(line)
        if match:
            found = (match["reason"], line)
    return found


def reason_for_exit_code(code: int) -> str:
    return EXIT_REASONS.get(code, f"exit code {code}")


def parse_version(text: str) -> MinikubeVersion:
    """`minikube version -o json` ({"commit","minikubeVersion"}); also accepts the text form."""
    _, values = _json_values(text)
    for value in values:
        if isinstance(value, dict) and "minikubeVersion" in value:
            return MinikubeVersion(version=str(value["minikubeVersion"]), commit=str(value.get("commit", "")))
    version, commit = "", ""
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key.strip() == "minikube version":
            version = rest.strip()
        elif key.strip() == "commit":
            commit = rest.strip()
    if not version and parse_semver(text.strip()):
        version = text.strip()
    if not version:
        raise ClusterError(f"could not read the minikube version from: {text.strip()[:200]!r}")
    return MinikubeVersion(version=version, commit=commit)


def _node_state(node: dict) -> ClusterStatus:
    host = str(node.get("Host", ""))
    kubelet = str(node.get("Kubelet", ""))
    apiserver = str(node.get("APIServer", ""))
    kubeconfig = str(node.get("Kubeconfig", ""))
    name = str(node.get("Name", ""))
    parts = f"host: {host}, kubelet: {kubelet}, apiserver: {apiserver}, kubeconfig: {kubeconfig}"
    if host in ("", "Nonexistent") or apiserver == "Nonexistent":
        return ClusterStatus("Missing", name, host, kubelet, apiserver, kubeconfig, f"the host is gone ({parts})")
    if host != "Running":
        return ClusterStatus(host, name, host, kubelet, apiserver, kubeconfig, parts)
    if apiserver == "Paused" or kubelet == "Paused":
        return ClusterStatus("Paused", name, host, kubelet, apiserver, kubeconfig, parts)
    if apiserver == "Running" and kubelet == "Running":
        detail = "" if kubeconfig in ("Configured", "Irrelevant", "") else f"kubeconfig is {kubeconfig}"
        return ClusterStatus("Running", name, host, kubelet, apiserver, kubeconfig, detail)
    if apiserver == "Starting" or kubelet == "Starting":
        return ClusterStatus("Starting", name, host, kubelet, apiserver, kubeconfig, parts)
    # The host runs but Kubernetes does not (an API server that died, a kubelet that crashed).
    return ClusterStatus("Error", name, host, kubelet, apiserver, kubeconfig, f"Kubernetes is not running ({parts})")


def parse_status(stdout: str, exit_code: int) -> ClusterStatus:
    """`minikube status -o json`. The exit code is a bit mask that lies for a vanished host
    (0 on v1.35–v1.37), so the JSON decides; the code only decides when there is none."""
    events, values = _json_values(stdout)
    if exit_code == 85:
        messages = [str((e.get("data") or {}).get("message", "")) for e in events]
        message = next((m for m in messages if "not found" in m), "") or "the profile does not exist"
        return ClusterStatus("Missing", detail=message.strip(), exit_code=exit_code)
    payload = values[-1] if values else None
    if payload is None:
        if not stdout.strip():
            return ClusterStatus("Missing", detail="the profile exists but its host is gone", exit_code=exit_code)
        if values:
            # `null`: minikube's GetStatus gave up on some node, for a host that does not exist or
            # for any failed check (driver state, IP, SSH, df of /var) alike (cluster/status.go:168-187): not
            # "host gone", which only the per-node Host "Nonexistent" says (_node_state).
            return ClusterStatus(
                "Unknown",
                detail="minikube could not read the status of every node (a host that is gone, or a check that "
                f"failed): `minikube status -p <profile> --alsologtostderr` shows which (exit code {exit_code})",
                exit_code=exit_code,
            )
        reason, error_message = error_event(events)
        return ClusterStatus(
            "Error", detail=error_message or reason or reason_for_exit_code(exit_code), exit_code=exit_code
        )
    nodes = payload if isinstance(payload, list) else [payload]
    nodes = [n for n in nodes if isinstance(n, dict)]
    if not nodes:
        return ClusterStatus("Missing", detail="the profile has no nodes", exit_code=exit_code)
    primary = next((n for n in nodes if not n.get("Worker")), nodes[0])
    status = _node_state(primary)
    return ClusterStatus(
        status.state,
        status.name,
        status.host,
        status.kubelet,
        status.apiserver,
        status.kubeconfig,
        status.detail,
        exit_code,
    )


def parse_docker_env(text: str) -> dict[str, str]:
    """docker-env in any of its forms: `--shell none -o json`, `--shell none` (K=V) or bash
    (`export K="V"`). Empty SSH_* values are dropped; `false exit code N` noise is ignored."""
    _, values = _json_values(text)
    result: dict[str, str] = {}
    objects = [v for v in values if isinstance(v, dict)]
    if objects:
        result = {str(k): str(v) for k, v in objects[-1].items()}
    else:
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#") or line.startswith("false exit code"):
                continue
            if line.startswith("export "):
                line = line[len("export ") :].strip()
            elif line.startswith("set -gx "):  # fish
                name, _, value = line[len("set -gx ") :].partition(" ")
                line = f"{name}={value.rstrip(';')}"
            if line.startswith("unset ") or "=" not in line:
                continue
            name, _, value = line.partition("=")
            name = name.strip()
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                continue
            value = value.strip().rstrip(";")
            try:
                parts = shlex.split(value)
                value = parts[0] if parts else ""
            except ValueError:
                value = value.strip("\"'")
            result[name] = value
    for key in ("SSH_AUTH_SOCK", "SSH_AGENT_PID"):
        if key in result and not result[key]:
            del result[key]
    return result


def parse_addons(stdout: str) -> dict[str, bool]:
    """`addons list -o json`: {"ingress": {"Profile": "p", "Status": "enabled"}, …}."""
    _, values = _json_values(stdout)
    table = next((v for v in reversed(values) if isinstance(v, dict)), {})
    return {
        name: isinstance(info, dict) and str(info.get("Status", "")).lower() == "enabled"
        for name, info in sorted(table.items())
    }


def parse_profile_list(stdout: str) -> dict[str, list[dict]]:
    """`profile list -o json`: {"invalid": [...], "valid": [...]}; {"error": …} raises."""
    events, values = _json_values(stdout)
    for value in reversed(values):
        if isinstance(value, dict) and ("valid" in value or "invalid" in value):
            return {"valid": list(value.get("valid") or []), "invalid": list(value.get("invalid") or [])}
        if isinstance(value, dict) and "error" in value:
            raise ClusterError(f"minikube could not list profiles: {value['error']}")
    _, message = error_event(events)
    if message:
        raise ClusterError(f"minikube could not list profiles: {message}")
    return {"valid": [], "invalid": []}


def primary_endpoint(profile: dict) -> tuple[str, int] | None:
    nodes = ((profile.get("Config") or {}).get("Nodes")) or []
    nodes = [n for n in nodes if isinstance(n, dict)]
    if not nodes:
        return None
    primary = next((n for n in nodes if n.get("Name", "") == "" and n.get("ControlPlane", True)), None)
    primary = primary or next((n for n in nodes if n.get("ControlPlane")), nodes[0])
    ip = primary.get("IP")
    port = primary.get("Port")
    if not ip or not port:
        return None
    return str(ip), int(port)


# `addons enable OLD` enables and saves NEW instead (pkg/addons/addons.go Deprecations, v1.36-master), so OLD is
# never in the Addons map: without this, a profile naming OLD would enable it again on every `up`.
REPLACED_ADDONS = {"heapster": "metrics-server", "nvidia-gpu-device-plugin": "nvidia-device-plugin"}


def with_replaced_addons(addons: Mapping[str, bool]) -> dict[str, bool]:
    out = dict(addons)
    for old, new in REPLACED_ADDONS.items():
        if new in out and not out.get(old):
            out[old] = out[new]
    return out
