"""minikube's outputs as the CLI contract (shared/research/minikube-cli.md) documents them."""

from __future__ import annotations

import json

import pytest

from devloop.adapters.minikube import cli as mk
from devloop.adapters.proc import Completed
from devloop.base.errors import ClusterError, ConfigError

P = "devloop-kubeless"


def _event(kind: str, message: str, **extra) -> str:
    data = {"message": message, **extra}
    return json.dumps(
        {
            "specversion": "1.0",
            "id": "b1d2",
            "source": "https://minikube.sigs.k8s.io/",
            "type": f"io.k8s.sigs.minikube.{kind}",
            "datacontenttype": "application/json",
            "data": data,
        }
    )


# -- status -----------------------------------------------------------------------------------

RUNNING = '{"Name":"devloop-kubeless","Host":"Running","Kubelet":"Running","APIServer":"Running","Kubeconfig":"Configured","Worker":false}'
STOPPED = '{"Name":"devloop-kubeless","Host":"Stopped","Kubelet":"Stopped","APIServer":"Stopped","Kubeconfig":"Stopped","Worker":false}'
PAUSED = '{"Name":"devloop-kubeless","Host":"Running","Kubelet":"Stopped","APIServer":"Paused","Kubeconfig":"Configured","Worker":false}'


def test_status_running_without_trailing_newline():
    status = mk.parse_status(RUNNING, 0)
    assert status.running and status.state == "Running"
    assert (status.host, status.kubelet, status.apiserver, status.kubeconfig) == (
        "Running",
        "Running",
        "Running",
        "Configured",
    )
    assert status.name == P


def test_status_stopped_exit_7():
    status = mk.parse_status(STOPPED, 7)
    assert status.state == "Stopped" and not status.running


def test_status_paused_exit_2():
    assert mk.parse_status(PAUSED, 2).state == "Paused"


def test_status_missing_profile_exit_85_with_cloudevents():
    out = "\n".join(
        [
            _event("info", 'Profile "devloop-kubeless" not found. Run "minikube profile list" to view all profiles.'),
            _event("info", 'To start a cluster, run: "minikube start -p devloop-kubeless"'),
        ]
    )
    status = mk.parse_status(out, 85)
    assert status.missing and status.state == "Missing"
    assert "not found" in status.detail


@pytest.mark.parametrize("code", [0, 7])  # 0 on v1.35-v1.37 (bug), 7 on v1.38+
def test_status_null_is_not_host_gone_whatever_the_exit_code(code):
    # issue 18 F5: GetStatus returns nil (printed `null`) for a missing host AND for any failed check
    # (cluster/status.go:168-187), so `null` cannot say which: Unknown, never Missing
    status = mk.parse_status("null", code)
    assert status.state == "Unknown" and not status.missing and not status.running
    assert "host is gone" not in status.detail and "--alsologtostderr" in status.detail


def test_status_empty_output_is_missing():
    assert mk.parse_status("", 7).state == "Missing"


def test_status_old_minikube_nonexistent_fields():
    out = (
        '{"Name":"p","Host":"Nonexistent","Kubelet":"Nonexistent","APIServer":"Nonexistent","Kubeconfig":"Nonexistent"}'
    )
    assert mk.parse_status(out, 7).state == "Missing"


def test_status_exit_code_alone_is_not_trusted():
    # Running JSON with a non-zero mask (e.g. kubeconfig bit) is still a running cluster.
    status = mk.parse_status(RUNNING.replace("Configured", "Misconfigured"), 4)
    assert status.running
    assert "Misconfigured" in status.detail


def test_status_apiserver_down_on_running_host_is_not_running():
    out = RUNNING.replace('"APIServer":"Running"', '"APIServer":"Stopped"')
    status = mk.parse_status(out, 2)
    assert not status.running
    assert status.state == "Error"
    assert "apiserver: Stopped" in status.detail


def test_status_multinode_array_uses_primary():
    worker = '{"Name":"p-m02","Host":"Stopped","Kubelet":"Stopped","Worker":true}'
    status = mk.parse_status(f"[{RUNNING},{worker}]", 0)
    assert status.running and status.name == P


