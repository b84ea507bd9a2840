"""Debian root filesystems made by Debian's own debootstrap, cached as tarballs, and turned into local images.

`rootfs_tarball("bookworm", ["skopeo"])` runs

    debootstrap --variant=minbase --include=skopeo bookworm DIR http://deb.debian.org/debian

once, into a temporary directory under the rig cache, and keeps the tree as
`$DEVRIG_CACHE/debootstrap/<key>.tar` (key: suite, sorted includes, variant, `VERSION`). The tarball is
written to a temporary name and renamed into place, under a file lock, so two processes never build it
twice and never see half a tarball.

The apt lists debootstrap fetched stay in the tree (`/var/lib/apt/lists`), and so does the tree's
`sources.list`: an image made from it answers `apt-get install <already installed>` offline
("is already the newest version") and fails loudly for a package it lacks ("Unable to locate package" when
the lists lack it, a fetch error when they have it and no mirror is reachable). Downloaded .debs are removed
(`apt-get clean`), as Debian's and minideb's images do.

`import_image(tarball, ref, docker_env=...)` makes a local image of a tree: `docker import` with
`--change` lines, or `docker import` into a temporary name plus a small Dockerfile when an instruction
`import --change` refuses (Docker 20.10 accepts only CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER,
VOLUME, WORKDIR: not STOPSIGNAL, SHELL, HEALTHCHECK, RUN, COPY ...).

Only the rig cache is ever written to; debootstrap's chroot is a directory there, its mounts (proc, sys)
are its own and undone by it. Nothing about the host's network or kernel settings changes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from . import RigError, RigMissing, paths

MIRROR = "http://deb.debian.org/debian"  # the only Debian mirror reachable here
SERVED_SUITES = ("bullseye", "bookworm", "trixie")  # jessie, stretch, buster: 404 on that mirror
# Bump when the way a tree is made changes (the options below, the clean-up), so cached tarballs are rebuilt.
VERSION = "1"
DEBOOTSTRAP_TIMEOUT = 1800  # seconds; 2 shared cores, a slow mirror
# Instructions `docker import --change` accepts (docker/docker builder/dockerfile: validCommitCommands)
IMPORT_CHANGES = frozenset({"CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "USER", "VOLUME", "WORKDIR"})


def debootstrap_bin() -> Path:
    found = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    return Path(found)


def available() -> bool:
    return os.access(debootstrap_bin(), os.X_OK) and os.geteuid() == 0


def tarball_dir() -> Path:
    return paths.cache_dir() / "debootstrap"


def cache_key(suite: str, include: Sequence[str], variant: str = "minbase") -> str:
    text = "\n".join([f"suite={suite}", f"variant={variant}", f"version={VERSION}", *sorted(set(include))])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def tarball_path(suite: str, include: Sequence[str], *, variant: str = "minbase") -> Path:
    return tarball_dir() / f"{suite}-{variant}-{cache_key(suite, include, variant)}.tar"


@contextlib.contextmanager
def file_lock(lockfile: Path) -> Iterator[None]:
    """An exclusive flock on lockfile for the block (waits for another holder)."""
    lockfile.parent.mkdir(parents=True, exist_ok=True)
    with open(lockfile, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def rootfs_tarball(
    suite: str,
    include: Sequence[str] = (),
    *,
    variant: str = "minbase",
    log: Path | None = None,
) -> Path:
    """The cached tarball of a debootstrapped tree of suite with include installed (built on first use)."""
    if suite not in SERVED_SUITES:
        raise RigError(f"Debian {suite} is not served by {MIRROR} (served: {', '.join(SERVED_SUITES)})")
    target = tarball_path(suite, include, variant=variant)
    if target.exists():
        return target
    if not available():
        raise RigMissing(
            f"debootstrap is needed to build {target.name} ({debootstrap_bin()}, as root): "
            f"apt-get install debootstrap, or {paths.BUILD_HINT}"
        )
    with file_lock(target.with_suffix(".lock")):
        if target.exists():  # built by another process while this one waited
            return target
        _build(suite, sorted(set(include)), variant, target, log or target.with_suffix(".log"))
    return target


def _build(suite: str, include: list[str], variant: str, target: Path, log: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{suite}-", dir=target.parent) as tmp:
        root = Path(tmp, "root")
        cmd = [str(debootstrap_bin()), f"--variant={variant}"]
        if include:
            cmd.append("--include=" + ",".join(include))
        cmd += [suite, str(root), MIRROR]
        with open(log, "w") as out:
            out.write("$ " + " ".join(cmd) + "\n")
            out.flush()
            result = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, timeout=DEBOOTSTRAP_TIMEOUT)
        if result.returncode != 0:
            inner = root / "debootstrap" / "debootstrap.log"  # the chroot's own log: why a package failed
            if inner.exists():
                with open(log, "a") as out:
                    out.write(
                        f"\n--- {inner} (tail)\n" + "".join(inner.read_text(errors="replace").splitlines(True)[-60:])
                    )
            tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-20:])
            raise RigError(
                f"debootstrap of {suite} ({', '.join(include) or 'no includes'}) failed (log {log}):\n{tail}"
            )
        _tidy(root)
        part = Path(tmp, "tree.tar")
        # numeric owners: the tree's own uids (e.g. _apt), not the host's names for them
        tar = subprocess.run(
            ["tar", "--numeric-owner", "--xattrs", "-C", str(root), "-cf", str(part), "."],
            capture_output=True,
            text=True,
        )
        if tar.returncode != 0:
            raise RigError(f"tar of the {suite} tree failed: {tar.stderr.strip()}")
        os.replace(part, target)


def _tidy(root: Path) -> None:
    """What Debian's own images drop: downloaded .debs, the chroot's resolv.conf and hostname from the host.

    The apt lists (/var/lib/apt/lists) are kept on purpose, see the module docstring."""
    archives = root / "var/cache/apt/archives"
    for deb in archives.glob("*.deb"):
        deb.unlink()
    for name in ("etc/resolv.conf", "etc/hostname"):
        p = root / name
        if p.is_file() or p.is_symlink():
            p.unlink()
    # debootstrap leaves the first-stage log; the tree's dpkg database says what is installed
    shutil.rmtree(root / "debootstrap", ignore_errors=True)


def installed_packages(tarball: Path) -> set[str]:
    """Package names dpkg's status file in the tarball marks installed (for checks and tests)."""
    out = subprocess.run(
        ["tar", "-xOf", str(tarball), "./var/lib/dpkg/status"], capture_output=True, text=True, check=True
    ).stdout
    names, name = set(), ""
    for line in out.splitlines():
        if line.startswith("Package: "):
            name = line.split(": ", 1)[1]
        elif line.startswith("Status: ") and line.endswith(" installed") and name:
            names.add(name)
    return names


