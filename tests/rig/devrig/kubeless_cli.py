"""The `kubeless` CLI, built from a Kubeless checkout the way its Makefile builds it, cached in the rig cache.

`make binary` (kubeless script/binary) runs `go install -ldflags "-w -X github.com/kubeless/kubeless/pkg/version.
Version=$(git describe --tags --dirty)" ./cmd/...` with CGO off; `make binary-cross` (script/binary-cli) the same
flags through gox. Here only `./cmd/kubeless` is built, with those flags and `CGO_ENABLED=0`, through the checkout's
modules (kubeless has no vendor/: go.mod/go.sum, the module proxy or Go's module cache). The CLI takes
http-trigger v1.0.0 and cronjob-trigger v1.0.2 as *modules* (kubeless go.mod), not from the sibling checkouts, so
cronjob-trigger's missing vendor/ packages (its `.gitignore` rule `[Ll]og/`) do not concern this build.

The binary is kept at `$DEVRIG_CACHE/kubeless-cli/<key>/kubeless`, the key a hash of the Go toolchain's version,
`git describe` and every go.mod, go.sum and .go file under cmd/ and pkg/ (what the build reads), so a second call
with an unchanged checkout is a lookup, and a changed one builds again (built in a temp dir, renamed into place
under a lock). By hand:

    python -m devrig.kubeless_cli build WORKSPACE/kubeless     # prints the binary's path
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from . import RigError, debootstrap, paths

PACKAGE = "./cmd/kubeless"
VERSION_VAR = "github.com/kubeless/kubeless/pkg/version.Version"
VERSION = "1"  # of this recipe


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 120) -> str:
    got = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if got.returncode != 0:
        raise RigError(f"`{' '.join(argv)}` in {cwd} failed ({got.returncode}):\n{(got.stderr + got.stdout)[-3000:]}")
    return got.stdout.strip()


def describe(checkout: Path) -> str:
    """The version script/binary stamps: `git describe --tags --dirty`."""
    return _run(["git", "describe", "--tags", "--dirty"], checkout)


def key(checkout: Path) -> str:
    h = hashlib.sha256(f"{VERSION}\n{_run(['go', 'version'], checkout)}\n{describe(checkout)}\n".encode())
    files = [checkout / "go.mod", checkout / "go.sum"]
    for top in ("cmd", "pkg"):
        files += sorted((checkout / top).rglob("*.go"))
    for f in files:
        if f.is_file():
            h.update(str(f.relative_to(checkout)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def binary(checkout: Path) -> Path:
    return paths.cache_dir() / "kubeless-cli" / key(checkout) / "kubeless"


def build(checkout: Path, *, timeout: float = 1800) -> Path:
    """The CLI for this checkout: from the cache, or built now (nice'd: the machine is shared)."""
    checkout = checkout.resolve()
    if not (checkout / "cmd" / "kubeless").is_dir():
        raise RigError(f"{checkout} is not a Kubeless checkout (no cmd/kubeless)")
    target = binary(checkout)
    if os.access(target, os.X_OK):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with debootstrap.file_lock(target.with_suffix(".lock")):
        if os.access(target, os.X_OK):
            return target
        env = dict(os.environ, CGO_ENABLED="0", GOFLAGS=os.environ.get("GOFLAGS", "-mod=mod"))
        with tempfile.TemporaryDirectory(prefix="kubeless-cli-", dir=target.parent) as tmp:
            out = Path(tmp) / "kubeless"
            flags = f"-w -X {VERSION_VAR}={describe(checkout)}"
            _run(
                ["nice", "-n", "10", "go", "build", "-ldflags", flags, "-o", str(out), PACKAGE], checkout, env, timeout
            )
            os.replace(out, target)
    return target


def version(cli: Path) -> str:
    return _run([str(cli), "version"], cli.parent)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devrig.kubeless_cli", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build (or find in the cache) the CLI of a checkout; prints its path")
    b.add_argument("checkout", type=Path)
    args = parser.parse_args(argv)
    try:
        cli = build(args.checkout)
    except RigError as e:
        print(e, file=sys.stderr)
        return 1
    print(cli)
    return 0


if __name__ == "__main__":
    sys.exit(main())
