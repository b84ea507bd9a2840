"""Profiles: what a project's loop is made of (cluster, components, manifests, cleanup).

A profile is a YAML file validated by pydantic with unknown keys forbidden. Every error a user
can make is reported as a ConfigError naming the file, the line, the key path (components by
name where the file gives one) and what was expected versus what was found.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal, NamedTuple, Union, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from devloop.errors import ConfigError

DEFAULT_PROFILE = "kubeless"

# Docker's reference grammar (distribution/reference): lowercase path components separated by
# '/', each made of alphanumerics joined by '.', '_', '__' or dashes; an optional registry host
# (with a dot or a port, or "localhost") in front.
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_HOST = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?)"
_REPO = rf"(?:{_HOST}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
REPO_RE = re.compile(rf"^{_REPO}$")
IMAGE_REF_RE = re.compile(rf"^(?P<repo>{_REPO})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$")

_DNS_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
DNS_LABEL_RE = re.compile(rf"^{_DNS_LABEL}$")
# A cleanup entry is `plural.group`, as kubectl accepts it: the group has at least one dot-free
# label, e.g. functions.kubeless.io -> plural "functions", group "kubeless.io".
RESOURCE_RE = re.compile(rf"^(?P<plural>{_DNS_LABEL})\.(?P<group>{_DNS_LABEL}(?:\.{_DNS_LABEL})*)$")
# minikube's own rule (config.ProfileNameValid): dot-separated labels of letters, digits and
# inner hyphens, at least two characters; anything else makes `minikube start` exit 14.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
MINIKUBE_PROFILE_RE = re.compile(rf"^(?:{_LABEL}\.)*{_LABEL}$")
K8S_VERSION_RE = re.compile(r"^v?\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$")
MEMORY_RE = re.compile(r"^\d+(?:\.\d+)?\s*(?:b|k|kb|m|mb|g|gb|t|tb)?$", re.IGNORECASE)
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ImageRef(NamedTuple):
    """A parsed image reference; `repo` is normalised (docker.io/ and library/ dropped)."""

    repo: str
    tag: str | None
    digest: str | None

    def __str__(self) -> str:
        text = self.repo
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def normalize_repo(repo: str) -> str:
    """`docker.io/library/busybox` and `busybox` name the same repository; compare them equal."""
    for prefix in ("docker.io/", "index.docker.io/", "registry-1.docker.io/"):
        if repo.startswith(prefix):
            repo = repo[len(prefix):]
            if repo.startswith("library/") and repo.count("/") == 1:
                repo = repo[len("library/"):]
            break
    return repo


def parse_image_ref(text: str) -> ImageRef | None:
    """Parse `repo[:tag][@digest]`; None when the text is not an image reference."""
    if not isinstance(text, str):
        return None
    m = IMAGE_REF_RE.match(text.strip())
    if not m:
        return None
    return ImageRef(normalize_repo(m["repo"]), m["tag"], m["digest"])


def _relative_path(value: str, what: str) -> str:
    """A path inside the workspace: relative, no `..` climbing out of it."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a non-empty relative path for {what}, found {value!r}")
    if value.startswith("/") or value.startswith("~") or re.match(r"^[A-Za-z]:[\\/]", value):
        raise ValueError(f"expected a path relative to the workspace for {what}, found absolute path {value!r}")
    depth = 0
    for part in PurePosixPath(value).parts:
        if part == "..":
            depth -= 1
        elif part not in (".", ""):
            depth += 1
        if depth < 0:
            raise ValueError(f"expected {what} to stay inside the workspace, found {value!r} (climbs out with '..')")
    return value


def _check_ignore_patterns(patterns: list[str]) -> list[str]:
    import pathspec  # imported here: profile loading for `--help` paths should stay light

    for pattern in patterns:
        try:
            pathspec.GitIgnoreSpec.from_lines([pattern])
        except Exception as exc:  # pathspec raises several types for bad patterns
            raise ValueError(f"expected a gitignore pattern, found {pattern!r} ({exc})") from None
    return patterns


def _check_resource(v: str) -> str:
    if not RESOURCE_RE.match(v):
        raise ValueError(f"expected a resource as plural.group like 'functions.kubeless.io', found {v!r}")
    return v


def _check_image_ref(v: str) -> str:
    if parse_image_ref(v) is None:
        raise ValueError(f"expected an image reference like 'kubeless/function-controller' or 'repo:tag', found {v!r}")
    return v


