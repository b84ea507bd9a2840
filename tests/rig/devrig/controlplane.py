"""The control plane of one profile: etcd, kube-apiserver, kube-controller-manager, kube-scheduler.

Two layouts:
- loopback (node_ip None): everything listens on the host's loopback, on ports picked free when the machine
  is first created (kept across restarts: etcd remembers its peer URL, kubeconfigs name the API server's port);
- a node network (node_ip set, see netns.py): everything runs inside the profile's network namespace on
  minikube's fixed ports; the API server listens on the node address too and advertises it (so the
  `kubernetes` Service has a real endpoint), and the host reaches it through a forwarded loopback port.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import certs, kubeconfig, netns, paths
from .kapi import Api

SERVICE_CIDR = "10.96.0.0/12"
ADMISSION_PLUGINS = (
    "NamespaceLifecycle,LimitRanger,ServiceAccount,DefaultStorageClass,DefaultTolerationSeconds,"
    "NodeRestriction,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ResourceQuota"
)


class ControlPlane:
    def __init__(
        self,
        *,
        machine_dir: Path,
        home_certs: certs.HomeCerts,
        version: str,
        ports: dict[str, int],
        node_ip: str | None = None,
        netns_path: Path | None = None,
        host_api_port: int | None = None,
        feature_gates: str = "",
    ):
        self.dir = machine_dir
        # `A=false,B=true`, given whole to the API server, controller-manager and scheduler (as minikube's
        # kubeadm config does: bsutil/extraconfig.go newComponentOptions)
        self.feature_gates = feature_gates
        self.hc = home_certs
        self.version = version
        self.ports = ports  # where the parts listen (inside the namespace, if there is one)
        self.node_ip = node_ip
        self.netns_path = netns_path
        self.host_api_port = host_api_port or ports["apiserver"]
        self.pki = machine_dir / "pki"
        self.kubeconfigs = machine_dir / "kubeconfigs"
        self.etcd_dir = machine_dir / "etcd"
        self.sa_key = self.pki / "sa.key"
        self.sa_pub = self.pki / "sa.pub"

    # --- credentials -------------------------------------------------------------------------------------
    def _client(self, name: str) -> tuple[Path, Path]:
        return self.pki / f"{name}.crt", self.pki / f"{name}.key"

    def ensure_credentials(self) -> None:
        ca = self.hc.ca()
        for name, cn, orgs in (
            ("controller-manager", "system:kube-controller-manager", []),
            ("scheduler", "system:kube-scheduler", []),
            ("kubelet", "system:node:localhost", ["system:nodes"]),
            # bound to ClusterRole system:node-proxier by the default ClusterRoleBinding of that name
            ("kube-proxy", "system:kube-proxy", []),
            ("apiserver-kubelet-client", "kube-apiserver-kubelet-client", ["system:masters"]),
        ):
            crt, key = self._client(name)
            certs.ensure_leaf(crt, key, ca, cn=cn, orgs=orgs, client=True)
        certs.ensure_rsa_keypair(self.sa_key, self.sa_pub)
        for name in ("controller-manager", "scheduler", "kubelet", "kube-proxy"):
            crt, key = self._client(name)
            kubeconfig.write(self.kubeconfig(name), server=self.internal_url, ca=self.hc.ca_crt, cert=crt, key=key)
        server = self.server_url
        kubeconfig.write(
            self.kubeconfig("admin"), server=server, ca=self.hc.ca_crt, cert=self.hc.client_crt, key=self.hc.client_key
        )

    def kubeconfig(self, name: str) -> Path:
        return self.kubeconfigs / f"{name}.conf"

    @property
    def server_url(self) -> str:
        """The API server as the host reaches it (directly, or through the forwarded loopback port)."""
        return f"https://127.0.0.1:{self.host_api_port}"

    @property
    def internal_url(self) -> str:
        """The API server as the node's own components reach it (loopback of their namespace)."""
        return f"https://127.0.0.1:{self.ports['apiserver']}"

    def api(self) -> Api:
        return Api(self.host_api_port, self.hc.ca_crt, self.hc.client_crt, self.hc.client_key)

    def bin(self, name: str) -> str:
        return str(paths.k8s_bin(self.version, name))

    # --- etcd ----------------------------------------------------------------------------------------------
    def etcd_argv(self, name: str) -> list[str]:
        client = f"http://127.0.0.1:{self.ports['etcd_client']}"
        peer = f"http://127.0.0.1:{self.ports['etcd_peer']}"
        return [
            str(paths.etcd_bin()),
            f"--name={name}",
            f"--data-dir={self.etcd_dir}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster={name}={peer}",
            "--initial-cluster-state=new",
            "--snapshot-count=10000",
            "--log-level=warn",
        ]

    def etcd_healthy(self) -> bool:
        with netns.connect(self.netns_path, "127.0.0.1", self.ports["etcd_client"], timeout=2) as sock:
            sock.sendall(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            raw = b""
            while chunk := sock.recv(4096):
                raw += chunk
        head, _, body = raw.partition(b"\r\n\r\n")
        return head.split(b" ", 2)[1] == b"200" and json.loads(body).get("health") == "true"

    # --- kube-apiserver ------------------------------------------------------------------------------------
    def apiserver_argv(self) -> list[str]:
        kc_crt, kc_key = self._client("apiserver-kubelet-client")
        if self.node_ip:
            # all addresses of the node's namespace: its loopback (components) and the node address (pods)
            listen = ["--bind-address=0.0.0.0", f"--advertise-address={self.node_ip}"]
            kubelet_address = "--kubelet-preferred-address-types=InternalIP,Hostname"
        else:
            listen = [
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                # the `kubernetes` Service's endpoint would be 127.0.0.1, which Endpoints validation refuses
                "--endpoint-reconciler-type=none",
            ]
            # only `localhost` (the node's Hostname address) resolves to loopback; never dial the InternalIP
            kubelet_address = "--kubelet-preferred-address-types=Hostname"
        return [
            self.bin("kube-apiserver"),
            *listen,
            f"--secure-port={self.ports['apiserver']}",
            f"--etcd-servers=http://127.0.0.1:{self.ports['etcd_client']}",
            f"--tls-cert-file={self.hc.apiserver_crt}",
            f"--tls-private-key-file={self.hc.apiserver_key}",
            f"--client-ca-file={self.hc.ca_crt}",
            "--authorization-mode=Node,RBAC",
            f"--enable-admission-plugins={ADMISSION_PLUGINS}",
            "--allow-privileged=true",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--service-node-port-range=30000-32767",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={self.sa_pub}",
            f"--service-account-signing-key-file={self.sa_key}",
            f"--kubelet-client-certificate={kc_crt}",
            f"--kubelet-client-key={kc_key}",
            kubelet_address,
            *self._gates(),
            "--profiling=false",
            "--v=1",
        ]

    # --- controller-manager, scheduler ----------------------------------------------------------------------
    def controller_manager_argv(self) -> list[str]:
        return [
            self.bin("kube-controller-manager"),
            f"--kubeconfig={self.kubeconfig('controller-manager')}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.ports['controller_manager']}",
            "--port=0",
            "--leader-elect=false",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={self.sa_key}",
            f"--root-ca-file={self.hc.ca_crt}",
            f"--cluster-signing-cert-file={self.hc.ca_crt}",
            f"--cluster-signing-key-file={self.hc.ca_key}",
            # no cloud provider: these controllers have nothing to do
            "--controllers=*,bootstrapsigner,tokencleaner,-cloud-node-lifecycle,-route,-service",
            "--allocate-node-cidrs=false",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            *self._gates(),
            "--profiling=false",
            "--v=1",
        ]

    def scheduler_argv(self) -> list[str]:
        return [
            self.bin("kube-scheduler"),
            f"--kubeconfig={self.kubeconfig('scheduler')}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.ports['scheduler']}",
            "--port=0",
            "--leader-elect=false",
            *self._gates(),
            "--profiling=false",
            "--v=1",
        ]

    def _gates(self) -> list[str]:
        return [f"--feature-gates={self.feature_gates}"] if self.feature_gates else []
