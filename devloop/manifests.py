"""Manifests: load (YAML or jsonnet), substitute built images, order for apply and delete.

Rendering never mutates its input: every object it returns is a deep copy, so the same loaded
manifests can be rendered again with other tags (watch does that on every batch).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from devloop.errors import ConfigError
from devloop.profile_errors import yaml_error_text
from devloop.profile_schema import Component, Manifest, Profile

Obj = dict[str, Any]

# Where each workload kind keeps its pod spec.
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
CONTAINER_LISTS = ("initContainers", "containers")

_APPLY_GROUPS: list[set[str]] = [
    {"Namespace"},
    {"CustomResourceDefinition"},
    {"ClusterRole", "Role"},
    {"ClusterRoleBinding", "RoleBinding"},
    {"ServiceAccount", "ConfigMap", "Secret", "PriorityClass", "StorageClass", "PersistentVolume",
     "PersistentVolumeClaim", "LimitRange", "ResourceQuota"},
    {"Service"},
    set(POD_SPEC_PATHS),
]


# --------------------------------------------------------------------------- loading


def load_manifests(profile: Profile, workspace: Path) -> list[Obj]:
    """Every object of the profile's manifests, in file order (then document order)."""
    objs: list[Obj] = []
    for index, manifest in enumerate(profile.manifests):
        path = Path(workspace) / manifest.path
        if not path.is_file():
            where = f" (profile {profile.source}, manifests[{index}])" if profile.source else f" (manifests[{index}])"
            raise ConfigError(
                f"manifest {path} does not exist{where}",
                hint="check --workspace (the directory holding the checkouts) and the profile's manifests paths",
            )
        if manifest.kind == "yaml":
            objs.extend(load_yaml_file(path))
        else:
            objs.extend(load_jsonnet_file(path, manifest, Path(workspace)))
    return objs


def load_yaml_file(path: Path) -> list[Obj]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read manifest: {exc.strerror or exc}") from None
    return parse_yaml_manifests(text, path)


def parse_yaml_manifests(text: str, path: Path) -> list[Obj]:
    # The profile's loader: a duplicate key is an error (safe_load would keep the last one, and
    # kubectl would apply something else than the file seems to say), and each document's first
    # line is kept for the messages.
    from devloop.profile_errors import UniqueKeyLoader

    docs: list[tuple[int, Any]] = []
    try:
        loader = UniqueKeyLoader(text)
        try:
            while loader.check_node():
                node = loader.get_node()
                docs.append((node.start_mark.line + 1, loader.construct_document(node)))
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise ConfigError(yaml_error_text(exc, path)) from None
    objs: list[Obj] = []
    for number, (line, doc) in enumerate(docs, start=1):
        if doc is None:
            continue
        where = f"{path}:{line}: document {number}"
        if not isinstance(doc, dict):
            raise ConfigError(f"{where}: expected a Kubernetes object (a mapping), found {type(doc).__name__}")
        objs.extend(_flatten(doc, where))
    return objs


def load_jsonnet_file(path: Path, manifest: Manifest, workspace: Path) -> list[Obj]:
    try:
        import _gojsonnet
    except ImportError:  # pragma: no cover - a dependency, but say what to do if it is missing
        raise ConfigError(f"{path}: rendering jsonnet needs the gojsonnet package (pip install gojsonnet)") from None
    jpath = [str(workspace / d) for d in manifest.jpath]
    try:
        text = _gojsonnet.evaluate_file(str(path), jpathdir=jpath, ext_vars=dict(manifest.ext_vars))
    except RuntimeError as exc:
        detail = str(exc).strip()
        hint = f"jpath searched: {', '.join(jpath)}" if jpath else "no jpath directories are set in the profile"
        raise ConfigError(f"{path}: jsonnet evaluation failed:\n{detail}", hint=hint) from None
    return walk_jsonnet_output(json.loads(text), str(path))


