"""Where the rig's binaries live (shared layout, see TEAM.md)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from . import RigMissing

PACKAGE_DIR = Path(__file__).resolve().parent
CNI_DIR = PACKAGE_DIR / "cni"
K8S_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kubectl")
# needed only by a profile with a node network (netns.py): Services are what it makes work
NETWORK_BINARIES = ("kube-proxy",)
DEFAULT_KUBERNETES_VERSION = "v1.21.14"
BUILD_HINT = "run scripts/build-rig (builds into $DEVRIG_CACHE, default ~/.cache/devloop-rig)"


def cache_dir() -> Path:
    return Path(os.environ.get("DEVRIG_CACHE") or Path.home() / ".cache" / "devloop-rig")


def k8s_bin_dir(version: str) -> Path:
    return cache_dir() / "k8s" / version / "bin"


def k8s_bin(version: str, name: str) -> Path:
    return k8s_bin_dir(version) / name


def kwok_bin() -> Path:
    return cache_dir() / "bin" / "kwok"


def pause_bin() -> Path:
    return cache_dir() / "pause" / "pause"


def _system(name: str, *fallbacks: str) -> Path:
    found = shutil.which(name)
    if found:
        return Path(found)
    for candidate in fallbacks:
        if Path(candidate).exists():
            return Path(candidate)
    return Path(fallbacks[0]) if fallbacks else Path(name)


def etcd_bin() -> Path:
    return Path(os.environ.get("DEVRIG_ETCD") or _system("etcd", "/usr/bin/etcd"))


def dockerd_bin() -> Path:
    return _system("dockerd", "/usr/sbin/dockerd")


def runc_bin() -> Path:
    return _system("runc", "/usr/sbin/runc", "/usr/bin/runc")


def busybox_bin() -> Path:
    """Debian's busybox-static: statically linked, so it can be copied into FROM-scratch images."""
    return _system("busybox", "/bin/busybox", "/usr/bin/busybox")


def docker_cli() -> Path:
    return _system("docker", "/usr/local/bin/docker", "/usr/bin/docker")


def built_kubernetes_versions() -> list[str]:
    """Versions whose five Kubernetes binaries are all present in the cache."""
    root = cache_dir() / "k8s"
    if not root.is_dir():
        return []
    return sorted(d.name for d in root.iterdir() if all(os.access(d / "bin" / b, os.X_OK) for b in K8S_BINARIES))


def missing_parts(version: str = DEFAULT_KUBERNETES_VERSION, *, kwok: bool = False, network: bool = False) -> list[str]:
    """Human-readable list of rig parts that are not there (empty = all present)."""
    wanted: list[tuple[str, Path]] = [(b, k8s_bin(version, b)) for b in K8S_BINARIES]
    if network:
        wanted += [(b, k8s_bin(version, b)) for b in NETWORK_BINARIES]
    wanted += [
        ("pause", pause_bin()),
        ("etcd", etcd_bin()),
        ("dockerd", dockerd_bin()),
        ("runc", runc_bin()),
        ("docker CLI", docker_cli()),
    ]
    if kwok:
        wanted.append(("kwok", kwok_bin()))
    return [f"{what} ({path})" for what, path in wanted if not os.access(path, os.X_OK)]


def require_parts(version: str = DEFAULT_KUBERNETES_VERSION, *, kwok: bool = False, network: bool = False) -> None:
    missing = missing_parts(version, kwok=kwok, network=network)
    if missing:
        raise RigMissing(f"rig parts missing for Kubernetes {version}: {', '.join(missing)}; {BUILD_HINT}")
