"""The upstream Kubeless workspace and its functions, shared by the modules that run devloop over it.

- `make_upstream_workspace(dest)`: `make-workspace`'s copies of the checkouts in ../shared/upstream, the released
  kubeless.yaml (what `make all-yaml` writes) and cronjob-trigger's vendored packages upstream's git never had;
- `gox_env()`: the environment `devloop up` over it needs (the Makefiles' gox, a node network, cluster DNS when
  CoreDNS is built);
- `use_rig_function_images(cluster)`: the rig's provision and python runtime images into the profile's engine,
  kubeless-config pointed at them, the controller restarted (it reads its config only at start) and ready.

(test_upstream_function_call.py and test_upstream_kubeless.py do the same steps inline; this is that code, shared
through support/ rather than imported from a test module.)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from devrig import coredns, functions
from devrig import paths as rig_paths
from support.waits import wait_until

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
UPSTREAM = SHARED / "upstream"
FIXTURES = SHARED / "fixtures" / "kubeless"
PROFILE = "devloop-kubeless"  # the bundled profile's minikube profile
NS = "kubeless"
DEPLOY = "kubeless-controller-manager"


def selected(config) -> bool:
    """The `upstream` marker was asked for (-m upstream) or DEVLOOP_UPSTREAM=1."""
    return "upstream" in (config.getoption("-m") or "") or os.environ.get("DEVLOOP_UPSTREAM") == "1"


def make_upstream_workspace(dest: Path) -> Path:
    subprocess.run(
        [str(UPSTREAM / "make-workspace"), str(dest)], check=True, capture_output=True, text=True, timeout=300
    )
    shutil.copy(FIXTURES / "kubeless.yaml", dest / "kubeless" / "kubeless.yaml")  # what `make all-yaml` writes
    restore_ignored_vendor_packages(dest / "cronjob-trigger")
    return dest


def restore_ignored_vendor_packages(checkout: Path) -> list[str]:
    """Put back the vendored packages upstream's git never had: cronjob-trigger's .gitignore rule `[Ll]og/`
    kept vendor/github.com/emicklei/go-restful/log and vendor/google.golang.org/appengine/internal/log out of
    the repository, so a clean clone fails `-mod=vendor` ("cannot find module providing package"). They come
    from the module those lines name, at the version vendor/modules.txt pins, and stay ignored (`git describe
    --dirty` is unaffected). The same repair as test_upstream_kubeless.py's."""
    modules, restored = {}, []
    module = None
    for line in (checkout / "vendor" / "modules.txt").read_text().splitlines():
        if line.startswith("# "):
            name, _, version = line[2:].partition(" ")
            module = (name, version.split(" ")[0])
        elif line and not line.startswith("#") and module:
            modules[line] = module
    for package, (name, version) in sorted(modules.items()):
        target = checkout / "vendor" / package
        if target.is_dir():
            continue
        got = subprocess.run(
            ["go", "mod", "download", "-json", f"{name}@{version}"],
            cwd=checkout.parent,
            capture_output=True,
            text=True,
            timeout=300,
            env=dict(os.environ, GOFLAGS="-mod=mod"),
        )
        assert got.returncode == 0, got.stderr + got.stdout
        source = Path(json.loads(got.stdout)["Dir"]) / package.removeprefix(name).lstrip("/")
        target.mkdir(parents=True)
        for f in source.iterdir():
            if f.is_file():
                shutil.copy(f, target / f.name)
        restored.append(package)
    return restored


def gox_env() -> dict[str, str]:
    """gox on PATH, a node network, cluster DNS when CoreDNS is built (`scripts/build-rig --with-coredns`)."""
    gox = rig_paths.cache_dir() / "bin" / "gox"
    if not os.access(gox, os.X_OK):
        pytest.fail(f"gox is not installed at {gox}; run scripts/build-rig")
    env = {"PATH": f"{gox.parent}{os.pathsep}{os.environ['PATH']}", "DEVRIG_NETWORK": "netns"}
    # the bundled runtime-python's base before the rig's Python image is in the engine (the first up makes the
    # engine); kubeless-config is pointed at functions.PYTHON_IMAGE afterwards (as test_upstream_function_call)
    env["KUBELESS_PYTHON_BASE"] = "bitnami/minideb:jessie"
    if os.access(coredns.binary(), os.X_OK):
        env["DEVRIG_COREDNS"] = "1"
    return env


def controller_running(cluster) -> bool:
    pods = cluster.kubectl_json("get", "pods", "-n", NS, "-l", "kubeless=controller")["items"]
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    return len(live) == 1 and all(c.get("ready") for c in live[0]["status"].get("containerStatuses", [{}]))


def use_rig_function_images(cluster) -> dict[str, str]:
    """devrig.functions' images into the engine, kubeless-config's `provision-image` and python `runtime-images`
    pointed at them, the controller restarted and ready. Returns the images."""
    images = functions.ensure_images({**cluster.env, **cluster.docker_env(), "DOCKER_BUILDKIT": "0"})
    config = cluster.kubectl_json("get", "configmap", "kubeless-config", "-n", NS)
    overrides = functions.kubeless_config_overrides(config["data"])
    cluster.kubectl(
        "patch", "configmap", "kubeless-config", "-n", NS, "--type", "merge", "-p", json.dumps({"data": overrides})
    )
    cluster.kubectl("rollout", "restart", "deployment", DEPLOY, "-n", NS)  # config is read only at start
    cluster.kubectl("rollout", "status", "deployment", DEPLOY, "-n", NS, "--timeout=300s", timeout=320)
    wait_until(lambda: controller_running(cluster), 120, "the restarted controllers to be ready")
    return images
