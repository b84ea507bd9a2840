"""The real node: kubelet v1.21 with dockershim on the profile's own engine, plus its CNI configuration.

The kubelet runs inside the engine's mount namespace (`nsenter --mount`), so pod volumes it mounts are
what dockerd bind-mounts into containers, and the kubelet's hardcoded shared paths (/var/log/pods, ...)
are private to the profile (see engine.PRIVATE_HOST_DIRS).  Every other path it uses is given per profile.
With a node network (netns.py) it also joins the engine's network namespace, reports the node address as
its InternalIP and gives pods routed veth pairs (cni/devrig-cni, mode "routed"); kube-proxy runs there too.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from . import paths
from .engine import PAUSE_IMAGE

NODE_NAME = "localhost"


class Node:
    def __init__(
        self,
        *,
        machine_dir: Path,
        run_dir: Path,
        version: str,
        kubelet_port: int,
        kubeconfig: Path,
        docker_socket: Path,
        pod_cidr: str,
        client_ca: Path,
        profile: str,
        node_ip: str | None = None,
        pod_gateway: str | None = None,
        netns_path: Path | None = None,
        feature_gates: str = "",
        cluster_dns: str | None = None,
    ):
        self.feature_gates = feature_gates  # as minikube's kubelet unit gets them (bsutil/kubelet.go extraOpts)
        self.cluster_dns = cluster_dns  # DEVRIG_COREDNS=1 (coredns.py): kube-dns's address, as kubeadm sets it
        self.node_ip = node_ip  # None: the loopback rig (pods get an address that routes nowhere)
        self.pod_gateway = pod_gateway
        self.netns_path = netns_path
        self.dir = machine_dir / "node"
        self.run_dir = run_dir
        self.version = version
        self.port = kubelet_port
        self.kubeconfig = kubeconfig
        self.docker_socket = docker_socket
        self.pod_cidr = pod_cidr
        self.client_ca = client_ca
        self.profile = profile
        self.root_dir = self.dir / "kubelet"
        self.config_file = self.dir / "kubelet-config.yaml"
        self.cni_conf_dir = self.dir / "cni" / "net.d"
        self.cni_cache_dir = self.dir / "cni" / "cache"
        self.cni_state_dir = self.dir / "cni" / "leases"
        self.log = machine_dir / "logs" / "kubelet.log"
        self.pidfile = run_dir / "kubelet.launch.pid"

    def write_config(self) -> None:
        for d in (
            self.root_dir,
            self.cni_conf_dir,
            self.cni_cache_dir,
            self.cni_state_dir,
            self.dir / "volume-plugins",
            self.dir / "dockershim",
        ):
            d.mkdir(parents=True, exist_ok=True)
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": "0.0.0.0" if self.node_ip else "127.0.0.1",
            "port": self.port,
            "readOnlyPort": 0,
            "healthzPort": 0,
            "authentication": {
                "anonymous": {"enabled": True},
                "webhook": {"enabled": False},
                "x509": {"clientCAFile": str(self.client_ca)},
            },
            "authorization": {"mode": "AlwaysAllow"},
            "cgroupDriver": "cgroupfs",
            "cgroupsPerQOS": False,
            "enforceNodeAllocatable": [],
            "failSwapOn": False,
            "evictionHard": {},
            # nobody can pull images again: never garbage-collect them (100 = only when the disk is full)
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "nodeStatusUpdateFrequency": "1s",
            "nodeStatusReportFrequency": "10s",
            "syncFrequency": "10s",
            "fileCheckFrequency": "20s",
            "serializeImagePulls": False,
            "resolvConf": "/etc/resolv.conf",
            "clusterDomain": "cluster.local",
            **({"clusterDNS": [self.cluster_dns]} if self.cluster_dns else {}),
            # the host's iptables are not the node's to change (and two kubelets would fight over them);
            # a node network's are its own (KUBE-MARK-DROP & co, as on minikube)
            "makeIPTablesUtilChains": bool(self.node_ip),
        }
        self.config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        plugin = {"type": "devrig-cni", "subnet": self.pod_cidr, "dataDir": str(self.cni_state_dir)}
        if self.node_ip:
            plugin.update(mode="routed", gateway=self.pod_gateway, nodeNetns=str(self.netns_path))
        cni = {"cniVersion": "0.4.0", "name": "devrig", "plugins": [plugin]}
        (self.cni_conf_dir / "10-devrig.conflist").write_text(json.dumps(cni, indent=2) + "\n")

    def labels(self) -> dict[str, str]:
        """What minikube labels its node with (the kubelet may not set *.k8s.io labels on itself)."""
        return {
            "minikube.k8s.io/name": self.profile,
            "minikube.k8s.io/primary": "true",
            "node-role.kubernetes.io/control-plane": "",
            "node-role.kubernetes.io/master": "",
        }

    def argv(self, mount_ns_pid: int) -> list[str]:
        joins = ["--mount", "--net"] if self.node_ip else ["--mount"]
        node_ip = [f"--node-ip={self.node_ip}"] if self.node_ip else []
        return [
            "nsenter",
            f"--target={mount_ns_pid}",
            *joins,
            "--",
            str(paths.k8s_bin(self.version, "kubelet")),
            *node_ip,
            f"--config={self.config_file}",
            f"--kubeconfig={self.kubeconfig}",
            f"--root-dir={self.root_dir}",
            f"--cert-dir={self.dir / 'pki'}",
            f"--hostname-override={NODE_NAME}",
            "--container-runtime=docker",
            f"--docker-endpoint=unix://{self.docker_socket}",
            # defaults are host-global (/var/run/dockershim.sock, /var/lib/dockershim): one per profile
            f"--container-runtime-endpoint=unix://{self.run_dir / 'dockershim.sock'}",
            f"--experimental-dockershim-root-directory={self.dir / 'dockershim'}",
            f"--pod-infra-container-image={PAUSE_IMAGE}",
            "--network-plugin=cni",
            f"--cni-bin-dir={paths.CNI_DIR}",
            f"--cni-conf-dir={self.cni_conf_dir}",
            f"--cni-cache-dir={self.cni_cache_dir}",
            f"--volume-plugin-dir={self.dir / 'volume-plugins'}",
            *([f"--feature-gates={self.feature_gates}"] if self.feature_gates else []),
            "--v=1",
        ]


class KubeProxy:
    """kube-proxy v1.21 in iptables mode, inside the node's network namespace (ClusterIP Services, and the
    `kubernetes` Service that KUBERNETES_SERVICE_HOST names)."""

    def __init__(self, *, machine_dir: Path, version: str, kubeconfig: Path, cluster_cidr: str):
        self.dir = machine_dir / "node"
        self.version = version
        self.kubeconfig = kubeconfig
        self.cluster_cidr = cluster_cidr
        self.config_file = self.dir / "kube-proxy-config.yaml"

    def write_config(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(self.kubeconfig)},
            "mode": "iptables",
            "hostnameOverride": NODE_NAME,
            "clusterCIDR": self.cluster_cidr,
            "bindAddress": "0.0.0.0",
            "healthzBindAddress": "127.0.0.1:10256",
            "metricsBindAddress": "127.0.0.1:10249",
            # 0 = leave the kernel's conntrack limits and timeouts alone: nf_conntrack's hashsize is a
            # module parameter, i.e. the host's, not the node namespace's
            "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
            # this machine refuses a lower oom_score_adj (see cni/devrig-runc)
            "oomScoreAdj": 0,
        }
        self.config_file.write_text(yaml.safe_dump(config, sort_keys=False))

    def argv(self) -> list[str]:
        return [str(paths.k8s_bin(self.version, "kube-proxy")), f"--config={self.config_file}", "--v=1"]
