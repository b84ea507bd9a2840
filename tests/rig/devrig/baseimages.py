"""Base images a registry would have served, made of real Debian and preloaded into each profile's engine.

No registry is reachable here, so `FROM bitnami/minideb:jessie` (and `bitnami/minideb`) and `FROM fedora:27`
(what the Kubeless Dockerfiles start from) are local images of real Debian trees made by debootstrap
(devrig/debootstrap.py), with the packages the upstream Dockerfiles install already installed:

- `bitnami/minideb:jessie`, `bitnami/minideb:latest`: Debian **bookworm** (jessie is no longer served by
  deb.debian.org; bookworm's glibc is the host's, which cgo-built controllers need), minbase plus
  `ca-certificates` (the controllers' Dockerfiles) and `unzip curl tar gzip bzip2 xz-utils` (kubeless's
  docker/unzip, the provision image), trimmed as minideb's mkimage trims (docs but copyright files, man
  pages, locales, info), with minideb's `install_packages` (see INSTALL_PACKAGES);
- `fedora:27`: the same bookworm base plus `skopeo` (with /etc/containers/policy.json) and `nodejs`, what
  kubeless's docker/function-image-builder installs with `dnf install -y skopeo nodejs`, and a `dnf` that
  installs nothing: it succeeds for a package that is installed and fails for any other.

A package the image lacks fails the build, loudly, as on a machine whose mirror does not have it: builds here
reach no mirror (tests/rig/README.md, "Real and stood in for", says why the packages are pre-installed rather
than served). `docker inspect` says what each image really is: label `devrig.base-image`; /etc/os-release is
bookworm's.

The images are written as `docker save` archives (a layer per tree: fedora:27's layer holds only what differs
from minideb's) under `$DEVRIG_CACHE/images/`, built once under a lock, and each engine gets them by
`docker load` at profile start.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from . import RigError, debootstrap, paths

SUITE = "bookworm"
LABEL = "devrig.base-image"  # says what an image really is, so `docker inspect` tells it from the real one
VERSION = "2"  # bump when the way the images are made (below) changes
MINIDEB_PACKAGES = ("ca-certificates", "curl", "unzip", "tar", "gzip", "bzip2", "xz-utils")
# netavark: the smallest provider of container-network-stack, which skopeo's containers-common needs and
# debootstrap (no virtual packages) cannot choose
BUILDER_PACKAGES = ("skopeo", "nodejs", "netavark")
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# bitnami/minideb's install_packages (its mkimage writes it): apt-get install --no-install-recommends "$@" with
# up to three tries, then the apt lists and downloaded archives removed. The one difference: no `apt-get
# update` first, since builds here reach no mirror; apt installs from the lists kept in the image, so a
# package already installed succeeds offline and one the image lacks fails (apt exits 100) after the tries.
INSTALL_PACKAGES = """#!/bin/sh
# install_packages, as bitnami/minideb's (mkimage), for the devrig test cluster: the image is Debian {suite}
# with the packages in /etc/devrig-base-image pre-installed; no mirror is reachable from a build here, so
# there is no `apt-get update`: a package the image lacks fails.
set -e
set -u
export DEBIAN_FRONTEND=noninteractive
n=0
max=2
until [ $n -gt $max ]; do
    set +e
    (
      apt-get install -y --no-install-recommends "$@"
    )
    CODE=$?
    set -e
    if [ $CODE -eq 0 ]; then
        break
    fi
    if [ $n -eq $max ]; then
        missing=""
        for p in "$@"; do
            case $p in -*) continue ;; esac
            dpkg-query -W -f='${{Status}}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
        done
        echo "install_packages: not installed:$missing -- this {image} is a devrig image (Debian {suite}," \\
            "see /etc/devrig-base-image); no package mirror is reachable from a build on the test cluster," \\
            "so only pre-installed packages can be installed (tests/rig/README.md)" >&2
        exit $CODE
    fi
    echo "apt failed, retrying"
    n=$(($n + 1))
done
rm -r /var/lib/apt/lists /var/cache/apt/archives
"""

# fedora:27's package manager: `dnf [options] install PKG...` checks that each package is installed (its Debian
# name, see DNF_NAMES); any other package, or any other command but `clean`, fails.
DNF = """#!/bin/sh
# dnf for the devrig test cluster's fedora:27, which is Debian {suite} with {packages} pre-installed
# (see /etc/devrig-base-image): no mirror is reachable from a build here, so nothing is downloaded.
set -u
cmd=""
pkgs=""
for a in "$@"; do
    case $a in
        -*) ;;
        *) if [ -z "$cmd" ]; then cmd=$a; else pkgs="$pkgs $a"; fi ;;
    esac
