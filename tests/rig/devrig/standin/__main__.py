import sys
from importlib.util import find_spec

# Run by hand after only scripts/build-rig, the Python packages the stand-in needs may be missing: they
# come with the rig's package (tests/rig), which scripts/test and scripts/try install into the checkout's .venv.
# find_spec only looks (no import), so every minikube call does not pay for loading cryptography.
_missing = [
    name for name, module in (("cryptography", "cryptography"), ("PyYAML", "yaml")) if find_spec(module) is None
]
if _missing:
    sys.stderr.write(
        f"minikube stand-in: Python package(s) {', '.join(_missing)} missing from {sys.executable}.\n"
        "Install the rig into the checkout's venv (as scripts/test and scripts/try do):\n"
        "  python3 -m venv .venv && .venv/bin/pip install -e tests/rig\n"
        "or set DEVRIG_PYTHON to a Python that has them.\n"
    )
    sys.exit(1)

from .cli import main  # noqa: E402

sys.exit(main())
