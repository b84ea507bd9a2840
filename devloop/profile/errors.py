"""Profile errors a person can act on: `FILE:LINE: key.path: expected …, found …`.

Loads the YAML keeping node positions (and refusing duplicate keys), then turns pydantic's
validation errors into one line per problem: the line in the file, the key path with list
items named by their `name` (`components[http-trigger-controller].build`), and what was
expected versus what was found. Knows nothing about the profile schema beyond the root model
it is given.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from types import UnionType
from typing import TYPE_CHECKING, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from devloop.base.errors import ConfigError

# --------------------------------------------------------------------------- YAML with positions


if TYPE_CHECKING:
    _SafeLoader = yaml.SafeLoader
else:
    _SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml parses ~10x faster


class _UniqueKeyLoader(_SafeLoader):
    """SafeLoader that refuses duplicate keys: PyYAML would silently keep the last one."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, float, bool)) and key is not None:
            # `? [a, b]` or `{a: 1}: x`: YAML allows complex keys, a profile has none (and a list
            # key is not even hashable).
            raise yaml.constructor.ConstructorError(
                None, None, f"expected a plain key, found {type_name(key)} {key!r}", key_node.start_mark
            )
        if key in seen:
            first = seen[key].start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first defined on line {first.line + 1})", key_node.start_mark
            )
        seen[key] = key_node
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
# Manifests are read with it too (devloop.manifests.render).
UniqueKeyLoader = _UniqueKeyLoader