def walk_jsonnet_output(value: Any, where: str) -> list[Obj]:
    """Collect objects the way kubecfg does: stop at any mapping with apiVersion and kind,
    descend into other mappings (keys in sorted order) and lists (in order); null is skipped and
    any other value is an error."""
    out: list[Obj] = []

    def walk(v: Any, at: str) -> None:
        if v is None:
            return
        if isinstance(v, dict):
            if "apiVersion" in v and "kind" in v:
                out.extend(_flatten(v, f"{where}: {at}"))
                return
            for key in sorted(v):
                walk(v[key], f"{at}.{key}")
            return
        if isinstance(v, list):
            for i, item in enumerate(v):
                walk(item, f"{at}[{i}]")
            return
        raise ConfigError(f"{where}: looking for Kubernetes objects at {at}, found {type(v).__name__} {v!r}")

    walk(value, "$")
    return out


def _flatten(doc: Obj, where: str) -> list[Obj]:
    kind = doc.get("kind")
    for key in ("apiVersion", "kind"):
        if key in doc and not isinstance(doc[key], str):
            raise ConfigError(f"{where}: {key}: expected a string, found {type(doc[key]).__name__} {doc[key]!r}")
    if not isinstance(kind, str) or not isinstance(doc.get("apiVersion"), str):
        raise ConfigError(f"{where}: expected a Kubernetes object with apiVersion and kind, found keys {sorted(doc)}")
    # `kind: List` (and typed lists such as ConfigMapList) carry their objects in items.
    if kind == "List" or (kind.endswith("List") and isinstance(doc.get("items"), list)):
        out: list[Obj] = []
        for i, item in enumerate(doc.get("items") or []):
            if not isinstance(item, dict):
                raise ConfigError(f"{where}: items[{i}]: expected a Kubernetes object, found {type(item).__name__}")
            out.extend(_flatten(item, f"{where}: items[{i}]"))
        return out
    if not isinstance(doc.get("metadata"), dict) or not doc["metadata"].get("name"):
        raise ConfigError(f"{where}: {kind} has no metadata.name")
    _check_shape(doc, f"{where}: {kind} {doc['metadata']['name']!r}")
    return [doc]


def _check_shape(doc: Obj, where: str) -> None:
    """The parts devloop reads or the API server would refuse with a less helpful message: a
    broken one fails here, at load, before anything touches a cluster."""
    meta = doc["metadata"]
    for key in ("name", "namespace"):
        if key in meta and not isinstance(meta[key], str):
            raise ConfigError(f"{where}: metadata.{key}: expected a string, found {type(meta[key]).__name__}")
    path = POD_SPEC_PATHS.get(doc["kind"])
    if path:
        current: Any = doc
        for depth, key in enumerate(path):
            current = current.get(key) if isinstance(current, dict) else None
            if current is None:
                return  # incomplete workloads are the API server's to judge; nothing to render
            if not isinstance(current, dict):
                at = ".".join(path[: depth + 1])
                raise ConfigError(f"{where}: {at}: expected a mapping, found {type(current).__name__}")
        for list_name in CONTAINER_LISTS:
            items = current.get(list_name)
            at = ".".join(path) + f".{list_name}"
            if items is None:
                continue
            if not isinstance(items, list):
                raise ConfigError(f"{where}: {at}: expected a list of containers, found {type(items).__name__}")
            for i, item in enumerate(items):
                if not isinstance(item, dict):
                    raise ConfigError(f"{where}: {at}[{i}]: expected a container (a mapping), found {type(item).__name__}")
                if "image" in item and not isinstance(item["image"], str):
                    raise ConfigError(f"{where}: {at}[{i}].image: expected an image reference (a string), "
                                      f"found {type(item['image']).__name__}")
    if doc["kind"] == "ConfigMap" and doc.get("data") is not None:
        data = doc["data"]
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: data: expected a mapping of keys to strings, found {type(data).__name__}")
        for key, value in data.items():
            if not isinstance(value, str):
                raise ConfigError(f"{where}: data.{key}: expected a string (quote numbers and booleans), "
                                  f"found {type(value).__name__}")


