"""The stand-in against a running profile (the shared session cluster): outputs field by field vs
research/minikube-cli.md, the files and kubeconfig entries `start` writes, docker-env over TCP+TLS."""

from __future__ import annotations

import json
import re
import subprocess
from email.utils import parsedate_to_datetime
from pathlib import Path

import yaml

STATUS_KEYS = ["Name", "Host", "Kubelet", "APIServer", "Kubeconfig", "Worker"]


def test_status_json_running(rig_cluster):
    out = rig_cluster.minikube("status", "-o", "json")
    assert out.returncode == 0, out.stderr
    assert not out.stdout.endswith("\n")
    data = json.loads(out.stdout)
    assert list(data) == STATUS_KEYS
    assert data == {
        "Name": rig_cluster.profile,
        "Host": "Running",
        "Kubelet": "Running",
        "APIServer": "Running",
        "Kubeconfig": "Configured",
        "Worker": False,
    }


def test_status_json_reports_docker_env_in_use(rig_cluster):
    out = rig_cluster.minikube("status", "-o", "json", env={"MINIKUBE_ACTIVE_DOCKERD": rig_cluster.profile})
    assert list(json.loads(out.stdout)) == STATUS_KEYS + ["DockerEnv"]
    assert json.loads(out.stdout)["DockerEnv"] == "in-use"


def test_status_text_running(rig_cluster):
    out = rig_cluster.minikube("status")
    assert out.returncode == 0
    assert out.stdout == (
        f"{rig_cluster.profile}\ntype: Control Plane\nhost: Running\nkubelet: Running\n"
        "apiserver: Running\nkubeconfig: Configured\n\n"
    )
    fmt = rig_cluster.minikube("status", "--format", "{{.Host}}/{{.APIServer}}")
    assert fmt.stdout == "Running/Running"


def _machine(rig_cluster):
    from devrig.machine import Machine

    return Machine(rig_cluster.profile, rig_cluster.minikube_home / ".minikube").info()


def test_ip_is_the_node_address(rig_cluster):
    out = rig_cluster.minikube("ip")
    node_ip = _machine(rig_cluster).node_ip  # 192.168.49.2 with a node network (the default), else 127.0.0.1
    assert (out.returncode, out.stdout, out.stderr) == (0, f"{node_ip}\n", "")


def _config(rig_cluster) -> dict:
    return json.loads(
        (rig_cluster.minikube_home / ".minikube" / "profiles" / rig_cluster.profile / "config.json").read_text()
    )


def test_config_json_is_cluster_config_like(rig_cluster):
    cfg = _config(rig_cluster)
    p = rig_cluster.profile
    assert cfg["Name"] == p and cfg["Driver"] == "docker"
    assert cfg["CPUs"] == 2 and cfg["Memory"] >= 1800
    assert cfg["KubernetesConfig"]["KubernetesVersion"] == "v1.21.14"
    assert cfg["KubernetesConfig"]["ContainerRuntime"] == "docker"
    assert cfg["KubernetesConfig"]["ClusterName"] == p
    assert isinstance(cfg["Addons"], dict)
    [node] = cfg["Nodes"]
    server = _kubeconfig(rig_cluster)["clusters"][p]["server"]
    info = _machine(rig_cluster)
    # the node's own address and port; the kubeconfig names the forwarded loopback port (docker driver on macOS)
    if info.network == "netns":
        assert re.fullmatch(r"192\.168\.\d+\.2", info.node_ip) and info.node_port == 8443, info
    else:
        assert (info.node_ip, info.node_port) == ("127.0.0.1", int(server.rsplit(":", 1)[1]))
    assert server == f"https://127.0.0.1:{info.apiserver_port}"
    assert node == {
        "Name": "",
        "IP": info.node_ip,
        "Port": info.node_port,
        "KubernetesVersion": "v1.21.14",
        "ContainerRuntime": "docker",
        "ControlPlane": True,
        "Worker": True,
    }


def _kubeconfig(rig_cluster) -> dict:
    data = yaml.safe_load(rig_cluster.kubeconfig.read_text())
    return {key: {item["name"]: item[key[:-1]] for item in data[key]} for key in ("clusters", "contexts", "users")} | {
        "current-context": data.get("current-context")
    }


def test_kubeconfig_entries_named_after_the_profile(rig_cluster):
    kc = _kubeconfig(rig_cluster)
    p = rig_cluster.profile
    cluster, context, user = kc["clusters"][p], kc["contexts"][p], kc["users"][p]
    assert cluster["server"].startswith("https://127.0.0.1:")
    assert Path(cluster["certificate-authority"]).name == "ca.crt"
    assert context == {"cluster": p, "extensions": context["extensions"], "namespace": "default", "user": p}
    assert Path(user["client-certificate"]) == rig_cluster.minikube_home / ".minikube" / "profiles" / p / "client.crt"
    for entry, name in ((cluster, "cluster_info"), (context, "context_info")):
        [ext] = entry["extensions"]
        assert ext["name"] == name
        assert ext["extension"]["provider"] == "minikube.sigs.k8s.io"
        assert ext["extension"]["version"] == "v1.36.0"
        parsedate_to_datetime(ext["extension"]["last-update"])  # RFC1123
    assert "extensions" not in user


