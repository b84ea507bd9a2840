"""kubeconfig files for the rig's components (paths to certs, never embedded: they live next to it)."""

from __future__ import annotations

from pathlib import Path

import yaml


def write(path: Path, *, server: str, ca: Path, cert: Path, key: Path, name: str = "devrig") -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": name, "user": {"client-certificate": str(cert), "client-key": str(key)}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": "default"}}],
        "current-context": name,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