# --------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class Substitution:
    object: str  # object_ref, e.g. Deployment/kubeless/kubeless-controller-manager
    path: str  # where in the object, e.g. spec.template.spec.containers[http-trigger-controller].image
    old: str
    new: str
    component: str


@dataclass
class Rendered:
    objects: list[Obj]
    substitutions: list[Substitution] = field(default_factory=list)


def render(objs: Iterable[Obj], images: Mapping[str, str], profile: Profile) -> Rendered:
    """Replace references to the images components build with the tags just built.

    `images` maps component name -> built tag; a component without a tag (not built this run)
    keeps its references unchanged. Replaced: image of containers and initContainers in pod
    templates, ConfigMap data values that are exactly an image reference (builder-image), and
    `"image"` values inside JSON strings in ConfigMap data (runtime-images). Containers using a
    built image get imagePullPolicy IfNotPresent (the image exists only in minikube's daemon);
    no other container is touched.
    """
    profile.select_components(sorted(images))  # an unknown name is an error, not a silent no-op
    built = [c for c in profile.components if images.get(c.name)]
    result = Rendered(objects=[])
    for original in objs:
        obj = copy.deepcopy(original)
        ref = object_ref(obj)
        if obj.get("kind") in POD_SPEC_PATHS:
            _render_pod_spec(obj, ref, built, images, result.substitutions)
        elif obj.get("kind") == "ConfigMap":
            _render_configmap(obj, ref, built, images, result.substitutions)
        result.objects.append(obj)
    return result


def _owner(image: Any, built: list[Component]) -> Component | None:
    if not isinstance(image, str):
        return None
    for c in built:
        if c.matches(image):
            return c
    return None


def _render_pod_spec(obj: Obj, ref: str, built: list[Component], images: Mapping[str, str], subs: list[Substitution]) -> None:
    spec_path = POD_SPEC_PATHS[obj["kind"]]
    spec = _get(obj, spec_path)
    if not isinstance(spec, dict):
        return
    prefix = ".".join(spec_path)
    for list_name in CONTAINER_LISTS:
        for i, container in enumerate(spec.get(list_name) or []):
            if not isinstance(container, dict):
                continue
            owner = _owner(container.get("image"), built)
            if owner is None:
                continue
            new = images[owner.name]
            label = container.get("name") or str(i)
            subs.append(Substitution(ref, f"{prefix}.{list_name}[{label}].image", container["image"], new, owner.name))
            container["image"] = new
            container["imagePullPolicy"] = "IfNotPresent"


# `"image": "<json string>"` inside JSON text; a JSON string cannot contain an unescaped quote,
# so this never matches inside another string value.
_JSON_IMAGE_RE = re.compile(r'("image"\s*:\s*)"((?:[^"\\]|\\.)*)"')


def _render_configmap(obj: Obj, ref: str, built: list[Component], images: Mapping[str, str], subs: list[Substitution]) -> None:
    data = obj.get("data")
    if not isinstance(data, dict):
        return
    for key, value in data.items():
        if not isinstance(value, str):
            continue
        owner = _owner(value.strip(), built)
        if owner is not None:
            new = images[owner.name]
            subs.append(Substitution(ref, f"data.{key}", value, new, owner.name))
            data[key] = new
            continue
        if '"image"' in value:
            data[key] = _render_json_images(value, f"data.{key}", ref, built, images, subs)


