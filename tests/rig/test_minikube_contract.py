"""Contract tests: the stand-in against the real minikube, for every command that needs no cluster.

The same command runs against the real binary (built and cached by tests/rig/build-minikube) and against
the stand-in playing the same release (DEVRIG_MINIKUBE_VERSION), each in its own isolated home; stdout,
stderr and the exit code are compared whole, after normalising only what must differ: the sandbox's
path and CloudEvents ids. A release whose binary is not cached is skipped (under CI=true that fails for
the releases scripts/build-rig builds).
"""

from __future__ import annotations

import json
import re

import pytest
from minikube_oracle import STANDIN, Sandbox, json_lines, normalise, require_oracle

RELEASES = ("v1.36.0", "v1.37.0", "v1.38.0", "v1.38.1")


@pytest.fixture(params=RELEASES)
def pair(request, tmp_path_factory):
    """(real binary, two sandboxes: one for it, one for the stand-in) for one release."""
    version = request.param
    real = require_oracle(version)
    return real, Sandbox(tmp_path_factory.mktemp("real"), version), Sandbox(tmp_path_factory.mktemp("standin"), version)


def both(pair, *args, setup=None):
    real, real_box, standin_box = pair
    if setup:
        setup(real_box)
        setup(standin_box)
    a = real_box.run(real, *args)
    b = standin_box.run(STANDIN, *args)
    return (
        (a.code, normalise(a.stdout, real_box), normalise(a.stderr, real_box)),
        (b.code, normalise(b.stdout, standin_box), normalise(b.stderr, standin_box)),
    )


def assert_same(pair, *args, setup=None):
    real, standin = both(pair, *args, setup=setup)
    assert standin == real, f"minikube {' '.join(args)}: stand-in (code, stdout, stderr) differs from the real one"
    return real


# --- version -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args", [("version",), ("version", "-o", "json"), ("version", "-o", "yaml"), ("version", "--short")]
)
def test_version(pair, args):
    code, out, _ = assert_same(pair, *args)
    assert code == 0 and pair[1].version in out


# --- profile list ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("light", [(), ("-l",)])
def test_profile_list_empty(pair, light):
    code, out, _ = assert_same(pair, "profile", "list", "-o", "json", *light)
    assert (code, out) == (0, '{"invalid":[],"valid":[]}')


def _profile_dir_without_config(box: Sandbox) -> None:
    (box.minikube_dir / "profiles" / "halfmade").mkdir(parents=True, exist_ok=True)


@pytest.mark.parametrize("light", [(), ("-l",)])
def test_profile_list_dir_without_config_is_invalid_and_light_skips_it(pair, light):
    code, out, _ = assert_same(pair, "profile", "list", "-o", "json", *light, setup=_profile_dir_without_config)
    assert code == 0
    expected = (
        []
        if light
        else [{"Name": "halfmade", "Status": "", "Config": None, "Active": False, "ActiveKubeContext": False}]
    )
    assert json.loads(out)["invalid"] == expected


@pytest.mark.parametrize("light", [(), ("-l",)])
@pytest.mark.parametrize("profiles_dir", [True, False])
def test_profile_list_unreadable_kubeconfig_is_an_empty_error_object(pair, light, profiles_dir):
    """profile_list.go:242-245: a wrapped Go error marshals to {}: devloop must not read it as no error.
    ListProfiles reads the kubeconfig only once it found a profiles directory (a missing one is no error)."""

    def setup(box: Sandbox) -> None:
        box.kubeconfig.write_text("apiVersion: v1\nclusters: [\n")
        if profiles_dir:
            (box.minikube_dir / "profiles").mkdir(parents=True, exist_ok=True)

    code, out, _ = assert_same(pair, "profile", "list", "-o", "json", *light, setup=setup)
    errs = profiles_dir and not light
    assert (code, out) == ((80, '{"error":{}}') if errs else (0, '{"invalid":[],"valid":[]}'))


def _profile_without_control_plane(box: Sandbox) -> None:
    d = box.minikube_dir / "profiles" / "nocp"
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text(json.dumps({"Name": "nocp", "Driver": "docker", "Nodes": []}))


def test_profile_list_one_profile_without_control_plane_aborts_the_whole_list(pair):
    code, out, _ = assert_same(pair, "profile", "list", "-o", "json", setup=_profile_without_control_plane)
    assert code == 88
    [event] = json_lines(out)
    assert event["data"]["name"] == "GUEST_CP_CONFIG"


