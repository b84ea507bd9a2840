"""devloop: the whole Kubernetes developer loop on minikube in one command."""

from __future__ import annotations

from functools import cache


@cache
def _version() -> str:
    # pyproject.toml's [project] version is the only place it is written; the installed metadata (an editable
    # install's too) carries it. importlib.metadata costs ~20 ms to import, which every command would pay at
    # start, so it is read only when asked for (--version, --json events).
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("devloop")
    except PackageNotFoundError:  # a source tree put on sys.path by hand, never installed
        return "0.0.0+unknown"


def __getattr__(name: str) -> str:
    if name == "__version__":
        return _version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