def _check_addon(v: str) -> str:
    if not re.match(r"^[a-z0-9][a-z0-9-]*$", v):
        raise ValueError(f"expected a minikube addon name such as 'ingress', found {v!r}")
    return v


def _check_pattern(v: str) -> str:
    _check_ignore_patterns([v])
    return v


ResourceName = Annotated[str, AfterValidator(_check_resource)]
ImageRefText = Annotated[str, AfterValidator(_check_image_ref)]
AddonName = Annotated[str, AfterValidator(_check_addon)]
IgnorePattern = Annotated[str, AfterValidator(_check_pattern)]
InputPath = Annotated[str, AfterValidator(lambda v: _relative_path(v, "an input"))]
JpathDir = Annotated[str, AfterValidator(lambda v: _relative_path(v, "a jpath directory"))]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, validate_default=True)


class Cluster(_Strict):
    """How minikube is started; the minikube profile name is also the kube context name."""

    profile: str
    driver: str = "docker"
    kubernetes_version: str | None = None
    cpus: int | Literal["max", "no-limit"] | None = None
    memory: str | None = None
    addons: list[AddonName] = Field(default_factory=list)
    # minikube >= 1.37 refuses Kubernetes older than v1.28 (exit 106, K8S_OLD_UNSUPPORTED) unless
    # `--force`; a profile pinning an old version must say it accepts that.
    allow_unsupported_kubernetes: bool = False
    extra_start_args: list[str] = Field(default_factory=list)

    @field_validator("profile")
    @classmethod
    def _profile_name(cls, v: str) -> str:
        if not MINIKUBE_PROFILE_RE.match(v) or len(v) < 2:
            raise ValueError(
                "expected a minikube profile name (at least 2 characters: letters, digits, '-' and '.', "
                f"not starting or ending with '-' or '.'), found {v!r}"
            )
        return v

    @field_validator("driver")
    @classmethod
    def _driver(cls, v: str) -> str:
        if not re.match(r"^[a-z0-9][a-z0-9-]*$", v):
            raise ValueError(f"expected a minikube driver name such as 'docker', found {v!r}")
        return v

    @field_validator("kubernetes_version", mode="before")
    @classmethod
    def _k8s_version(cls, v: Any) -> Any:
        if v is None:
            return v
        if isinstance(v, (int, float)):
            raise ValueError(f"expected a version string like 'v1.21.14' (quote it in YAML), found number {v!r}")
        if not isinstance(v, str) or not K8S_VERSION_RE.match(v):
            raise ValueError(f"expected a Kubernetes version like 'v1.21.14', found {v!r}")
        return v if v.startswith("v") else f"v{v}"

    @field_validator("cpus")
    @classmethod
    def _cpus(cls, v: Any) -> Any:
        if isinstance(v, int) and v < 1:
            raise ValueError(f"expected at least 1 CPU, found {v}")
        return v

    @field_validator("memory", mode="before")
    @classmethod
    def _memory(cls, v: Any) -> Any:
        if v is None:
            return v
        if isinstance(v, bool):
            raise ValueError(f"expected a memory size like '8g' or '8192mb', found {v!r}")
        if isinstance(v, int):
            return f"{v}mb"  # minikube reads a bare number as megabytes
        if not isinstance(v, str) or not (MEMORY_RE.match(v) or v in ("max", "no-limit")):
            raise ValueError(f"expected a memory size like '8g', '8192mb', 'max' or 'no-limit', found {v!r}")
        return v


