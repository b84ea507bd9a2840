"""Field checks the profile models share: the shapes Kubernetes, minikube and gitignore accept for names,
paths, patterns and image references, each failing with what was expected and what was found."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

from devloop.profile.imageref import parse_image_ref

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
# Kubernetes feature gate names (k8s.io/component-base/featuregate): CamelCase, e.g. ServerSideApply.
FEATURE_GATE_RE = re.compile(r"^[A-Z][A-Za-z0-9]*$")


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
        except Exception as exc:  # noqa: BLE001 -- pathspec raises several types for bad patterns
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


class StrictModel(BaseModel):
    """Unknown keys are errors (a typo must not be ignored), and defaults are validated like given values."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, validate_default=True)
