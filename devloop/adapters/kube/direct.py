"""HTTPS to the API server without the official client, for users that log in with a client certificate.

That is what minikube writes into the kubeconfig (a CA, a client certificate and its key, as files or
embedded data), and importing `kubernetes` costs about 0.4 s of every command on an idle machine: more
than all the requests of a no-change `devloop up`. So such a context gets a urllib3 pool of its own,
verifying the server against the cluster's CA exactly as the official client does. Any other user
(tokens, exec plugins, auth providers, a proxy, an unverified server) goes through the official client.
"""

from __future__ import annotations

import base64
import os
import tempfile
from dataclasses import dataclass
from typing import Any

from .kubeconfig import Kubeconfig

_CERT_USER_KEYS = {"client-certificate", "client-certificate-data", "client-key", "client-key-data"}
_PLAIN_CLUSTER_KEYS = {"server", "certificate-authority", "certificate-authority-data", "extensions"}


@dataclass
class DirectPool:
    host: str  # https://host:port, no trailing slash
    pool: Any  # urllib3.PoolManager
    tmpdir: tempfile.TemporaryDirectory | None

    def close(self) -> None:
        self.pool.clear()
        if self.tmpdir is not None:
            self.tmpdir.cleanup()


def client_cert_pool(config: Kubeconfig, context: str, *, maxsize: int) -> DirectPool | None:
    """A pool for `context` when its user is a client certificate and its cluster a CA-verified https
    server; None when the official client is needed."""
    ctx = config.contexts.get(context) or {}
    cluster = config.clusters.get(ctx.get("cluster", "")) or {}
    user = config.users.get(ctx.get("user", "")) or {}
    server = str(cluster.get("server") or "")
    if not server.startswith("https://") or set(cluster) - _PLAIN_CLUSTER_KEYS:
        return None
    if not user or set(user) - _CERT_USER_KEYS:
        return None
    has_cert = user.get("client-certificate") or user.get("client-certificate-data")
    has_key = user.get("client-key") or user.get("client-key-data")
    has_ca = cluster.get("certificate-authority") or cluster.get("certificate-authority-data")
    if not (has_cert and has_key and has_ca):
        return None
    import urllib3

    tmpdir = None

    def file_of(entry: dict, key: str) -> str:
        nonlocal tmpdir
        if entry.get(key):
            return os.path.expanduser(str(entry[key]))
        if tmpdir is None:
            tmpdir = tempfile.TemporaryDirectory(prefix="devloop-kube-")
        path = os.path.join(tmpdir.name, key)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(base64.b64decode(str(entry[f"{key}-data"])))
        return path

    try:
        pool = urllib3.PoolManager(
            num_pools=2,
            maxsize=maxsize,
            cert_reqs="CERT_REQUIRED",
            ca_certs=file_of(cluster, "certificate-authority"),
            cert_file=file_of(user, "client-certificate"),
            key_file=file_of(user, "client-key"),
        )
    except (OSError, ValueError):
        if tmpdir is not None:
            tmpdir.cleanup()
        return None  # the official client will say what is wrong with these files
    return DirectPool(server.rstrip("/"), pool, tmpdir)
