"""Where minikube keeps things: MINIKUBE_HOME, the kubeconfig path, profiles/P/config.json.

Home = `$MINIKUBE_HOME` if its basename is `.minikube`, else `$MINIKUBE_HOME/.minikube`, default
`~/.minikube` (localpath.go:44).  Kubeconfig = first non-empty `$KUBECONFIG` entry, else `~/.kube/config`.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

DEFAULT_PROFILE = "minikube"
PROFILE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]*$")


def minikube_home() -> Path:
    env = os.environ.get("MINIKUBE_HOME")
    if not env:
        return Path.home() / ".minikube"
    p = Path(env)
    return p if p.name == ".minikube" else p / ".minikube"


def kubeconfig_path() -> Path:
    for entry in os.environ.get("KUBECONFIG", "").split(os.pathsep):
        if entry.strip():
            return Path(entry)
    return Path.home() / ".kube" / "config"


def profiles_dir() -> Path:
    return minikube_home() / "profiles"


def profile_dir(name: str) -> Path:
    return profiles_dir() / name


def machine_dir(name: str) -> Path:
    return minikube_home() / "machines" / name


def config_file(name: str) -> Path:
    return profile_dir(name) / "config.json"


def load_config(name: str) -> dict | None:
    """The profile's ClusterConfig, or None if the profile does not exist (config.Load + IsNotExist)."""
    try:
        return json.loads(config_file(name).read_text())
    except FileNotFoundError:
        return None


def save_config(name: str, cfg: dict) -> None:
    write_atomic(config_file(name), json.dumps(cfg, indent="\t") + "\n")


def rig_state_file(name: str) -> Path:
    """Stand-in-only state (fake nodes, helper PIDs) kept apart from minikube's own config.json."""
    return profile_dir(name) / "devrig.json"


def load_rig_state(name: str) -> dict:
    try:
        return json.loads(rig_state_file(name).read_text())
    except (FileNotFoundError, ValueError):
        return {}


def save_rig_state(name: str, state: dict) -> None:
    write_atomic(rig_state_file(name), json.dumps(state, indent=2) + "\n")


def list_profiles() -> tuple[list[str], list[str]]:
    """(valid, invalid) profile names: a profile dir is valid if its config.json parses."""
    valid, invalid = [], []
    root = profiles_dir()
    if not root.is_dir():
        return valid, invalid
    for d in sorted(root.iterdir()):
        if not d.is_dir():
            continue
        try:
            cfg = json.loads((d / "config.json").read_text())
        except (OSError, ValueError):
            invalid.append(d.name)
            continue
        (valid if is_valid(cfg) else invalid).append(d.name)
    return valid, invalid


def is_valid(cfg) -> bool:
    """config.Profile.IsValid: a driver, and a Kubernetes version on every node."""
    return (
        isinstance(cfg, dict)
        and bool(cfg.get("Driver"))
        and all(n.get("KubernetesVersion") for n in (cfg.get("Nodes") or []))
    )


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
