"""A profile's own network (DEVRIG_NETWORK=netns): the machine's parts and pods live in a network namespace
the rig made, Services work through the real kube-proxy, and the host reaches the node only through
forwarded loopback ports.  The host's own network namespace is the same before, during and after.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from devrig import baseimages, netns, paths
from devrig import testing as rt
from support import require_rig, wait_until

pytestmark = [pytest.mark.rig, pytest.mark.slow]

PROFILE = "rignet"


def host_network() -> dict[str, str]:
    """What the host's network namespace looks like: links, addresses, routes, netfilter rules, forwarding."""

    def run(*argv):
        return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout

    return {
        "links": run("ip", "-o", "link"),
        "addrs": run("ip", "-o", "addr"),
        "routes": run("ip", "route"),
        "iptables": run("iptables-save"),
        "ip_forward": Path("/proc/sys/net/ipv4/ip_forward").read_text(),
    }


def strip_counters(text: str) -> str:
    # iptables-save prints packet counters ([0:0]) that move with any traffic
    return "\n".join(line.split(" [")[0] for line in text.splitlines() if not line.startswith("#"))


@pytest.fixture(scope="module")
def host_before() -> dict[str, str]:
    require_rig(root=True, busybox=True)
    if not os.access(paths.k8s_bin(paths.DEFAULT_KUBERNETES_VERSION, "kube-proxy"), os.X_OK):
        rt.missing_or_skip(f"kube-proxy is not built; {paths.BUILD_HINT}")
    return host_network()


@pytest.fixture(scope="module")
def booted(host_before, tmp_path_factory):
    home = tmp_path_factory.mktemp("rig-net") / ".minikube"
    saved = os.environ.get("DEVRIG_NETWORK")
    os.environ["DEVRIG_NETWORK"] = "netns"
    try:
        machine, info, seconds = rt.boot_machine(PROFILE, home, timeout=240)
    finally:
        if saved is None:
            os.environ.pop("DEVRIG_NETWORK")
        else:
            os.environ["DEVRIG_NETWORK"] = saved
    print(f"\nboot of {PROFILE!r} with its own network: {seconds:.1f}s")
    yield machine, info
    machine.destroy()


def test_host_reaches_the_node_only_through_loopback_forwards(booted):
    machine, info = booted
    assert info.network == "netns" and info.netns is not None
    assert info.apiserver_url.startswith("https://127.0.0.1:") and info.docker_host.startswith("tcp://127.0.0.1:")
    assert info.node_ip.startswith("192.168.") and info.node_port == 8443
    # kubectl and docker from the host go through the forwards
    assert rt.kubectl(info, "get", "--raw", "/readyz").stdout.strip() == "ok"
    assert rt.docker(info, "info", "--format", "{{.Name}}").stdout.strip() == PROFILE
    # every daemon but the forwarder runs inside the profile's namespace
    state = machine._load()
    inside = netns.NodeNetwork(state["netns"], state["pod_net_index"]).members()
    for part, rec in state["procs"].items():
        if part.startswith("forward"):
            assert rec["pid"] not in inside, part
        elif part != "kwok":
            assert rec["pid"] in inside, f"{part} (pid {rec['pid']}) is not in {info.netns}"


def test_node_address_is_the_kubernetes_service_endpoint(booted):
    _, info = booted
    node = rt.kubectl_json(info, "get", "node", "localhost")
    addresses = {a["type"]: a["address"] for a in node["status"]["addresses"]}
    assert addresses["InternalIP"] == info.node_ip
    endpoints = rt.kubectl_json(info, "get", "endpoints", "kubernetes")
    subset = endpoints["subsets"][0]
    assert [a["ip"] for a in subset["addresses"]] == [info.node_ip]
    assert [p["port"] for p in subset["ports"]] == [8443]


def _busybox_image(info, tag: str, tmp_path: Path) -> str:
    ctx = tmp_path / tag.replace("/", "_").replace(":", "_")
    ctx.mkdir()
    (ctx / "busybox").write_bytes(rt.busybox().read_bytes())
    os.chmod(ctx / "busybox", 0o755)
    (ctx / "Dockerfile").write_text(
        'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
    )
    rt.docker(info, "build", "-q", "-t", tag, str(ctx))
    return tag


def _pod(name: str, image: str, command: list[str], labels: dict | None = None) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "main", "image": image, "imagePullPolicy": "Never", "command": command}],
        },
    }


