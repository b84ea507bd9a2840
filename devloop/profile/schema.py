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

RUNTIME_PHASES = ("runtime", "installation", "compilation")  # kubeless pkg/langruntime/langruntime.go Phase*


class RuntimeConfig(StrictModel):
    """Where the controller reads its runtimes: a ConfigMap key holding a JSON list of runtimes, each
    `{ID, versions: [{version, images: [{phase, image, ...}]}]}` (Kubeless's `runtime-images`)."""

    namespace: str = Field(default="kubeless", description="The ConfigMap's namespace.")
    name: str = Field(default="kubeless-config", description="The ConfigMap's name.")
    key: str = Field(default="runtime-images", description="The `data` key holding the runtimes' JSON.")

    @field_validator("namespace", "name")
    @classmethod
    def _names(cls, v: str) -> str:
        if not re.match(r"^[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?$", v) or len(v) > 253:
            raise ValueError(f"expected a Kubernetes object name (lowercase letters, digits, '-', '.'), found {v!r}")
        return v

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        if not re.match(r"^[-._a-zA-Z0-9]+$", v):
            raise ValueError(f"expected a ConfigMap key (letters, digits, '-', '_', '.'), found {v!r}")
        return v


class RuntimeController(StrictModel):
    """The Deployment whose controller reads the runtimes at start only (Kubeless's function controller,
    function_controller.go:113): devloop restarts it when a runtime image changed."""

    namespace: str = Field(default="kubeless", description="The Deployment's namespace.")
    name: str = Field(default="kubeless-controller-manager", description="The Deployment's name.")

    @field_validator("namespace", "name")
    @classmethod
    def _names(cls, v: str) -> str:
        if not DNS_LABEL_RE.match(v) or len(v) > 63:
            raise ValueError(f"expected a Kubernetes name (lowercase DNS label, ≤ 63 chars), found {v!r}")
        return v


class Runtime(StrictModel):
    """The component is a function runtime: its built image goes into the controller's runtime list at the
    entry `id` + `version` + `phase` (Kubeless: kubeless-config `runtime-images`), the controller is restarted
    and devloop waits until the Functions of that runtime run the new image."""

    id: str = Field(description="The runtime's `ID` in the list, like `python`.")
    version: str = Field(
        description='The version within it, quoted, like `"3.8"`: Functions of runtime `python3.8` use it.'
    )
    phase: str = Field(
        default="runtime",
        description="Which of the version's images the build replaces: `runtime` (the function's container), "
        "`installation` (the init container installing a Function's dependencies) or `compilation`.",
    )
    config: RuntimeConfig = Field(
        default_factory=RuntimeConfig, description="The ConfigMap key holding the runtimes (Kubeless's defaults)."
    )
    controller: RuntimeController = Field(
        default_factory=RuntimeController,
        description="The Deployment restarted when the image changed (Kubeless's defaults).",
    )
    functions: ResourceName = Field(
        default="functions.kubeless.io",
        description="The custom resource whose objects use the runtime (`spec.runtime` is `<id><version>`); each "
        "one's Deployment has its name, in its namespace.",
    )

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not re.match(r"^[A-Za-z_-]+$", v):
            # langruntime.go GetRuntimeInfo: the ID is the `^[a-zA-Z_-]+` prefix of a Function's runtime
            raise ValueError(f"expected a runtime ID of letters, '_' and '-' (like 'python'), found {v!r}")
        return v

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> Any:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            raise ValueError(f'expected the version as a quoted string (like "3.8"), found the number {v!r}')
        if isinstance(v, str) and not re.match(r"^[0-9.]+$", v):
            # langruntime.go getVersionFromRuntime: the version is the `[0-9.]+$` suffix of a Function's runtime
            raise ValueError(f"expected a version of digits and dots (like '3.8'), found {v!r}")
        return v

    @field_validator("phase")
    @classmethod
    def _phase(cls, v: str) -> str:
        if v not in RUNTIME_PHASES:
            raise ValueError(f"expected one of {', '.join(RUNTIME_PHASES)}, found {v!r}")
        return v

    @property
    def runtime_name(self) -> str:
        """What a Function's `spec.runtime` says, like `python3.8`."""
        return f"{self.id}{self.version}"

    def describe(self) -> str:
        return f"{self.runtime_name} {self.phase} image"


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
    runtime: Runtime | None = Field(
        default=None,
        description="The component is a function runtime: its image is written into the controller's runtime "
        "list (Kubeless's kubeless-config `runtime-images`) at this entry, and the Functions using it are moved "
        "to it (see Runtime).",
    )

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


