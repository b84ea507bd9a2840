"""The minikube stand-in's command line, outputs and exit codes, checked against research/minikube-cli.md.

These need no running cluster: they cover what minikube does before (or instead of) touching a machine.
The few that do (`rig_built`, `rig_profile_factory`) check what the command line decides on a machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from devrig.standin import versions

MINIKUBE = Path(__file__).resolve().parent / "bin" / "minikube"


def run(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """The stand-in as a user's script runs it: stdout/stderr captured (not a TTY)."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("MINIKUBE_IN_STYLE", None)
    return subprocess.run([str(MINIKUBE), *args], env=full_env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def home(tmp_path) -> dict:
    """A private MINIKUBE_HOME + KUBECONFIG per test, so profiles never leak between tests."""
    return {"MINIKUBE_HOME": str(tmp_path / "mk"), "KUBECONFIG": str(tmp_path / "kubeconfig")}


def missing() -> str:
    return f"nope-{uuid.uuid4().hex[:6]}"


# --- version ---------------------------------------------------------------------------------------------


def test_version_default_text_json_short(home):
    text = run("version", env=home)
    assert (text.returncode, text.stderr) == (0, "")
    assert text.stdout == "minikube version: v1.36.0\ncommit: f8f52f5de11fc6ad8244afac475e1d0f96841df1\n"
    js = run("version", "-o", "json", env=home)
    assert js.stdout == '{"commit":"f8f52f5de11fc6ad8244afac475e1d0f96841df1","minikubeVersion":"v1.36.0"}\n'
    assert list(json.loads(js.stdout)) == ["commit", "minikubeVersion"]
    assert run("version", "--short", env=home).stdout == "v1.36.0\n"


def test_version_switch_and_bad_output(home):
    out = run("version", "--short", env={**home, "DEVRIG_MINIKUBE_VERSION": "v1.38.1"})
    assert out.stdout == "v1.38.1\n"
    bad = run("version", "-o", "xml", env=home)
    assert bad.returncode == 10
    assert "X Exiting due to MK_OUTPUT_USAGE: error: --output must be 'yaml' or 'json'" in bad.stderr


# --- missing profile -------------------------------------------------------------------------------------


def test_status_missing_profile_text_is_85_on_stdout(home):
    p = missing()
    out = run("status", "-p", p, env=home)
    assert out.returncode == 85
    assert out.stdout == (
        f'* Profile "{p}" not found. Run "minikube profile list" to view all profiles.\n'
        f'  To start a cluster, run: "minikube start -p {p}"\n'
    )
    assert out.stderr == ""


def test_status_missing_profile_json_is_info_events(home):
    p = missing()
    out = run("status", "-p", p, "-o", "json", env=home)
    assert out.returncode == 85
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert [e["type"] for e in events] == ["io.k8s.sigs.minikube.info"] * 2
    assert list(events[0]) == ["specversion", "id", "source", "type", "datacontenttype", "data"]
    assert events[0]["source"] == "https://minikube.sigs.k8s.io/"
    assert events[0]["data"]["message"].endswith(
        f'Profile "{p}" not found. Run "minikube profile list" to view all profiles.'
    )


def test_default_profile_is_minikube_and_env_overrides(home):
    out = run("status", env=home)
    assert out.returncode == 85
    assert '"minikube" not found' in out.stdout and 'run: "minikube start"' in out.stdout
    out = run("status", env={**home, "MINIKUBE_PROFILE": "from-env"})
    assert '"from-env" not found' in out.stdout and '"minikube start -p from-env"' in out.stdout


def test_ip_missing_profile_is_85(home):
    out = run("ip", "-p", missing(), env=home)
    assert out.returncode == 85 and "not found" in out.stdout


def test_docker_env_missing_profile_prints_false_exit_code_when_captured(home):
    out = run("docker-env", "-p", missing(), env=home)
    assert out.returncode == 85
    assert out.stdout == "false exit code 85\n"  # stdout chatter silenced in shell-eval mode
    assert out.stderr == ""


def test_docker_env_unset_needs_no_profile(home):
    out = run("docker-env", "-p", missing(), "--unset", env={**home, "SHELL": "/bin/bash"})
    assert out.returncode == 0
    assert out.stdout == (
        "unset DOCKER_TLS_VERIFY;\nunset DOCKER_HOST;\nunset DOCKER_CERT_PATH;\n"
        "unset MINIKUBE_ACTIVE_DOCKERD;\nunset SSH_AUTH_SOCK;\nunset SSH_AGENT_PID;\n"
    )
    none = run("docker-env", "--unset", "--shell", "none", env=home)
    assert none.stdout == (
        "DOCKER_TLS_VERIFY\nDOCKER_HOST\nDOCKER_CERT_PATH\nMINIKUBE_ACTIVE_DOCKERD\nSSH_AUTH_SOCK\nSSH_AGENT_PID\n"
    )


def test_delete_missing_profile_succeeds_with_its_messages(home):
    p = missing()
    out = run("delete", "-p", p, env=home)
    assert out.returncode == 0
    assert out.stderr == f'* "{p}" profile does not exist, trying anyways.\n'
    assert out.stdout == f'* Removed all traces of the "{p}" cluster.\n'


def test_addons_list_missing_profile_is_all_empty(home):
    out = run("addons", "list", "-p", missing(), "-o", "json", env=home)
    assert out.returncode == 0
    data = json.loads(out.stdout)
    assert not out.stdout.endswith("\n")
    assert list(data) == sorted(data) and "ingress" in data
    assert all(v == {} for v in data.values())


def test_addons_enable_missing_profile_is_85(home):
    out = run("addons", "enable", "ingress", "-p", missing(), env=home)
    assert out.returncode == 85


def test_profile_list_json_without_profiles(home):
    out = run("profile", "list", "-o", "json", env=home)
    assert (out.returncode, out.stdout) == (0, '{"invalid":[],"valid":[]}')
    table = run("profile", "list", env=home)
    assert table.returncode == 14
    assert "X Exiting due to MK_USAGE_NO_PROFILE: No minikube profile was found." in table.stderr


# --- usage errors (cobra) --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        (("bogus",), 'Error: unknown command "bogus" for "minikube"'),
        (("start", "--bogus"), "Error: unknown flag: --bogus"),
        (("status", "-Z"), "Error: unknown shorthand flag: 'Z' in -Z"),
        (("status", "-p"), "Error: flag needs an argument: 'p' in -p"),
        (("start", "--force=maybe"), 'Error: invalid argument "maybe" for "--force" flag'),
    ],
)
def test_usage_errors_exit_14_on_stderr(home, argv, message):
    out = run(*argv, env=home)
    assert out.returncode == 14
    assert out.stderr.startswith(message)
    assert out.stdout == ""


