"""`addons enable ADDON --images=Name=image,... --registries=Name=registry,...` as minikube reads them
(pkg/minikube/assets/addons.go, the same from v1.28.0 to v1.38.1 and master eb25dbc):

- parseMapString: split on `,`, each pair on `=`; a pair that is not exactly two parts is warned about
  ("Ignoring invalid pair entry") and skipped;
- SelectAndPersistImages: an empty image or a name the addon does not have is warned about ("Ignoring empty
  custom image", "Ignoring unknown custom image", "Ignoring unknown custom registry") and dropped, never an
  error; what is left is merged into config.json's CustomAddonImages / CustomAddonRegistries (kept over every
  later enable) and the file written, before minikube looks at the host;
- GenerateTemplateData and the template: each image is `{custom registry | global --image-repository |
  the addon's registry}{image}`, where a custom image drops the addon's registry and an empty custom registry
  falls through to the next (so `Name=` asks for minikube's default again); "Using image ..." per image.
"""

from __future__ import annotations

from . import versions

# the ingress addon's images by minikube's names, as the release ships them (without the digests minikube pins:
# the rig's images are built locally, see devrig/ingress/images.py) and the registry of each
INGRESS_REGISTRY = "registry.k8s.io"


def ingress_defaults(release: versions.Release) -> tuple[dict[str, str], dict[str, str]]:
    controller, certgen = (ref.removeprefix(INGRESS_REGISTRY + "/") for ref in release.ingress_images)
    images = {"IngressController": controller, "KubeWebhookCertgenCreate": certgen, "KubeWebhookCertgenPatch": certgen}
    return images, {name: INGRESS_REGISTRY for name in images}


def parse_map_string(console, text: str) -> dict[str, str]:
    result: dict[str, str] = {}
    if text == "":
        return result
    for pair in text.split(","):
        parts = pair.split("=")
        if len(parts) != 2:
            console.warning(f"Ignoring invalid pair entry {pair}")
            continue
        result[parts[0]] = parts[1]
    return result


def select_and_persist(
    console, cfg: dict, defaults: dict[str, str], images_flag: str, registries_flag: str
) -> tuple[dict[str, str], dict[str, str], bool]:
    """(images, custom registries, whether cfg changed and must be written). enable.go sets the flags for
    viper only when they are not empty (v1.36+)."""
    saved_images = dict(cfg.get("CustomAddonImages") or {})
    saved_registries = dict(cfg.get("CustomAddonRegistries") or {})
    images = {**defaults, **{k: v for k, v in saved_images.items() if k in defaults}}
    if images_flag:
        new = parse_map_string(console, images_flag)
        for name, image in list(new.items()):
            if image == "":
                console.warning(f"Ignoring empty custom image {name}")
                del new[name]
                continue
            if name not in defaults:
                console.warning(f"Ignoring unknown custom image {name}")
                del new[name]
        images = {**images, **{k: v for k, v in new.items() if k in images}}
        cfg["CustomAddonImages"] = {**saved_images, **new}
    registries = {k: v for k, v in saved_registries.items() if k in defaults}
    if registries_flag:
        new = parse_map_string(console, registries_flag)
        for name in list(new):
            if name not in defaults:
                console.warning(f"Ignoring unknown custom registry {name}")
                del new[name]
        registries = {**registries, **new}
        cfg["CustomAddonRegistries"] = {**saved_registries, **new}
    return images, registries, bool(images_flag or registries_flag)


def _slash(registry: str) -> str:
    return registry + "/" if registry and not registry.endswith("/") else registry


def resolve(
    cfg: dict, images: dict[str, str], addon_registries: dict[str, str], custom_registries: dict[str, str]
) -> dict[str, str]:
    """Name -> the image the addon's objects get (the template's `image:`)."""
    repository = _slash(str((cfg.get("KubernetesConfig") or {}).get("ImageRepository") or ""))
    custom_images = cfg.get("CustomAddonImages") or {}
    out = {}
    for name, image in images.items():
        default = "" if name in custom_images else _slash(addon_registries.get(name, ""))
        out[name] = (_slash(custom_registries.get(name, "")) or repository or default) + image
    return out


def using_lines(
    cfg: dict, images: dict[str, str], addon_registries: dict[str, str], custom_registries: dict[str, str]
) -> list[str]:
    """GenerateTemplateData's "Using image ..." lines (the digest cut off where minikube cuts it)."""
    repository = _slash(str((cfg.get("KubernetesConfig") or {}).get("ImageRepository") or ""))
    custom_images = cfg.get("CustomAddonImages") or {}
    lines = []
    for name, image in images.items():
        if name in custom_registries:
            lines.append(f"Using image {_slash(custom_registries[name])}{image.split('@')[0]}")
        elif repository:
            lines.append(f"Using image {repository}{image} (global image repository)")
        else:
            default = "" if name in custom_images else _slash(addon_registries.get(name, ""))
            lines.append(f"Using image {default}{image.split('@')[0]}")
    return lines
