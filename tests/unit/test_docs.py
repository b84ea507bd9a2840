"""The docs cannot rot: the profile reference is the generator's output, the README's example profile loads and
renders, and every relative link in the user and contributor docs names a file that exists."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from devloop.manifests import render as manifests
from devloop.profile.lookup import load_profile_file, parse_profile

ROOT = Path(__file__).resolve().parents[2]
DOCS = [
    ROOT / "README.md",
    ROOT / "CONTRIBUTING.md",
    ROOT / "CHANGELOG.md",
    ROOT / "docs" / "architecture.md",
    ROOT / "docs" / "usage.md",
    ROOT / "docs" / "profile.md",
]
EXAMPLE = ROOT / "docs" / "examples" / "two-services.yaml"
# [text](target) outside code; a target with a scheme or only an anchor is not a file
LINK_RE = re.compile(r"\]\(([^)\s]+)\)")


def _links(doc: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", doc.read_text(encoding="utf-8"), flags=re.S)
    return [t for t in LINK_RE.findall(text) if not re.match(r"^[a-z][a-z0-9+.-]*:", t) and not t.startswith("#")]


def test_profile_reference_is_the_generators_output() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "profile-doc")], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert (ROOT / "docs" / "profile.md").read_text(encoding="utf-8") == done.stdout, (
        "docs/profile.md is out of date: run scripts/profile-doc > docs/profile.md"
    )


def test_profile_doc_check_passes() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "profile-doc"), "--check"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


def test_example_profile_loads_and_renders_its_skeleton() -> None:
    profile = load_profile_file(EXAMPLE)
    assert [c.name for c in profile.components] == ["api", "web"]
    assert "kubeless" not in (c.image for c in profile.components)
    workspace = EXAMPLE.with_suffix("")  # docs/examples/two-services/: the dirs and the manifest it names
    objects = manifests.load_manifests(profile, workspace)
    rendered = manifests.render(objects, {"api": "shop-api:dev-1", "web": "shop-web:dev-2"}, profile)
    images = sorted(
        container["image"]
        for obj in rendered.objects
        if obj["kind"] == "Deployment"
        for container in obj["spec"]["template"]["spec"]["containers"]
    )
    assert images == ["shop-api:dev-1", "shop-web:dev-2"]


def test_readme_profile_is_the_example() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    after = readme[readme.index("(docs/examples/two-services.yaml)") :]
    block = re.search(r"```yaml\n(.*?)```", after, flags=re.S)
    assert block, "the README shows the example profile in a yaml block after its link"
    shown = parse_profile(block[1], ROOT / "README.md")
    example = load_profile_file(EXAMPLE)
    # the README may leave out keys the example sets (timeouts); whatever it shows is the example's
    shown_data = yaml.safe_load(block[1])
    assert shown.model_dump(include=set(shown_data)) == example.model_dump(include=set(shown_data))


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc: Path) -> None:
    assert doc.exists(), f"{doc.relative_to(ROOT)} is missing"
    broken = [t for t in _links(doc) if not (doc.parent / t.split("#", 1)[0]).exists()]
    assert not broken, f"{doc.relative_to(ROOT)} links to files that do not exist: {broken}"
