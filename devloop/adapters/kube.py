"""The Kubernetes API, always through one explicitly named kube context (never the current one).

Discovery uses the official dynamic client; requests go through the same ApiClient but as plain
JSON (no model (de)serialisation) because cleaning up a thousand objects must take seconds.
Every wait has a deadline; a timeout says what it waited for and what it saw last.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from devloop.errors import ClusterError, ConfigError, WaitTimeout

OnEvent = Callable[[str, str, "str | None", "str | None", Any], None]

# List-poll interval of the waits: short, so a clean of objects the API server removes at once
# does not sit out a whole second.
POLL = 0.2
_WORKERS = 8
_REQUEST_TIMEOUT = 30
_METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
# Bulk writes only need to know they worked: a metadata-only answer saves the server serialising
# whole objects a thousand times.
_METADATA_ONLY_OBJECT = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
_TRANSIENT_STATUS = {429, 500, 502, 503, 504}


# --------------------------------------------------------------------------------------------
# kubeconfig (no API calls)


def kubeconfig_paths(kubeconfig: str | None) -> list[Path]:
    """The files kubectl would merge: the argument or $KUBECONFIG (colon-separated), else ~/.kube/config."""
    raw = kubeconfig if kubeconfig else os.environ.get("KUBECONFIG", "")
    paths = [Path(os.path.expanduser(p)) for p in raw.split(os.pathsep) if p.strip()]
    return paths or [Path.home() / ".kube" / "config"]


def _load_kubeconfigs(paths: Iterable[Path]) -> dict[str, dict[str, dict]]:
    """Merge like kubectl: for each name the first file that defines it wins."""
    import yaml

    merged: dict[str, dict[str, dict]] = {"contexts": {}, "clusters": {}, "users": {}}
    for path in paths:
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            continue
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read kubeconfig {path}: {exc}") from None
        for section, key in (("contexts", "context"), ("clusters", "cluster"), ("users", "user")):
            for entry in data.get(section) or []:
                if isinstance(entry, dict) and entry.get("name") and entry["name"] not in merged[section]:
                    merged[section][entry["name"]] = entry.get(key) or {}
    return merged


def context_server(context: str, kubeconfig: str | None = None) -> str:
    """The API server URL of `context`, read from the kubeconfig only (nothing is contacted)."""
    paths = kubeconfig_paths(kubeconfig)
    merged = _load_kubeconfigs(paths)
    where = ", ".join(str(p) for p in paths)
    ctx = merged["contexts"].get(context)
    if ctx is None:
        raise ConfigError(
            f"kube context {context!r} is not in the kubeconfig ({where})",
            hint="minikube writes a context named after its profile when the cluster starts: `devloop up`",
        )
    cluster = merged["clusters"].get(ctx.get("cluster", ""))
    if not cluster or not cluster.get("server"):
        raise ConfigError(f"kube context {context!r} names cluster {ctx.get('cluster')!r}, which has no server ({where})")
    return str(cluster["server"])


def context_info(context: str, kubeconfig: str | None = None) -> dict[str, Any]:
    """What the kubeconfig says about `context` (no API call): server, cluster, user, namespace and
    `provider` — minikube marks its clusters with a `cluster_info` extension (provider
    minikube.sigs.k8s.io), which lets a guard tell a minikube context from a look-alike."""
    server = context_server(context, kubeconfig)
    merged = _load_kubeconfigs(kubeconfig_paths(kubeconfig))
    ctx = merged["contexts"][context]
    cluster = merged["clusters"].get(ctx.get("cluster", ""), {})
    provider = None
    for ext in cluster.get("extensions") or []:
        if isinstance(ext, dict) and isinstance(ext.get("extension"), dict):
            provider = ext["extension"].get("provider") or provider
    return {
        "server": server,
        "cluster": ctx.get("cluster"),
        "user": ctx.get("user"),
        "namespace": ctx.get("namespace") or "default",
        "provider": provider,
    }


# --------------------------------------------------------------------------------------------
# Values


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
        meta = obj.get("metadata") or {}
        return cls(
            api_version or obj.get("apiVersion", ""),
            kind or obj.get("kind", ""),
            meta.get("namespace") or None,
            meta.get("name", ""),
        )


@dataclass
class StrippedObject:
    ref: ObjRef
    finalizers: list[str]

    def __str__(self) -> str:
        return f"{self.ref} (finalizers removed: {', '.join(self.finalizers)})"


@dataclass
class StuckObject:
    ref: ObjRef
    finalizers: list[str]
    owner: str | None
    reason: str
    deletion_timestamp: str | None = None

    def __str__(self) -> str:
        parts = [str(self.ref), f"finalizers {self.finalizers or '[]'}"]
        if self.deletion_timestamp:
            parts.append(f"deleting since {self.deletion_timestamp}")
        parts.append(f"owner {self.owner or 'none'}")
        return f"{', '.join(parts)}: {self.reason}"


@dataclass
class CleanReport:
    deleted: int = 0
    stripped: list[StrippedObject] = field(default_factory=list)
    stuck: list[StuckObject] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class _Res:
    api_version: str
    kind: str
    plural: str
    namespaced: bool

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{quote(name, safe='')}"
        if subresource:
            base += f"/{subresource}"
        return base


class ApiError(ClusterError):
    """The API server answered with an error status."""

    def __init__(self, message: str, *, status: int, reason: str = "", hint: str | None = None):
        super().__init__(message, hint=hint)
        self.status = status
        self.reason = reason


class _Transient(Exception):
    pass


def _content(obj: dict) -> dict:
    """An object minus what every write changes (resourceVersion, managedFields), so taking over
    field ownership with server-side apply does not count as a change."""
    copy = dict(obj)
    meta = dict(copy.get("metadata") or {})
    for key in ("resourceVersion", "managedFields"):
        meta.pop(key, None)
    copy["metadata"] = meta
    return copy


def _owner_text(meta: dict) -> str | None:
    owners = meta.get("ownerReferences") or []
    return ", ".join(f"{o.get('kind')} {o.get('name')}" for o in owners) or None


def _conditions_text(obj: dict, *, only_true: bool = True) -> str:
    parts = []
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if only_true and cond.get("status") != "True":
            continue
        text = f"{cond.get('type')}={cond.get('status')}"
        if cond.get("reason"):
            text += f" ({cond['reason']})"
        if cond.get("message"):
            text += f": {cond['message']}"
        parts.append(text)
    return "; ".join(parts)


def _describe_remaining(obj: dict, ref: ObjRef) -> str:
    meta = obj.get("metadata") or {}
    parts = [str(ref), f"finalizers {meta.get('finalizers') or '[]'}"]
    if meta.get("deletionTimestamp"):
        parts.append(f"deletionTimestamp {meta['deletionTimestamp']}")
    parts.append(f"owner {_owner_text(meta) or 'none'}")
    conditions = _conditions_text(obj)
    if conditions and ref.kind in ("CustomResourceDefinition", "Namespace"):
        parts.append(f"conditions: {conditions}")
    return ", ".join(parts)


def _selector_string(selector: dict | None) -> str:
    selector = selector or {}
    terms = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In":
            terms.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            terms.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            terms.append(str(key))
        elif op == "DoesNotExist":
            terms.append(f"!{key}")
    return ",".join(terms)


# --------------------------------------------------------------------------------------------
# Rollout and pod diagnosis (pure)


def rollout_status(deploy: dict) -> tuple[bool, str]:
    """(done, message) like `kubectl rollout status` for one Deployment."""
    meta = deploy.get("metadata") or {}
    spec = deploy.get("spec") or {}
    status = deploy.get("status") or {}
    name = f"{meta.get('namespace')}/{meta.get('name')}"
    if meta.get("generation", 0) > status.get("observedGeneration", 0):
        return False, f"deployment {name}: waiting for the controller to observe the new spec"
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return False, f"deployment {name} exceeded its progress deadline"
    wanted = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    replicas = status.get("replicas", 0)
    available = status.get("availableReplicas", 0)
    if updated < wanted:
        return False, f"deployment {name}: {updated} of {wanted} new replicas have been updated"
    if replicas > updated:
        return False, f"deployment {name}: {replicas - updated} old replicas are pending termination"
    if available < updated:
        return False, f"deployment {name}: {available} of {updated} updated replicas are available"
    return True, f"deployment {name} successfully rolled out"


PERMANENT_POD_REASONS = {"ErrImageNeverPull", "InvalidImageName"}


def pod_problem(pod: dict) -> tuple[str | None, str] | None:
    """(reason, text) of why a pod is not ready, or None when it is ready."""
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    name = f"pod {meta.get('namespace')}/{meta.get('name')}"
    phase = status.get("phase", "Pending")
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    ready = conditions.get("Ready", {}).get("status") == "True"
    if phase == "Running" and ready:
        return None
    for key in ("initContainerStatuses", "containerStatuses"):
        for cs in status.get(key) or []:
            state = cs.get("state") or {}
            waiting = state.get("waiting")
            container = cs.get("name")
            if waiting and waiting.get("reason") not in (None, "ContainerCreating", "PodInitializing"):
                reason = waiting.get("reason")
                text = f"{name} container {container}: {reason}"
                if waiting.get("message"):
                    text += f": {waiting['message']}"
                last = (cs.get("lastState") or {}).get("terminated")
                if last:
                    text += f" (last exit code {last.get('exitCode')}"
                    text += f", {last.get('reason')})" if last.get("reason") else ")"
                image = cs.get("image")
                if image and image not in text and reason in ("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull"):
                    text += f" [image {image}]"
                return reason, text
            terminated = state.get("terminated")
            if terminated and key == "containerStatuses" and terminated.get("exitCode", 0) != 0:
                reason = terminated.get("reason") or "Error"
                return reason, f"{name} container {container} exited with code {terminated.get('exitCode')} ({reason})"
    scheduled = conditions.get("PodScheduled")
    if scheduled and scheduled.get("status") == "False":
        return "Unschedulable", f"{name} is Pending: {scheduled.get('message') or scheduled.get('reason')}"
    if phase == "Pending" and not status.get("containerStatuses"):
        node = (pod.get("spec") or {}).get("nodeName")
        where = f"on node {node}" if node else "not yet scheduled"
        return "Pending", f"{name} is Pending ({where})"
    if phase in ("Failed", "Unknown"):
        return phase, f"{name} is {phase}: {status.get('reason', '')} {status.get('message', '')}".rstrip()
    not_ready = conditions.get("ContainersReady") or conditions.get("Ready") or {}
    detail = not_ready.get("message") or "containers are not ready"
    return "NotReady", f"{name} is {phase} but not ready: {detail}"


# --------------------------------------------------------------------------------------------


class Kube:
    def __init__(self, *, context: str, kubeconfig: str | None = None, request_timeout: float = _REQUEST_TIMEOUT):
        from kubernetes import client, config

        self.context = context
        self.kubeconfig_paths = kubeconfig_paths(kubeconfig)
        self.server = context_server(context, kubeconfig)
        merged = _load_kubeconfigs(self.kubeconfig_paths)
        self.default_namespace = (merged["contexts"].get(context) or {}).get("namespace") or "default"
        configuration = client.Configuration()
        configuration.connection_pool_maxsize = _WORKERS * 2
        try:
            config.load_kube_config(
                config_file=os.pathsep.join(str(p) for p in self.kubeconfig_paths),
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
        except Exception as exc:  # noqa: BLE001 - the loader raises bare exceptions for bad files
            raise ConfigError(f"cannot load kube context {context!r}: {exc}") from None
        self.api = client.ApiClient(configuration=configuration)
        self.request_timeout = request_timeout
        self._dynamic = None
        self._discovery_dir: tempfile.TemporaryDirectory | None = None
        self._resources: dict[tuple[str, str], _Res] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self.api.close()
        if self._discovery_dir is not None:
            self._discovery_dir.cleanup()

    def __enter__(self) -> Kube:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- transport ---------------------------------------------------------------------------

    def _request_once(
        self,
        method: str,
        path: str,
        *,
        query: dict | None = None,
        body: Any = None,
        content_type: str | None = None,
        accept: str = "application/json",
        timeout: float | None = None,
    ) -> tuple[int, Any]:
        import urllib3

        url = self.api.configuration.host + path
        if query:
            url += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        headers = {"Accept": accept, "Content-Type": content_type or "application/json"}
        # Auth the way the generated client does (bearer tokens, exec plugins refresh there).
        self.api.update_params_for_auth(headers, [], ["BearerToken"], url, method, body)
        try:
            response = self.api.rest_client.request(
                method, url, headers=headers, body=body, _request_timeout=timeout or self.request_timeout
            )
            data = response.read()
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _Transient(f"cannot reach the API server at {self.server} (context {self.context}): {exc}") from None
        status = response.status
        try:
            payload = json.loads(data) if data else None
        except ValueError:
            payload = data.decode(errors="replace")
        if status in _TRANSIENT_STATUS:
            raise _Transient(self._status_text(method, path, status, payload))
        return status, payload

    def _status_text(self, method: str, path: str, status: int, payload: Any) -> str:
        message = payload.get("message") if isinstance(payload, dict) else str(payload)[:300]
        return f"{method} {path}: HTTP {status}: {message}"

    def _request(self, method: str, path: str, *, ok: Sequence[int] = (), **kwargs) -> tuple[int, Any]:
        """One API call with bounded retries for transient failures; returns (status, json).

        Statuses outside 2xx that are not listed in `ok` raise ApiError.
        """
        try:
            status, payload = self._request_once(method, path, **kwargs)
        except _Transient:
            # The common case costs nothing; only a failed call builds the retry machinery.
            from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

            try:
                for attempt in Retrying(
                    stop=stop_after_attempt(3),
                    wait=wait_exponential(multiplier=0.2, max=2),
                    retry=retry_if_exception_type(_Transient),
                    reraise=True,
                ):
                    with attempt:
                        status, payload = self._request_once(method, path, **kwargs)
            except _Transient as exc:
                raise ClusterError(
                    f"{exc} (after 4 attempts)", hint=f"is the cluster up? `minikube status -p {self.context}`"
                ) from None
        if 200 <= status < 300 or status in ok:
            return status, payload
        reason = payload.get("reason", "") if isinstance(payload, dict) else ""
        hint = None
        if status in (401, 403):
            hint = f"the credentials of context {self.context!r} are not allowed to do this"
        raise ApiError(self._status_text(method, path, status, payload), status=status, reason=reason, hint=hint)

    # -- discovery ---------------------------------------------------------------------------

    @property
    def dynamic(self):
        if self._dynamic is None:
            from kubernetes.dynamic import DynamicClient

            # A private cache file: the default one in /tmp is shared by every process and cluster
            # and goes stale across cluster resets.
            self._discovery_dir = tempfile.TemporaryDirectory(prefix="devloop-discovery-")
            try:
                self._dynamic = DynamicClient(self.api, cache_file=str(Path(self._discovery_dir.name) / "cache.json"))
            except Exception as exc:  # noqa: BLE001 - discovery surfaces urllib3 and ApiException alike
                raise ClusterError(f"cannot discover the API of {self.server} (context {self.context}): {exc}") from None
        return self._dynamic

    def resource_for(self, api_version: str, kind: str) -> _Res:
        key = (api_version, kind)
        with self._lock:
            if key in self._resources:
                return self._resources[key]
        from kubernetes.dynamic.exceptions import ResourceNotFoundError, ResourceNotUniqueError

        found = None
        for attempt in range(2):
            try:
                found = self.dynamic.resources.get(api_version=api_version, kind=kind)
                break
            except ResourceNotUniqueError:
                candidates = self.dynamic.resources.search(api_version=api_version, kind=kind)
                found = next((r for r in candidates if "/" not in r.name), None)
                break
            except ResourceNotFoundError:
                if attempt == 0:
                    # New CRDs since the last discovery: look again once.
                    self.dynamic.resources.invalidate_cache()
        if found is None:
            raise ClusterError(
                f"the cluster at {self.server} does not serve {kind} in {api_version}",
                hint="is its CRD installed, or is the API removed in this Kubernetes version?",
            )
        res = _Res(api_version, kind, found.name, bool(found.namespaced))
        with self._lock:
            self._resources[key] = res
        return res

    def forget_discovery(self) -> None:
        with self._lock:
            self._resources.clear()
        if self._dynamic is not None:
            self._dynamic.resources.invalidate_cache()

    def _res_of(self, obj: dict) -> _Res:
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if not api_version or not kind:
            raise ConfigError(f"manifest object without apiVersion/kind: {json.dumps(obj)[:200]}")
        return self.resource_for(api_version, kind)

    def _namespace_of(self, res: _Res, obj: dict) -> str | None:
        if not res.namespaced:
            return None
        return (obj.get("metadata") or {}).get("namespace") or self.default_namespace

    def _obj_path(self, obj: dict) -> tuple[_Res, str | None, str]:
        res = self._res_of(obj)
        name = (obj.get("metadata") or {}).get("name")
        if not name:
            raise ConfigError(f"{res.kind} without metadata.name: {json.dumps(obj)[:200]}")
        return res, self._namespace_of(res, obj), name

    # -- objects -----------------------------------------------------------------------------

    def ensure_namespace(self, name: str, *, timeout: float = 120) -> bool:
        """Create the namespace unless it exists; waits out a namespace still Terminating."""
        path = f"/api/v1/namespaces/{quote(name, safe='')}"
        status, current = self._request("GET", path, ok=(404,))
        if status == 200 and (current.get("status") or {}).get("phase") != "Terminating":
            return False
        if status == 200:
            self._wait_namespace_gone(name, timeout=timeout)
        status, _ = self._request(
            "POST", "/api/v1/namespaces", body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
            ok=(409,),
        )
        return status != 409

    def create(self, obj: dict) -> None:
        res, namespace, name = self._obj_path(obj)
        body = json.loads(json.dumps(obj))
        if namespace:
            body.setdefault("metadata", {})["namespace"] = namespace
        try:
            self._request("POST", res.path(namespace), body=body)
        except ApiError as exc:
            if exc.status == 409:
                ref = ObjRef(res.api_version, res.kind, namespace, name)
                raise ApiError(f"{ref} already exists", status=409, reason=exc.reason,
                               hint="delete it first (`devloop apply --strategy recreate` does) or use "
                               "`--strategy apply`") from None
            raise

    def server_side_apply(self, obj: dict, *, field_manager: str = "devloop", force: bool = True) -> bool:
        """Server-side apply; returns whether the object changed (created, or its content differs)."""
        res, namespace, name = self._obj_path(obj)
        path = res.path(namespace, name)
        status, before = self._request("GET", path, ok=(404,))
        body = json.loads(json.dumps(obj))
        if namespace:
            body.setdefault("metadata", {})["namespace"] = namespace
        _, after = self._request(
            "PATCH",
            path,
            query={"fieldManager": field_manager, "force": "true" if force else None},
            body=body,
            content_type="application/apply-patch+yaml",
        )
        if status == 404:
            return True
        return _content(before) != _content(after)

    def get(self, obj: dict) -> dict | None:
        try:
            res, namespace, name = self._obj_path(obj)
        except ClusterError:
            return None  # its kind is not served: it cannot exist
        status, payload = self._request("GET", res.path(namespace, name), ok=(404,))
        return None if status == 404 else payload

    def exists(self, obj: dict) -> bool:
        return self.get(obj) is not None

    def delete_objects(self, objs: list[dict], *, timeout: float, on_event: OnEvent | None = None) -> None:
        """Delete in the given order (background propagation), then wait until all are gone."""
        deadline = time.monotonic() + timeout
        pending: list[tuple[_Res, str | None, str, str, ObjRef]] = []
        for obj in objs:
            try:
                res, namespace, name = self._obj_path(obj)
            except ClusterError:
                continue  # kind no longer served (its CRD is gone): nothing to delete
            ref = ObjRef(res.api_version, res.kind, namespace, name)
            status, payload = self._request(
                "DELETE",
                res.path(namespace, name),
                body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"},
                ok=(404,),
            )
            if status == 404:
                continue
            uid = ((payload or {}).get("metadata") or {}).get("uid", "") if isinstance(payload, dict) else ""
            if on_event:
                on_event("delete", res.kind, namespace, name, None)
            pending.append((res, namespace, name, uid, ref))

        last: dict[ObjRef, dict] = {}
        while True:
            still = []
            for res, namespace, name, uid, ref in pending:
                status, current = self._request("GET", res.path(namespace, name), ok=(404,))
                if status == 404:
                    continue
                if uid and (current.get("metadata") or {}).get("uid") not in (uid, None):
                    continue  # recreated by someone else: ours is gone
                last[ref] = current
                still.append((res, namespace, name, uid, ref))
            pending = still
            if not pending:
                return
            if time.monotonic() >= deadline:
                lines = [f"  - {_describe_remaining(last[ref], ref)}" for *_, ref in pending]
                raise WaitTimeout(
                    f"{len(pending)} object(s) still exist {timeout:g}s after deleting them:\n" + "\n".join(lines),
                    hint="a finalizer is removed by the controller that set it; if that controller is gone or "
                    "lacks permissions the object stays (for the profile's cleanup kinds `devloop clean "
                    "--strip-finalizers` removes them)",
                )
            if on_event:
                on_event("wait", "", None, None, len(pending))
            time.sleep(POLL)

    # -- CRDs and custom resources -----------------------------------------------------------

    def wait_crds_established(self, names: list[str], *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        seen: dict[str, str] = {}
        remaining = list(names)
        while True:
            still = []
            for name in remaining:
                status, crd = self._request(
                    "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}", ok=(404,)
                )
                if status == 404:
                    seen[name] = "not found"
                    still.append(name)
                    continue
                conditions = {c.get("type"): c for c in (crd.get("status") or {}).get("conditions") or []}
                if conditions.get("Established", {}).get("status") == "True":
                    continue
                seen[name] = _conditions_text(crd, only_true=False) or "no conditions yet"
                still.append(name)
            remaining = still
            if not remaining:
                self.forget_discovery()
                return
            if time.monotonic() >= deadline:
                lines = "\n".join(f"  - {n}: {seen[n]}" for n in remaining)
                raise WaitTimeout(f"CRDs not Established within {timeout:g}s:\n{lines}")
            time.sleep(POLL)

    def _crd_resource(self, resource: str) -> _Res | None:
        """`functions.kubeless.io` → where its objects are served; None when there is no such CRD."""
        status, crd = self._request(
            "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{quote(resource, safe='')}", ok=(404,)
        )
        if status == 404:
            return None
        spec = crd.get("spec") or {}
        versions = spec.get("versions") or []
        version = next((v["name"] for v in versions if v.get("storage")), None) or next(
            (v["name"] for v in versions if v.get("served")), None
        )
        if not version:
            return None
        return _Res(f"{spec['group']}/{version}", (spec.get("names") or {}).get("kind", ""),
                    (spec.get("names") or {}).get("plural", ""), spec.get("scope") == "Namespaced")

    def _list(self, res: _Res, *, namespace: str | None = None, metadata_only: bool = False,
              selector: str | None = None) -> list[dict]:
        items: list[dict] = []
        token = None
        while True:
            status, payload = self._request(
                "GET",
                res.path(namespace),
                query={"limit": 500, "continue": token, "labelSelector": selector},
                accept=_METADATA_ONLY if metadata_only else "application/json",
                ok=(404,),
            )
            if status == 404:
                return []
            for item in payload.get("items") or []:
                # Items of built-in lists carry no apiVersion/kind; metadata-only ones say PartialObjectMetadata.
                if item.get("kind") in (None, "PartialObjectMetadata"):
                    item["apiVersion"], item["kind"] = res.api_version, res.kind
                items.append(item)
            token = (payload.get("metadata") or {}).get("continue")
            if not token:
                return items

    def list_custom(self, resource: str) -> list[dict]:
        """All objects of a custom resource ("functions.kubeless.io") in all namespaces."""
        res = self._crd_resource(resource)
        return self._list(res) if res else []

    def clean_custom_resources(
        self,
        resources: list[str],
        *,
        grace: float,
        strip_finalizers: bool,
        timeout: float,
        on_event: OnEvent | None = None,
    ) -> CleanReport:
        """Delete every object of these kinds in all namespaces, giving controllers `grace` seconds
        to finish their finalizers; then (if allowed) strip what is left, object by object.

        With no grace (nobody to wait for) finalizers are stripped before the delete. Objects that
        cannot be removed within `timeout` are returned in `stuck` with the reason, never waited on
        forever. on_event(event, kind, namespace, name, detail): ("delete", kind, ns, "*", count),
        ("strip", kind, ns, name, finalizers)."""
        started = time.monotonic()
        deadline = started + timeout
        report = CleanReport()
        kinds = [(name, res) for name in resources if (res := self._crd_resource(name)) is not None]
        if not kinds:
            return report

        with ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="devloop-clean") as pool:
            stripped_uids: set[str] = set()
            errors: dict[str, str] = {}
            # 1. delete while controllers still run: one deletecollection per namespace and kind
            jobs = []
            for _, res in kinds:
                present = self._list(res, metadata_only=True)
                report.deleted += len(present)
                if grace <= 0 and strip_finalizers:
                    # No grace: nobody will be waited for, so strip first and the delete becomes a
                    # single write per object instead of three (mark deleting, strip, remove).
                    held = [item for item in present if (item.get("metadata") or {}).get("finalizers")]
                    for job in [pool.submit(self._strip, res, item.get("metadata") or {}, report, stripped_uids,
                                            errors, on_event) for item in held]:
                        job.result()
                by_namespace: dict[str | None, int] = {}
                for item in present:
                    ns = (item.get("metadata") or {}).get("namespace") if res.namespaced else None
                    by_namespace[ns] = by_namespace.get(ns, 0) + 1
                for ns, count in sorted(by_namespace.items(), key=lambda kv: kv[0] or ""):
                    jobs.append(pool.submit(self._delete_collection, res, ns))
                    if on_event:
                        on_event("delete", res.kind, ns, "*", count)
            for job in jobs:
                job.result()

            # 2. grace: controllers remove their finalizers; stop early when everything is gone
            remaining = self._remaining(kinds)
            grace_end = min(time.monotonic() + grace, deadline)
            while remaining and time.monotonic() < grace_end:
                time.sleep(min(POLL, max(0.0, grace_end - time.monotonic())))
                remaining = self._remaining(kinds)

            # 3. strip finalizers nobody is going to remove, then wait until all are gone
            while remaining:
                work = []
                for res, item in remaining:
                    meta = item.get("metadata") or {}
                    if not meta.get("deletionTimestamp"):
                        work.append(pool.submit(self._delete_one, res, meta))  # created after step 1
                    elif strip_finalizers and meta.get("finalizers"):
                        work.append(pool.submit(self._strip, res, meta, report, stripped_uids, errors, on_event))
                for job in work:
                    job.result()
                if time.monotonic() >= deadline:
                    break
                # Right after patches most objects are gone already; otherwise poll.
                time.sleep(0.02 if work else POLL)
                remaining = self._remaining(kinds)
                if remaining and time.monotonic() >= deadline:
                    break

        for res, item in remaining:
            meta = item.get("metadata") or {}
            ref = ObjRef(res.api_version, res.kind, meta.get("namespace"), meta.get("name", ""))
            finalizers = list(meta.get("finalizers") or [])
            if meta.get("uid") in errors:
                reason = f"removing its finalizers failed: {errors[meta['uid']]}"
            elif finalizers and not strip_finalizers:
                reason = (f"its finalizers were not removed within {timeout:g}s (is their controller running?); "
                          "`--strip-finalizers` removes them")
            elif finalizers:
                reason = "its finalizers came back after being removed (a controller keeps adding them)"
            else:
                reason = "still present though it has no finalizers"
            report.stuck.append(StuckObject(ref, finalizers, _owner_text(meta), reason, meta.get("deletionTimestamp")))
        report.seconds = time.monotonic() - started
        return report

    def _remaining(self, kinds: list[tuple[str, _Res]]) -> list[tuple[_Res, dict]]:
        return [(res, item) for _, res in kinds for item in self._list(res, metadata_only=True)]

    def _delete_collection(self, res: _Res, namespace: str | None) -> None:
        self._request(
            "DELETE",
            res.path(namespace),
            body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"},
            accept=_METADATA_ONLY,
            ok=(404,),
        )

    def _delete_one(self, res: _Res, meta: dict) -> None:
        self._request(
            "DELETE",
            res.path(meta.get("namespace"), meta.get("name")),
            body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"},
            ok=(404, 409),
        )

    def _strip(self, res: _Res, meta: dict, report: CleanReport, stripped_uids: set[str], errors: dict[str, str],
               on_event: OnEvent | None) -> None:
        namespace, name, uid = meta.get("namespace"), meta.get("name"), meta.get("uid", "")
        finalizers = list(meta.get("finalizers") or [])
        try:
            status, _ = self._request(
                "PATCH",
                res.path(namespace, name),
                # The uid makes the patch fail (422, uid is immutable) on a same-named object
                # created meanwhile: never strip something we did not delete.
                body={"metadata": {"finalizers": [], "uid": uid}},
                content_type="application/merge-patch+json",
                accept=_METADATA_ONLY_OBJECT,
                ok=(404, 409, 422),
            )
        except ClusterError as exc:
            errors[uid] = exc.message
            return
        if status in (404, 409, 422):
            return  # gone already, or not the object we deleted
        with self._lock:
            first = uid not in stripped_uids
            if first:
                stripped_uids.add(uid)
                report.stripped.append(StrippedObject(ObjRef(res.api_version, res.kind, namespace, name), finalizers))
        if first and on_event:
            on_event("strip", res.kind, namespace, name, finalizers)

    # -- namespaces --------------------------------------------------------------------------

    def delete_namespace(self, name: str, *, timeout: float) -> None:
        path = f"/api/v1/namespaces/{quote(name, safe='')}"
        status, _ = self._request("DELETE", path, body={"kind": "DeleteOptions", "apiVersion": "v1",
                                                        "propagationPolicy": "Background"}, ok=(404,))
        if status == 404:
            return
        self._wait_namespace_gone(name, timeout=timeout)

    def _wait_namespace_gone(self, name: str, *, timeout: float) -> None:
        path = f"/api/v1/namespaces/{quote(name, safe='')}"
        deadline = time.monotonic() + timeout
        last: dict = {}
        while True:
            status, current = self._request("GET", path, ok=(404,))
            if status == 404:
                return
            last = current
            if time.monotonic() >= deadline:
                raise WaitTimeout(self._namespace_stuck_message(name, last, timeout),
                                  hint="objects held by finalizers keep a namespace Terminating; `devloop clean "
                                  "--strip-finalizers` removes the custom resources' finalizers")
            time.sleep(POLL)

    def _namespace_stuck_message(self, name: str, ns: dict, timeout: float) -> str:
        lines = [f"namespace {name} is still {(ns.get('status') or {}).get('phase', 'present')} after {timeout:g}s"]
        conditions = _conditions_text(ns)
        if conditions:
            lines.append(f"  conditions: {conditions}")
        else:
            lines.append("  no conditions reported: is kube-controller-manager (the namespace controller) running?")
        # "functions.kubeless.io has 1 resource instances" → name those objects and their finalizers
        mentioned = set(re.findall(r"([a-z0-9-]+(?:\.[a-z0-9-]+)+) has \d+ resource instances", conditions))
        for resource in sorted(mentioned):
            try:
                res = self._crd_resource(resource)
                items = self._list(res, namespace=name, metadata_only=True) if res and res.namespaced else []
            except ClusterError:
                continue
            for item in items[:20]:
                lines.append(f"  - {_describe_remaining(item, ObjRef.of(item, api_version=res.api_version, kind=res.kind))}")
            if len(items) > 20:
                lines.append(f"  … and {len(items) - 20} more {resource}")
        return "\n".join(lines)

    # -- workloads ---------------------------------------------------------------------------

    def deployment(self, namespace: str, name: str) -> dict | None:
        status, payload = self._request(
            "GET", f"/apis/apps/v1/namespaces/{quote(namespace, safe='')}/deployments/{quote(name, safe='')}", ok=(404,)
        )
        return None if status == 404 else payload

    def pods(self, namespace: str, selector: str | None) -> list[dict]:
        res = _Res("v1", "Pod", "pods", True)
        return self._list(res, namespace=namespace, selector=selector or None)

    def restart_deployment(self, namespace: str, name: str) -> None:
        now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self._request(
            "PATCH",
            f"/apis/apps/v1/namespaces/{quote(namespace, safe='')}/deployments/{quote(name, safe='')}",
            body={"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": now}}}}},
            content_type="application/strategic-merge-patch+json",
        )

    def wait_rollout(
        self,
        deployments: list[tuple[str, str]],
        *,
        timeout: float,
        on_wait: Callable[[str], None] | None = None,
        fail_fast: bool = True,
    ) -> None:
        """Wait until each (namespace, name) Deployment has rolled out, as `kubectl rollout status`.

        On timeout (or at once, for a pod that can never start such as ErrImageNeverPull) the
        error names the pods that are not ready and why.
        """
        deadline = time.monotonic() + timeout
        pending = list(deployments)
        messages: dict[tuple[str, str], str] = {}
        last_said = None
        next_pod_check = 0.0
        while True:
            still = []
            for ns, name in pending:
                deploy = self.deployment(ns, name)
                if deploy is None:
                    messages[(ns, name)] = f"deployment {ns}/{name} does not exist"
                    still.append((ns, name))
                    continue
                done, message = rollout_status(deploy)
                messages[(ns, name)] = message
                if not done:
                    still.append((ns, name))
            pending = still
            if not pending:
                return
            now = time.monotonic()
            if fail_fast and now >= next_pod_check:
                next_pod_check = now + 1.0
                for ns, name in pending:
                    problems = self._pod_problems(ns, name)
                    fatal = [text for reason, text in problems if reason in PERMANENT_POD_REASONS]
                    if fatal:
                        raise ClusterError(
                            f"deployment {ns}/{name} cannot roll out:\n" + "\n".join(f"  - {t}" for t in fatal),
                            hint="the image is not in minikube's Docker daemon and may not be pulled; build it "
                            "(`devloop build`) or fix imagePullPolicy",
                        )
            summary = "; ".join(messages[d] for d in pending)
            if on_wait and summary != last_said:
                on_wait(summary)
                last_said = summary
            if now >= deadline:
                lines = []
                for ns, name in pending:
                    lines.append(f"  {messages[(ns, name)]}")
                    for _, text in self._pod_problems(ns, name):
                        lines.append(f"    - {text}")
                raise WaitTimeout(f"rollout not finished within {timeout:g}s:\n" + "\n".join(lines))
            time.sleep(0.5)

    def _pod_problems(self, namespace: str, name: str) -> list[tuple[str | None, str]]:
        deploy = self.deployment(namespace, name)
        if deploy is None:
            return []
        selector = _selector_string((deploy.get("spec") or {}).get("selector"))
        pods = [p for p in self.pods(namespace, selector) if not (p.get("metadata") or {}).get("deletionTimestamp")]
        if not pods:
            return [(None, f"no pods for deployment {namespace}/{name} (selector {selector}); see its ReplicaSet events")]
        found = [problem for pod in pods if (problem := pod_problem(pod)) is not None]
        return found

    def pod_logs(self, namespace: str, pod: str, container: str, *, follow: bool = False,
                 tail_lines: int | None = None) -> Iterator[str]:
        """A container's log, line by line; with `follow`, until the stream ends or the caller stops."""
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        kwargs: dict[str, Any] = {"container": container, "follow": follow, "_preload_content": False}
        if tail_lines is not None:
            kwargs["tail_lines"] = tail_lines
        if not follow:
            kwargs["_request_timeout"] = self.request_timeout
        try:
            resp = client.CoreV1Api(self.api).read_namespaced_pod_log(pod, namespace, **kwargs)
        except ApiException as exc:
            raise ClusterError(f"cannot read logs of {namespace}/{pod}/{container}: {exc.status} {exc.reason}",
                               hint="the container may not have started yet; `devloop status` shows why") from None
        try:
            pending = b""
            for chunk in resp.stream(4096, decode_content=True):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    yield line.decode("utf-8", "replace")
            if pending:
                yield pending.decode("utf-8", "replace")
        finally:
            resp.release_conn()

    def wait_admission(self, obj: dict, *, timeout: float, what: str | None = None) -> None:
        """Wait until the API server admits `obj` in a server-side dry run.

        A validating webhook registered moments ago (ingress-nginx's) refuses every request
        until its server answers; a dry run proves it does without creating anything.
        """
        res, namespace, name = self._obj_path(obj)
        what = what or f"admission of {res.kind} {name}"
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while True:
            try:
                status, payload = self._request_once("POST", res.path(namespace), query={"dryRun": "All"},
                                                     body=json.loads(json.dumps(obj)))
                if 200 <= status < 300 or status == 409:
                    return
                last = self._status_text("POST", res.path(namespace), status, payload)
            except _Transient as exc:
                last = str(exc)
            if time.monotonic() >= deadline:
                raise WaitTimeout(f"{what} did not admit a dry-run {res.kind} within {timeout:g}s; last answer: {last}")
            time.sleep(POLL * 2)


__all__ = [
    "ApiError",
    "CleanReport",
    "Kube",
    "ObjRef",
    "StrippedObject",
    "StuckObject",
    "context_info",
    "context_server",
    "kubeconfig_paths",
    "pod_problem",
    "rollout_status",
]
