"""What minikube's image commands leave on disk and what a node lists: the tarball `image load` caches under
MINIKUBE_HOME (so devloop removes only the ones its own loads made), and a node's own image list."""

from __future__ import annotations

import platform
from pathlib import Path

from devloop.adapters.minikube.output import _json_values

# Go's runtime.GOARCH for platform.machine(): the arch directory of minikube's image cache.
_GOARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
}


def image_cache_paths(ref: str, home: Path | None = None) -> list[Path]:
    """Where `minikube image load REF` caches REF's tarball: <home>/cache/images/<GOARCH>/REF with every `:` made
    `_` (detect.ImageCacheDir, localpath.SanitizeCacheDir on the whole path), for this machine's arch and any
    other arch directory already there."""
    from devloop.adapters.minikube.home import minikube_home

    images = (home or minikube_home()) / "cache" / "images"
    arches = {_GOARCH.get(platform.machine().lower(), platform.machine().lower())}
    try:
        arches |= {entry.name for entry in images.iterdir() if entry.is_dir()}
    except OSError:
        pass
    return [Path(str(images / arch / ref).replace(":", "_")) for arch in sorted(arches)]


def missing_parts(path: Path) -> list[Path]:
    """`path` and its directories below cache/images that do not exist yet, deepest first."""
    missing = []
    part = path
    while part.name != "images" and not part.exists():
        missing.append(part)
        part = part.parent
    return missing


def remove_created(parts: list[Path]) -> None:
    """Remove what a load created: its tarball, then the directories it made, while they are empty."""
    for part in parts:
        try:
            part.rmdir() if part.is_dir() else part.unlink()
        except FileNotFoundError:
            continue  # never made (minikube makes the directories before it finds the image)
        except OSError:
            return  # a directory someone else filled meanwhile


def parse_node_images(stdout: str, runtime: str) -> list[str]:
    """`docker images --format '{{.Repository}}:{{.Tag}}'` lines (docker.io added as cruntime.AddDockerIO
    does) or `crictl images --output json` ({"images": [{"repoTags": [...]}]})."""
    if runtime == "docker":
        names = [line.strip() for line in stdout.splitlines() if line.strip()]
        return [name for name in names if "<none>" not in name]
    _, values = _json_values(stdout)
    table = next((v for v in reversed(values) if isinstance(v, dict) and "images" in v), {})
    return [
        str(tag)
        for image in table.get("images") or []
        if isinstance(image, dict)
        for tag in image.get("repoTags") or []
    ]
