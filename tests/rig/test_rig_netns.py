"""The node network's parts, without a cluster: the profile's namespace, routed pod veths, the forwarder.

Each test makes its own namespaces and deletes them; the host's namespace is compared before and after.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from devrig import RigError, netns, paths, procs
from support import require_rig, wait_until

CNI = paths.CNI_DIR


@pytest.fixture(autouse=True)
def root() -> None:
    require_rig(root=True, parts=False)


def host_network() -> tuple[str, str, str, str]:
    run = lambda *a: subprocess.run(a, capture_output=True, text=True, timeout=30).stdout  # noqa: E731
    return (
        run("ip", "-o", "link"),
        run("ip", "-o", "addr"),
        run("ip", "route"),
        Path("/proc/sys/net/ipv4/ip_forward").read_text(),
    )


@pytest.fixture
def node():
    before = host_network()
    net = netns.NodeNetwork(f"devrig-test-{uuid.uuid4().hex[:8]}", 3)
    net.ensure()
    try:
        yield net
    finally:
        for pid in net.members():
            procs.kill_pid(pid)
        net.delete()
    assert host_network() == before


@pytest.fixture
def pod_netns():
    holder = subprocess.Popen(["unshare", "--net", "sleep", "120"])
    try:
        wait_until(
            lambda: not netns.same_namespace(f"/proc/{holder.pid}/ns/net", "/proc/self/ns/net"),
            5,
            "the pod's network namespace",
        )
        yield f"/proc/{holder.pid}/ns/net"
    finally:
        holder.kill()
        holder.wait(timeout=5)


def in_ns(net: netns.NodeNetwork, *argv: str) -> str:
    return subprocess.run([*net.prefix(), *argv], capture_output=True, text=True, timeout=30, check=True).stdout


def test_node_network_has_the_node_address_and_forwarding_inside_only(node):
    assert node.node_ip == "192.168.76.2" and node.pod_cidr == "10.244.3.0/24"
    assert f" {node.node_ip}/24 " in in_ns(node, "ip", "-o", "-4", "addr", "show", "dev", "eth0")
    assert f" {node.pod_gateway}/24 " in in_ns(node, "ip", "-o", "-4", "addr", "show", "dev", "cni0")
    assert in_ns(node, "cat", "/proc/sys/net/ipv4/ip_forward").strip() == "1"
    assert "default" not in in_ns(node, "ip", "route")  # nothing leaves the namespace
    node.ensure()  # idempotent
    assert in_ns(node, "ip", "-o", "-4", "addr", "show", "dev", "eth0").count(node.node_ip) == 1


def cni_in_node(node, command: str, conf: dict, pod_ns: str, container: str = "c1"):
    env = dict(
        os.environ,
        CNI_COMMAND=command,
        CNI_CONTAINERID=container,
        CNI_NETNS=pod_ns,
        CNI_IFNAME="eth0",
        CNI_PATH=str(CNI),
    )
    return subprocess.run(
        [*node.prefix(), str(CNI / "devrig-cni")],
        input=json.dumps(conf),
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_routed_pod_reaches_the_node_address_and_del_removes_its_veth(node, pod_netns, tmp_path):
    conf = {
        "cniVersion": "0.4.0",
        "name": "devrig",
        "type": "devrig-cni",
        "subnet": node.pod_cidr,
        "dataDir": str(tmp_path),
        "mode": "routed",
        "gateway": node.pod_gateway,
        "nodeNetns": str(node.path),
    }
    result = cni_in_node(node, "ADD", conf, pod_netns)
    assert result.returncode == 0, result.stdout + result.stderr
    pod_ip = json.loads(result.stdout)["ips"][0]["address"].split("/")[0]
    assert f"{pod_ip} dev veth" in in_ns(node, "ip", "route")
    # a server on the node address answers the pod, and sees the pod's own address
    script = (
        "import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); "
        f"s.bind(('{node.node_ip}',18443)); s.listen(); print('up',flush=True); c,a=s.accept(); "
        "c.sendall(a[0].encode()); c.close()"
    )
    server = subprocess.Popen([*node.prefix(), sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "up"
        client = subprocess.run(
            [
                "nsenter",
                f"--net={pod_netns}",
                "--",
                sys.executable,
                "-c",
                f"import socket; c=socket.create_connection(('{node.node_ip}',18443),timeout=5); "
                "print(c.recv(100).decode())",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert client.stdout.strip() == pod_ip, client.stderr
    finally:
        server.kill()
        server.wait(timeout=5)
    assert cni_in_node(node, "DEL", conf, pod_netns).returncode == 0
    assert "veth" not in in_ns(node, "ip", "-o", "link")
    assert cni_in_node(node, "DEL", conf, pod_netns).returncode == 0  # idempotent


@pytest.mark.parametrize("node_netns", [None, "/proc/self/ns/net"], ids=["unnamed", "named-host"])
def test_routed_mode_is_refused_in_the_host_namespace(pod_netns, tmp_path, node_netns):
    before = host_network()
    conf = {
        "cniVersion": "0.4.0",
        "name": "devrig",
        "subnet": "10.244.9.0/24",
        "dataDir": str(tmp_path),
        "mode": "routed",
        "gateway": "10.244.9.1",
    }
    if node_netns:
        conf["nodeNetns"] = node_netns
    env = dict(os.environ, CNI_COMMAND="ADD", CNI_CONTAINERID="c1", CNI_NETNS=pod_netns, CNI_IFNAME="eth0")
    result = subprocess.run(
        [str(CNI / "devrig-cni")], input=json.dumps(conf), env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 1, result.stdout
    assert "not the host's" in json.loads(result.stdout)["msg"]
    assert host_network() == before


def test_a_node_network_that_is_the_hosts_namespace_is_refused(tmp_path, monkeypatch):
    before = host_network()
    monkeypatch.setattr(netns, "NETNS_DIR", tmp_path)
    (tmp_path / "devrig-hostns").symlink_to(f"/proc/{os.getpid()}/ns/net")  # this process: the host's
    with pytest.raises(RigError, match="host's network namespace"):
        netns.NodeNetwork("devrig-hostns", 0).ensure()
    assert host_network() == before


def test_forwarder_joins_host_loopback_and_the_node_both_ways(node, tmp_path):
    # inside: a server on the node address; outside: a server on the host's loopback
    inside = subprocess.Popen(
        [
            *node.prefix(),
            sys.executable,
            "-c",
            "import socket; s=socket.socket(); s.bind(('0.0.0.0',18444)); s.listen(); "
            "print('up',flush=True); c,a=s.accept(); c.sendall(b'from-node:'+c.recv(10))",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    outside = socket.socket()
    outside.bind(("127.0.0.1", 0))
    outside.listen()
    out_port = outside.getsockname()[1]
    threading.Thread(target=lambda: (c := outside.accept()[0]).sendall(b"from-host:" + c.recv(10)), daemon=True).start()
    in_port = procs.free_port()
    log = tmp_path / "forward.log"
    fwd = procs.spawn(
        [
            sys.executable,
            "-m",
            "devrig.forward",
            f"--netns={node.path}",
            f"--into=127.0.0.1:{in_port}={node.node_ip}:18444",
            f"--out=127.0.0.1:{out_port}=127.0.0.1:{out_port}",
        ],
        log=log,
        pidfile=tmp_path / "forward.pid",
    )
    try:
        assert inside.stdout.readline().strip() == "up"
        wait_until(lambda: b"port(s) ready" in log.read_bytes(), 15, "the forwarder to listen")
        with socket.create_connection(("127.0.0.1", in_port), timeout=5) as c:
            c.sendall(b"ping")
            assert c.recv(100) == b"from-node:ping"
        back = subprocess.run(
            [
                *node.prefix(),
                sys.executable,
                "-c",
                f"import socket; c=socket.create_connection(('127.0.0.1',{out_port}),timeout=5); "
                "c.sendall(b'pong'); print(c.recv(100).decode())",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert back.stdout.strip() == "from-host:pong", back.stderr
    finally:
        procs.terminate(fwd, what="forwarder")
        inside.kill()
        inside.wait(timeout=5)
        outside.close()


def test_forwarder_refuses_non_loopback_host_addresses(node):
    result = subprocess.run(
        [sys.executable, "-m", "devrig.forward", f"--netns={node.path}", "--into=0.0.0.0:18445=192.168.76.2:8443"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "127.0.0.1" in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "devrig.forward", f"--netns={node.path}", "--out=127.0.0.1:18446=10.0.0.1:80"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "127.0.0.1" in result.stderr