def test_status_error_event_without_payload():
    out = _event("error", "unable to get status", exitcode=80, name="GUEST_STATUS")
    status = mk.parse_status(out, 80)
    assert status.state == "Error" and "unable to get status" in status.detail


# -- docker-env -------------------------------------------------------------------------------

DOCKER_ENV_JSON = (
    '{"DOCKER_CERT_PATH":"/root/.minikube/certs","DOCKER_HOST":"tcp://192.168.49.2:2376",'
    '"DOCKER_TLS_VERIFY":"1","MINIKUBE_ACTIVE_DOCKERD":"devloop-kubeless","SSH_AGENT_PID":"","SSH_AUTH_SOCK":""}\n'
)
EXPECTED_ENV = {
    "DOCKER_CERT_PATH": "/root/.minikube/certs",
    "DOCKER_HOST": "tcp://192.168.49.2:2376",
    "DOCKER_TLS_VERIFY": "1",
    "MINIKUBE_ACTIVE_DOCKERD": "devloop-kubeless",
}


def test_docker_env_json_drops_empty_ssh_keys():
    assert mk.parse_docker_env(DOCKER_ENV_JSON) == EXPECTED_ENV


def test_docker_env_json_keeps_set_ssh_keys():
    out = DOCKER_ENV_JSON.replace('"SSH_AGENT_PID":""', '"SSH_AGENT_PID":"29228"')
    assert mk.parse_docker_env(out)["SSH_AGENT_PID"] == "29228"


def test_docker_env_shell_none():
    out = (
        "DOCKER_TLS_VERIFY=1\nDOCKER_HOST=tcp://192.168.49.2:2376\n"
        "DOCKER_CERT_PATH=/root/.minikube/certs\nMINIKUBE_ACTIVE_DOCKERD=devloop-kubeless\n"
    )
    assert mk.parse_docker_env(out) == EXPECTED_ENV


def test_docker_env_bash_with_hint_and_comments():
    out = """export DOCKER_TLS_VERIFY="1"
export DOCKER_HOST="tcp://127.0.0.1:32842"
export DOCKER_CERT_PATH="/certs"
export MINIKUBE_ACTIVE_DOCKERD="dockerdriver"

# To point your shell to minikube's docker-daemon, run:
# eval $(minikube -p dockerdriver docker-env)
"""
    assert mk.parse_docker_env(out) == {
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_HOST": "tcp://127.0.0.1:32842",
        "DOCKER_CERT_PATH": "/certs",
        "MINIKUBE_ACTIVE_DOCKERD": "dockerdriver",
    }


def test_docker_env_ignores_false_exit_code_noise():
    assert mk.parse_docker_env("false exit code 85\n") == {}


# -- version, addons, profile list --------------------------------------------------------------


def test_version_json():
    v = mk.parse_version('{"commit":"f8f52f5de11fc6ad8244afac475e1d0f96841df1","minikubeVersion":"v1.36.0"}\n')
    assert v.version == "v1.36.0" and v.commit.startswith("f8f52f5")
    assert v.as_tuple == (1, 36, 0)


def test_version_text_and_unset():
    v = mk.parse_version("minikube version: v1.38.1\ncommit: abc\n")
    assert v.as_tuple == (1, 38, 1) and v.commit == "abc"
    assert not mk.MinikubeVersion("v0.0.0-unset").known


def test_addons_list_json_no_trailing_newline():
    out = (
        '{"ambassador":{"Profile":"p","Status":"disabled"},"ingress":{"Profile":"p","Status":"enabled"},'
        '"metrics-server":{"Profile":"p","Status":"disabled"}}'
    )
    assert mk.parse_addons(out) == {"ambassador": False, "ingress": True, "metrics-server": False}


def test_addons_list_missing_profile_values_are_empty():
    assert mk.parse_addons('{"ingress":{},"dashboard":{}}') == {"dashboard": False, "ingress": False}