done
case $cmd in
    clean) exit 0 ;;
    install) ;;
    *) echo "dnf: '$cmd' is not supported here (devrig fedora:27 is Debian {suite}; only install/clean)" >&2
       exit 1 ;;
esac
missing=""
for p in $pkgs; do
    deb=$p
{renames}
    if dpkg-query -W -f='${{Status}}' "$deb" 2>/dev/null | grep -q 'ok installed'; then
        echo "Package $p is already installed (Debian package $deb)."
    else
        missing="$missing $p"
    fi
done
if [ -n "$missing" ]; then
    echo "Error: Unable to find a match:$missing -- this fedora:27 is a devrig image (Debian {suite}, see" \\
        "/etc/devrig-base-image); no package mirror is reachable from a build on the test cluster, so only" \\
        "pre-installed packages can be installed (tests/rig/README.md)" >&2
    exit 1
fi
echo "Nothing to do."
echo "Complete!"
"""
DNF_NAMES: dict[str, str] = {}  # Fedora name -> Debian name where they differ (skopeo, nodejs: the same)

# What minideb's mkimage trims (DIRS_TO_TRIM, /usr/share/doc but copyright files); the apt lists are kept
# (gzipped: apt reads *_Packages.gz as it is) for offline installs of what is installed
_TRIM = ("usr/share/man/", "usr/share/locale/", "usr/share/info/", "var/cache/apt/", "var/log/")


@dataclass(frozen=True)
class Base:
    refs: tuple[str, ...]
    packages: tuple[str, ...]
    parent: str | None  # the Base whose layer this one's sits on
    files: Mapping[str, str] = field(default_factory=dict)  # path in the image -> text (mode 0755 if under bin)
    describe: str = ""


# The Docker tweaks minideb's mkimage applies (as Docker's contrib/mkimage did): no service starts in a build,
# no sync() per unpacked file, no apt caches or translations kept, indexes kept gzipped
DOCKER_TWEAKS = {
    "usr/sbin/policy-rc.d": "#!/bin/sh\n# no service starts during a build (as minideb's mkimage writes it)\nexit 101\n",
    "etc/dpkg/dpkg.cfg.d/docker-apt-speedup": "force-unsafe-io\n",
    "etc/apt/apt.conf.d/docker-clean": (
        'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb '
        '/var/cache/apt/*.bin || true"; };\n'
        'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb '
        '/var/cache/apt/*.bin || true"; };\n'
        'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n'
    ),
    "etc/apt/apt.conf.d/docker-no-languages": 'Acquire::Languages "none";\n',
    "etc/apt/apt.conf.d/docker-gzip-indexes": 'Acquire::GzipIndexes "true";\nAcquire::CompressionTypes::Order:: "gz";\n',
    "etc/apt/apt.conf.d/docker-autoremove-suggests": 'Apt::AutoRemove::SuggestsImportant "false";\n',
}


def _bases() -> dict[str, Base]:
    minideb_files = {
        **DOCKER_TWEAKS,
        "usr/sbin/install_packages": INSTALL_PACKAGES.format(suite=SUITE, image="bitnami/minideb"),
    }
    renames = "\n".join(f'    [ "$p" = "{f}" ] && deb="{d}"' for f, d in DNF_NAMES.items()) or "    :"
    builder_files = {
        **DOCKER_TWEAKS,
        "usr/bin/dnf": DNF.format(suite=SUITE, packages=" ".join(BUILDER_PACKAGES), renames=renames),
    }
    return {
        "minideb": Base(
            refs=("bitnami/minideb:jessie", "bitnami/minideb:latest"),
            packages=MINIDEB_PACKAGES,
            parent=None,
            files=minideb_files,
            describe=f"Debian {SUITE} (debootstrap minbase) + {' '.join(MINIDEB_PACKAGES)} and minideb's "
            f"install_packages (offline: installs only what is installed); jessie is not served any more",
        ),
        "builder": Base(
            refs=("fedora:27",),
            packages=MINIDEB_PACKAGES + BUILDER_PACKAGES,
            parent="minideb",
            files=builder_files,
            describe=f"not Fedora: Debian {SUITE} (debootstrap minbase) + {' '.join(BUILDER_PACKAGES)} "
            f"(/etc/containers/policy.json) and a dnf that installs only what is installed",
        ),
    }


BASES = _bases()
# Every base named by the upstream Dockerfiles devloop builds (kubeless, http-trigger, cronjob-trigger).
BASE_IMAGES = {ref: name for name, base in BASES.items() for ref in base.refs}


def archive_path() -> Path:
    key = hashlib.sha256(
        json.dumps(
            {
                "version": VERSION,
                "debootstrap": debootstrap.VERSION,
                "suite": SUITE,
                "bases": {n: [b.refs, b.packages, b.parent, dict(b.files), b.describe] for n, b in BASES.items()},
            },
            sort_keys=True,
        ).encode()
    ).hexdigest()[:16]
    return paths.cache_dir() / "images" / f"base-images-{key}.tar"


def ensure(has_image: Callable[[str], bool], build_env: dict[str, str], engine_name: str) -> list[str]:
    """Load the base images the engine lacks (from the cached archive, made first if needed); return their refs."""
    wanted = [ref for ref in BASE_IMAGES if not has_image(ref)]
    if not wanted:
        return []
    archive = ensure_archive()
    result = subprocess.run(
        [str(paths.docker_cli()), "load", "-q", "-i", str(archive)],
        env=build_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise RigError(
            f"loading the base images ({archive}) into the {engine_name!r} engine failed: "
            f"{result.stderr.strip() or result.stdout.strip()}"
        )
    return wanted


def start(has_image: Callable[[str], bool], build_env: dict[str, str], engine_name: str) -> Future[list[str]]:
    """ensure() in a thread of its own; the Future's result() is its answer (or raises its error)."""
    future: Future[list[str]] = Future()

    def run() -> None:
        try:
            future.set_result(ensure(has_image, build_env, engine_name))
        except BaseException as exc:  # handed to whoever waits on the future
            future.set_exception(exc)

    threading.Thread(target=run, name=f"devrig-base-images-{engine_name}", daemon=True).start()
    return future