def test_help_explains_the_stand_in_and_its_ip(home):
    out = run("--help", env=home)
    assert out.returncode == 0
    assert "stand-in" in out.stdout.lower() and "127.0.0.1" in out.stdout and "192.168.49.2" in out.stdout


# --- start validation (before any machine is touched) ----------------------------------------------------


def test_start_bad_profile_name_is_usage(home):
    out = run("start", "-p", "x", env=home)
    assert out.returncode == 14
    assert "! Profile name 'x' is not valid" in out.stderr
    assert (
        "X Exiting due to MK_USAGE: Only alphanumeric and dashes '-' are permitted. Minimum 2 characters, "
        "starting with alphanumeric."
    ) in out.stderr


def test_start_too_few_cpus_and_too_little_memory(home):
    cpus = run("start", "-p", missing(), "--cpus=1", env=home)
    assert cpus.returncode == 29
    assert (
        "X Exiting due to RSRC_INSUFFICIENT_CORES: Requested cpu count 1 is less than the minimum allowed of 2"
        in cpus.stderr
    )
    mem = run("start", "-p", missing(), "--memory=1g", env=home)
    assert mem.returncode == 23
    assert "RSRC_INSUFFICIENT_REQ_MEMORY: Requested memory allocation 1024MiB" in mem.stderr


def test_start_unsupported_driver(home):
    out = run("start", "-p", missing(), "--driver=hyperkit", env=home)
    assert out.returncode == 56
    assert "X Exiting due to DRV_UNSUPPORTED_OS: The driver 'hyperkit' is not supported on linux/amd64" in out.stderr


def test_v138_refuses_kubernetes_1_21_with_106(home):
    p = missing()
    out = run("start", "-p", p, "--kubernetes-version=v1.21.14", env={**home, "DEVRIG_MINIKUBE_VERSION": "v1.38.1"})
    assert out.returncode == 106
    lines = out.stderr.splitlines()
    assert lines == [
        "! Specified Kubernetes version 1.21.14 is less than the oldest supported version: v1.28.0. Use "
        "`minikube config defaults kubernetes-version` for details.",
        "! You can force an unsupported Kubernetes version via the --force flag",
        "X Exiting due to K8S_OLD_UNSUPPORTED: Kubernetes 1.21.14 is not supported by this release of minikube",
    ]
    assert out.stdout.startswith(f"* [{p}] minikube v1.38.1 on ")
    # as minikube: the start's events log exists, the profile's config does not (profile list: invalid)
    profile_dir = Path(home["MINIKUBE_HOME"]) / ".minikube" / "profiles" / p
    assert sorted(f.name for f in profile_dir.iterdir()) == ["events.json"]