def test_a_pod_reaches_the_api_server_through_kubernetes_service_host(booted, tmp_path):
    _, info = booted
    image = _busybox_image(info, "rignet/busybox:v1", tmp_path)
    # anonymous /version is allowed (system:public-info-viewer); TLS is checked by the API server's SANs
    # elsewhere, this is about the route: pod -> 10.96.0.1:443 (kube-proxy DNAT) -> node address:8443
    script = (
        'echo "host=$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"; '
        'wget -q -O- --no-check-certificate "https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT/version"'
        "; echo; sleep 100000"
    )  # echo: the engine logs whole lines only
    rt.apply(info, json.dumps(_pod("apicheck", image, ["sh", "-c", script])))
    rt.wait_pod_phase(info, "apicheck", "Running", timeout=90)

    def version():
        first, _, rest = rt.kubectl(info, "logs", "apicheck").stdout.partition("\n")
        try:
            return first, json.loads(rest)
        except ValueError:
            return None  # not all written yet

    first, body = wait_until(version, 60, "pod apicheck to print the API server's /version")
    assert first == "host=10.96.0.1:443"
    assert body["gitVersion"] == "v1.21.14"


def test_a_cluster_ip_service_reaches_its_pod_from_another_pod(booted, tmp_path):
    _, info = booted
    image = "rignet/busybox:v1"
    if (
        subprocess.run(
            [str(paths.docker_cli()), "image", "inspect", image], env=rt.docker_env(info), capture_output=True
        ).returncode
        != 0
    ):
        _busybox_image(info, image, tmp_path)
    server = _pod(
        "web",
        image,
        ["sh", "-c", "mkdir -p /www && echo served-by-web > /www/index.html && exec httpd -f -p 8080 -h /www"],
        labels={"app": "web"},
    )
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    rt.apply(info, json.dumps({"apiVersion": "v1", "kind": "List", "items": [server, service]}))
    rt.wait_pod_phase(info, "web", "Running", timeout=90)
    cluster_ip = rt.kubectl_json(info, "get", "service", "web")["spec"]["clusterIP"]
    client = _pod(
        "client",
        image,
        ["sh", "-c", f"while true; do wget -q -O- http://{cluster_ip}/ && break; sleep 1; done; sleep 100000"],
    )
    rt.apply(info, json.dumps(client))
    rt.wait_pod_phase(info, "client", "Running", timeout=90)
    assert wait_until(
        lambda: "served-by-web" in rt.kubectl(info, "logs", "client").stdout,
        60,
        f"pod client to fetch http://{cluster_ip}/ (Service web)",
    )


def test_base_images_are_preloaded(booted):
    _, info = booted
    for image in baseimages.BASE_IMAGES:
        labels = json.loads(rt.docker(info, "image", "inspect", image, "--format", "{{json .Config.Labels}}").stdout)
        assert baseimages.LABEL in labels, image
    # real Debian: minideb's install_packages installs what is there offline, and fails loudly for the rest
    out = rt.docker(
        info, "run", "--rm", "--network=none", "bitnami/minideb:jessie", "install_packages", "ca-certificates"
    ).stdout
    assert "ca-certificates is already the newest version" in out
    with pytest.raises(AssertionError, match="install_packages: not installed: git"):
        rt.docker(info, "run", "--rm", "--network=none", "bitnami/minideb:jessie", "install_packages", "git")
    out = rt.docker(
        info,
        "run",
        "--rm",
        "--network=none",
        "fedora:27",
        "bash",
        "-c",
        "dnf install -y skopeo nodejs && skopeo --version && test -s /etc/containers/policy.json",
    ).stdout
    assert "skopeo version" in out
    with pytest.raises(AssertionError, match="Unable to find a match: gcc"):
        rt.docker(info, "run", "--rm", "--network=none", "fedora:27", "dnf", "install", "-y", "gcc")


def test_host_namespace_is_unchanged_while_running(booted, host_before):
    now = host_network()
    assert now["links"] == host_before["links"]
    assert now["addrs"] == host_before["addrs"]
    assert now["routes"] == host_before["routes"]
    assert strip_counters(now["iptables"]) == strip_counters(host_before["iptables"])
    assert now["ip_forward"] == host_before["ip_forward"]


def test_destroy_removes_the_namespace_and_every_process(booted, host_before):
    machine, info = booted
    netns_path = info.netns
    pids = machine.processes()
    assert len(pids) > 8
    machine.destroy()
    assert not netns_path.exists()
    wait_until(
        lambda: not [p for p in pids if Path(f"/proc/{p}").exists()],
        15,
        "every process of the destroyed machine to be gone",
    )
    now = host_network()
    assert (now["links"], now["addrs"], now["routes"]) == (
        host_before["links"],
        host_before["addrs"],
        host_before["routes"],
    )
    assert strip_counters(now["iptables"]) == strip_counters(host_before["iptables"])