def test_profile_list_light_lists_it(pair):
    """Only names, status and flags are compared: the real binary re-marshals the whole ClusterConfig
    struct (every field, zero values included), the stand-in prints its config.json as saved."""
    real, standin = both(pair, "profile", "list", "-o", "json", "-l", setup=_profile_without_control_plane)
    assert real[0] == standin[0] == 0
    assert real[2] == standin[2] == ""

    def summary(text):
        body = json.loads(text)
        return body["invalid"], [(p["Name"], p["Status"], p["Active"], p["ActiveKubeContext"]) for p in body["valid"]]

    assert summary(standin[1]) == summary(real[1]) == ([], [("nocp", "Skipped", False, False)])


# --- a missing profile -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("status", "-p", "ghost", "-o", "json"),
        ("status", "-p", "ghost"),
        ("docker-env", "-p", "ghost", "--shell", "none"),
        ("docker-env", "-p", "ghost", "--shell", "bash"),
        ("ip", "-p", "ghost"),
    ],
)
def test_missing_profile(pair, args):
    code, out, _ = assert_same(pair, *args)
    assert code == 85
    if "-o" in args:
        assert [e["type"] for e in json_lines(out)] == ["io.k8s.sigs.minikube.info"] * 2


# --- start, up to the first driver work ------------------------------------------------------------------
# `start` is compared only while it validates: the banner, the environment, the --force warning, the
# Kubernetes version checks. Past them minikube selects a driver; --driver=hyperkit (not on Linux) makes
# both stop right there with DRV_UNSUPPORTED_OS, before anything touches a machine.


def _oldest_supported(version: str) -> str:
    return "v1.20.0" if version < "v1.37" else "v1.28.0"


@pytest.mark.parametrize("output", [(), ("-o", "json")])
def test_start_old_kubernetes(pair, output):
    code, out, err = assert_same(
        pair, "start", "-p", "ghost", "--kubernetes-version=v1.21.14", "--driver=hyperkit", *output
    )
    if _oldest_supported(pair[1].version) == "v1.28.0":
        assert code == 106
        assert (
            ("K8S_OLD_UNSUPPORTED" in out)
            if output
            else (
                "X Exiting due to K8S_OLD_UNSUPPORTED: Kubernetes 1.21.14 is not supported by this release of minikube"
                in err
            )
        )
    else:
        assert code == 56  # v1.36 supports 1.21: refused only for the driver


@pytest.mark.parametrize("output", [(), ("-o", "json")])
def test_start_forced_old_kubernetes_goes_on(pair, output):
    code, out, err = assert_same(
        pair, "start", "-p", "ghost", "--kubernetes-version=v1.21.14", "--driver=hyperkit", "--force", *output
    )
    assert code == 56  # past the version check: stopped by the driver
    if not output:
        assert (
            "! minikube skips various validations when --force is supplied; this may lead to unexpected behavior" in err
        )
        if _oldest_supported(pair[1].version) == "v1.28.0":
            assert "X Kubernetes 1.21.14 is not supported by this release of minikube\n" in err
            assert "Exiting due to K8S_OLD_UNSUPPORTED" not in err


def test_refused_start_leaves_an_invalid_profile(pair):
    """The events log of the refused start (profiles/ghost/events.json) makes the profile dir exist."""

    def refused_start(box: Sandbox) -> None:
        binary = pair[0] if box is pair[1] else STANDIN
        box.run(binary, "start", "-p", "ghost", "--kubernetes-version=v1.21.14", "--driver=hyperkit")

    code, out, _ = assert_same(pair, "profile", "list", "-o", "json", setup=refused_start)
    assert [p["Name"] for p in json.loads(out)["invalid"]] == ["ghost"]


@pytest.mark.parametrize(
    "args, code",
    [
        (("start", "-p", "a"), 14),  # profile name too short
        (("start", "-p", "ok", "--cpus=1", "--driver=hyperkit"), 56),
        (("start", "-p", "ok", "--kubernetes-version=banana"), 14),
        # the driver is refused (selectDriver) before the flags, the runtime among them, are validated
        (("start", "-p", "ok", "--container-runtime=gvisor", "--driver=hyperkit"), 56),
    ],
)
def test_start_validation(pair, args, code):
    assert assert_same(pair, *args)[0] == code


# --- usage errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [("status", "--bogus"), ("nonsense",), ("profile", "list", "-o", "xml")])
def test_usage_errors(pair, args):
    real, standin = both(pair, *args)
    assert standin[0] == real[0]
    # cobra prints the whole usage text; the stand-in has fewer flags: compare the first line only
    assert standin[2].splitlines()[:1] == real[2].splitlines()[:1]
    assert standin[1] == real[1]