PROFILE_LIST = {
    "invalid": [],
    "valid": [
        {
            "Name": P,
            "Status": "OK",
            "Config": {
                "Driver": "docker",
                "KubernetesConfig": {"KubernetesVersion": "v1.21.14", "ClusterName": P},
                "Nodes": [
                    {
                        "Name": "",
                        "IP": "192.168.49.2",
                        "Port": 8443,
                        "KubernetesVersion": "v1.21.14",
                        "ContainerRuntime": "docker",
                        "ControlPlane": True,
                        "Worker": True,
                    },
                    {"Name": "m02", "IP": "192.168.49.3", "Port": 0, "ControlPlane": False, "Worker": True},
                ],
            },
            "Active": False,
            "ActiveKubeContext": True,
        }
    ],
}


def test_profile_list_and_endpoint():
    parsed = mk.parse_profile_list(json.dumps(PROFILE_LIST))
    assert [p["Name"] for p in parsed["valid"]] == [P]
    assert mk.primary_endpoint(parsed["valid"][0]) == ("192.168.49.2", 8443)


def test_profile_list_empty_and_error():
    assert mk.parse_profile_list('{"invalid":[],"valid":[]}') == {"invalid": [], "valid": []}
    with pytest.raises(ClusterError, match="boom"):
        mk.parse_profile_list('{"error":"boom"}')


# -- exit reasons -----------------------------------------------------------------------------

K8S_OLD = """! Specified Kubernetes version 1.21.14 is less than the oldest supported version: v1.28.0. Use `minikube config defaults kubernetes-version` for details.
! You can force an unsupported Kubernetes version via the --force flag
X Exiting due to K8S_OLD_UNSUPPORTED: Kubernetes 1.21.14 is not supported by this release of minikube
"""


def test_find_exit_reason_low_fi_and_emoji():
    reason, line = mk.find_exit_reason(K8S_OLD)
    assert reason == "K8S_OLD_UNSUPPORTED"
    assert (
        line == "X Exiting due to K8S_OLD_UNSUPPORTED: Kubernetes 1.21.14 is not supported by this release of minikube"
    )
    reason, _ = mk.find_exit_reason(
        "\u274c  Exiting due to GUEST_DRIVER_MISMATCH: The existing cluster was created with another driver"
    )
    assert reason == "GUEST_DRIVER_MISMATCH"


def test_reason_for_exit_code():
    assert "ENV_DRIVER_CONFLICT" in mk.reason_for_exit_code(51)
    assert mk.reason_for_exit_code(250) == "exit code 250"


# -- version support --------------------------------------------------------------------------


def test_minikube_136_runs_kubernetes_121_without_force():
    assert mk.needs_force(mk.MinikubeVersion("v1.36.0"), "v1.21.14", allow_force=False) is False


def test_minikube_137_needs_force_when_allowed():
    assert mk.needs_force("v1.37.0", "v1.21.14", allow_force=True) is True


def test_minikube_138_refuses_and_names_the_profile_key():
    with pytest.raises(ConfigError) as info:
        mk.needs_force("v1.38.1", "v1.21.14", allow_force=False)
    text = str(info.value)
    assert "cluster.allow_unsupported_kubernetes" in text
    assert "v1.28.0" in text and "K8S_OLD_UNSUPPORTED" in text


def test_new_kubernetes_on_new_minikube_needs_nothing():
    assert mk.needs_force("v1.38.1", "v1.30.0", allow_force=False) is False


def test_too_old_even_for_136():
    with pytest.raises(ConfigError, match="v1.20.0"):
        mk.needs_force("v1.36.0", "v1.19.4", allow_force=False)


# -- the class with a recorded run --------------------------------------------------------------


class FakeRun:
    def __init__(self, *results: tuple[int, str, str]):
        self.results = list(results)
        self.calls: list[dict] = []

    def __call__(self, argv, **kwargs):
        self.calls.append({"argv": list(argv), **kwargs})
        code, out, err = self.results.pop(0)
        return Completed(list(argv), code, out, err, (out + err).strip())


