"""devrig.debootstrap: a real debootstrap of a small tree into a throwaway rig cache, built once by two racing
processes, with its apt lists kept; and the key/validation rules that need no build.

The build needs debootstrap, root and deb.debian.org: skipped without debootstrap or root (a failure under
CI=true, as every rig part)."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from devrig import RigError, debootstrap
from support.rig import in_ci


def test_key_is_order_and_duplicate_insensitive_and_versioned(monkeypatch):
    a = debootstrap.cache_key("bookworm", ["curl", "unzip"])
    assert a == debootstrap.cache_key("bookworm", ["unzip", "curl", "curl"])
    assert a != debootstrap.cache_key("bullseye", ["curl", "unzip"])
    assert a != debootstrap.cache_key("bookworm", ["curl", "unzip"], variant="buildd")
    monkeypatch.setattr(debootstrap, "VERSION", debootstrap.VERSION + "x")
    assert a != debootstrap.cache_key("bookworm", ["curl", "unzip"])


def test_unserved_suite_is_refused_before_anything_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVRIG_CACHE", str(tmp_path))
    with pytest.raises(RigError, match="jessie is not served"):
        debootstrap.rootfs_tarball("jessie", [])
    assert not (tmp_path / "debootstrap").exists()


_BUILD = """
import sys
from devrig import debootstrap
print(debootstrap.rootfs_tarball(sys.argv[1], sys.argv[2].split(",")))
"""


@pytest.mark.slow
def test_two_processes_build_one_tree_with_apt_lists_kept(tmp_path):
    if not debootstrap.available():
        reason = f"needs debootstrap ({debootstrap.debootstrap_bin()}) and root"
        if in_ci():
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    env = {**os.environ, "DEVRIG_CACHE": str(tmp_path)}
    # bullseye minbase + one small package not in minbase
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _BUILD, "bullseye", "netbase"], env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=1500)[0].strip() for p in racers]
    assert [p.returncode for p in racers] == [0, 0]
    assert outs[0] == outs[1]
    tarball = Path(outs[0])
    assert tarball.parent == tmp_path / "debootstrap"
    # one build: one log (the lock), no temporary tree or partial tarball left beside it
    leftovers = sorted(p.name for p in tarball.parent.iterdir())
    assert leftovers == sorted([tarball.name, tarball.with_suffix(".lock").name, tarball.with_suffix(".log").name])
    assert open(tarball.with_suffix(".log")).read().count("$ ") == 1

    installed = debootstrap.installed_packages(tarball)
    assert {"netbase", "apt", "dpkg", "base-files"} <= installed
    with tarfile.open(tarball) as tf:
        names = set(tf.getnames())
        lists = [n for n in names if n.startswith("./var/lib/apt/lists/") and n.endswith("_Packages")]
        assert lists, "the apt lists are kept in the tree"
        assert not [n for n in names if n.startswith("./var/cache/apt/archives/") and n.endswith(".deb")]
        assert "./etc/resolv.conf" not in names
        release = tf.extractfile("./etc/os-release").read().decode()
    assert "VERSION_CODENAME=bullseye" in release
    # the cached tarball is what a second call returns, without building
    env_second = {**env, "PATH": "/nonexistent"}  # no debootstrap, no tar: must not be needed
    again = subprocess.run(
        [sys.executable, "-c", _BUILD, "bullseye", "netbase"], env=env_second, capture_output=True, text=True
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == str(tarball)