# --- resources beyond the machine ------------------------------------------------------------------------
# Checked with the `none` driver on the real binary (validateFlags uses this machine's CPUs and memory
# for it; the docker driver would ask a dockerd the rig's host does not run) and the docker driver on the
# stand-in: the driver lines differ, the refusal block must not. Never with --force: a forced `none` start
# would go on to provision this very host.


@pytest.mark.parametrize("flag, code", [("--cpus=64", 29), ("--memory=9999999mb", 10)])
def test_resources_beyond_the_machine(pair, flag, code):
    real, real_box, standin_box = pair
    a = real_box.run(real, "start", "--driver=none", flag, "--kubernetes-version=v1.30.0")
    b = standin_box.run(STANDIN, "start", "--driver=docker", flag, "--kubernetes-version=v1.30.0")

    def block(stderr: str) -> list[str]:
        lines = stderr.splitlines()
        return lines[next(i for i, line in enumerate(lines) if line.startswith("X ")) :]

    assert (b.code, block(b.stderr)) == (a.code, block(a.stderr)) and a.code == code


# --- a profile whose host is gone ------------------------------------------------------------------------
# A saved config without a machine: what a failed start or a removed node container leaves. The real
# binary finds no container (the rig's host runs no dockerd); the stand-in no machine.


def _gone(box: Sandbox) -> None:
    d = box.minikube_dir / "profiles" / "gone"
    d.mkdir(parents=True, exist_ok=True)
    node = {
        "Name": "",
        "IP": "192.168.49.2",
        "Port": 8443,
        "KubernetesVersion": "v1.30.0",
        "ContainerRuntime": "docker",
        "ControlPlane": True,
        "Worker": True,
    }
    (d / "config.json").write_text(
        json.dumps(
            {
                "Name": "gone",
                "Driver": "docker",
                "Nodes": [node],
                "KubernetesConfig": {
                    "KubernetesVersion": "v1.30.0",
                    "ClusterName": "gone",
                    "ContainerRuntime": "docker",
                },
            }
        )
    )


@pytest.mark.parametrize("output", [("-o", "json"), ()])
def test_status_of_a_gone_host(pair, output):
    """`null` (JSON) or nothing (text); exit 7 from v1.38.0 (status.go:162-164), 0 before."""
    code, out, err = assert_same(pair, "status", "-p", "gone", *output, setup=_gone)
    assert code == (7 if pair[1].version >= "v1.38" else 0)
    assert out == ("null" if output else "")
    assert 'the "gone" host does not exist' in err


def _without_configs(text: str) -> dict:
    body = json.loads(text)
    for p in body["valid"]:
        p.pop("Config")  # the real binary re-marshals the whole ClusterConfig struct (every field)
    return body


def test_profile_list_with_a_gone_host(pair):
    """GetStatus fails: `Status` is "" (profileStatus sets Name "Unknown", not StatusName), klog says why."""
    real, standin = both(pair, "profile", "list", "-o", "json", setup=_gone)
    assert (standin[0], standin[2]) == (real[0], real[2])
    assert _without_configs(standin[1]) == _without_configs(real[1])
    assert [(p["Name"], p["Status"]) for p in _without_configs(real[1])["valid"]] == [("gone", "")]


# --- flags devloop passes --------------------------------------------------------------------------------
# The help layouts differ (the real binary prints `--flag=default:` and the text on the next line; the
# stand-in, cobra's one-line table), so each flag's default and text are compared, not the whole page.


def _flag_help(text: str, flag: str) -> tuple[str, str] | None:
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(rf"^\s+(?:-\w, )?--{flag}=(\S*?):?\s*$", line)
        if m:  # the real binary's layout
            return m[1], lines[i + 1].strip()
        m = re.match(rf"^\s+(?:-\w, )?--{flag}=(\S+)\s+(.*)$", line)
        if m:
            return m[1], m[2].strip()
    return None


@pytest.mark.parametrize("flag", ["feature-gates", "docker-env", "container-runtime"])
def test_start_help_has_the_flags_devloop_passes(pair, flag):
    real, real_box, standin_box = pair
    a = _flag_help(real_box.run(real, "start", "--help").stdout, flag)
    b = _flag_help(standin_box.run(STANDIN, "start", "--help").stdout, flag)
    assert a is not None, f"the real minikube {real_box.version} has no --{flag}"
    if flag == "container-runtime":  # the stand-in names the runtimes it has; the default must agree
        assert b is not None and b[0] == a[0]
    else:
        assert b == a
