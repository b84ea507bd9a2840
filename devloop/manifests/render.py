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

from devloop.base.errors import ConfigError
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
    "RuntimeImage",
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
    "runtime_entry",
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


@dataclass(frozen=True)
class RuntimeImage:
    """A runtime component's image written into the controller's runtime list (Kubeless's runtime-images)."""

    component: str
    runtime: str  # what a Function's spec.runtime says, e.g. python3.8
    phase: str  # runtime | installation | compilation
    config: str  # object_ref of the ConfigMap, e.g. ConfigMap/kubeless/kubeless-config
    key: str  # its data key, e.g. runtime-images
    old: str  # the image the manifest names there
    new: str  # the built tag


@dataclass
class Rendered:
    objects: list[Obj]
    substitutions: list[Substitution] = field(default_factory=list)
    runtimes: list[RuntimeImage] = field(default_factory=list)


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
    for component in built:
        if component.runtime is not None:
            _render_runtime(result, component, images[component.name], profile)
    return result


# --------------------------------------------------------------------------- runtime components


def _runtime_error(profile: Profile, component: Component, what: str, detail: str) -> ConfigError:
    index = profile.components.index(component)
    return ConfigError(
        f"{profile.where(('components', index, 'runtime'))}: {what}",
        hint=detail,
    )


def _render_runtime(result: Rendered, component: Component, tag: str, profile: Profile) -> None:
    """Write `tag` into the runtime list at the component's entry: the ConfigMap's key holds JSON text, so it
    is parsed, the one `image` replaced, and dumped again (Go's encoding/json and kubecfg write the same
    separators, so an unchanged list comes out byte for byte)."""
    rt = component.runtime
    assert rt is not None
    cfg = rt.config
    where = f"ConfigMap {cfg.namespace}/{cfg.name}"
    found = [
        obj
        for obj in result.objects
        if obj.get("kind") == "ConfigMap"
        and (obj.get("metadata") or {}).get("name") == cfg.name
        and ((obj.get("metadata") or {}).get("namespace") or profile.namespace) == cfg.namespace
    ]
    if not found:
        raise _runtime_error(
            profile,
            component,
            f"the manifests have no {where} to write the {rt.describe()} into",
            "runtime.config names the ConfigMap (default kubeless/kubeless-config) the controller reads",
        )
    obj = found[0]
    data: dict[str, Any] = obj["data"] if isinstance(obj.get("data"), dict) else {}
    text = data.get(cfg.key)
    if not isinstance(text, str):
        keys = ", ".join(sorted(data)) or "none"
        raise _runtime_error(
            profile, component, f"{where} has no data key {cfg.key!r} (its keys: {keys})", "runtime.config.key"
        )
    try:
        runtimes = json.loads(text)
    except ValueError as exc:
        raise _runtime_error(
            profile, component, f"{where} data.{cfg.key} is not JSON ({exc})", "the manifest's runtime list"
        ) from None
    entry = runtime_entry(runtimes, rt)
    if isinstance(entry, str):
        raise _runtime_error(profile, component, f"{where} data.{cfg.key}: {entry}", "runtime.id/version/phase")
    old = entry.get("image")
    entry["image"] = tag
    data[cfg.key] = json.dumps(runtimes)
    ref = object_ref(obj)
    old_text = old if isinstance(old, str) else ""
    result.substitutions.append(
        Substitution(ref, f"data.{cfg.key}#{rt.runtime_name}.{rt.phase}", old_text, tag, component.name)
    )
    result.runtimes.append(RuntimeImage(component.name, rt.runtime_name, rt.phase, ref, cfg.key, old_text, tag))


def runtime_entry(runtimes: Any, rt: Any) -> dict[str, Any] | str:
    """The `{phase, image}` dict for rt in the list, or what is missing (langruntime.go's RuntimeInfo,
    RuntimeVersion and Image: `ID`, `versions[].version`, `versions[].images[].phase`)."""
    if not isinstance(runtimes, list):
        return f"expected a JSON list of runtimes, found {type(runtimes).__name__}"
    ids = [r.get("ID") for r in runtimes if isinstance(r, dict)]
    info = next((r for r in runtimes if isinstance(r, dict) and r.get("ID") == rt.id), None)
    if info is None:
        return f"no runtime with ID {rt.id!r} (it has {', '.join(map(str, ids)) or 'none'})"
    versions = [v for v in info.get("versions") or [] if isinstance(v, dict)]
    version = next((v for v in versions if v.get("version") == rt.version), None)
    if version is None:
        have = ", ".join(str(v.get("version")) for v in versions) or "none"
        return f"runtime {rt.id!r} has no version {rt.version!r} (it has {have})"
    images = [i for i in version.get("images") or [] if isinstance(i, dict)]
    image = next((i for i in images if i.get("phase") == rt.phase), None)
    if image is None:
        have = ", ".join(str(i.get("phase")) for i in images) or "none"
        return f"{rt.runtime_name} has no {rt.phase!r} image (its phases: {have})"
    return image


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