def test_v138_start_json_ends_with_error_event(home):
    out = run(
        "start",
        "-p",
        missing(),
        "--kubernetes-version=v1.21.14",
        "-o",
        "json",
        env={**home, "DEVRIG_MINIKUBE_VERSION": "v1.38.1"},
    )
    assert out.returncode == 106
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert events[0]["type"] == "io.k8s.sigs.minikube.step"
    last = events[-1]
    assert last["type"] == "io.k8s.sigs.minikube.error"
    assert last["data"]["exitcode"] == "106" and last["data"]["name"] == "K8S_OLD_UNSUPPORTED"
    assert [e["type"] for e in events[-3:-1]] == ["io.k8s.sigs.minikube.warning"] * 2


def test_v136_oldest_supported_is_1_20(home):
    rel = versions.current()
    assert (rel.version, rel.oldest_k8s) == ("v1.36.0", "v1.20.0")
    out = run("start", "-p", missing(), "--kubernetes-version=v1.19.16", env=home)
    assert out.returncode == 106
    assert "oldest supported version: v1.20.0" in out.stderr


def test_start_refuses_a_version_the_rig_has_not_built(home):
    out = run("start", "-p", missing(), "--kubernetes-version=v1.22.17", env=home)
    assert out.returncode == 100
    assert "X Exiting due to K8S_INSTALL_FAILED: Failed to update cluster:" in out.stderr
    assert "the test rig has no Kubernetes v1.22.17 binaries" in out.stderr
    assert "scripts/build-rig" in out.stderr
    assert "If the above advice does not help, please let us know:" in out.stderr  # exit.Error's issue box


def test_fail_start_switch(home, rig_built):
    p = missing()
    out = run("start", "-p", p, "--kubernetes-version=v1.21.14", env={**home, "DEVRIG_FAIL_START": "1"})
    assert out.returncode == 80
    assert f'* Failed to start docker container. Running "minikube delete -p {p}" may fix it:' in out.stderr
    assert "X Exiting due to GUEST_PROVISION: error provisioning guest: Failed to start host:" in out.stderr
    # as with minikube, the profile was saved before the host failed; its host does not exist
    status = run("status", "-p", p, "-o", "json", env=home)
    assert (status.returncode, status.stdout) == (0, "null")  # v1.36: exit 0 with null (fixed in v1.38)
    v138 = run("status", "-p", p, "-o", "json", env={**home, "DEVRIG_MINIKUBE_VERSION": "v1.38.1"})
    assert (v138.returncode, v138.stdout) == (7, "null")
    assert run("delete", "-p", p, env=home).returncode == 0
    assert run("status", "-p", p, env=home).returncode == 85


def test_force_carries_on_past_the_old_version_error(home, rig_built):
    out = run(
        "start",
        "-p",
        missing(),
        "--kubernetes-version=v1.21.14",
        "--force",
        env={**home, "DEVRIG_MINIKUBE_VERSION": "v1.38.1", "DEVRIG_FAIL_START": "1"},
    )
    assert "! You can force an unsupported Kubernetes version" not in out.stderr
    # exitIfNotForced under --force: out.Error's block, without "Exiting due to" (checked against the real
    # binary in test_minikube_contract.py)
    lines = out.stderr.splitlines()
    assert lines[0] == (
        "! minikube skips various validations when --force is supplied; this may lead to unexpected behavior"
    )
    assert "X Kubernetes 1.21.14 is not supported by this release of minikube" in lines
    assert "Exiting due to K8S_OLD_UNSUPPORTED" not in out.stderr
    assert f"! {versions.RUNTIME_CHANGE_WARNING}" in lines
    assert out.returncode == 80  # it went on to create the host (which the fault switch failed)


# --- addons enable --images / --registries (assets/addons.go SelectAndPersistImages, parseMapString) --------------


def _saved_profile(home: dict, profile: str) -> Path:
    """A profile minikube saved whose host does not exist (as after a failed start): enable persists and warns."""
    path = Path(home["MINIKUBE_HOME"]) / ".minikube" / "profiles" / profile / "config.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"Name": profile, "KubernetesConfig": {"ImageRepository": ""}, "Nodes": []}))
    return path


