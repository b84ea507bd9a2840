"""The `live_update` block of a component in a profile.

    live_update:
      build: make http-controller-build          # fast: the binary only, no image
      inputs: [cmd/http-trigger-controller, pkg, go.mod, go.sum]
      sync:
        bundles/kubeless_linux-amd64/http-controller: /http-controller
      restart: container
      converge: stop                              # or next-up

A change confined to `inputs` runs `build` and copies each `sync` file into every running
container of the component; anything else (a Dockerfile, the Makefile, a file outside `inputs`)
takes the full image build. Unknown keys are errors, like the rest of the profile.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

CONVERGE_MODES = ("stop", "next-up")


def _inside(value: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a non-empty relative path for {what}, found {value!r}")
    path = PurePosixPath(value)
    if path.is_absolute() or value.startswith("~") or ".." in path.parts:
        raise ValueError(f"expected {what} relative to the component directory, inside it, found {value!r}")
    return value


class LiveUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)

    enabled: bool = True
    build: str
    inputs: list[str] = Field(min_length=1)
    sync: dict[str, str] = Field(min_length=1)
    restart: Literal["container"] = "container"
    # When the Deployment gets the real image of the live-updated sources: when `watch` stops
    # (default: afterwards no restart can bring back an older binary), or on the next `up`.
    converge: Literal["stop", "next-up"] = "stop"

    @field_validator("build")
    @classmethod
    def _build(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("expected a shell command that builds the files to sync, found an empty string")
        if "{image}" in v:
            raise ValueError(
                f"expected a command that builds files, not an image; found the {{image}} placeholder in {v!r}"
            )
        return v

    @field_validator("inputs")
    @classmethod
    def _inputs(cls, v: list[str]) -> list[str]:
        for item in v:
            _inside(item, "a live_update input")
            if PurePosixPath(item).name.startswith("Dockerfile"):
                raise ValueError(
                    f"expected sources of the files to sync, found the Dockerfile {item!r}: a Dockerfile "
                    "change always needs the image build"
                )
        return v

    @field_validator("sync")
    @classmethod
    def _sync(cls, v: dict[str, str]) -> dict[str, str]:
        for source, target in v.items():
            _inside(source, "a file to sync (the key)")
            if not isinstance(target, str) or not target.startswith("/") or target.endswith("/"):
                raise ValueError(
                    f"expected an absolute file path in the container for {source!r} (like /http-controller), "
                    f"found {target!r}"
                )
            if ".." in PurePosixPath(target).parts:
                raise ValueError(f"expected a container path without '..' for {source!r}, found {target!r}")
        return v

    @model_validator(mode="after")
    def _targets_unique(self) -> LiveUpdate:
        seen: dict[str, str] = {}
        for source, target in self.sync.items():
            if target in seen:
                raise ValueError(
                    f"expected one file per container path, found {target!r} for {seen[target]!r} and {source!r}"
                )
            seen[target] = source
        return self
