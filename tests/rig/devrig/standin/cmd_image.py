"""`minikube image load` and `minikube image ls` (cmd/minikube/cmd/image.go, pkg/minikube/machine/cache_images.go).

`image load IMAGE | ARCHIVE | -`: an argument starting with `/` or `.`, or naming an existing file, is a
`docker save` archive loaded as is; `-` is an archive on stdin; anything else is an image name taken from
the local daemon (the docker client's environment: DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH) and,
failing that, from its registry (which the rig never reaches). The image lands in the profile's engine:
the store the node's runtime (dockershim under the hood, whatever runtime the profile names) runs pods from.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from . import cluster, mustload
from .flags import Flag
from .reasons import USAGE, Kind

GUEST_IMAGE_LOAD = Kind("GUEST_IMAGE_LOAD", 80)
GUEST_IMAGE_LIST = Kind("GUEST_IMAGE_LIST", 80)

LOAD_FLAGS = (
    Flag("pull", "bool", False, "", "Pull the remote image (no caching)", env=False),
    Flag("daemon", "bool", False, "", "Cache image from docker daemon", env=False),
    Flag("remote", "bool", False, "", "Cache image from remote registry", env=False),
    Flag("overwrite", "bool", True, "", "Overwrite image even if same image:tag name exists", env=False),
)
LS_FLAGS = (Flag("format", "string", "short", "", "Format output. One of: short|table|json|yaml", env=False),)


def _engine_api(profile: str):
    import docker

    info = cluster.machine(profile).info()
    # the engine's own socket (the API gate, if any, sits only in front of the kubelet): negotiate
    return docker.APIClient(base_url=f"unix://{info.docker_socket}", version="auto", timeout=300)


def _is_archive(arg: str) -> bool:
    return arg == "-" or arg.startswith(("/", ".")) or Path(arg).is_file()


def run_load(console, opts) -> int:
    args = opts.args
    if not args:
        raise console.fatal(
            USAGE,
            "Please provide an image in your local daemon to load into minikube via <minikube image load IMAGE_NAME>",
        )
    profile = opts.get("profile")
    mustload.running(console, profile)
    if opts.get("pull"):
        raise console.fatal(
            GUEST_IMAGE_LOAD, "Failed to pull image: the test rig has no registry to pull from", new_issue_link=True
        )
    engine = _engine_api(profile)
    for arg in args:
        if _is_archive(arg) and not (opts.get("daemon") or opts.get("remote")):
            _load_archive(console, engine, arg)
        else:
            _load_from_daemon(console, engine, arg, overwrite=bool(opts.get("overwrite")))
    return 0


def _load_archive(console, engine, arg: str) -> None:
    path = arg
    if arg == "-":
        fd, path = tempfile.mkstemp(prefix="minikube-image-", suffix=".tar")
        with os.fdopen(fd, "wb") as fh:
            fh.write(sys.stdin.buffer.read())
    try:
        with open(path, "rb") as fh:
            for _ in engine.load_image(fh):
                pass
    except (OSError, Exception) as exc:  # docker.errors.APIError, a missing file
        raise console.fatal(GUEST_IMAGE_LOAD, f"Failed to load image: loading image: {exc}", new_issue_link=True)
    finally:
        if arg == "-":
            Path(path).unlink(missing_ok=True)


def _load_from_daemon(console, engine, name: str, *, overwrite: bool) -> None:
    import docker

    if not overwrite:
        try:
            engine.inspect_image(name)
            return
        except docker.errors.ImageNotFound:
            pass
    try:
        local = _local_daemon()
        image = local.images.get(name)
        stream = image.save(named=True)
    except docker.errors.ImageNotFound:
        raise console.fatal(
            GUEST_IMAGE_LOAD,
            f"Failed to load image: save to dir: caching images: caching image "
            f'"{name}": the image is not in the local daemon, and the test rig reaches no '
            "registry",
            new_issue_link=True,
        )
    except docker.errors.DockerException as exc:
        raise console.fatal(
            GUEST_IMAGE_LOAD,
            f"Failed to load image: save to dir: caching images: caching image "
            f'"{name}": no local daemon ({exc}), and the test rig reaches no registry',
            new_issue_link=True,
        )
    with tempfile.TemporaryFile() as tmp:
        for chunk in stream:
            tmp.write(chunk)
        tmp.seek(0)
        try:
            for _ in engine.load_image(tmp):
                pass
        except docker.errors.APIError as exc:
            raise console.fatal(GUEST_IMAGE_LOAD, f"Failed to load image: loading image: {exc}", new_issue_link=True)


def _local_daemon():
    """The docker client's daemon as minikube's Go client reads it: DOCKER_HOST, DOCKER_TLS_VERIFY and
    DOCKER_CERT_PATH only (requests would let REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE replace the CA)."""
    import docker
    import docker.tls

    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    tls = False
    cert_dir = os.environ.get("DOCKER_CERT_PATH")
    if cert_dir:
        verify = os.environ.get("DOCKER_TLS_VERIFY", "") not in ("", "0")
        d = Path(cert_dir).expanduser()
        tls = docker.tls.TLSConfig(
            client_cert=(str(d / "cert.pem"), str(d / "key.pem")),
            ca_cert=str(d / "ca.pem") if verify else None,
            verify=verify,
        )
    client = docker.DockerClient(base_url=host, tls=tls, version="1.41", timeout=300)
    client.api.trust_env = False
    return client


def add_docker_io(name: str) -> str:
    """cruntime.AddDockerIO: the fully qualified name minikube lists."""
    first, _, rest = name.partition("/")
    if rest and (any(c in first for c in ".:") or "localhost" in first):
        return name
    return f"docker.io/{name}" if "/" in name else f"docker.io/library/{name}"


def run_ls(console, opts) -> int:
    profile = opts.get("profile")
    mustload.running(console, profile)
    try:
        images = _engine_api(profile).images()
    except Exception as exc:  # docker.errors.DockerException
        raise console.fatal(GUEST_IMAGE_LIST, f"Failed to list images: {exc}", new_issue_link=True)
    fmt = opts.get("format")
    items = [
        {
            "id": img["Id"].removeprefix("sha256:"),
            "repoDigests": [],
            "repoTags": [add_docker_io(t) for t in img.get("RepoTags") or [] if t != "<none>:<none>"],
            "size": str(img.get("Size", 0)),
        }
        for img in images
    ]
    if fmt == "json":
        console.raw(json.dumps(items, separators=(",", ":")) + "\n")
    elif fmt == "yaml":
        import yaml

        console.raw(yaml.safe_dump(items, sort_keys=False) + "\n")
    else:
        tags = sorted((t for item in items for t in item["repoTags"]), reverse=True)
        console.raw("\n".join(tags) + "\n")
    return 0
