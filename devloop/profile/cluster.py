"""The profile's `cluster:` section: which minikube profile, driver, Kubernetes version, resources, addons and
feature gates the loop runs on."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import (
    Field,
    StrictBool,
    field_validator,
)

from devloop.profile.checks import (
    FEATURE_GATE_RE,
    K8S_VERSION_RE,
    MEMORY_RE,
    MINIKUBE_PROFILE_RE,
    AddonName,
    StrictModel,
)


class Cluster(StrictModel):
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
    # Always passed as --container-runtime: left out, minikube's default moves to containerd in v1.39.
    container_runtime: Literal["docker", "containerd", "cri-o"] = "docker"
    # How built images reach the cluster: docker-env builds straight into the node's dockerd (docker runtime,
    # one node); load builds with your own Docker, then `minikube image load`s each image. auto picks
    # docker-env where it works, else load.
    image_transfer: Literal["auto", "docker-env", "load"] = "auto"
    # Kubernetes < 1.24 talks to the node's Docker through dockershim at API 1.41; Docker >= 29 (kicbase
    # of minikube >= 1.38) refuses below 1.44 unless its DOCKER_MIN_API_VERSION is lowered, which devloop
    # does with `--docker-env DOCKER_MIN_API_VERSION=1.24` on a new cluster. false: never.
    lower_docker_min_api: bool = True
    extra_start_args: list[str] = Field(default_factory=list)
    # Passed as one `--feature-gates=A=false,B=true` to `minikube start`, which gives it to the API server,
    # controller-manager, scheduler and kubelet; a changed map is applied to a running cluster by the next
    # `devloop up` (minikube sees kubeadm config drift and reconfigures the control plane).
    feature_gates: dict[str, StrictBool] = Field(default_factory=dict)

    @field_validator("feature_gates", mode="before")
    @classmethod
    def _feature_gates(cls, v: Any) -> Any:
        if v is None:
            return {}
        if isinstance(v, dict):
            for name in v:
                if not isinstance(name, str) or not FEATURE_GATE_RE.match(name):
                    raise ValueError(f"expected feature gate names in CamelCase like 'ServerSideApply', found {name!r}")
        return v  # values: StrictBool, so `"false"` or `0` is refused with the line of the value

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
