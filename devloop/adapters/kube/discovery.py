"""Where objects live: the API paths of kinds (discovery) and references to single objects."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from urllib.parse import quote

from devloop.base.errors import ClusterError, ConfigError

from .diagnosis import meta_of
from .transport import Transport


@dataclass(frozen=True)
class ObjRef:
    api_version: str
    kind: str
    namespace: str | None
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"

    @classmethod
    def of(cls, obj: dict, *, api_version: str | None = None, kind: str | None = None) -> ObjRef:
        meta = meta_of(obj)
        return cls(
            api_version or obj.get("apiVersion", ""),
            kind or obj.get("kind", ""),
            meta.get("namespace") or None,
            meta.get("name", ""),
        )


@dataclass(frozen=True)
class Resource:
    """A kind as the API serves it: its plural (the path segment) and whether it is namespaced."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{quote(name, safe='')}"
        return base


NAMESPACES = Resource("v1", "Namespace", "namespaces", False)
PODS = Resource("v1", "Pod", "pods", True)
DEPLOYMENTS = Resource("apps/v1", "Deployment", "deployments", True)
CRDS = Resource("apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", False)


class Discovery:
    """Kinds → Resources by asking the group-version at hand (apis.py), cached; CRDs by their resource name."""

    def __init__(self, transport: Transport, *, default_namespace: str = "default"):
        from .apis import GroupVersions

        self.transport = transport
        self.default_namespace = default_namespace
        self._versions = GroupVersions(transport)
        self._resources: dict[tuple[str, str], Resource] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        pass

    def resource_for(self, api_version: str, kind: str) -> Resource:
        key = (api_version, kind)
        with self._lock:
            if key in self._resources:
                return self._resources[key]
        found = self._versions.lookup(api_version, kind)
        if found is None:
            raise ClusterError(
                f"the cluster at {self.transport.server} does not serve {kind} in {api_version}",
                hint="is its CRD installed, or is the API removed in this Kubernetes version?",
            )
        res = Resource(api_version, kind, found[0], found[1])
        with self._lock:
            self._resources[key] = res
        return res

    def forget(self) -> None:
        with self._lock:
            self._resources.clear()
        self._versions.forget()

    def locate(self, obj: dict) -> tuple[Resource, str | None, str]:
        """(resource, namespace, name) of a manifest object; its namespace defaults to the context's."""
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if not api_version or not kind:
            raise ConfigError(f"manifest object without apiVersion/kind: {json.dumps(obj)[:200]}")
        res = self.resource_for(api_version, kind)
        name = meta_of(obj).get("name")
        if not name:
            raise ConfigError(f"{res.kind} without metadata.name: {json.dumps(obj)[:200]}")
        namespace = (meta_of(obj).get("namespace") or self.default_namespace) if res.namespaced else None
        return res, namespace, name

    def crd_resource(self, resource: str) -> Resource | None:
        """`functions.kubeless.io` → where its objects are served; None when there is no such CRD."""
        crd = self.transport.get(CRDS.path(name=resource))
        if crd is None:
            return None
        spec = crd.get("spec") or {}
        versions = spec.get("versions") or []
        version = next((v["name"] for v in versions if v.get("storage")), None) or next(
            (v["name"] for v in versions if v.get("served")), None
        )
        if not version:
            return None
        names = spec.get("names") or {}
        return Resource(
            f"{spec['group']}/{version}",
            names.get("kind", ""),
            names.get("plural", ""),
            spec.get("scope") == "Namespaced",
        )
