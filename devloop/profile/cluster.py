"""The profile's `cluster:` section: which minikube profile, driver, Kubernetes version, resources, addons and
feature gates the loop runs on."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    StrictBool,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from devloop.profile.checks import (
    FEATURE_GATE_RE,
    K8S_VERSION_RE,
    MEMORY_RE,
    MINIKUBE_PROFILE_RE,
    AddonName,
    StrictModel,
)

# The image names each addon devloop knows takes (minikube's assets/addons.go, the same from v1.28 to v1.38.1):
# minikube only warns about another name ("Ignoring unknown custom image") and uses its default, so a typo would
# pull from the registry an air-gapped user cannot reach. Other addons' names are minikube's to judge.
ADDON_IMAGE_NAMES: dict[str, tuple[str, ...]] = {
    "ingress": ("IngressController", "KubeWebhookCertgenCreate", "KubeWebhookCertgenPatch"),
}
_IMAGE_NAME_RE = re.compile(r"^[A-Z][A-Za-z0-9]*$")
# an image reference as minikube's template writes it after the registry: [host[:port]/]path[:tag][@digest];
# never `,` or `=`, which split minikube's `--images=Name=image,...` (assets/addons.go parseMapString)
_ADDON_IMAGE_RE = re.compile(
    r"^(?:[A-Za-z0-9.-]+(?::\d+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)
# a registry host[:port][/path][/], or "" (minikube's default for the image again)
_REGISTRY_RE = re.compile(r"^(?:[A-Za-z0-9.-]+(?::\d+)?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*/?)?$")


def _check_addon_image(v: str) -> str:
    if not _ADDON_IMAGE_RE.match(v):
        raise ValueError(
            "expected an image reference like 'local/ingress-nginx-controller:dev' or "
            f"'mirror.example:5000/ingress-nginx/controller:v1.14.3' (no ',' or '=' or spaces), found {v!r}"
        )
    return v


def _check_registry(v: str) -> str:
    if "://" in v or not _REGISTRY_RE.match(v):
        raise ValueError(
            f"expected a registry like 'mirror.example:5000' (no scheme), or '' for minikube's default, found {v!r}"
        )
    return v


AddonImage = Annotated[StrictStr, AfterValidator(_check_addon_image)]
AddonRegistry = Annotated[StrictStr, AfterValidator(_check_registry)]


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
    addon_images: dict[str, dict[str, AddonImage]] = Field(
        default_factory=dict,
        description="Images an addon of `addons` uses instead of minikube's, by minikube's image name: "
        "`{ingress: {IngressController: local/ingress-nginx-controller:dev, KubeWebhookCertgenCreate: ..., "
        "KubeWebhookCertgenPatch: ...}}` (ingress' three names are checked; `minikube addons images ADDON` lists "
        "any addon's). Passed as `minikube addons enable ADDON --images=Name=image,...`; the image is used as "
        "written, without minikube's registry (registry.k8s.io for ingress), so a local image must already be "
        "in the node (`minikube image load`). For air-gapped and mirrored clusters. minikube saves the override "
        "in the profile (CustomAddonImages); for ingress devloop enables the addon again when the saved one "
        "differs (minikube >= 1.30 then recreates the admission Jobs), and removing a name leaves minikube's "
        "saved image until `devloop reset`.",
    )
    addon_registries: dict[str, dict[str, AddonRegistry]] = Field(
        default_factory=dict,
        description="Registries an addon's images are pulled from instead of minikube's, by image name: "
        "`{ingress: {IngressController: mirror.example:5000}}` makes minikube use "
        "`mirror.example:5000/ingress-nginx/controller:<its tag>@<its digest>`. Passed as "
        "`--registries=Name=registry,...`. "
        "`''` asks for minikube's default again (it clears a registry saved by an earlier enable); an image "
        "named in `addon_images` without a registry here gets `''`, so a saved registry never prefixes it "
        "(minikube's `--image-repository` still would).",
    )

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

    @field_validator("addon_images", "addon_registries")
    @classmethod
    def _overrides_for_enabled_addons(cls, v: dict[str, dict[str, str]], info: ValidationInfo) -> Any:
        """Each addon named is one devloop enables, and ingress' image names are ingress'; the errors point at
        the addon's or the name's own line (a ValidationError's loc is appended to the field's)."""
        enabled = info.data.get("addons")
        problems: list[tuple[tuple[str, ...], str, str]] = []
        for addon, names in v.items():
            if enabled is not None and addon not in enabled:
                problems.append(
                    (
                        (addon,),
                        addon,
                        f"{addon!r} is not in cluster.addons: devloop passes {info.field_name} only to the addons "
                        f"it enables; add {addon!r} to cluster.addons or remove this entry",
                    )
                )
                continue
            known = ADDON_IMAGE_NAMES.get(addon)
            for name in names:
                if not _IMAGE_NAME_RE.match(name):
                    text = (
                        f"expected an addon image name as minikube spells it, like 'IngressController', found {name!r}"
                    )
                    problems.append(((addon, name), name, text))
                elif known is not None and name not in known:
                    problems.append(
                        (
                            (addon, name),
                            name,
                            f"{addon} has no image named {name!r} (minikube would ignore it and use its own image); "
                            f"expected one of: {', '.join(known)}",
                        )
                    )
        if problems:
            raise ValidationError.from_exception_data(
                "Cluster",
                [
                    InitErrorDetails(
                        type=PydanticCustomError("value_error", "{message}", {"message": text}), loc=loc, input=found
                    )
                    for loc, found, text in problems
                ],
            )
        return v

    def addon_overrides(self, addon: str) -> tuple[dict[str, str], dict[str, str]]:
        """(images, registries) for `minikube addons enable ADDON --images --registries`: every image named in
        addon_images without a registry gets `""`, so a registry minikube saved earlier (CustomAddonRegistries)
        never prefixes it; with no saved registry `""` changes nothing (minikube drops its default registry
        for a custom image: assets/addons.go GenerateTemplateData)."""
        images = dict(self.addon_images.get(addon, {}))
        registries = {**{name: "" for name in images}, **self.addon_registries.get(addon, {})}
        return images, registries

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