def yaml_error_text(exc: yaml.YAMLError, path: Path) -> str:
    """`FILE:LINE:COL: problem` for a YAML error (1-based line and column)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
    detail = f"{problem}" + (f" ({context})" if context and context not in problem else "")
    return f"{where}: invalid YAML: {detail}"


def load_yaml(text: str, path: Path) -> tuple[yaml.Node | None, Any]:
    try:
        loader = _UniqueKeyLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise ConfigError(yaml_error_text(exc, path)) from None
    return node, data


def _node_at(node: yaml.Node | None, loc: Iterable[Any]) -> yaml.Node | None:
    """The deepest YAML node along `loc` (for the line number of an error)."""
    current = node
    for part in loc:
        if isinstance(current, yaml.MappingNode) and isinstance(part, str):
            for key_node, value_node in current.value:
                if getattr(key_node, "value", None) == part:
                    current = value_node
                    break
            else:
                return current
        elif isinstance(current, yaml.SequenceNode) and isinstance(part, int):
            if 0 <= part < len(current.value):
                current = current.value[part]
            else:
                return current
        else:
            return current
    return current


def _key_node_at(node: yaml.Node | None, loc: tuple[Any, ...]) -> yaml.Node | None:
    """For an unknown key, the node of the key itself (its line is where the typo is)."""
    parent = _node_at(node, loc[:-1])
    if isinstance(parent, yaml.MappingNode):
        for key_node, _ in parent.value:
            if getattr(key_node, "value", None) == loc[-1]:
                return key_node
    return parent


# --------------------------------------------------------------------------- error text


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    return type(value).__name__


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def key_path(loc: tuple[Any, ...], data: Any) -> str:
    """`components[http-trigger-controller].build` from a pydantic loc, naming list items by
    their `name` where they have one."""
    out = ""
    current = data
    for part in loc:
        if isinstance(part, int):
            label = str(part)
            item = current[part] if isinstance(current, list) and 0 <= part < len(current) else None
            if isinstance(item, dict) and isinstance(item.get("name"), str) and item["name"]:
                label = item["name"]
            out += f"[{label}]"
            current = item
        else:
            out += f".{part}" if out else str(part)
            current = current.get(part) if isinstance(current, dict) else None
    return out or "(top level)"


def _model_for(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class whose fields are at `loc` (to list valid keys for a typo)."""
    current: Any = root
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(part) if isinstance(part, str) else None
            if field is None:
                return None
            current = field.annotation
        elif isinstance(part, int):
            args = [a for a in get_args(current) if a is not type(None)]
            if get_origin(current) is list and args:
                current = args[0]
            else:
                return None
        else:
            return None
        # unwrap Optional[...] / Union with one model member, spelled Union[X, None] or X | None
        if get_origin(current) in (Union, UnionType):
            models = [a for a in get_args(current) if isinstance(a, type) and issubclass(a, BaseModel)]
            lists = [a for a in get_args(current) if get_origin(a) is list]
            current = models[0] if models else (lists[0] if lists else current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


_EXPECTED = {
    "string_type": "a string",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def _error_line(err: dict[str, Any], data: Any, root_model: type[BaseModel]) -> str:
    loc = tuple(err["loc"])
    kind = err["type"]
    found = err.get("input")
    if kind == "extra_forbidden":
        model = _model_for(root_model, loc[:-1])
        valid = ", ".join(model.model_fields) if model else None
        where = key_path(loc[:-1], data)
        text = f"unknown key {loc[-1]!r}" + (f" in {where}" if loc[:-1] else "")
        return text + (f"; expected one of: {valid}" if valid else "")
    if kind == "missing":
        return "required key is missing"
    if kind in ("value_error", "assertion_error"):
        msg = err["msg"]
        for prefix in ("Value error, ", "Assertion failed, "):
            if msg.startswith(prefix):
                msg = msg[len(prefix) :]
        return msg
    if kind == "too_short":
        return f"expected at least {err.get('ctx', {}).get('min_length', 1)} item(s), found an empty list"
    if kind in ("greater_than", "greater_than_equal"):
        ctx = err.get("ctx", {})
        bound = ctx.get("gt", ctx.get("ge"))
        op = ">" if kind == "greater_than" else "≥"
        bound_text = f"{bound:g}" if isinstance(bound, (int, float)) else str(bound)
        return f"expected a number {op} {bound_text}, found {_show(found)}"
    if kind == "literal_error":
        return f"expected {err.get('ctx', {}).get('expected', 'one of the allowed values')}, found {_show(found)}"
    expected = _EXPECTED.get(kind)
    if expected is None:
        msg = err["msg"]
        expected = msg[len("Input should be ") :] if msg.startswith("Input should be ") else msg
    return f"expected {expected}, found {type_name(found)} {_show(found)}"


def _clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    # Unions report which member failed ("int", "literal['max','no-limit']"); that is noise to a
    # user who wrote a YAML key.
    out = []
    for part in loc:
        if isinstance(part, str) and (
            part in ("int", "str", "float", "bool", "list", "dict", "none")
            or part.startswith(("literal[", "function-", "list[", "dict["))
        ):
            continue
        out.append(part)
    return tuple(out)


def format_errors(errors: list[Any], data: Any, root: yaml.Node | None, path: Path, root_model: type[BaseModel]) -> str:
    """All problems as text; `root_model` is the model `data` was validated against."""
    lines: list[str] = []
    seen: set[str] = set()
    # A union (cpus: int | "max") reports one error per member; keep the first per key path.
    for err in errors:
        loc = _clean_loc(tuple(err["loc"]))
        err = dict(err, loc=loc)
        where = key_path(loc, data)
        if where in seen:
            continue
        seen.add(where)
        node = _key_node_at(root, loc) if err["type"] == "extra_forbidden" else _node_at(root, loc)
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        if err["type"] == "extra_forbidden":
            where = key_path(loc[:-1], data) if loc[:-1] else "(top level)"
            where = f"{where}.{loc[-1]}" if loc[:-1] else str(loc[-1])
        lines.append(f"{path}{line}: {where}: {_error_line(err, data, root_model)}")
    if len(lines) == 1:
        return lines[0]
    return f"{path}: {len(lines)} problems in the profile:\n" + "\n".join("  " + ln for ln in lines)


def hint_for(exc: ValidationError) -> str | None:
    if any(e["type"] == "extra_forbidden" for e in exc.errors(include_url=False)):
        return "unknown keys are errors, so a typo cannot silently change what devloop does"
    return None
