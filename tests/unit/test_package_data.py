"""The wheel carries every bundled profile file: what setuptools' build_py would copy for devloop.profile,
computed from pyproject.toml's package-data, is every file under devloop/profile/bundled (a subdirectory such
as bundled/kubeless-verify/ included)."""

from __future__ import annotations

import tomllib
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _packaged(package: str) -> set[str]:
    from setuptools.command.build_py import build_py
    from setuptools.dist import Distribution

    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dist = Distribution({"packages": [package], "package_data": package_data})
        cmd = build_py(dist)
        cmd.ensure_finalized()
        # only package-data decides here: no MANIFEST.in and no VCS plugin feed include-package-data
        cmd.manifest_files = {}
        src = ROOT / package.replace(".", "/")
        return {str(Path(f).relative_to(src)) for f in cmd.find_data_files(package, str(src))}


def test_every_bundled_file_is_package_data():
    bundled = ROOT / "devloop" / "profile" / "bundled"
    on_disk = {str(p.relative_to(bundled.parent)) for p in bundled.rglob("*") if p.is_file()}
    assert "bundled/kubeless-verify/hello.yaml" in on_disk
    assert on_disk <= _packaged("devloop.profile"), sorted(on_disk - _packaged("devloop.profile"))
