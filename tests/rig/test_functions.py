"""devrig.functions.kubeless_config_overrides over the released kubeless-config (no cluster needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from devrig import functions

RELEASED = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "kubeless" / "kubeless.yaml"


@pytest.fixture
def data() -> dict:
    docs = [d for d in yaml.safe_load_all(RELEASED.read_text()) if d]
    return next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "kubeless-config")["data"]


def test_overrides_point_provision_and_every_python_version_at_the_rig_images(data):
    out = functions.kubeless_config_overrides(data)
    assert set(out) == {"provision-image", "runtime-images"}
    assert out["provision-image"] == functions.PROVISION_IMAGE
    before, after = json.loads(data["runtime-images"]), json.loads(out["runtime-images"])
    python = next(r for r in after if r["ID"] == "python")
    assert sorted(v["name"] for v in python["versions"]) == ["python36", "python37", "python38"]
    for version in python["versions"]:
        images = {i["phase"]: i for i in version["images"]}
        assert images["runtime"]["image"] == functions.PYTHON_IMAGE
        assert images["installation"]["image"] == functions.PYTHON_IMAGE
        assert "python3.9/site-packages" in images["runtime"]["env"]["PYTHONPATH"]
    # every other runtime is left exactly as released
    assert [r for r in after if r["ID"] != "python"] == [r for r in before if r["ID"] != "python"]
    # and the input is not changed in place
    assert json.loads(data["runtime-images"]) == before


def test_upstream_runtime_file_is_found():
    if not functions.UPSTREAM.is_dir():
        pytest.skip(f"no upstream checkouts at {functions.UPSTREAM}")
    assert "bottle" in functions.kubeless_py().read_text()