def ensure_archive() -> Path:
    """The `docker save` archive of every base image, built once (debootstrap trees, then layers) under a lock."""
    target = archive_path()
    if target.exists():
        return target
    with debootstrap.file_lock(target.with_suffix(".lock")):
        if target.exists():
            return target
        trees = {name: debootstrap.rootfs_tarball(SUITE, base.packages) for name, base in BASES.items()}
        _write_archive(target, trees)
    return target


# ---------------------------------------------------------------------------------------------- layers


def _member_sig(m: tarfile.TarInfo) -> tuple:
    return (m.type, m.size, m.mode, m.uid, m.gid, int(m.mtime), m.linkname, m.devmajor, m.devminor)


def _trimmed(name: str) -> bool:
    rel = name.removeprefix("./")
    if rel.startswith("dev/") or rel.startswith(_TRIM) and not rel.endswith("/"):
        return True
    if rel.startswith("usr/share/doc/") and rel.count("/") >= 4 and not rel.endswith("/copyright"):
        return True
    return False


class _Layer:
    """One image layer (an uncompressed tar) being written, with the digest docker load checks (diff_id)."""

    def __init__(self, path: Path):
        self.path = path
        self._fh = open(path, "wb")
        self._hash = hashlib.sha256()
        self.tar = tarfile.open(fileobj=self, mode="w|", format=tarfile.GNU_FORMAT)

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        return self._fh.write(data)

    def add(self, info: tarfile.TarInfo, data: bytes | None = None, src: tarfile.TarFile | None = None) -> None:
        if data is not None:
            info.size = len(data)
            self.tar.addfile(info, io.BytesIO(data))
        elif info.isreg():
            assert src is not None
            self.tar.addfile(info, src.extractfile(info))
        else:
            self.tar.addfile(info)

    def close(self) -> str:
        self.tar.close()
        self._fh.close()
        return "sha256:" + self._hash.hexdigest()