def import_image(
    tarball: Path,
    ref: str,
    *,
    docker_env: Mapping[str, str],
    changes: Sequence[str] = (),
    dockerfile_lines: Sequence[str] = (),
    context_files: Mapping[str, str | bytes] | None = None,
    timeout: float = 600,
) -> str:
    """Make `ref` in the engine docker_env reaches from the tree in tarball; return the image ID.

    changes are Dockerfile instructions `docker import --change` takes (CMD, ENV, LABEL, USER, ...).
    When dockerfile_lines are given, or a change is one import refuses, the tree is imported under a
    temporary tag and `docker build` applies the lines on top (FROM that tag), with context_files (name ->
    text or bytes) beside the Dockerfile for COPY; the temporary tag is removed afterwards. A built image
    also gets a history entry with a `created` time (an imported one has one too).
    """
    docker = str(paths.docker_cli())
    env = dict(docker_env)
    plain = [c for c in changes if c.split(None, 1)[0].upper() in IMPORT_CHANGES]
    rest = [c for c in changes if c not in plain]
    lines = [*rest, *dockerfile_lines]
    if not lines and not context_files:
        return _run(
            [docker, "import", *sum((["--change", c] for c in plain), []), str(tarball), ref], env, timeout
        ).strip()
    tmp_ref = f"devrig-import/{hashlib.sha256(ref.encode()).hexdigest()[:12]}:{os.getpid()}"
    _run([docker, "import", str(tarball), tmp_ref], env, timeout)
    try:
        with tempfile.TemporaryDirectory(prefix="devrig-import-") as ctx:
            for name, content in (context_files or {}).items():
                p = Path(ctx, name)
                p.parent.mkdir(parents=True, exist_ok=True)
                if isinstance(content, bytes):
                    p.write_bytes(content)
                else:
                    p.write_text(content)
            Path(ctx, "Dockerfile").write_text("\n".join([f"FROM {tmp_ref}", *plain, *lines]) + "\n")
            _run([docker, "build", "-q", "-t", ref, ctx], env, timeout)
        return _run([docker, "image", "inspect", "-f", "{{.Id}}", ref], env, 60).strip()
    finally:
        subprocess.run([docker, "rmi", tmp_ref], env=env, capture_output=True, timeout=60)


def _run(cmd: list[str], env: Mapping[str, str], timeout: float) -> str:
    result = subprocess.run(cmd, env=dict(env), capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RigError(f"{' '.join(cmd[:3])} ... failed: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout
