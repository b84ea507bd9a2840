"""The stand-in's view of one profile's machine: host state and the component states `status` reports."""
from __future__ import annotations

import os
import ssl
import http.client
from dataclasses import dataclass

from . import home, kubeconfig

RUNNING, STOPPED, NONEXISTENT, ERROR = "Running", "Stopped", "Nonexistent", "Error"


def machine(profile: str):
    from devrig.machine import Machine  # heavy-ish import, only for commands that touch the machine
    return Machine(profile, home.minikube_home())


def host_state(profile: str) -> str:
    """libmachine-like host state: Running, Stopped, Error, or Nonexistent (no machine on record)."""
    try:
        state = machine(profile).state()
    except Exception:  # an unreadable machine record is what libmachine calls Error
        return ERROR
    value = str(getattr(state, "value", state) or "")
    mapping = {"running": RUNNING, "stopped": STOPPED, "none": NONEXISTENT, "nonexistent": NONEXISTENT,
               "missing": NONEXISTENT, "": NONEXISTENT, "error": ERROR, "degraded": RUNNING}
    return mapping.get(value.lower(), value[:1].upper() + value[1:])


@dataclass
class NodeStatus:
    Name: str
    Host: str
    Kubelet: str
    APIServer: str
    Kubeconfig: str
    Worker: bool = False

    def to_json(self) -> dict:
        data = {"Name": self.Name, "Host": self.Host, "Kubelet": self.Kubelet, "APIServer": self.APIServer,
                "Kubeconfig": self.Kubeconfig, "Worker": self.Worker}
        if os.environ.get("MINIKUBE_ACTIVE_DOCKERD"):
            data["DockerEnv"] = "in-use"
        if os.environ.get("MINIKUBE_ACTIVE_PODMAN"):
            data["PodManEnv"] = "in-use"
        return data


def node_status(profile: str, cfg: dict) -> NodeStatus | None:
    """cluster.NodeStatus for the primary node; None when the host is gone (GetStatus errors)."""
    host = host_state(profile)
    if host == NONEXISTENT:
        return None
    if host != RUNNING:
        return NodeStatus(profile, host, host, host, host)
    try:
        info = machine(profile).info()
    except Exception:
        return NodeStatus(profile, ERROR, ERROR, ERROR, ERROR)
    kubelet = RUNNING if _kubelet_running(info) else STOPPED
    expected = f"https://127.0.0.1:{info.apiserver_port}"
    kc = "Configured" if kubeconfig.server_of(profile) == expected else "Misconfigured"
    return NodeStatus(profile, RUNNING, kubelet, apiserver_status(info), kc)


def _kubelet_running(info) -> bool:
    probe = getattr(info, "kubelet_running", None)
    if callable(probe):
        return bool(probe())
    if probe is not None:
        return bool(probe)
    return True


def apiserver_status(info) -> str:
    """kverify.APIServerStatus: Stopped when nothing listens, Running on healthz ok, else Error."""
    ctx = ssl.create_default_context(cafile=str(info.ca_cert))
    ctx.load_cert_chain(str(info.client_cert), str(info.client_key))
    conn = http.client.HTTPSConnection("127.0.0.1", info.apiserver_port, context=ctx, timeout=3)
    try:
        conn.request("GET", "/healthz")
        resp = conn.getresponse()
        body = resp.read()
        return RUNNING if resp.status == 200 and body.strip() == b"ok" else ERROR
    except ConnectionRefusedError:
        return STOPPED
    except (OSError, http.client.HTTPException):
        return ERROR
    finally:
        conn.close()


def exit_code(st: NodeStatus) -> int:
    code = 0
    if st.Host != RUNNING:
        code |= 1
    if (st.APIServer not in (RUNNING, "Irrelevant")) or st.Kubelet != RUNNING:
        code |= 2
    if st.Kubeconfig not in ("Configured", "Irrelevant"):
        code |= 4
    return code


def profile_status_name(profile: str, cfg: dict) -> str:
    """`Status` in `profile list`: OK when the API server runs, else the component state."""
    st = node_status(profile, cfg)
    if st is None:
        return "Unknown"
    if st.Host == "InsufficientStorage":
        return st.Host
    return {RUNNING: "OK"}.get(st.APIServer, st.APIServer)