def _file_info(name: str, size: int = 0, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo("./" + name)
    info.size, info.mode, info.mtime = size, mode, int(time.time())
    return info


def _write_tree_layer(
    layer: _Layer, tree: Path, base: Base, ref: str, below: dict[str, tuple] | None
) -> dict[str, tuple]:
    """Write tree (trimmed, apt lists gzipped, base.files added) into layer; with below (the signatures of the
    layer underneath), only what differs from it, plus whiteouts for what it has and this tree lacks."""
    extra = dict(base.files)
    extra["etc/devrig-base-image"] = (
        f"{ref}: {base.describe}\npre-installed: {' '.join(base.packages)}\n"
        "made by devloop's test rig (tests/rig/devrig/baseimages.py); no registry or mirror is reachable here\n"
    )
    sigs: dict[str, tuple] = {}
    written: set[str] = set()
    with tarfile.open(tree) as src:
        for m in src:
            if _trimmed(m.name) or m.name.removeprefix("./") in extra:
                continue
            data = None
            if m.islnk() and m.linkname not in written and below is not None and below.get(m.name) == _member_sig(m):
                sigs[m.name] = _member_sig(m)
                continue
            if m.islnk() and m.linkname not in written:
                # its target is trimmed or in the layer below: a layer's hard link must point into the layer
                data = src.extractfile(m).read()
                m = _copy_info(m, m.name)
                sigs[m.name] = ("hardlink", len(data))
                written.add(m.name)
                layer.add(m, data)
                continue
            sig = _member_sig(m)
            if m.isreg() and "/var/lib/apt/lists/" in m.name:
                raw = src.extractfile(m).read()
                sig = ("list", hashlib.sha256(raw).hexdigest())  # two trees' lists differ only if the mirror did
                if m.name.endswith("_Packages"):
                    data = gzip.compress(raw, compresslevel=6, mtime=0)
                    m = _copy_info(m, m.name + ".gz")
            sigs[m.name] = sig
            if below is not None and below.get(m.name) == sig:
                continue
            written.add(m.name)
            layer.add(m, data, src)
    for rel, text in sorted(extra.items()):
        mode = 0o755 if "/bin/" in f"/{rel}" or "/sbin/" in f"/{rel}" else 0o644
        layer.add(_file_info(rel, mode=mode), text.encode())
        sigs["./" + rel] = ("extra", text)
    if below is not None:
        for name in sorted(set(below) - set(sigs)):
            parent, _, leaf = name.rstrip("/").rpartition("/")
            if parent in below and parent not in sigs:
                continue  # its directory is gone and whited out already
            parent = parent.removeprefix(".").strip("/")
            layer.add(_file_info(f"{parent}/.wh.{leaf}" if parent else f".wh.{leaf}"), b"")
    return sigs


def _copy_info(m: tarfile.TarInfo, name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode, info.uid, info.gid, info.mtime, info.type = m.mode, m.uid, m.gid, m.mtime, tarfile.REGTYPE
    info.uname, info.gname = m.uname, m.gname
    return info


def _write_archive(target: Path, trees: Mapping[str, Path]) -> None:
    """A `docker save`-format archive (manifest.json, a config and a layer tar per image) at target, atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.{os.getpid()}")
    created = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    manifest: list[dict] = []
    done: dict[str, tuple[list[str], list[dict], dict[str, tuple], list[str]]] = {}
    with tarfile.open(staging, "w", format=tarfile.GNU_FORMAT) as out:
        for name in _ordered(BASES):
            base = BASES[name]
            parent = done.get(base.parent) if base.parent else None
            layer_file = target.parent / f".{name}-layer.{os.getpid()}.tar"
            layer = _Layer(layer_file)
            try:
                sigs = _write_tree_layer(layer, trees[name], base, base.refs[0], parent[2] if parent else None)
                diff_id = layer.close()
                layer_name = f"{diff_id.split(':')[1]}/layer.tar"
                out.add(str(layer_file), arcname=layer_name)
            finally:
                layer_file.unlink(missing_ok=True)
            diff_ids = [*(parent[0] if parent else []), diff_id]
            layers = [*(parent[3] if parent else []), layer_name]
            history = [
                *(parent[1] if parent else []),
                {
                    "created": created,  # a history entry without it breaks pulls of images built on it (imbuilder)
                    "created_by": f"devrig: debootstrap --variant=minbase --include={','.join(base.packages)} "
                    f"{SUITE} {debootstrap.MIRROR}",
                },
            ]
            done[name] = (diff_ids, history, sigs, layers)
            config = {
                "architecture": "amd64",
                "os": "linux",
                "created": created,
                "config": {
                    "Env": [PATH_ENV],
                    "Cmd": ["/bin/bash"],
                    "Labels": {LABEL: f"{' '.join(base.refs)}: {base.describe}"},
                },
                "rootfs": {"type": "layers", "diff_ids": diff_ids},
                "history": history,
            }
            blob = json.dumps(config, sort_keys=True).encode()
            config_name = hashlib.sha256(blob).hexdigest() + ".json"
            info = tarfile.TarInfo(config_name)
            info.size, info.mtime = len(blob), int(time.time())
            out.addfile(info, io.BytesIO(blob))
            manifest.append({"Config": config_name, "RepoTags": list(base.refs), "Layers": layers})
        blob = json.dumps(manifest).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size, info.mtime = len(blob), int(time.time())
        out.addfile(info, io.BytesIO(blob))
    os.replace(staging, target)


def _ordered(bases: Mapping[str, Base]) -> Iterable[str]:
    seen: list[str] = []
    while len(seen) < len(bases):
        for name, base in bases.items():
            if name not in seen and (base.parent is None or base.parent in seen):
                seen.append(name)
    return seen


if __name__ == "__main__":  # scripts/build-rig: make the archive ahead, so a first profile start only loads it
    print(ensure_archive())