class Component(_Strict):
    """One image: how it is built, from which files, and which manifest references it replaces."""

    name: str
    dir: str
    build: str
    image: str
    replaces: list[ImageRefText] = Field(default_factory=list)
    inputs: list[InputPath] = Field(default_factory=lambda: ["."], min_length=1)
    ignore: list[IgnorePattern] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not DNS_LABEL_RE.match(v):
            raise ValueError(f"expected a lowercase name of letters, digits and '-' (like 'function-controller'), found {v!r}")
        return v

    @field_validator("dir")
    @classmethod
    def _dir(cls, v: str) -> str:
        return _relative_path(v, "the component directory")

    @field_validator("build")
    @classmethod
    def _build(cls, v: str) -> str:
        if "{image}" not in v:
            raise ValueError(
                f"expected the build command to contain the placeholder {{image}} (the tag devloop chooses), found {v!r}"
            )
        return v

    @field_validator("image")
    @classmethod
    def _image(cls, v: str) -> str:
        if "@" in v or ":" in v.rsplit("/", 1)[-1]:
            raise ValueError(
                f"expected an image repository without tag or digest (devloop picks the tag), found {v!r}"
            )
        if not REPO_RE.match(v):
            raise ValueError(
                f"expected a valid docker repository name (lowercase letters, digits, '.', '_', '-', '/'), found {v!r}"
            )
        return v

    @field_validator("replaces", mode="before")
    @classmethod
    def _replaces(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v  # one image is the common case; allow it bare

    @field_validator("env")
    @classmethod
    def _env(cls, v: dict[str, str]) -> dict[str, str]:
        for key in v:
            if not ENV_NAME_RE.match(key):
                raise ValueError(f"expected environment variable names ([A-Za-z_][A-Za-z0-9_]*), found {key!r}")
        return v

    def build_command(self, tag: str) -> str:
        """The shell command with `{image}` replaced; the tag is quoted for the shell."""
        import shlex

        return self.build.replace("{image}", shlex.quote(tag))

    def replace_refs(self) -> list[ImageRef]:
        return [ref for ref in (parse_image_ref(r) for r in self.replaces) if ref is not None]

    def matches(self, image: str) -> bool:
        """True when `image` is one of the references this component's build replaces.

        A `replaces` entry without tag or digest matches its repository with any tag or digest;
        an entry with a tag (or digest) matches only that tag (or digest). No tag means `latest`.
        """
        ref = parse_image_ref(image)
        if ref is None:
            return False
        for want in self.replace_refs():
            if want.repo != ref.repo:
                continue
            if want.tag is None and want.digest is None:
                return True
            if want.digest is not None and want.digest != ref.digest:
                continue
            if want.tag is not None and want.tag != (ref.tag or ("latest" if ref.digest is None else None)):
                continue
            return True
        return False

    def path(self, workspace: Path) -> Path:
        return Path(workspace) / self.dir


class Manifest(_Strict):
    """A manifest source: a YAML file, or a jsonnet file rendered with gojsonnet.

    In the profile a plain string is a YAML path; `{jsonnet: ..., jpath: [...], ext_vars: {...}}`
    is jsonnet, with jpath dirs searched in order like KUBECFG_JPATH. Paths are relative to the
    workspace.
    """

    yaml: str | None = None
    jsonnet: str | None = None
    jpath: list[JpathDir] = Field(default_factory=list)
    ext_vars: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, v: Any) -> Any:
        if isinstance(v, str):
            return {"yaml": v}
        if v is not None and not isinstance(v, dict):
            raise ValueError(
                f"expected a YAML path (string) or a mapping {{jsonnet: path, jpath: [dirs]}}, found {_type_name(v)} {v!r}"
            )
        return v

    @model_validator(mode="after")
    def _one_kind(self) -> Manifest:
        if (self.yaml is None) == (self.jsonnet is None):
            raise ValueError("expected exactly one of 'yaml' (a path string) or 'jsonnet'")
        if self.yaml is not None and (self.jpath or self.ext_vars):
            raise ValueError("'jpath' and 'ext_vars' only apply to a jsonnet manifest")
        _relative_path(self.yaml or self.jsonnet or "", "a manifest")
        return self

    @property
    def path(self) -> str:
        return self.yaml if self.yaml is not None else self.jsonnet  # type: ignore[return-value]

    @property
    def kind(self) -> str:
        return "yaml" if self.yaml is not None else "jsonnet"


class Timeouts(_Strict):
    """Deadlines in seconds for every wait devloop does."""

    cluster_start: float = Field(600, gt=0)
    addons: float = Field(300, gt=0)
    build: float = Field(1800, gt=0)
    cleanup_grace: float = Field(10, ge=0)  # time controllers get to remove their finalizers
    cleanup: float = Field(60, gt=0)  # after finalizers are stripped, until the objects are gone
    delete: float = Field(120, gt=0)
    crd_established: float = Field(60, gt=0)
    rollout: float = Field(180, gt=0)


