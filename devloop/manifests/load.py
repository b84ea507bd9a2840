"""Manifest files: read YAML or render jsonnet into Kubernetes objects, and check at load the
parts devloop reads (names, pod specs, containers, ConfigMap data).

Every error names the file and the document or JSON path, and happens before anything
touches a cluster.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from devloop.base.errors import ConfigError
from devloop.profile.errors import yaml_error_text
from devloop.profile.schema import Manifest, Profile

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
    from devloop.profile.errors import UniqueKeyLoader

    docs: list[tuple[int, Any]] = []
    try:
        loader = UniqueKeyLoader(text)
        try:
            while loader.check_node():
                node = loader.get_node()
                assert node is not None  # check_node() said there is one
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
                    raise ConfigError(
                        f"{where}: {at}[{i}]: expected a container (a mapping), found {type(item).__name__}"
                    )
                if "image" in item and not isinstance(item["image"], str):
                    raise ConfigError(
                        f"{where}: {at}[{i}].image: expected an image reference (a string), "
                        f"found {type(item['image']).__name__}"
                    )
    if doc["kind"] == "ConfigMap" and doc.get("data") is not None:
        data = doc["data"]
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: data: expected a mapping of keys to strings, found {type(data).__name__}")
        for key, value in data.items():
            if not isinstance(value, str):
                raise ConfigError(
                    f"{where}: data.{key}: expected a string (quote numbers and booleans), found {type(value).__name__}"
                )
