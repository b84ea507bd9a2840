"""Destructive stand-in behaviour on profiles of this module's own: stop/restart, delete, two profiles side by
side, the host vanishing, and the API-server kill switch."""

from __future__ import annotations

import json

import pytest
import yaml

from devrig import procs
from devrig.machine import Machine
from support import wait_until


def _kubeconfig(cluster) -> dict:
    return yaml.safe_load(cluster.kubeconfig.read_text()) or {}


def _names(kc: dict, key: str) -> set[str]:
    return {item["name"] for item in kc.get(key) or []}


def _status(cluster, *extra: str) -> tuple[int, dict | None]:
    out = cluster.minikube("status", "-o", "json", *extra)
    return out.returncode, json.loads(out.stdout) if out.stdout else None


@pytest.fixture(scope="module")
def pair(rig_profile_factory):
    """Two profiles started side by side (sequentially: the rig has 2 cores)."""
    return rig_profile_factory(), rig_profile_factory()


def test_two_profiles_are_separate_clusters(pair):
    a, b = pair
    kc = _kubeconfig(a)
    assert {a.profile, b.profile} <= _names(kc, "contexts")
    assert kc["current-context"] == b.profile  # the last start switched the context
    servers = {c["name"]: c["cluster"]["server"] for c in kc["clusters"]}
    assert servers[a.profile] != servers[b.profile]
    assert a.docker_env()["DOCKER_HOST"] != b.docker_env()["DOCKER_HOST"]
    a.kubectl("create", "configmap", "only-in-a", "-n", "default")
    assert b.kubectl("get", "configmap", "only-in-a", "-n", "default", check=False).returncode != 0
    assert a.docker("info", "--format", "{{.Name}}").stdout.strip() == a.profile
    assert b.docker("info", "--format", "{{.Name}}").stdout.strip() == b.profile


def test_stop_then_restart_reuses_the_profile(pair):
    a, _ = pair
    port_before = json.loads(a.minikube("profile", "list", "-o", "json").stdout)
    stop = a.minikube("stop", timeout=120)
    assert stop.returncode == 0, stop.stderr
    assert f'* Stopping node "{a.profile}"  ...' in stop.stdout and "* 1 node stopped." in stop.stdout
    code, st = _status(a)
    assert code == 7
    assert st == {
        "Name": a.profile,
        "Host": "Stopped",
        "Kubelet": "Stopped",
        "APIServer": "Stopped",
        "Kubeconfig": "Stopped",
        "Worker": False,
    }
    # stopped host: docker-env and ip refuse with 83
    env = a.minikube("docker-env")
    assert (env.returncode, env.stdout) == (83, "false exit code 83\n")
    ip = a.minikube("ip")
    assert ip.returncode == 83
    assert f"The control-plane node {a.profile} host is not running: state=Stopped" in ip.stdout

    start = a.minikube("start", timeout=300)
    assert start.returncode == 0, start.stderr
    assert "* Using the docker driver based on existing profile" in start.stdout
    assert f'* Restarting existing docker container for "{a.profile}" ...' in start.stdout
    assert _status(a) == (
        0,
        {
            "Name": a.profile,
            "Host": "Running",
            "Kubelet": "Running",
            "APIServer": "Running",
            "Kubeconfig": "Configured",
            "Worker": False,
        },
    )
    assert a.kubectl("get", "configmap", "only-in-a", "-n", "default").returncode == 0  # etcd data kept
    port_after = json.loads(a.minikube("profile", "list", "-o", "json").stdout)
    assert [p["Config"]["Nodes"] for p in port_before["valid"]] == [p["Config"]["Nodes"] for p in port_after["valid"]]