# -- verify: checks run after every deploy (devloop.verify runs them) ----------------------------
VERIFY_PLACEHOLDERS = ("node_ip",)


def _regex(v: str | None) -> str | None:
    if v is None:
        return v
    try:
        re.compile(v)
    except re.error as exc:
        raise ValueError(f"expected a regular expression (Python `re`), found {v!r} ({exc})") from None
    return v


def _verify_path(v: str | None, what: str) -> str | None:
    return None if v is None else _relative_path(v, what)


class VerifyExpect(StrictModel):
    """What a `call` or `http` check's answer must look like; the check retries until it does or its timeout."""

    status: int | None = Field(
        default=None, ge=100, le=599, description="The HTTP status the answer must have; unset: any 2xx."
    )
    body: str | None = Field(
        default=None,
        description="A regular expression (Python `re`, searched anywhere) the answer's body must match, "
        "like `hello world`; unset: any body.",
    )

    @field_validator("body")
    @classmethod
    def _body(cls, v: str | None) -> str | None:
        return _regex(v)

    def describe(self) -> str:
        want = [f"HTTP {self.status}" if self.status is not None else "HTTP 2xx"]
        if self.body is not None:
            want.append(f"body ~ /{self.body}/")
        return ", ".join(want)


class VerifyCall(StrictModel):
    """A GET through the API server's service proxy, `services/<service>:<port>/proxy/<path>`: what
    `kubeless function call` does, with no DNS, ingress or port-forward needed."""

    fixture: str | None = Field(
        default=None,
        description="A YAML manifest applied before the call (a Kubeless Function, say): relative to the workspace, "
        "or, when the workspace has no such file, to the profile's directory. Re-applied every time; a change "
        "rolls its pods.",
    )
    namespace: str | None = Field(
        default=None,
        description="The Service's namespace (and the fixture's, where it names none); unset: the "
        "profile's `namespace`.",
    )
    service: str = Field(description="The Service to call (a Kubeless Function's Service has the Function's name).")
    port: str | int | None = Field(
        default=None,
        description="The Service port, by name (`http-function-port`) or number; unset: its first port.",
    )
    path: str = Field(default="/", description="The path after `/proxy`, with any query string.")
    pods: str | None = Field(
        default=None,
        description="A label selector for the pods that must be ready before the call and whose log tail a "
        "failure shows; unset: the Service's selector.",
    )
    expect: VerifyExpect = Field(default_factory=VerifyExpect, description="What the answer must look like.")

    @field_validator("fixture")
    @classmethod
    def _fixture(cls, v: str | None) -> str | None:
        return _verify_path(v, "a verify fixture")

    @field_validator("namespace", "service")
    @classmethod
    def _names(cls, v: str | None) -> str | None:
        if v is not None and (not DNS_LABEL_RE.match(v) or len(v) > 63):
            raise ValueError(f"expected a Kubernetes name (lowercase DNS label, ≤ 63 chars), found {v!r}")
        return v

    @field_validator("port")
    @classmethod
    def _port(cls, v: str | int | None) -> str | int | None:
        if isinstance(v, int) and not 0 < v < 65536:
            raise ValueError(f"expected a port number between 1 and 65535 or a port name, found {v!r}")
        if isinstance(v, str) and not DNS_LABEL_RE.match(v):
            raise ValueError(f"expected a port name (lowercase DNS label, like http-function-port), found {v!r}")
        return v

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError(f"expected a path starting with '/', found {v!r}")
        return v


class VerifyHttp(StrictModel):
    """An HTTP GET from this machine to an address of the cluster, such as an Ingress at the node."""

    url: str = Field(
        description="The URL to GET, `http://` or `https://` (certificates are not verified); `{node_ip}` is "
        "replaced by the minikube node's InternalIP, like `http://{node_ip}/hello`."
    )
    host: str | None = Field(default=None, description="The Host header to send (an Ingress rule's host).")
    namespace: str | None = Field(default=None, description="Where `pods` are; unset: the profile's `namespace`.")
    pods: str | None = Field(
        default=None, description="A label selector for the pods whose log tail a failure shows; unset: none."
    )
    expect: VerifyExpect = Field(default_factory=VerifyExpect, description="What the answer must look like.")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.match(r"^https?://[^/\s]+", v):
            raise ValueError(f"expected an http:// or https:// URL (like http://{{node_ip}}/hello), found {v!r}")
        for name in re.findall(r"\{([^{}]*)\}", v):
            if name not in VERIFY_PLACEHOLDERS:
                raise ValueError(
                    f"expected only the placeholders {', '.join('{' + p + '}' for p in VERIFY_PLACEHOLDERS)} in the "
                    f"URL, found {{{name}}} in {v!r}"
                )
        return v


