"""The kubeconfig, read once: kubectl's multi-file merge, looked up by an explicit context name.

A Session reads it once and hands the same object to the context guard and to the client, so a
command neither parses the files several times nor risks the guard and the client disagreeing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devloop.base.errors import ConfigError

# Entries whose values are file names; kubectl reads relative ones against the file that holds them.
_FILE_KEYS = {"clusters": ("certificate-authority",), "users": ("client-certificate", "client-key", "tokenFile")}


def kubeconfig_paths(kubeconfig: str | None) -> list[Path]:
    """The files kubectl would merge: the argument or $KUBECONFIG (colon-separated), else ~/.kube/config."""
    raw = kubeconfig if kubeconfig else os.environ.get("KUBECONFIG", "")
    paths = [Path(os.path.expanduser(p)) for p in raw.split(os.pathsep) if p.strip()]
    return paths or [Path.home() / ".kube" / "config"]


@dataclass(frozen=True)
class Kubeconfig:
    """The merged contexts, clusters and users of the kubeconfig files (first file to name one wins)."""

    paths: tuple[Path, ...]
    contexts: dict[str, dict] = field(default_factory=dict)
    clusters: dict[str, dict] = field(default_factory=dict)
    users: dict[str, dict] = field(default_factory=dict)
    # the clusters of the first file alone: the one minikube writes and checks (kubeconfig.PathFromEnv)
    first_file_clusters: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def load(cls, kubeconfig: str | Kubeconfig | None = None) -> Kubeconfig:
        """Read the files `kubeconfig` names (see kubeconfig_paths); an already loaded one is kept."""
        if isinstance(kubeconfig, Kubeconfig):
            return kubeconfig
        import yaml

        paths = kubeconfig_paths(kubeconfig)
        merged: dict[str, dict[str, dict]] = {"contexts": {}, "clusters": {}, "users": {}}
        first: dict[str, dict] = {}
        for index, path in enumerate(paths):
            try:
                data = yaml.safe_load(path.read_text()) or {}
            except FileNotFoundError:
                continue
            except (OSError, yaml.YAMLError) as exc:
                raise ConfigError(f"cannot read kubeconfig {path}: {exc}") from None
            if not isinstance(data, dict):
                raise ConfigError(f"kubeconfig {path} is not a mapping (expected keys clusters, contexts, users)")
            for section, key in (("contexts", "context"), ("clusters", "cluster"), ("users", "user")):
                for entry in data.get(section) or []:
                    if isinstance(entry, dict) and entry.get("name") and entry["name"] not in merged[section]:
                        merged[section][entry["name"]] = _absolute(section, entry.get(key) or {}, path.parent)
            if index == 0:
                first = {
                    str(e["name"]): _absolute("clusters", e.get("cluster") or {}, path.parent)
                    for e in data.get("clusters") or []
                    if isinstance(e, dict) and e.get("name")
                }
        return cls(tuple(paths), merged["contexts"], merged["clusters"], merged["users"], first)

    @property
    def where(self) -> str:
        return ", ".join(str(p) for p in self.paths)

    def context(self, name: str) -> dict:
        ctx = self.contexts.get(name)
        if ctx is None:
            raise ConfigError(
                f"kube context {name!r} is not in the kubeconfig ({self.where})",
                hint="minikube writes a context named after its profile when the cluster starts: `devloop up`",
            )
        return ctx

    def server(self, context: str) -> str:
        """The API server URL of `context` (nothing is contacted)."""
        ctx = self.context(context)
        cluster = self.clusters.get(ctx.get("cluster", ""))
        if not cluster or not cluster.get("server"):
            raise ConfigError(
                f"kube context {context!r} names cluster {ctx.get('cluster')!r}, which has no server ({self.where})"
            )
        return str(cluster["server"])

    def default_namespace(self, context: str) -> str:
        return self.context(context).get("namespace") or "default"

    def info(self, context: str) -> dict[str, Any]:
        """Server, cluster, user, namespace and `provider` of `context`: minikube marks its clusters
        with a `cluster_info` extension (provider minikube.sigs.k8s.io), which lets a guard tell a
        minikube context from a look-alike."""
        server = self.server(context)
        ctx = self.context(context)
        cluster = self.clusters.get(ctx.get("cluster", ""), {})
        provider = None
        for ext in cluster.get("extensions") or []:
            if isinstance(ext, dict) and isinstance(ext.get("extension"), dict):
                provider = ext["extension"].get("provider") or provider
        return {
            "server": server,
            "cluster": ctx.get("cluster"),
            "user": ctx.get("user"),
            "namespace": self.default_namespace(context),
            "provider": provider,
            "unlike_minikubes_entry": self.unlike_minikubes_entry(context),
        }

    def unlike_minikubes_entry(self, profile: str) -> str | None:
        """Why the context `profile` does not lead to the entry minikube vouches for, or None when it does.

        `minikube status` says Kubeconfig: Configured when the cluster entry NAMED AFTER THE PROFILE in the FIRST
        kubeconfig file (kubeconfig.PathFromEnv: the first non-empty $KUBECONFIG entry, else ~/.kube/config) has
        the profile's endpoint (kubeconfig.VerifyEndpoint, Endpoint); the client goes through the merged context,
        whose cluster may be another entry or come from another file. Only when both are the same is minikube's
        word about one a word about the other."""
        first = self.paths[0] if self.paths else None
        ctx = self.context(profile)
        if ctx.get("cluster") != profile:
            return f"context {profile!r} uses cluster entry {ctx.get('cluster')!r}, not the {profile!r} minikube writes"
        entry = self.first_file_clusters.get(profile)
        if entry is None:
            return f"the first kubeconfig file ({first}), the one minikube checks, has no cluster entry {profile!r}"
        return None  # the merge takes the first file's entry of a name, so the client uses this very entry

    def client_dict(self, context: str) -> dict:
        """A one-context kubeconfig for the official client's loader (which then reads no file)."""
        ctx = self.context(context)
        self.server(context)
        user = ctx.get("user", "")
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": context,
            "contexts": [{"name": context, "context": ctx}],
            "clusters": [{"name": ctx.get("cluster"), "cluster": self.clusters[ctx.get("cluster", "")]}],
            "users": [{"name": user, "user": self.users.get(user) or {}}],
        }


def _absolute(section: str, entry: dict, base: Path) -> dict:
    """Relative file names made absolute against `base`: the merged entries no longer know their file."""
    entry = dict(entry)
    for key in _FILE_KEYS.get(section, ()):
        if isinstance(entry.get(key), str) and entry[key]:
            entry[key] = str(base / os.path.expanduser(entry[key]))  # an absolute one stays as it is
    plugin = entry.get("exec")
    # kubectl: an exec command with a slash in it is relative to the kubeconfig; a bare name is looked up on PATH
    if isinstance(plugin, dict) and isinstance(plugin.get("command"), str) and "/" in plugin["command"]:
        entry["exec"] = {**plugin, "command": str(base / os.path.expanduser(plugin["command"]))}
    return entry


def context_server(context: str, kubeconfig: str | Kubeconfig | None = None) -> str:
    """The API server URL of `context`, read from the kubeconfig only (nothing is contacted)."""
    return Kubeconfig.load(kubeconfig).server(context)


def context_info(context: str, kubeconfig: str | Kubeconfig | None = None) -> dict[str, Any]:
    """What the kubeconfig says about `context` (no API call); see Kubeconfig.info."""
    return Kubeconfig.load(kubeconfig).info(context)