def test_kubectl_reaches_the_cluster_through_the_context(rig_cluster):
    nodes = rig_cluster.kubectl_json("get", "nodes")["items"]
    assert any(n["metadata"]["labels"].get("minikube.k8s.io/primary") == "true" for n in nodes)
    version = json.loads(rig_cluster.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == "v1.21.14"


def test_docker_env_bash(rig_cluster):
    out = rig_cluster.minikube("docker-env", "--shell", "bash")
    assert out.returncode == 0, out.stderr
    env = rig_cluster.docker_env()
    p = rig_cluster.profile
    assert out.stdout == (
        'export DOCKER_TLS_VERIFY="1"\n'
        f'export DOCKER_HOST="{env["DOCKER_HOST"]}"\n'
        f'export DOCKER_CERT_PATH="{env["DOCKER_CERT_PATH"]}"\n'
        f'export MINIKUBE_ACTIVE_DOCKERD="{p}"\n'
        "\n# To point your shell to minikube's docker-daemon, run:\n"
        f"# eval $(minikube -p {p} docker-env)\n"
    )


def test_docker_env_none_and_json(rig_cluster):
    none = rig_cluster.minikube("docker-env", "--shell", "none")
    # as the real v1.36.0 and v1.38.1 print it (the real-minikube lane's contract test): every variable of
    # minikube's map, the empty SSH ones too, in Go's map order (so no order is asserted)
    pairs = dict(line.split("=", 1) for line in none.stdout.splitlines())
    assert set(pairs) == {
        "DOCKER_TLS_VERIFY",
        "DOCKER_HOST",
        "DOCKER_CERT_PATH",
        "MINIKUBE_ACTIVE_DOCKERD",
        "SSH_AUTH_SOCK",
        "SSH_AGENT_PID",
    }
    assert pairs["SSH_AUTH_SOCK"] == pairs["SSH_AGENT_PID"] == ""
    js = rig_cluster.minikube("docker-env", "--shell", "none", "-o", "json")
    assert js.stdout.endswith("}\n")
    data = json.loads(js.stdout)
    assert list(data) == sorted(data)
    assert data["SSH_AUTH_SOCK"] == "" and data["SSH_AGENT_PID"] == ""
    assert data["DOCKER_TLS_VERIFY"] == "1" and data["MINIKUBE_ACTIVE_DOCKERD"] == rig_cluster.profile
    assert data["DOCKER_HOST"].startswith("tcp://127.0.0.1:")
    cert_path = Path(data["DOCKER_CERT_PATH"])
    assert cert_path == rig_cluster.minikube_home / ".minikube" / "certs"
    assert {"ca.pem", "cert.pem", "key.pem"} <= {f.name for f in cert_path.iterdir()}
    ignored = rig_cluster.minikube("docker-env", "-o", "json", "--shell", "bash")
    assert ignored.stdout.startswith("export ")  # -o is ignored without --shell none


def test_docker_env_keeps_existing_docker_host(rig_cluster):
    out = rig_cluster.minikube(
        "docker-env", "--shell", "none", "-o", "json", env={"DOCKER_HOST": "unix:///var/run/docker.sock"}
    )
    assert json.loads(out.stdout)["MINIKUBE_EXISTING_DOCKER_HOST"] == "unix:///var/run/docker.sock"


def test_docker_env_engine_answers_over_tls(rig_cluster):
    """The docker CLI through docker-env (TCP + TLS) sees the profile's own engine, named after it."""
    info = rig_cluster.docker("info", "--format", "{{.Name}}")
    assert info.stdout.strip() == rig_cluster.profile


def test_profile_list_json(rig_cluster):
    out = rig_cluster.rig.minikube("profile", "list", "-o", "json")
    assert out.returncode == 0
    assert not out.stdout.endswith("\n")
    data = json.loads(out.stdout)
    assert list(data) == ["invalid", "valid"]
    [me] = [p for p in data["valid"] if p["Name"] == rig_cluster.profile]
    assert list(me) == ["Name", "Status", "Config", "Active", "ActiveKubeContext"]
    assert me["Status"] == "OK"
    assert me["Active"] is False  # only the profile named "minikube" (the default) is Active
    assert me["Config"]["KubernetesConfig"]["KubernetesVersion"] == "v1.21.14"
    assert me["Config"]["Nodes"][0]["IP"] == _machine(rig_cluster).node_ip


def test_addons_list_json(rig_cluster):
    out = rig_cluster.minikube("addons", "list", "-o", "json")
    data = json.loads(out.stdout)
    assert out.returncode == 0 and not out.stdout.endswith("\n")
    assert list(data) == sorted(data)
    assert data["dashboard"] == {"Profile": rig_cluster.profile, "Status": "disabled"}


def test_second_start_updates_the_running_profile(rig_cluster):
    out = rig_cluster.minikube("start", "--memory=3g", timeout=300)
    assert out.returncode == 0, out.stderr
    assert "* Using the docker driver based on existing profile" in out.stdout
    assert f'* Updating the running docker "{rig_cluster.profile}" container ...' in out.stdout
    assert (
        "! You cannot change the memory size for an existing minikube cluster. Please first delete the cluster."
    ) in out.stderr
    assert out.stdout.rstrip().endswith(
        f'* Done! kubectl is now configured to use "{rig_cluster.profile}" cluster and "default" namespace by default'
    )


def test_driver_mismatch_is_81(rig_cluster):
    out = rig_cluster.minikube("start", "--driver=kvm2")
    assert out.returncode == 81
    assert (
        f'X Exiting due to GUEST_DRIVER_MISMATCH: The existing "{rig_cluster.profile}" cluster was created '
        'using the "docker" driver, which is incompatible with requested "kvm2" driver.'
    ) in out.stderr


def test_kubectl_on_path_is_the_rigs(rig_cluster):
    which = subprocess.run(["which", "kubectl"], env=rig_cluster.env, capture_output=True, text=True)
    assert Path(which.stdout.strip()) == rig_cluster.rig.kubectl
    which = subprocess.run(["which", "minikube"], env=rig_cluster.env, capture_output=True, text=True)
    assert Path(which.stdout.strip()).parent.name == "bin"
