"""The rig's small parts, without a cluster: CNI plugin, runc wrapper, certificates, detached processes."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from devrig import certs, paths, procs
from support import require_rig, wait_until

CNI = paths.CNI_DIR
needs_root = pytest.mark.usefixtures("root")  # network namespaces need root


@pytest.fixture
def root() -> None:
    require_rig(root=True, parts=False)


@pytest.fixture
def pod_netns():
    """A throwaway network namespace, as a pod sandbox has (held by a sleeping process)."""
    holder = subprocess.Popen(["unshare", "--net", "sleep", "60"])
    try:
        wait_until(
            lambda: os.readlink(f"/proc/{holder.pid}/ns/net") != os.readlink("/proc/self/ns/net"),
            5,
            "the test network namespace",
        )
        yield f"/proc/{holder.pid}/ns/net"
    finally:
        holder.kill()
        holder.wait(timeout=5)


def cni(plugin: str, command: str, conf: dict, netns: str = "", container: str = "c1", ifname: str = "eth0"):
    env = dict(
        os.environ,
        CNI_COMMAND=command,
        CNI_CONTAINERID=container,
        CNI_NETNS=netns,
        CNI_IFNAME=ifname,
        CNI_PATH=str(CNI),
    )
    return subprocess.run(
        [str(CNI / plugin)], input=json.dumps(conf), env=env, capture_output=True, text=True, timeout=30
    )


def host_addresses() -> str:
    return subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout


@needs_root
def test_cni_add_gives_the_pod_an_address_inside_its_namespace_only(pod_netns, tmp_path):
    conf = {
        "cniVersion": "0.4.0",
        "name": "devrig",
        "type": "devrig-cni",
        "subnet": "10.244.7.0/24",
        "dataDir": str(tmp_path),
    }
    host_before = host_addresses()
    result = cni("devrig-cni", "ADD", conf, pod_netns)
    assert result.returncode == 0, result.stdout + result.stderr
    out = json.loads(result.stdout)
    address = out["ips"][0]["address"]
    assert ipaddress.ip_interface(address).ip in ipaddress.ip_network("10.244.7.0/24")
    assert address.endswith("/32") and out["cniVersion"] == "0.4.0"
    # what dockershim runs to learn the pod IP
    inside = subprocess.run(
        [
            "nsenter",
            f"--net={pod_netns}",
            "-F",
            "--",
            "ip",
            "-o",
            "-4",
            "addr",
            "show",
            "dev",
            "eth0",
            "scope",
            "global",
        ],
        capture_output=True,
        text=True,
    ).stdout
    assert address in inside
    assert host_addresses() == host_before
    # a second pod gets another address; DEL releases the first
    second = json.loads(cni("devrig-cni", "ADD", conf, pod_netns, container="c2", ifname="eth1").stdout)
    assert second["ips"][0]["address"] != address
    assert cni("devrig-cni", "DEL", conf, pod_netns).returncode == 0
    assert cni("devrig-cni", "DEL", conf, pod_netns).returncode == 0  # idempotent
    third = json.loads(cni("devrig-cni", "ADD", conf, pod_netns, container="c3", ifname="eth2").stdout)
    assert third["ips"][0]["address"] == address


@needs_root
def test_cni_plugins_refuse_the_host_namespace(tmp_path):
    conf = {"cniVersion": "0.4.0", "name": "devrig", "subnet": "10.244.7.0/24", "dataDir": str(tmp_path)}
    host_before = host_addresses()
    for plugin in ("devrig-cni", "loopback"):
        result = cni(plugin, "ADD", conf, "/proc/self/ns/net")
        assert result.returncode != 0
        assert json.loads(result.stdout)["code"] == 999
    assert host_addresses() == host_before


@needs_root
def test_loopback_plugin_brings_lo_up(pod_netns):
    result = cni("loopback", "ADD", {"cniVersion": "0.3.1", "name": "lo", "type": "loopback"}, pod_netns, ifname="lo")
    assert result.returncode == 0, result.stdout
    assert json.loads(result.stdout)["ips"][0]["address"] == "127.0.0.1/8"
    links = subprocess.run(
        ["nsenter", f"--net={pod_netns}", "--", "ip", "-o", "link", "show", "lo"], capture_output=True, text=True
    ).stdout
    assert "UP" in links


def test_cni_version_command():
    for plugin in ("devrig-cni", "loopback"):
        out = json.loads(cni(plugin, "VERSION", {}).stdout)
        assert "0.4.0" in out["supportedVersions"]


def test_runc_wrapper_raises_oom_score_adj_to_its_own(tmp_path):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "config.json").write_text(json.dumps({"process": {"oomScoreAdj": -998, "args": ["/pause"]}}))
    fake_runc = tmp_path / "runc"
    fake_runc.write_text('#!/bin/sh\necho "runc $*"\n')
    fake_runc.chmod(0o755)
    env = dict(os.environ, DEVRIG_RUNC=str(fake_runc))
    result = subprocess.run(
        [str(CNI / "devrig-runc"), "--root", "/x", "create", "--bundle", str(bundle), "id1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.stdout.strip() == f"runc --root /x create --bundle {bundle} id1"
    own = int(Path("/proc/self/oom_score_adj").read_text())  # inherited by the wrapper
    assert json.loads((bundle / "config.json").read_text())["process"]["oomScoreAdj"] == max(own, -998)
    # other commands pass straight through, the bundle is not touched
    (bundle / "config.json").write_text(json.dumps({"process": {"oomScoreAdj": -998}}))
    subprocess.run([str(CNI / "devrig-runc"), "state", "id1"], env=env, check=True, capture_output=True)
    assert json.loads((bundle / "config.json").read_text())["process"]["oomScoreAdj"] == -998


def test_certificates_are_laid_out_as_minikube_does(tmp_path):
    home = tmp_path / ".minikube"
    hc = certs.HomeCerts(home, "p1")
    hc.ensure()
    for rel in (
        "ca.crt",
        "ca.key",
        "profiles/p1/client.crt",
        "profiles/p1/client.key",
        "profiles/p1/apiserver.crt",
        "certs/ca.pem",
        "certs/cert.pem",
        "certs/key.pem",
        "machines/p1/server.pem",
    ):
        assert (home / rel).exists(), rel
    client = x509.load_pem_x509_certificate(hc.client_crt.read_bytes())
    assert client.subject.rfc4514_string() == "CN=minikube-user,O=system:masters"
    serving = x509.load_pem_x509_certificate(hc.apiserver_crt.read_bytes())
    sans = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"localhost", "kubernetes.default"} <= set(sans.get_values_for_type(x509.DNSName))
    assert {"127.0.0.1", "10.96.0.1"} <= {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    engine = x509.load_pem_x509_certificate(hc.docker_server_crt.read_bytes())
    engine_ips = engine.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "127.0.0.1" in {str(ip) for ip in engine_ips.get_values_for_type(x509.IPAddress)}
    # a second profile shares both CAs, as minikube's profiles do
    ca_before = hc.ca_crt.read_bytes(), hc.docker_ca.read_bytes()
    certs.HomeCerts(home, "p2").ensure()
    assert (hc.ca_crt.read_bytes(), hc.docker_ca.read_bytes()) == ca_before


def test_spawned_daemon_is_detached_and_stopped_by_group(tmp_path):
    proc = procs.spawn(["sh", "-c", "sleep 300 & sleep 300"], log=tmp_path / "d.log", pidfile=tmp_path / "d.pid")
    try:
        assert procs.alive(proc)
        wait_until(lambda: len(procs.group_members(proc.pid)) >= 2, 5, "the daemon's child")
        assert os.getsid(proc.pid) == proc.pid  # own session: survives the caller, signalled as a group
        assert proc.pid not in procs.descendants([os.getpid()])
    finally:
        procs.terminate(proc, what="test daemon", timeout=5)
    assert not procs.alive(proc) and procs.group_members(proc.pid) == []
    # a recycled PID with another start time is never taken for the daemon
    assert not procs.alive(procs.Proc(os.getpid(), 1))