class VerifyJob(StrictModel):
    """A Job that must succeed: deleted if it exists, created, then waited for."""

    manifest: str = Field(
        description="A YAML file holding the one Job: relative to the workspace, or, when the workspace has no "
        "such file, to the profile's directory."
    )
    namespace: str | None = Field(
        default=None, description="The Job's namespace where its manifest names none; unset: the profile's."
    )

    @field_validator("manifest")
    @classmethod
    def _manifest(cls, v: str) -> str:
        return _relative_path(v, "a verify Job manifest")


class VerifyCheck(StrictModel):
    """One check run after every deploy (`up`, each `watch` cycle and live update): exactly one of `call`,
    `http` or `job`. A failing check shows its pods' log tail; `up` then exits 1, `watch` goes on and the next
    save runs the checks again."""

    name: str = Field(description="The check's name (a lowercase DNS label), shown in its step line `verify NAME`.")
    timeout: float = Field(
        default=120,
        gt=0,
        description="Seconds the whole check may take (applying, waiting for pods, retrying the request) before "
        "it fails.",
    )
    log_lines: int = Field(default=20, ge=0, description="Lines of each container's log a failure shows.")
    call: VerifyCall | None = Field(default=None, description="A GET through the API server's service proxy.")
    http: VerifyHttp | None = Field(default=None, description="A GET from this machine, e.g. through the ingress.")
    job: VerifyJob | None = Field(default=None, description="A Job that must succeed.")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not DNS_LABEL_RE.match(v):
            raise ValueError(f"expected a lowercase name of letters, digits and '-' (like 'hello'), found {v!r}")
        return v

    @model_validator(mode="after")
    def _one_kind(self) -> VerifyCheck:
        given = [k for k in ("call", "http", "job") if getattr(self, k) is not None]
        if len(given) != 1:
            found = ", ".join(given) if given else "none"
            raise ValueError(f"expected exactly one of 'call', 'http' or 'job', found {found}")
        return self

    @property
    def kind(self) -> str:
        return "call" if self.call is not None else "http" if self.http is not None else "job"


class Profile(StrictModel):
    name: str
    cluster: Cluster
    namespace: str
    components: list[Component] = Field(default_factory=list)
    manifests: list[Manifest] = Field(min_length=1)
    cleanup: list[ResourceName] = Field(default_factory=list)
    ignore: list[IgnorePattern] = Field(default_factory=list)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    verify: list[VerifyCheck] = Field(
        default_factory=list,
        description="Checks run after every deploy: in `up` after the rollout, in each `watch` cycle and after "
        "each live update (see VerifyCheck).",
    )

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
        entries: dict[tuple[str, ...], str] = {}
        for i, c in enumerate(self.components):
            if c.runtime is None:
                continue
            rt = c.runtime
            entry = (rt.config.namespace, rt.config.name, rt.config.key, rt.id, rt.version, rt.phase)
            if entry in entries:
                out.append(
                    (
                        ("components", i, "runtime"),
                        f"expected each runtime image to come from one component, found {rt.describe()} also in "
                        f"component {entries[entry]!r}",
                    )
                )
            entries.setdefault(entry, c.name)
        checks: dict[str, int] = {}
        for i, check in enumerate(self.verify):
            if check.name in checks:
                out.append(
                    (
                        ("verify", i, "name"),
                        f"expected unique check names, found {check.name!r} again (first at verify[{checks[check.name]}])",
                    )
                )
            checks.setdefault(check.name, i)
        return out

    def component(self, name: str) -> Component:
        return self.select_components([name])[0]

    def where(self, loc: tuple[Any, ...]) -> str:
        """`FILE:LINE: key.path` of a key in the profile's file (`key.path` alone for a profile built in code),
        for errors found after loading, such as a runtime entry the manifests lack."""
        from devloop.profile.errors import _node_at, key_path, load_yaml

        if self._source is None:
            return key_path(loc, self.model_dump())
        try:
            node, data = load_yaml(self._source.read_text(encoding="utf-8"), self._source)
        except (OSError, UnicodeDecodeError, ConfigError):
            return f"{self._source}: {key_path(loc, self.model_dump())}"
        found = _node_at(node, loc)
        line = f":{found.start_mark.line + 1}" if found is not None else ""
        return f"{self._source}{line}: {key_path(loc, data)}"

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
