"""What live updates left in the cluster, kept on disk for `status`, `up` and a later `watch`.

One JSON file per minikube profile under devloop's cache dir. An entry says: component C's pods
run image `base_tag` with `files` synced over it at `at`, from sources whose image would be
`live_tag`, into these containers (docker IDs). `up` removes the entry once the Deployment runs
the real image of the sources; `watch` compares the containers with the running ones to notice a
container that came back from the image (so it runs the older binary again).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

FORMAT = 1


@dataclass
class LiveRecord:
    component: str
    base_tag: str  # what the Deployment's pod template names
    live_tag: str  # the image tag of the sources that were synced (not built yet)
    files: list[str]  # container paths
    at: float  # epoch seconds of the last successful sync
    containers: dict[str, str] = field(default_factory=dict)  # docker container ID -> "ns/pod/container"
    converge: str = "stop"

    def describe(self) -> str:
        when = time.strftime("%H:%M:%S", time.localtime(self.at))
        return f"live-updated from {self.base_tag} + synced {', '.join(self.files)} at {when}"


def state_file(cache_dir: Path, minikube_profile: str) -> Path:
    return Path(cache_dir) / "live-update" / f"{minikube_profile}.json"


def load(cache_dir: Path, minikube_profile: str) -> dict[str, LiveRecord]:
    """The records, by component; an unreadable or foreign file counts as none (it is only a cache
    of what devloop did, and `up` converges regardless)."""
    try:
        data = json.loads(state_file(cache_dir, minikube_profile).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return {}
    out: dict[str, LiveRecord] = {}
    for name, raw in (data.get("components") or {}).items():
        try:
            out[name] = LiveRecord(**raw)
        except TypeError:
            continue
    return out


def save(cache_dir: Path, minikube_profile: str, records: dict[str, LiveRecord]) -> None:
    path = state_file(cache_dir, minikube_profile)
    if not records:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "components": {name: asdict(r) for name, r in sorted(records.items())}}
    fd, tmp = tempfile.mkstemp(prefix=".live-", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh, indent=1)
    os.replace(tmp, path)


def forget(cache_dir: Path, minikube_profile: str, components: list[str] | None = None) -> list[str]:
    """Drop the records of these components (all when None); returns the names dropped."""
    records = load(cache_dir, minikube_profile)
    names = list(records) if components is None else [c for c in components if c in records]
    for name in names:
        del records[name]
    if names:
        save(cache_dir, minikube_profile, records)
    return names
