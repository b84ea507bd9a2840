"""The last verify results, kept on disk for `devloop status`: one JSON file per minikube profile under
devloop's cache dir (beside the live-update records), replaced by every run of the checks."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

FORMAT = 1


def state_file(cache_dir: Path, minikube_profile: str) -> Path:
    return Path(cache_dir) / "verify" / f"{minikube_profile}.json"


def save(cache_dir: Path, minikube_profile: str, checks: list[dict[str, Any]], *, trigger: str) -> None:
    path = state_file(cache_dir, minikube_profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "at": time.time(), "trigger": trigger, "checks": checks}
    fd, tmp = tempfile.mkstemp(prefix=".verify-", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh, indent=1, default=str)
    os.replace(tmp, path)


def load(cache_dir: Path, minikube_profile: str) -> dict[str, Any] | None:
    """{"at", "trigger", "checks"} of the last run; None when there is none (or the file is unreadable: it is
    only a record, the next deploy writes it again)."""
    try:
        data = json.loads(state_file(cache_dir, minikube_profile).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("checks"), list):
        return None
    return {"at": data.get("at"), "trigger": data.get("trigger"), "checks": data["checks"]}
