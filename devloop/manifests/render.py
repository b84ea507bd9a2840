"""Manifests: substitute built images, order objects for apply and delete, dump them as YAML.

Loading (YAML or jsonnet) is devloop.manifests.load; its names are re-exported here.
Rendering never mutates its input: every object it returns is a deep copy, so the same loaded
manifests can be rendered again with other tags (watch does that on every batch).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from devloop.manifests.load import (
    CONTAINER_LISTS,
    POD_SPEC_PATHS,
    Obj,
    load_jsonnet_file,
    load_manifests,
    load_yaml_file,
    parse_yaml_manifests,
    walk_jsonnet_output,
)
from devloop.profile.schema import Component, Profile

__all__ = [
    "CONTAINER_LISTS",
    "POD_SPEC_PATHS",
    "Obj",
    "Rendered",
    "Substitution",
    "configmaps_read_by",
    "containers",
    "dump_yaml",
    "load_jsonnet_file",
    "load_manifests",
    "load_yaml_file",
    "object_ref",
    "order_for_apply",
    "order_for_delete",
    "parse_yaml_manifests",
    "pod_spec",
    "render",
    "walk_jsonnet_output",
]

_APPLY_GROUPS: list[set[str]] = [
    {"Namespace"},
    {"CustomResourceDefinition"},
    {"ClusterRole", "Role"},
    {"ClusterRoleBinding", "RoleBinding"},
    {
        "ServiceAccount",
        "ConfigMap",
        "Secret",
        "PriorityClass",
        "StorageClass",
        "PersistentVolume",
        "PersistentVolumeClaim",
        "LimitRange",
        "ResourceQuota",
    },
    {"Service"},
    set(POD_SPEC_PATHS),
]


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


def _render_pod_spec(
    obj: Obj, ref: str, built: list[Component], images: Mapping[str, str], subs: list[Substitution]
) -> None:
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


def _render_configmap(
    obj: Obj, ref: str, built: list[Component], images: Mapping[str, str], subs: list[Substitution]
) -> None:
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


def _render_json_images(
    text: str, where: str, ref: str, built: list[Component], images: Mapping[str, str], subs: list[Substitution]
) -> str:
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