def _render_json_images(text: str, where: str, ref: str, built: list[Component], images: Mapping[str, str],
                        subs: list[Substitution]) -> str:
    try:
        json.loads(text)
    except ValueError:
        return text  # not JSON: leave it alone rather than guess
    # Edit the text in place so everything but the replaced values stays byte for byte.
    found: list[Substitution] = []

    def replace(m: re.Match[str]) -> str:
        old = json.loads(f'"{m.group(2)}"')
        owner = _owner(old, built)
        if owner is None:
            return m.group(0)
        new = images[owner.name]
        found.append(Substitution(ref, f"{where}#{_json_pointer(text, m.start())}", old, new, owner.name))
        return m.group(1) + json.dumps(new)

    out = _JSON_IMAGE_RE.sub(replace, text)
    json.loads(out)  # the edit only swaps string values; this guards that promise
    subs.extend(found)
    return out


def _json_pointer(text: str, offset: int) -> str:
    """A readable location of the `"image"` key at `offset`: its index among the image keys."""
    return f"image[{len(_JSON_IMAGE_RE.findall(text[:offset]))}]"


def _get(obj: Any, path: Iterable[str]) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


# --------------------------------------------------------------------------- helpers


def object_ref(obj: Mapping[str, Any]) -> str:
    """`Kind/namespace/name`, or `Kind/name` for an object without a namespace."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{obj.get('kind')}/{ns}/{meta.get('name')}" if ns else f"{obj.get('kind')}/{meta.get('name')}"


def pod_spec(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    path = POD_SPEC_PATHS.get(obj.get("kind", ""))
    spec = _get(obj, path) if path else None
    return spec if isinstance(spec, dict) else None


def containers(obj: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """initContainers then containers of a workload's pod template."""
    spec = pod_spec(obj) or {}
    for list_name in CONTAINER_LISTS:
        for c in spec.get(list_name) or []:
            if isinstance(c, dict):
                yield c


def configmaps_read_by(workload: Mapping[str, Any]) -> set[str]:
    """Names of the ConfigMaps a workload's pods read through the pod spec: env
    configMapKeyRef, envFrom configMapRef, configMap volumes and projected volume sources.
    (Kubeless reads kubeless-config through the API too, but also by configMapKeyRef.)"""
    names: set[str] = set()
    spec = pod_spec(workload) or {}
    for c in containers(workload):
        for env in c.get("env") or []:
            ref = _get(env, ("valueFrom", "configMapKeyRef", "name"))
            if isinstance(ref, str):
                names.add(ref)
        for env_from in c.get("envFrom") or []:
            ref = _get(env_from, ("configMapRef", "name"))
            if isinstance(ref, str):
                names.add(ref)
    for volume in spec.get("volumes") or []:
        ref = _get(volume, ("configMap", "name"))
        if isinstance(ref, str):
            names.add(ref)
        for source in _get(volume, ("projected", "sources")) or []:
            ref = _get(source, ("configMap", "name"))
            if isinstance(ref, str):
                names.add(ref)
    return names


def _group(obj: Mapping[str, Any]) -> int:
    kind = obj.get("kind")
    for i, kinds in enumerate(_APPLY_GROUPS):
        if kind in kinds:
            return i
    return len(_APPLY_GROUPS)


def order_for_apply(objs: Iterable[Obj]) -> list[Obj]:
    """Namespace, CRDs, roles, bindings, ServiceAccounts/ConfigMaps/Secrets (and other config),
    Services, workloads, then everything else (custom resources, webhooks, ...). Stable within a
    group, so the manifest's own order is kept where it does not matter."""
    return sorted(objs, key=_group)


def order_for_delete(objs: Iterable[Obj]) -> list[Obj]:
    return list(reversed(order_for_apply(objs)))


class _Dumper(yaml.SafeDumper):
    pass


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    # Multi-line strings (scripts, config files) as literal blocks: readable in `devloop render`.
    style = "|" if "\n" in data and not any(ch in data for ch in "\t\r") and data == data.rstrip(" ") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_presenter)


def dump_yaml(objs: Iterable[Obj]) -> str:
    """Objects as one multi-document YAML stream (keys in their original order)."""
    parts = [yaml.dump(obj, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120) for obj in objs]
    return "".join(f"---\n{p}" for p in parts)