class Profile(_Strict):
    name: str
    cluster: Cluster
    namespace: str
    components: list[Component] = Field(default_factory=list)
    manifests: list[Manifest] = Field(min_length=1)
    cleanup: list[ResourceName] = Field(default_factory=list)
    ignore: list[IgnorePattern] = Field(default_factory=list)
    timeouts: Timeouts = Field(default_factory=Timeouts)

    _source: Path | None = PrivateAttr(default=None)

    @property
    def source(self) -> Path | None:
        """The file this profile was loaded from (None when built in code)."""
        return self._source

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", v):
            raise ValueError(f"expected a profile name of letters, digits, '.', '_', '-', found {v!r}")
        return v

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, v: str) -> str:
        if not DNS_LABEL_RE.match(v) or len(v) > 63:
            raise ValueError(f"expected a Kubernetes namespace name (lowercase DNS label, ≤ 63 chars), found {v!r}")
        return v

    def problems(self) -> list[tuple[tuple[Any, ...], str]]:
        """Checks across items (loc, message); pydantic validates each item on its own."""
        out: list[tuple[tuple[Any, ...], str]] = []
        names: dict[str, int] = {}
        images: dict[str, str] = {}
        for i, c in enumerate(self.components):
            if c.name in names:
                out.append((("components", i, "name"),
                            f"expected unique component names, found {c.name!r} again (first at components[{names[c.name]}])"))
            else:
                names[c.name] = i
            if c.image in images and images[c.image] != c.name:
                out.append((("components", i, "image"),
                            f"expected each component to build its own image, found {c.image!r} also in component {images[c.image]!r}"))
            images.setdefault(c.image, c.name)
        owners: dict[str, str] = {}
        for i, c in enumerate(self.components):
            for j, ref in enumerate(c.replace_refs()):
                key = str(ref)
                if key in owners and owners[key] != c.name:
                    out.append((("components", i, "replaces", j),
                                f"expected each image reference to be replaced by one component, found {key!r} also in component {owners[key]!r}"))
                owners.setdefault(key, c.name)
        return out

    def component(self, name: str) -> Component:
        for c in self.components:
            if c.name == name:
                return c
        known = ", ".join(c.name for c in self.components) or "none"
        raise ConfigError(
            f"profile {self.name!r} has no component {name!r}; its components are: {known}",
            hint=f"defined in {self.source}" if self.source else None,
        )

    def cleanup_resources(self) -> list[tuple[str, str]]:
        """The cleanup entries as (plural, group) pairs."""
        out = []
        for entry in self.cleanup:
            m = RESOURCE_RE.match(entry)
            assert m is not None  # validated
            out.append((m["plural"], m["group"]))
        return out


# --------------------------------------------------------------------------- loading


class ProfileInfo(NamedTuple):
    name: str
    path: Path
    origin: str  # "project" (./profiles), "user" (config dir) or "bundled"


def user_profiles_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "devloop" / "profiles"


def bundled_profiles_dir() -> Path:
    # Installed as package data (pyproject: devloop = ["profiles/*.yaml"]); a real directory both
    # for editable installs and wheels, so a Path is fine.
    return Path(str(resources.files("devloop") / "profiles"))


def _search_dirs(cwd: Path) -> list[tuple[Path, str]]:
    return [
        (Path(cwd).absolute() / "profiles", "project"),
        (user_profiles_dir(), "user"),
        (bundled_profiles_dir(), "bundled"),
    ]


def list_profiles(cwd: Path) -> list[ProfileInfo]:
    """Every profile name visible from `cwd`, with the file that wins for it (lookup order)."""
    found: dict[str, ProfileInfo] = {}
    for directory, origin in _search_dirs(cwd):
        if not directory.is_dir():
            continue
        for path in sorted(directory.iterdir()):
            if path.suffix in (".yaml", ".yml") and path.is_file() and path.stem not in found:
                found[path.stem] = ProfileInfo(path.stem, path, origin)
    return sorted(found.values(), key=lambda p: p.name)


def _looks_like_path(ref: str) -> bool:
    return "/" in ref or os.sep in ref or ref.endswith((".yaml", ".yml")) or ref.startswith((".", "~"))


