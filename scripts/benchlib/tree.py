"""Generated workspaces for the benchmarks: a Go-shaped checkout with ignored build outputs.

A tree is generated once per (files, seed) into the cache directory and reused; a marker
file records that generation finished, so an interrupted run is regenerated, not trusted.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from pathlib import Path

# Directories the benchmark profile ignores; writes into them must never start a build.
IGNORED_DIRS = ("bundles", "node_modules", "_output")


def bench_cache() -> Path:
    base = os.environ.get("DEVLOOP_BENCH_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"), "devloop-bench"
    )
    return Path(base)


def generate(root: Path, files: int, *, ignored_files: int = 0, seed: int = 7, git: bool = False) -> Path:
    """A component checkout at `root` with `files` input files (about 20 per directory,
    directories nested three deep) and `ignored_files` spread over IGNORED_DIRS and .git/."""
    marker = root / ".bench-complete"
    want = f"{files} {ignored_files} {seed} {git}\n"
    if marker.exists() and marker.read_text() == want:
        return root
    if root.exists():
        shutil.rmtree(root)
    rng = random.Random(seed)
    per_dir = 20
    n_dirs = max(1, files // per_dir)
    (root / "pkg").mkdir(parents=True)
    written = 0
    for d in range(n_dirs):
        sub = root / "pkg" / f"m{d % 50:02d}" / f"p{(d // 50) % 40:02d}" / f"d{d}"
        sub.mkdir(parents=True, exist_ok=True)
        for f in range(per_dir):
            if written >= files - 3:
                break
            (sub / f"f{f}.go").write_bytes(rng.randbytes(rng.randint(200, 4000)))
            written += 1
    (root / "go.mod").write_text("module example.com/bench\n\ngo 1.21\n")
    (root / "Dockerfile").write_text("FROM scratch\nCOPY . /src\n")
    (root / "Makefile").write_text("all:\n\ttrue\n")
    for i in range(ignored_files):
        top = (*IGNORED_DIRS, ".git")[i % (len(IGNORED_DIRS) + 1)]
        sub = root / top / f"g{(i // 200) % 100:02d}" / f"h{i // 20000}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"o{i}").write_bytes(b"x" * 64)
    if git:
        shutil.rmtree(root / ".git", ignore_errors=True)
        env = {
            **os.environ,
            "GIT_AUTHOR_NAME": "bench",
            "GIT_AUTHOR_EMAIL": "b@e",
            "GIT_COMMITTER_NAME": "bench",
            "GIT_COMMITTER_EMAIL": "b@e",
        }
        (root / ".gitignore").write_text("".join(f"/{d}/\n" for d in IGNORED_DIRS))
        for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "bench tree"]):
            subprocess.run(["git", *args], cwd=root, env=env, check=True, timeout=600)
    marker.write_text(want)
    return root


def profile_yaml(workspace: Path, component_dir: str, build: str, *, name: str = "bench") -> str:
    """A devloop profile with one component over the generated tree."""
    ignore = "".join(f"  - {d}/\n" for d in IGNORED_DIRS)
    return (
        f"name: {name}\n"
        "cluster:\n  profile: devloop-bench\n"
        "namespace: bench\n"
        "components:\n"
        f"  - name: app\n    dir: {component_dir}\n    build: {build!r}\n    image: bench-app\n"
        "    replaces: [bench/app]\n"
        "manifests:\n  - yaml: manifests.yaml\n"
        f"ignore:\n{ignore}"
    )
