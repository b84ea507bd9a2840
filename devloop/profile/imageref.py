"""Docker image references: parse `repo[:tag][@digest]` and compare repositories.

Used by the profile schema (`replaces`), rendering (which references a component's build
replaces) and by status and logs (which containers run a built image).
"""

from __future__ import annotations

import re
from typing import NamedTuple

# Docker's reference grammar (distribution/reference): lowercase path components separated by
# '/', each made of alphanumerics joined by '.', '_', '__' or dashes; an optional registry host
# (with a dot or a port, or "localhost") in front.
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_HOST = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?)"
_REPO = rf"(?:{_HOST}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
REPO_RE = re.compile(rf"^{_REPO}$")
IMAGE_REF_RE = re.compile(rf"^(?P<repo>{_REPO})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$")


class ImageRef(NamedTuple):
    """A parsed image reference; `repo` is normalised (docker.io/ and library/ dropped)."""

    repo: str
    tag: str | None
    digest: str | None

    def __str__(self) -> str:
        text = self.repo
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def normalize_repo(repo: str) -> str:
    """`docker.io/library/busybox` and `busybox` name the same repository; compare them equal."""
    for prefix in ("docker.io/", "index.docker.io/", "registry-1.docker.io/"):
        if repo.startswith(prefix):
            repo = repo[len(prefix) :]
            if repo.startswith("library/") and repo.count("/") == 1:
                repo = repo[len("library/") :]
            break
    return repo


def parse_image_ref(text: str) -> ImageRef | None:
    """Parse `repo[:tag][@digest]`; None when the text is not an image reference."""
    if not isinstance(text, str):
        return None
    m = IMAGE_REF_RE.match(text.strip())
    if not m:
        return None
    return ImageRef(normalize_repo(m["repo"]), m["tag"], m["digest"])
