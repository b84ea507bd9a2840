"""The kubeconfig entries minikube writes (kubeconfig/settings.go, extension.go, context.go).

Cluster, user and context are all named after the profile; cluster and context carry minikube's
`cluster_info`/`context_info` extension (provider, version, RFC1123 last-update).  Writes are serialised
with an flock on the kubeconfig's directory, so parallel starts of two profiles cannot lose an entry.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
from email.utils import formatdate
from pathlib import Path

import yaml

from .home import kubeconfig_path, write_atomic

PROVIDER = "minikube.sigs.k8s.io"


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _load(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        data = {}
    data.setdefault("apiVersion", "v1")
    data.setdefault("kind", "Config")
    data.setdefault("preferences", {})
    for key in ("clusters", "contexts", "users"):
        data[key] = data.get(key) or []
    data.setdefault("current-context", "")
    return data


def _save(path: Path, data: dict) -> None:
    ordered = {
        k: data[k] for k in ("apiVersion", "clusters", "contexts", "current-context", "kind", "preferences", "users")
    }
    ordered.update({k: v for k, v in data.items() if k not in ordered})
    write_atomic(path, yaml.safe_dump(ordered, default_flow_style=False, sort_keys=False), mode=0o600)


def _extension(name: str, minikube_version: str) -> list[dict]:
    return [
        {
            "extension": {"last-update": formatdate(usegmt=True), "provider": PROVIDER, "version": minikube_version},
            "name": name,
        }
    ]


def _upsert(items: list[dict], name: str, entry: dict) -> None:
    for i, item in enumerate(items):
        if item.get("name") == name:
            items[i] = entry
            return
    items.append(entry)


def write_profile(
    profile: str,
    *,
    server: str,
    ca: Path,
    client_cert: Path,
    client_key: Path,
    minikube_version: str,
    keep_context: bool,
    embed_certs: bool = False,
    path: Path | None = None,
) -> Path:
    path = path or kubeconfig_path()
    b64 = lambda p: base64.b64encode(Path(p).read_bytes()).decode()  # noqa: E731
    with _locked(path):
        data = _load(path)
        cluster = {"certificate-authority-data": b64(ca)} if embed_certs else {"certificate-authority": str(ca)}
        _upsert(
            data["clusters"],
            profile,
            {
                "cluster": {
                    **cluster,
                    "extensions": _extension("cluster_info", minikube_version),
                    "server": server,
                },
                "name": profile,
            },
        )
        _upsert(
            data["contexts"],
            profile,
            {
                "context": {
                    "cluster": profile,
                    "extensions": _extension("context_info", minikube_version),
                    "namespace": "default",
                    "user": profile,
                },
                "name": profile,
            },
        )
        user = (
            {"client-certificate-data": b64(client_cert), "client-key-data": b64(client_key)}
            if embed_certs
            else {"client-certificate": str(client_cert), "client-key": str(client_key)}
        )
        _upsert(data["users"], profile, {"name": profile, "user": user})
        if not keep_context:
            data["current-context"] = profile
        _save(path, data)
    return path


def remove_profile(profile: str, path: Path | None = None) -> None:
    path = path or kubeconfig_path()
    if not path.exists():
        return
    with _locked(path):
        data = _load(path)
        for key in ("clusters", "contexts", "users"):
            data[key] = [item for item in data[key] if item.get("name") != profile]
        if data.get("current-context") == profile:
            data["current-context"] = ""
        _save(path, data)


def server_of(profile: str, path: Path | None = None) -> str | None:
    """The server URL of cluster `profile`, or None (used for status's Configured/Misconfigured)."""
    path = path or kubeconfig_path()
    try:
        data = _load(path)
    except (OSError, yaml.YAMLError):
        return None
    ctx = next((c for c in data["contexts"] if c.get("name") == profile), None)
    if ctx is None:
        return None
    cluster_name = (ctx.get("context") or {}).get("cluster")
    cluster = next((c for c in data["clusters"] if c.get("name") == cluster_name), None)
    return (cluster or {}).get("cluster", {}).get("server")
