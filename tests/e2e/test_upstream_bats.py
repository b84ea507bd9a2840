"""Kubeless's own tests as the measure: upstream's bats suites, unchanged, against the cluster `devloop up` made.

`devloop up` with the bundled profile over `make-workspace`'s output builds and runs the real controllers (as
test_upstream_function_call.py: the rig's function images, kubeless-config pointed at them, the controller
restarted; with CoreDNS built, a profile with cluster DNS). The `kubeless` CLI is built from the workspace's
checkout (devrig.kubeless_cli: `go build ./cmd/kubeless` as its Makefile does, cached). Then upstream's
tests/integration-tests.bats, -http, -cronjob and -prebuilt run from the checkout's root, as script/integration-
tests runs them (`bats tests/<file>`; they `load ../script/libtest` and call `make -sC examples ...`), with what
libtest expects: `TEST_CONTEXT` (the profile's kube context, also made current: the CLI has no --context),
`kubectl` (the rig's v1.21.14), `kubeless`, and `minikube` (the stand-in; a one-line wrapper on PATH adds
`-p devloop-kubeless`, what `minikube profile devloop-kubeless` would make the default). Debian's bats 1.8.2.

Every test is expected to pass or listed as not applicable here with its reason (EXPECT below); the run must
match exactly: a test that newly passes or newly fails fails this module with the difference. The n/a tests
that would sit out libtest's waits (300 polls, several minutes each) run under `BATS_TEST_TIMEOUT` =
DEVLOOP_BATS_NA_TIMEOUT (default 60 s; 0: libtest's own waits), long enough for a test that newly works.

Marker `upstream`; run with `scripts/test tests/e2e/test_upstream_bats.py -m upstream -x`.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from devrig import coredns, kubeless_cli
from support import run_devloop
from support.bats import NA, PASS, Expect, bats_test_names, compare, run_file, table
from support.upstream import PROFILE, gox_env, make_upstream_workspace, selected, use_rig_function_images

COLD_BUILD = 3600  # seconds; guards against hangs only
NA_TIMEOUT = int(os.environ.get("DEVLOOP_BATS_NA_TIMEOUT", "60"))

pytestmark = [
    pytest.mark.rig,
    pytest.mark.destructive,
    pytest.mark.upstream,
    pytest.mark.slow,
    pytest.mark.timeout(COLD_BUILD + 7200),
]

DEPS = "deps need PyPI inside the pod: the `install` init container runs pip install, no network leaves the profile"
NODE = "nodejs runtime: only python is built here (devrig.functions); kubeless-config's nodejs images cannot be pulled"
URL = (
    "deploys from https://raw.githubusercontent.com/kubeless/kubeless/<sha>/examples/...: the CLI fetches the URL "
    "to checksum it and the pod would curl it; no internet here"
)
HOST_INGRESS = (
    "ingress routing from the host: curl from the host to $(minikube ip), which the host cannot reach (only loopback "
    "forwards), through ingress-nginx, a busybox stand-in here that routes nothing and publishes no address"
)
BUILD = (
    "build step/registry: kubeless-config has no enable-build-step and the rig has no registry addon at "
    "$(minikube ip):5000 (issue 19 item 3)"
)

EXPECT: dict[str, list[Expect]] = {
    "integration-tests.bats": [
        Expect(
            "Deploy functions to evaluate",
            NA,
            "deploys all 17 functions in one test; it stops at get-python-url-deps: " + URL,
        ),
        Expect("Test function: get-python", PASS),
        Expect("Test function: get-python-deps", NA, DEPS, slow=True),
        Expect("Test function: get-python-deps-tar-gz", NA, DEPS, slow=True),
        Expect("Test function: get-python-deps-tar-bz2", NA, DEPS, slow=True),
        Expect("Test function: get-python-deps-tar-xz", NA, DEPS, slow=True),
        Expect("Test function: get-python-custom-port", PASS),
        Expect("Test function update: get-python", PASS),
        Expect("Test function update: get-python-deps", NA, DEPS, slow=True),
        Expect("Test function autoscale: get-python", PASS),
        Expect("Test function: timeout-nodejs", NA, NODE, slow=True),
        Expect("Test function: get-nodejs-multi", NA, NODE, slow=True),
        Expect(
            "Test custom runtime image",
            NA,
            "--runtime-image kubeless/get-python-example@sha256:...: a Docker Hub image, cannot be pulled here",
            slow=True,
        ),
        Expect("Test function: post-python", PASS),
        Expect("Test function: get-python-metadata", PASS),
        Expect("Test function: get-python-secrets", PASS),
        Expect("Test no-errors", PASS),
        Expect("Test function: get-python-url-deps", NA, "never deployed (see the first test): " + URL, slow=True),
        Expect("Test function: get-node-url-zip", NA, NODE + "; " + URL, slow=True),
        Expect("Test function: get-node-url-tar-gz", NA, NODE + "; " + URL, slow=True),
        Expect("Test function: get-node-url-tar-bz2", NA, NODE + "; " + URL, slow=True),
        Expect("Test function: get-node-url-tar-xz", NA, NODE + "; " + URL, slow=True),
    ],
    "integration-tests-http.bats": [
        Expect("Wait for Ingress", PASS),
        Expect("Create HTTP Trigger", NA, HOST_INGRESS, slow=True),
        Expect("Create HTTP Trigger with a path", NA, HOST_INGRESS, slow=True),
        Expect(
            "Create HTTP Trigger with TLS private key and certificate",
            NA,
            HOST_INGRESS + "; and TLS on 443, which the stand-in does not serve",
            slow=True,
        ),
        Expect(
            "Create HTTP Trigger with basic auth",
            NA,
            HOST_INGRESS + "; and nginx-only annotations (auth-type/auth-secret), which no stand-in honours",
            slow=True,
        ),
        Expect("Test no-errors", PASS),
    ],
    "integration-tests-cronjob.bats": [
        Expect("Create Cronjob Trigger", PASS),
        Expect("Test no-errors", PASS),
    ],
    "integration-tests-prebuilt.bats": [
        Expect("Ensure build step", NA, BUILD),
        Expect("Deploy a function using the build system", NA, BUILD, slow=True),
        Expect(
            "Deploy a Golang function using the build system",
            NA,
            BUILD + "; and the go1.14 runtime, which is not built here",
            slow=True,
        ),
        Expect("Test no-errors", PASS),
    ],
}


@pytest.fixture(scope="module", autouse=True)
def only_when_asked(request) -> None:
    if not selected(request.config):
        pytest.skip("the upstream-workspace tests run with `scripts/test upstream` (pytest -m upstream)")


@pytest.fixture(scope="module")
def upstream_workspace(tmp_path_factory) -> Path:
    return make_upstream_workspace(tmp_path_factory.mktemp("upstream-bats") / "workspace")


@pytest.fixture(scope="module")
def bats_env(cluster, upstream_workspace, tmp_path_factory) -> dict[str, str]:
    """The cluster as devloop up leaves it, the function images in, and what libtest.bash needs."""
    env = gox_env()
    if env.get("DEVRIG_COREDNS") != "1":
        pytest.fail(f"the cronjob suite needs cluster DNS: scripts/build-rig --with-coredns ({coredns.binary()})")
    t0 = time.monotonic()
    run = run_devloop("up", workspace=upstream_workspace, env=cluster.env, extra_env=env, timeout=COLD_BUILD)
    assert run.returncode == 0, run.tail()
    print(f"\ndevloop up over the upstream workspace: {time.monotonic() - t0:.0f}s")
    t1 = time.monotonic()
    images = use_rig_function_images(cluster)
    print(f"function images {images}, kubeless-config patched, controller restarted: {time.monotonic() - t1:.0f}s")
    t2 = time.monotonic()
    cli = kubeless_cli.build(upstream_workspace / "kubeless")
    print(f"kubeless CLI {cli} ({kubeless_cli.version(cli)}): {time.monotonic() - t2:.0f}s")

    bin_dir = tmp_path_factory.mktemp("bats-bin")
    (bin_dir / "kubeless").symlink_to(cli)
    minikube = subprocess.run(["which", "minikube"], env=cluster.env, capture_output=True, text=True).stdout.strip()
    assert minikube, "the minikube stand-in is not on PATH"
    (bin_dir / "minikube").write_text(f'#!/bin/sh\nexec {minikube} -p {PROFILE} "$@"\n')
    (bin_dir / "minikube").chmod(0o755)
    cluster.kubectl("config", "use-context", PROFILE)  # the CLI talks to the current context only
    return {
        **cluster.env,
        "PATH": f"{bin_dir}{os.pathsep}{cluster.env['PATH']}",
        "TEST_CONTEXT": PROFILE,
        "TERM": "dumb",
    }


@pytest.mark.parametrize("file", list(EXPECT))
def test_upstream_bats_suite(file, bats_env, upstream_workspace):
    checkout = upstream_workspace / "kubeless"
    bats_file = checkout / "tests" / file
    names = bats_test_names(bats_file)
    run = run_file(bats_file, EXPECT[file], cwd=checkout, env=bats_env, na_timeout=NA_TIMEOUT)
    print(f"\n{file}: {run.seconds:.0f}s\n" + table([(file, EXPECT[file], run.results)]))
    diffs = compare(file, names, EXPECT[file], run.results)
    assert not diffs, "\n".join(diffs) + "\n\n" + run.tap[-6000:]