def test_addon_images_and_registries_are_parsed_warned_and_saved_like_minikube(home):
    p = missing()
    config = _saved_profile(home, p)
    env = {**home, "DEVRIG_ADDON_WAIT_TIMEOUT": "0.2"}
    out = run(
        "addons",
        "enable",
        "ingress",
        "-p",
        p,
        "--images=IngressController=local/ingress-nginx-controller:dev,Controller=x:1,bad,KubeWebhookCertgenPatch=",
        "--registries=KubeWebhookCertgenCreate=mirror.example:5000,Nope=r.example",
        env=env,
    )
    # never an error: minikube warns and goes on with its own image for what it ignored
    for line in (
        "! Ignoring invalid pair entry bad",
        "! Ignoring empty custom image KubeWebhookCertgenPatch",
        "! Ignoring unknown custom image Controller",
        "! Ignoring unknown custom registry Nope",
    ):
        assert line in out.stderr.splitlines(), out.stderr
    assert "waiting for app.kubernetes.io/name=ingress-nginx pods" in out.stderr  # no host: verify polls in vain
    saved = json.loads(config.read_text())
    assert saved["CustomAddonImages"] == {"IngressController": "local/ingress-nginx-controller:dev"}
    assert saved["CustomAddonRegistries"] == {"KubeWebhookCertgenCreate": "mirror.example:5000"}

    # a later enable merges into what was saved; `Name=` is minikube's default registry again
    run("addons", "enable", "ingress", "-p", p, "--registries=KubeWebhookCertgenCreate=", env=env)
    saved = json.loads(config.read_text())
    assert saved["CustomAddonImages"] == {"IngressController": "local/ingress-nginx-controller:dev"}
    assert saved["CustomAddonRegistries"] == {"KubeWebhookCertgenCreate": ""}


def test_addon_image_references_follow_minikubes_template():
    from devrig.standin import addon_images

    release = versions.current()
    defaults, registries = addon_images.ingress_defaults(release)
    certgen = release.ingress_images[1]

    def refs(cfg: dict, custom_registries: dict) -> dict:
        return addon_images.resolve(cfg, defaults | cfg.get("CustomAddonImages", {}), registries, custom_registries)

    assert refs({}, {}) == dict(zip(defaults, (release.ingress_images[0], certgen, certgen)))
    # a custom image drops the addon's registry: used exactly as given
    local = {"CustomAddonImages": {"IngressController": "local/ingress-nginx-controller:dev"}}
    assert refs(local, {})["IngressController"] == "local/ingress-nginx-controller:dev"
    assert refs(local, {"IngressController": ""})["IngressController"] == "local/ingress-nginx-controller:dev"
    # ...but a custom registry (saved by an earlier enable) or --image-repository prefixes it
    assert (
        refs(local, {"IngressController": "m.example"})["IngressController"]
        == "m.example/local/ingress-nginx-controller:dev"
    )
    repo = {**local, "KubernetesConfig": {"ImageRepository": "repo.example"}}
    assert (
        refs(repo, {"IngressController": ""})["IngressController"] == "repo.example/local/ingress-nginx-controller:dev"
    )
    # a mirror for minikube's own image
    mirror = refs({}, {"KubeWebhookCertgenCreate": "mirror.example:5000/"})
    assert mirror["KubeWebhookCertgenCreate"] == certgen.replace("registry.k8s.io", "mirror.example:5000")
    assert mirror["KubeWebhookCertgenPatch"] == certgen


def test_the_addons_objects_run_the_given_images(rig_profile_factory):
    """A local image (as an air-gapped user loads it) and a mirror of minikube's own: the Deployment and both Jobs
    get the references minikube's template writes, and the pods run."""
    c = rig_profile_factory()
    c.minikube("addons", "enable", "ingress", check=True, timeout=600)  # minikube's images: now in the node
    controller, certgen = versions.current().ingress_images
    c.docker("tag", controller, "local/ingress-nginx-controller:dev")
    out = c.minikube(
        "addons",
        "enable",
        "ingress",
        "--images=IngressController=local/ingress-nginx-controller:dev",
        "--registries=IngressController=,KubeWebhookCertgenPatch=mirror.example:5000",
        check=True,
        timeout=600,
    )
    assert "  - Using image local/ingress-nginx-controller:dev" in out.stdout.splitlines(), out.stdout
    mirrored = certgen.replace("registry.k8s.io", "mirror.example:5000")
    assert f"  - Using image {mirrored}" in out.stdout.splitlines()
    deployment = c.kubectl_json("get", "deployment", "-n", "ingress-nginx", "ingress-nginx-controller")
    assert [k["image"] for k in deployment["spec"]["template"]["spec"]["containers"]] == [
        "local/ingress-nginx-controller:dev"
    ]
    jobs = {
        j["metadata"]["name"]: j["spec"]["template"]["spec"]["containers"][0]["image"]
        for j in c.kubectl_json("get", "jobs", "-n", "ingress-nginx")["items"]
    }
    assert jobs == {"ingress-nginx-admission-create": certgen, "ingress-nginx-admission-patch": mirrored}
    pods = c.kubectl_json("get", "pods", "-n", "ingress-nginx", "-l", "app.kubernetes.io/component=controller")
    assert {p["spec"]["containers"][0]["image"] for p in pods["items"] if p["status"]["phase"] == "Running"} >= {
        "local/ingress-nginx-controller:dev"
    }