def test_delete_one_leaves_the_other_working_and_no_process_behind(pair, rig_env):
    a, b = pair
    home = rig_env.minikube_home / ".minikube"
    # (pid, start time) pairs, so a PID recycled after the delete is not mistaken for a survivor
    before = [
        procs.Proc(p, procs.start_time(p))
        for p in Machine(b.profile, home).processes()
        if procs.start_time(p) is not None
    ]
    assert before, "the profile's machine should have live processes before delete"
    b.kubectl("config", "use-context", b.profile)
    out = b.minikube("delete", timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        f'* Deleting "{b.profile}" in docker ...',
        f'* Deleting container "{b.profile}" ...',
        f"* Removing {home / 'machines' / b.profile} ...",
        f'* Removed all traces of the "{b.profile}" cluster.',
    ]
    # a zombie (exited, not yet reaped by whoever adopted it) is not a process left running
    still = [p for p in before if procs.alive(p)]
    assert not still, f"processes of the deleted profile still alive: {[procs.cmdline(p.pid) for p in still]}"
    kc = _kubeconfig(a)
    assert b.profile not in _names(kc, "clusters") | _names(kc, "contexts") | _names(kc, "users")
    assert kc["current-context"] == ""  # it was b's; delete clears it (to "", as minikube writes it)
    assert not (home / "profiles" / b.profile).exists() and not (home / "machines" / b.profile).exists()
    assert b.minikube("status").returncode == 85
    again = b.minikube("delete")
    assert again.returncode == 0 and "profile does not exist, trying anyways." in again.stderr
    # the survivor is untouched
    assert _status(a)[0] == 0
    assert a.kubectl("get", "nodes").returncode == 0
    assert a.docker("info", "--format", "{{.Name}}").stdout.strip() == a.profile


def test_kill_apiserver_and_dockerd_switches(rig_profile_factory):
    c = rig_profile_factory(env={"DEVRIG_KILL_APISERVER_AFTER": "2", "DEVRIG_KILL_DOCKERD_AFTER": "4"})

    def stopped():
        code, st = _status(c)
        return (code, st) if st and st["APIServer"] == "Stopped" else None

    code, st = wait_until(stopped, 30, "the kill switch to stop the API server")
    # the "node container" still runs (kubelet, etcd...): host Running, cluster bit set
    assert (code, st["Host"], st["APIServer"]) == (2, "Running", "Stopped")
    env = c.docker_env()
    c.wait_for(
        lambda: c.docker("version", check=False).returncode != 0,
        30,
        f"the engine behind {env['DOCKER_HOST']} to stop answering",
    )
    # like minikube's, docker-env restarts a dead dockerd before printing the environment
    again = c.minikube("docker-env", "--shell", "none", timeout=180)
    assert again.returncode == 0, again.stderr
    log = c.minikube_home / ".minikube" / "profiles" / c.profile / "logs" / "docker-env.log"
    info = c.docker("info", "--format", "{{.Name}}", check=False)
    assert info.stdout.strip() == c.profile, (info.stderr, log.read_text() if log.exists() else "no log")
    out = c.minikube("delete", timeout=120)
    assert out.returncode == 0, out.stderr


def test_host_gone_gives_null(rig_profile_factory, rig_env):
    c = rig_profile_factory()
    Machine(c.profile, rig_env.minikube_home / ".minikube").destroy()  # the "container" vanishes behind minikube
    out = c.minikube("status", "-o", "json")
    assert (out.returncode, out.stdout) == (0, "null")  # v1.36 exits 0 here; v1.38 exits 7
    out = c.minikube("status", "-o", "json", env={"DEVRIG_MINIKUBE_VERSION": "v1.38.1"})
    assert (out.returncode, out.stdout) == (7, "null")
    text = c.minikube("status")
    assert (text.returncode, text.stdout) == (0, "")
    env = c.minikube("docker-env")
    assert (env.returncode, env.stdout) == (85, "false exit code 85\n")
    prof = json.loads(c.minikube("profile", "list", "-o", "json").stdout)
    # "", not "Unknown": profileStatus sets Name, not StatusName (checked against the real binary in
    # tests/rig/test_minikube_contract.py::test_profile_list_with_a_gone_host)
    assert [p["Status"] for p in prof["valid"] if p["Name"] == c.profile] == [""]
    # an addon cannot be verified without a host: minikube records it, then its pod wait times out (10)
    addon = c.minikube("addons", "enable", "ingress", env={"DEVRIG_ADDON_WAIT_TIMEOUT": "2"})
    assert addon.returncode == 10
    assert (
        "X Exiting due to MK_ADDON_ENABLE: enable failed: run callbacks: running callbacks: [waiting for "
        "app.kubernetes.io/name=ingress-nginx pods: context deadline exceeded]"
    ) in addon.stderr


def test_keep_context(rig_profile_factory, rig_env):
    before = (yaml.safe_load(rig_env.kubeconfig.read_text()) or {}).get("current-context")
    c = rig_profile_factory(args=("--keep-context",))
    kc = _kubeconfig(c)
    assert c.profile in _names(kc, "contexts")
    assert kc.get("current-context") == before
    again = c.minikube("start", "--keep-context", timeout=300)
    assert again.stdout.rstrip().endswith(f"* To connect to this cluster, use:  --context={c.profile}")
