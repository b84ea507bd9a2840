"""pkg/minikube/mustload: load a profile or exit the way minikube does (85 missing, 83 not running)."""

from __future__ import annotations

from . import cluster, home
from .out import Console
from .reasons import EX_GUEST_NOT_FOUND, EX_GUEST_NOT_RUNNING


def example_cmd(profile: str, action: str) -> str:
    return f"minikube {action}" if profile == home.DEFAULT_PROFILE else f"minikube {action} -p {profile}"


def _exit_tip(console: Console, action: str, profile: str, code: int):
    console.styled("workaround", f'To start a cluster, run: "{example_cmd(profile, action)}"')
    return console.exit_code(code)


def partial(console: Console, profile: str) -> dict:
    cfg = home.load_config(profile)
    if cfg is None:
        console.styled("shrug", f'Profile "{profile}" not found. Run "minikube profile list" to view all profiles.')
        raise _exit_tip(console, "start", profile, EX_GUEST_NOT_FOUND)
    return cfg


def running(console: Console, profile: str) -> dict:
    cfg = partial(console, profile)
    state = cluster.host_state(profile)
    if state == cluster.NONEXISTENT:
        console.styled("shrug", f"The control-plane node {profile} host does not exist")
        raise _exit_tip(console, "start", profile, EX_GUEST_NOT_FOUND)
    if state != cluster.RUNNING:
        console.styled("shrug", f"The control-plane node {profile} host is not running: state={state}")
        raise _exit_tip(console, "start", profile, EX_GUEST_NOT_RUNNING)
    return cfg
