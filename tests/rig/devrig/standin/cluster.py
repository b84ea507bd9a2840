"""The stand-in's view of one profile's machine: host state and the component states `status` reports."""

from __future__ import annotations

import os
from dataclasses import dataclass

from . import home, kubeconfig

RUNNING, STOPPED, NONEXISTENT, ERROR = "Running", "Stopped", "Nonexistent", "Error"


def machine(profile: str):
    from devrig.machine import Machine  # heavy-ish import, only for commands that touch the machine

    return Machine(profile, home.minikube_home())


_STATE_NAMES = {"running": RUNNING, "stopped": STOPPED, "error": ERROR, "missing": NONEXISTENT}


def machine_state(profile: str):
    """The Machine's per-part state, or None when there is no machine on record."""
    from devrig import RigError

    try:
        st = machine(profile).state()
    except RigError:
        return "error"
    return None if st.host == "missing" else st


def host_state(profile: str) -> str:
    """libmachine-like host state of the "node container": Running while any of the machine's processes
    lives (in minikube the apiserver or dockerd dying inside the container leaves the host Running),
    Stopped when none does, Error for an unreadable record, Nonexistent when there is no machine."""
    st = machine_state(profile)
    if st is None:
        return NONEXISTENT
    if st == "error":
        return ERROR
    return RUNNING if any(st.processes.values()) else STOPPED


@dataclass
class NodeStatus:
    Name: str
    Host: str
    Kubelet: str
    APIServer: str
    Kubeconfig: str
    Worker: bool = False

    def to_json(self) -> dict:
        data = {
            "Name": self.Name,
            "Host": self.Host,
            "Kubelet": self.Kubelet,
            "APIServer": self.APIServer,
            "Kubeconfig": self.Kubeconfig,
            "Worker": self.Worker,
        }
        if os.environ.get("MINIKUBE_ACTIVE_DOCKERD"):
            data["DockerEnv"] = "in-use"
        if os.environ.get("MINIKUBE_ACTIVE_PODMAN"):
            data["PodManEnv"] = "in-use"
        return data


def node_status(profile: str, cfg: dict) -> NodeStatus | None:
    """cluster.NodeStatus for the primary node; None when the host is gone (GetStatus errors)."""
    st = machine_state(profile)
    if st is None:
        return None
    if st == "error":
        return NodeStatus(profile, ERROR, ERROR, ERROR, ERROR)
    if not any(st.processes.values()):
        return NodeStatus(profile, STOPPED, STOPPED, STOPPED, STOPPED)
    info = machine(profile).info()
    kc = "Configured" if kubeconfig.server_of(profile) == info.apiserver_url else "Misconfigured"
    return NodeStatus(profile, RUNNING, _STATE_NAMES.get(st.kubelet, ERROR), _STATE_NAMES.get(st.apiserver, ERROR), kc)


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
        # profileStatus on a GetStatus error returns State{BaseState{Name: "Unknown"}}: its StatusName,
        # which is what `Status` shows, stays empty (profile_list.go:124-131; checked against the binary)
        return ""
    if st.Host == "InsufficientStorage":
        return st.Host
    return {RUNNING: "OK"}.get(st.APIServer, st.APIServer)