def test_start_passes_flags_and_force():
    run = FakeRun((0, "* Done!\n", ""))
    mk.Minikube(P, run=run).start(
        driver="docker", kubernetes_version="v1.21.14", cpus=4, memory="8g", force=True, extra_args=["--wait=all"]
    )
    call = run.calls[0]
    assert call["argv"] == [
        "minikube",
        "start",
        "-p",
        P,
        "--driver=docker",
        "--kubernetes-version=v1.21.14",
        "--cpus=4",
        "--memory=8g",
        "--force",
        "--wait=all",
    ]
    assert call["env"]["MINIKUBE_IN_STYLE"] == "false"
    assert call["check"] is False and call["timeout"] == 900


def test_start_failure_carries_reason_line_and_code():
    run = FakeRun((106, "\n", K8S_OLD))
    with pytest.raises(mk.MinikubeError) as info:
        mk.Minikube(P, run=run).start(driver="docker", kubernetes_version="v1.21.14", cpus=2, memory="4g")
    err = info.value
    assert isinstance(err, ClusterError)
    assert err.minikube_exit_code == 106 and err.reason == "K8S_OLD_UNSUPPORTED"
    assert "Exiting due to K8S_OLD_UNSUPPORTED" in str(err) and "code 106" in str(err)
    assert "cluster.allow_unsupported_kubernetes" in (err.hint or "")


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (51, "none driver"),
        (81, "more than one node"),
        (14, "containerd only with the docker driver"),
        (85, "does not exist"),
    ],
)
def test_docker_env_refusals_explain_why(code, words):
    run = FakeRun((code, f"false exit code {code}\n", "X Exiting due to SOMETHING: refused\n"))
    with pytest.raises(ClusterError) as info:
        mk.Minikube(P, run=run).docker_env()
    assert words in (info.value.hint or "")
    assert f"code {code}" in str(info.value)
    assert run.calls[0]["argv"] == ["minikube", "docker-env", "-p", P, "--shell", "none", "-o", "json"]


def test_docker_env_ok():
    assert mk.Minikube(P, run=FakeRun((0, DOCKER_ENV_JSON, ""))).docker_env() == EXPECTED_ENV


def test_status_uses_json_and_never_raises_on_mask_codes():
    status = mk.Minikube(P, run=FakeRun((7, STOPPED, ""))).status()
    assert status.state == "Stopped"


def test_endpoint_comes_from_the_profile_list():
    m = mk.Minikube(P, run=FakeRun((0, json.dumps(PROFILE_LIST), ""), (0, '{"invalid":[],"valid":[]}', "")))
    assert m.api_endpoint() == ("192.168.49.2", 8443)
    assert m.profile() is None


def test_addon_enable_timeout_error_shows_reason():
    err_text = (
        "X Exiting due to MK_ADDON_ENABLE: enable failed: run callbacks: running callbacks: "
        "[waiting for app.kubernetes.io/name=ingress-nginx pods: context deadline exceeded]\n"
    )
    with pytest.raises(mk.MinikubeError) as info:
        mk.Minikube(P, run=FakeRun((10, "", err_text))).enable_addon("ingress")
    assert "ingress-nginx pods: context deadline exceeded" in str(info.value)


def test_delete_missing_profile_is_fine():
    m = mk.Minikube(
        P, run=FakeRun((0, 'Removed all traces of the "p" cluster.\n', '"p" profile does not exist, trying anyways.\n'))
    )
    m.delete()


def test_start_leaves_unset_values_to_minikube():
    run = FakeRun((0, "", ""))
    mk.Minikube(P, run=run).start(driver="docker", kubernetes_version=None, cpus=None, memory=None)
    assert run.calls[0]["argv"] == ["minikube", "start", "-p", P, "--driver=docker"]


def test_start_without_driver_lets_minikube_pick():
    run = FakeRun((0, "", ""))
    mk.Minikube(P, run=run).start(driver=None, kubernetes_version="v1.21.14", cpus=2, memory="4g")
    assert run.calls[0]["argv"] == [
        "minikube",
        "start",
        "-p",
        P,
        "--kubernetes-version=v1.21.14",
        "--cpus=2",
        "--memory=4g",
    ]
