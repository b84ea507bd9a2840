"""The profile schema: what a project's loop is made of (cluster, components, manifests, cleanup).

Pydantic models with unknown keys forbidden; every validator's message says what was expected
and what was found (devloop.profile.errors adds the file, line and key path). Loading and the
lookup order live in devloop.profile.lookup.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import (
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from devloop.base.errors import ConfigError
from devloop.liveupdate.schema import LiveUpdate
from devloop.profile.checks import (
    DNS_LABEL_RE,
    ENV_NAME_RE,
    RESOURCE_RE,
    IgnorePattern,
    ImageRefText,
    InputPath,
    JpathDir,
    ResourceName,
    StrictModel,
    _relative_path,
)
from devloop.profile.cluster import Cluster
from devloop.profile.errors import type_name
from devloop.profile.imageref import REPO_RE, ImageRef, parse_image_ref


class Component(StrictModel):
    """One image: how it is built, from which files, and which manifest references it replaces."""

    name: str
    dir: str
    build: str
    image: str
    replaces: list[ImageRefText] = Field(default_factory=list)
    inputs: list[InputPath] = Field(default_factory=lambda: ["."], min_length=1)
    ignore: list[IgnorePattern] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    # Opt-in: a fast build whose output is copied into the running containers (devloop.liveupdate).
    live_update: LiveUpdate | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not DNS_LABEL_RE.match(v):
            raise ValueError(
                f"expected a lowercase name of letters, digits and '-' (like 'function-controller'), found {v!r}"
            )
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
            raise ValueError(f"expected an image repository without tag or digest (devloop picks the tag), found {v!r}")
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


class Manifest(StrictModel):
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
                f"expected a YAML path (string) or a mapping {{jsonnet: path, jpath: [dirs]}}, found {type_name(v)} {v!r}"
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


class Timeouts(StrictModel):
    """Deadlines in seconds for every wait devloop does."""

    # Never below minikube's own give-up times (adapters/minikube.py), so minikube always says why first.
    cluster_start: float = Field(default=900, gt=0)
    addons: float = Field(default=540, gt=0)
    build: float = Field(default=1800, gt=0)
    cleanup_grace: float = Field(default=10, ge=0)  # time controllers get to remove their finalizers
    cleanup: float = Field(default=60, gt=0)  # after finalizers are stripped, until the objects are gone
    delete: float = Field(default=120, gt=0)
    crd_established: float = Field(default=60, gt=0)
    rollout: float = Field(default=180, gt=0)

    @field_validator("cluster_start", "addons")
    @classmethod
    def _not_before_minikube(cls, v: float, info: Any) -> float:
        floor = {"cluster_start": 900, "addons": 540}[info.field_name]
        if v < floor:
            raise ValueError(
                f"expected at least {floor} seconds, found {v:g}: minikube itself may work that long before it gives "
                "up and says why (a first start runs up to two 4-minute kubeadm inits; ingress retries 2 minutes "
                "and waits 6), and devloop must not kill it first"
            )
        return v


class Profile(StrictModel):
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
                out.append(
                    (
                        ("components", i, "name"),
                        f"expected unique component names, found {c.name!r} again (first at components[{names[c.name]}])",
                    )
                )
            else:
                names[c.name] = i
            if c.image in images and images[c.image] != c.name:
                out.append(
                    (
                        ("components", i, "image"),
                        f"expected each component to build its own image, found {c.image!r} also in component {images[c.image]!r}",
                    )
                )
            images.setdefault(c.image, c.name)
        for i, c in enumerate(self.components):
            if c.live_update is None:
                continue
            roots = [PurePosixPath(r).as_posix().strip("/") for r in c.inputs]
            for j, item in enumerate(c.live_update.inputs):
                rel = PurePosixPath(item).as_posix().strip("/")
                if not any(r in ("", ".") or rel == r or rel.startswith(r + "/") for r in roots):
                    out.append(
                        (
                            ("components", i, "live_update", "inputs", j),
                            f"expected a path inside the component's inputs ({', '.join(c.inputs)}), "
                            f"found {item!r}: a live update input must also be an image input",
                        )
                    )
        owners: dict[str, str] = {}
        for i, c in enumerate(self.components):
            for j, ref in enumerate(c.replace_refs()):
                key = str(ref)
                if key in owners and owners[key] != c.name:
                    out.append(
                        (
                            ("components", i, "replaces", j),
                            f"expected each image reference to be replaced by one component, found {key!r} also in component {owners[key]!r}",
                        )
                    )
                owners.setdefault(key, c.name)
        return out

    def component(self, name: str) -> Component:
        return self.select_components([name])[0]

    def select_components(self, names: Sequence[str] | None) -> list[Component]:
        """The named components in the order given; all of them when `names` is None or empty.

        The one "unknown component" error: every command that takes component names uses it.
        """
        if not names:
            return list(self.components)
        by_name = {c.name: c for c in self.components}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            known = ", ".join(by_name) or "none"
            which = "component" if len(unknown) == 1 else "components"
            close = [m for n in unknown for m in difflib.get_close_matches(n, list(by_name), n=1)]
            hints = [f"did you mean {', '.join(map(repr, close))}?"] if close else []
            hints += [f"defined in {self.source}"] if self.source else []
            raise ConfigError(
                f"profile {self.name!r} has no {which} {', '.join(map(repr, unknown))}; its components are: {known}",
                hint="; ".join(hints) or None,
            )
        return [by_name[n] for n in names]

    def cleanup_resources(self) -> list[tuple[str, str]]:
        """The cleanup entries as (plural, group) pairs."""
        out = []
        for entry in self.cleanup:
            m = RESOURCE_RE.match(entry)
            assert m is not None  # validated
            out.append((m["plural"], m["group"]))
        return out
