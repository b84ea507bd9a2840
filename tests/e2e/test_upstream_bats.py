"""Kubeless's own tests as the measure: upstream's bats suites, unchanged, against the cluster `devloop up` made.

`devloop up` with the bundled profile over `make-workspace`'s output builds and runs the real controllers (as
test_upstream_function_call.py: the rig's function images, kubeless-config pointed at them, the controller
restarted; with CoreDNS built, a profile with cluster DNS). The `kubeless` CLI is built from the workspace's
checkout (devrig.kubeless_cli: `go build ./cmd/kubeless` as its Makefile does, cached). Then upstream's
tests/integration-tests.bats, -http, -cronjob and -prebuilt run from the checkout's root, as script/integration-
tests runs them (`bats tests/<file>`; they `load ../script/libtest` and call `make -sC examples ...`), with what
libtest expects: `TEST_CONTEXT` (the profile's kube context, also made current: the CLI has no --context),
`kubectl` (the rig's v1.21.14), `kubeless` (one deviation: see kubeless_wrapper), and `minikube` (the stand-in; a one-line wrapper on PATH adds
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
import yaml

from devrig import coredns, kubeless_cli
from support import copy_workspace, run_devloop
from support.bats import NA, PASS, Expect, bats_test_names, compare, run_file, table
from support.upstream import PROFILE, UPSTREAM, gox_env, make_upstream_workspace, selected, use_rig_function_images

COLD_BUILD = 3600  # seconds; guards against hangs only
NA_TIMEOUT = int(os.environ.get("DEVLOOP_BATS_NA_TIMEOUT", "60"))
PULL_POLICY = os.environ.get("DEVLOOP_BATS_PULL_POLICY", "IfNotPresent")

pytestmark = [pytest.mark.rig, pytest.mark.destructive]
UPSTREAM_MARKS = [pytest.mark.upstream, pytest.mark.slow, pytest.mark.timeout(COLD_BUILD + 7200)]

DEPS = "deps need PyPI inside the pod: the `install` init container runs pip install, no network leaves the profile"
NODE = "nodejs runtime: only python is built here (devrig.functions); kubeless-config's nodejs images cannot be pulled"
URL = (
    "deploys from https://raw.githubusercontent.com/kubeless/kubeless/<sha>/examples/...: the CLI fetches the URL "
    "to checksum it and the pod would curl it; no internet here"
)
HOST_INGRESS = (
    "ingress routing from the host: curl from the host to $(minikube ip), which the host cannot reach (only loopback "
    "forwards), through ingress-nginx, a busybox stand-in here that routes nothing and publishes no address; and "
    "libtest's wait `kubectl get ingress | awk '{print $3}' | grep $ip` reads HOSTS in kubectl v1.21's columns "
    "(NAME CLASS HOSTS ADDRESS PORTS AGE), so it cannot end on this Kubernetes whatever the controller"
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
            HOST_INGRESS
            + "; and nginx-only annotations (auth-type/auth-secret), which no stand-in honours; it stops earlier "
            "at libtest's `htpasswd` (apache2-utils, not installed: it could not make this test pass)",
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


def kubeless_wrapper(cli: Path, pull_policy: str) -> str:
    """The CLI, with `--image-pull-policy PULL_POLICY` added to `function deploy|update` that name none.

    The CLI's default is `Always` (cmd/kubeless/function/deploy.go:299, update.go:239): the kubelet then pulls
    the runtime image on every pod start, from Docker Hub on Kubeless's CI. Here nothing can be pulled (no
    registry, no registry mirror on the test cluster), so with `Always` even the rig's local runtime image
    ends in ErrImagePull and no function would start. `IfNotPresent` is what a minikube user passes for images
    built into minikube's engine. No test's command or check changes otherwise; `DEVLOOP_BATS_PULL_POLICY=`
    (empty) runs the bare CLI."""
    if not pull_policy:
        return f'#!/bin/sh\nexec {cli} "$@"\n'
    return (
        "#!/bin/sh\n"
        f"# {kubeless_wrapper.__doc__.splitlines()[0]}\n"
        'case "$1 $2" in\n'
        '"function deploy" | "function update")\n'
        '  case " $* " in\n'
        '  *" --image-pull-policy"*) ;;\n'
        f'  *) exec {cli} "$@" --image-pull-policy {pull_policy} ;;\n'
        "  esac\n"
        "  ;;\n"
        "esac\n"
        f'exec {cli} "$@"\n'
    )


@pytest.fixture(scope="module")
def only_when_asked(request) -> None:
    if not selected(request.config):
        pytest.skip("the upstream-workspace tests run with `scripts/test upstream` (pytest -m upstream)")


@pytest.fixture(scope="module")
def upstream_workspace(tmp_path_factory) -> Path:
    return make_upstream_workspace(tmp_path_factory.mktemp("upstream-bats") / "workspace")


@pytest.fixture(scope="module")
def bats_env(only_when_asked, cluster, upstream_workspace, tmp_path_factory) -> dict[str, str]:
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
    (bin_dir / "kubeless").write_text(kubeless_wrapper(cli, PULL_POLICY))
    (bin_dir / "kubeless").chmod(0o755)
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


@pytest.mark.parametrize("file", [pytest.param(f, marks=UPSTREAM_MARKS) for f in EXPECT])
def test_upstream_bats_suite(file, bats_env, upstream_workspace):
    checkout = upstream_workspace / "kubeless"
    bats_file = checkout / "tests" / file
    names = bats_test_names(bats_file)
    run = run_file(bats_file, EXPECT[file], cwd=checkout, env=bats_env, na_timeout=NA_TIMEOUT)
    print(f"\n{file}: {run.seconds:.0f}s\n" + table([(file, EXPECT[file], run.results)]))
    diffs = compare(file, names, EXPECT[file], run.results)
    assert not diffs, "\n".join(diffs) + "\n\n" + run.tap[-6000:]


SMOKE_PROFILE = "devloop-bats-smoke"


def test_smoke_the_built_kubeless_cli_lists_functions_on_a_devloop_up_cluster(rig_handle, rig_env, tmp_path):
    """Default suite, no `upstream` marker: `devloop up` over the small fixture workspace (its own profile), the
    fixture's Functions applied, and the `kubeless` CLI built from the upstream checkout (make-workspace's copy;
    devrig.kubeless_cli, cached in the rig cache: about 70 s the first time, a lookup after) lists them as
    `kubeless function ls` does for libtest (kubeless_function_delete greps its output)."""
    t0 = time.monotonic()
    ws = copy_workspace(tmp_path / "workspace", minikube_profile=SMOKE_PROFILE)
    cluster = rig_handle(SMOKE_PROFILE)
    try:
        run = run_devloop("up", workspace=ws, profile=ws.parent / "profile.yaml", env=cluster.env, timeout=600)
        assert run.returncode == 0, run.tail()
        t1 = time.monotonic()
        upstream = tmp_path / "upstream"
        subprocess.run(
            [str(UPSTREAM / "make-workspace"), str(upstream)], check=True, capture_output=True, text=True, timeout=300
        )
        cli = kubeless_cli.build(upstream / "kubeless")
        t2 = time.monotonic()
        functions = [
            d for d in yaml.safe_load_all((ws / "custom-resources.yaml").read_text()) if d and d["kind"] == "Function"
        ]
        cluster.kubectl("apply", "-f", "-", input="---\n".join(yaml.safe_dump(d) for d in functions))
        cluster.kubectl("config", "use-context", SMOKE_PROFILE)  # the CLI has no --context
        for ns in sorted({fn["metadata"].get("namespace", "default") for fn in functions}):
            got = subprocess.run(
                [str(cli), "function", "ls", "-n", ns], env=cluster.env, capture_output=True, text=True, timeout=60
            )
            assert got.returncode == 0, got.stderr + got.stdout
            assert got.stdout.split()[:4] == ["NAME", "NAMESPACE", "HANDLER", "RUNTIME"], got.stdout
            rows = {line.split()[0]: line.split() for line in got.stdout.splitlines()[1:] if line.strip()}
            want = [fn for fn in functions if fn["metadata"].get("namespace", "default") == ns]
            assert sorted(rows) == sorted(fn["metadata"]["name"] for fn in want), got.stdout
            for fn in want:
                assert rows[fn["metadata"]["name"]][1:4] == [ns, fn["spec"]["handler"], fn["spec"]["runtime"]]
        print(
            f"\nup {t1 - t0:.0f}s, CLI {t2 - t1:.0f}s ({kubeless_cli.version(cli)}), "
            f"apply + function ls {time.monotonic() - t2:.1f}s"
        )
    finally:
        subprocess.run(["minikube", "delete", "-p", SMOKE_PROFILE], env=rig_env.env, capture_output=True, timeout=180)
