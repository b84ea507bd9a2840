"""Where devloop keeps its own files (kept apart so any layer can import it cheaply)."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/devloop (default ~/.cache/devloop): fingerprint stat caches live here."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "devloop"