def resolve_profile(ref: str | None, *, cwd: Path) -> Path:
    """The file a `--profile` value names (see load_profile for the lookup order)."""
    ref = ref or DEFAULT_PROFILE
    cwd = Path(cwd)
    if _looks_like_path(ref):
        path = Path(ref).expanduser()
        if not path.is_absolute():
            path = cwd / path
        if not path.is_file():
            what = "is a directory, not a file" if path.is_dir() else "does not exist"
            raise ConfigError(f"profile file {path} {what}", hint="pass a profile name or an existing YAML file")
        return path
    tried = []
    for directory, _origin in _search_dirs(cwd):
        for suffix in (".yaml", ".yml"):
            candidate = directory / f"{ref}{suffix}"
            if candidate.is_file():
                return candidate
        tried.append(str(directory / f"{ref}.yaml"))
    available = ", ".join(p.name for p in list_profiles(cwd)) or "none"
    raise ConfigError(
        f"no profile named {ref!r}; looked in: " + ", ".join(tried) + f"; available profiles: {available}",
        hint="`devloop profiles list` shows them; --profile also accepts a path to a YAML file",
    )


def load_profile(ref: str | None = None, *, cwd: Path) -> Profile:
    """Load and validate a profile.

    `ref` is a path (if it looks like one: contains '/', ends in .yaml/.yml) or a NAME looked up
    as ./profiles/NAME.yaml (relative to cwd), then $XDG_CONFIG_HOME/devloop/profiles/NAME.yaml
    (default ~/.config), then the profiles bundled with devloop. Default NAME: "kubeless".
    """
    path = resolve_profile(ref, cwd=cwd)
    return load_profile_file(path)


def load_profile_file(path: Path) -> Profile:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read profile: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: profile is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return parse_profile(text, path)


def parse_profile(text: str, path: Path) -> Profile:
    node, data = _load_yaml(text, path)
    if data is None:
        raise ConfigError(f"{path}: profile is empty; expected a mapping with keys name, cluster, namespace, components, manifests")
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}:{node.start_mark.line + 1}: expected the profile to be a mapping of keys, found {_type_name(data)}"
        )
    data = dict(data)
    data.setdefault("name", path.stem)
    try:
        profile = Profile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc.errors(include_url=False), data, node, path), hint=_hint_for(exc)) from None
    problems = profile.problems()
    if problems:
        errors = [{"loc": loc, "type": "value_error", "msg": msg, "input": None} for loc, msg in problems]
        raise ConfigError(_format_errors(errors, data, node, path))
    profile._source = path
    return profile


# --------------------------------------------------------------------------- YAML with positions


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys: PyYAML would silently keep the last one."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            first = seen[key].start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first defined on line {first.line + 1})", key_node.start_mark
            )
        seen[key] = key_node
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def yaml_error_text(exc: yaml.YAMLError, path: Path) -> str:
    """`FILE:LINE:COL: problem` for a YAML error (1-based line and column)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
    detail = f"{problem}" + (f" ({context})" if context and context not in problem else "")
    return f"{where}: invalid YAML: {detail}"


def _load_yaml(text: str, path: Path) -> tuple[yaml.Node | None, Any]:
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


def _type_name(value: Any) -> str:
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


def _model_for(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class whose fields are at `loc` (to list valid keys for a typo)."""
    current: Any = Profile
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
        # unwrap Optional[...] / Union with one model member
        if get_origin(current) is Union:
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


def _error_line(err: dict[str, Any], data: Any) -> str:
    loc = tuple(err["loc"])
    kind = err["type"]
    found = err.get("input")
    if kind == "extra_forbidden":
        model = _model_for(loc[:-1])
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
                msg = msg[len(prefix):]
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
        expected = msg[len("Input should be "):] if msg.startswith("Input should be ") else msg
    return f"expected {expected}, found {_type_name(found)} {_show(found)}"


def _clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    # Unions report which member failed ("int", "literal['max','no-limit']"); that is noise to a
    # user who wrote a YAML key.
    out = []
    for part in loc:
        if isinstance(part, str) and (part in ("int", "str", "float", "bool", "list", "dict", "none")
                                      or part.startswith(("literal[", "function-", "list[", "dict["))):
            continue
        out.append(part)
    return tuple(out)


def _format_errors(errors: list[Any], data: Any, root: yaml.Node | None, path: Path) -> str:
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
        lines.append(f"{path}{line}: {where}: {_error_line(err, data)}")
    if len(lines) == 1:
        return lines[0]
    return f"{path}: {len(lines)} problems in the profile:\n" + "\n".join("  " + ln for ln in lines)


def _hint_for(exc: ValidationError) -> str | None:
    if any(e["type"] == "extra_forbidden" for e in exc.errors(include_url=False)):
        return "unknown keys are errors, so a typo cannot silently change what devloop does"
    return None
