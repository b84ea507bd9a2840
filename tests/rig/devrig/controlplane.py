"""The control plane of one profile: etcd, kube-apiserver, kube-controller-manager, kube-scheduler.

Everything listens on loopback only, on ports picked free when the machine is first created (kept across
restarts: etcd remembers its peer URL, kubeconfigs name the API server's port).
"""
from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from . import certs, kubeconfig, paths
from .kapi import Api

SERVICE_CIDR = "10.96.0.0/12"
ADMISSION_PLUGINS = ("NamespaceLifecycle,LimitRanger,ServiceAccount,DefaultStorageClass,DefaultTolerationSeconds,"
                     "NodeRestriction,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ResourceQuota")


class ControlPlane:
    def __init__(self, *, machine_dir: Path, home_certs: certs.HomeCerts, version: str, ports: dict[str, int]):
        self.dir = machine_dir
        self.hc = home_certs
        self.version = version
        self.ports = ports
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
            ("apiserver-kubelet-client", "kube-apiserver-kubelet-client", ["system:masters"]),
        ):
            crt, key = self._client(name)
            certs.ensure_leaf(crt, key, ca, cn=cn, orgs=orgs, client=True)
        certs.ensure_rsa_keypair(self.sa_key, self.sa_pub)
        server = self.server_url
        for name in ("controller-manager", "scheduler", "kubelet"):
            crt, key = self._client(name)
            kubeconfig.write(self.kubeconfig(name), server=server, ca=self.hc.ca_crt, cert=crt, key=key)
        kubeconfig.write(self.kubeconfig("admin"), server=server, ca=self.hc.ca_crt,
                         cert=self.hc.client_crt, key=self.hc.client_key)

    def kubeconfig(self, name: str) -> Path:
        return self.kubeconfigs / f"{name}.conf"

    @property
    def server_url(self) -> str:
        return f"https://127.0.0.1:{self.ports['apiserver']}"

    def api(self) -> Api:
        return Api(self.ports["apiserver"], self.hc.ca_crt, self.hc.client_crt, self.hc.client_key)

    def bin(self, name: str) -> str:
        return str(paths.k8s_bin(self.version, name))

    # --- etcd ----------------------------------------------------------------------------------------------
    def etcd_argv(self, name: str) -> list[str]:
        client = f"http://127.0.0.1:{self.ports['etcd_client']}"
        peer = f"http://127.0.0.1:{self.ports['etcd_peer']}"
        return [str(paths.etcd_bin()), f"--name={name}", f"--data-dir={self.etcd_dir}",
                f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster={name}={peer}", "--initial-cluster-state=new",
                "--snapshot-count=10000", "--log-level=warn"]

    def etcd_healthy(self) -> bool:
        url = f"http://127.0.0.1:{self.ports['etcd_client']}/health"
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=2) as resp:
            return json.loads(resp.read()).get("health") == "true"

    # --- kube-apiserver ------------------------------------------------------------------------------------
    def apiserver_argv(self) -> list[str]:
        kc_crt, kc_key = self._client("apiserver-kubelet-client")
        return [
            self.bin("kube-apiserver"),
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={self.ports['apiserver']}",
            # the `kubernetes` Service's endpoint would be 127.0.0.1, which Endpoints validation refuses
            "--endpoint-reconciler-type=none",
            f"--etcd-servers=http://127.0.0.1:{self.ports['etcd_client']}",
            f"--tls-cert-file={self.hc.apiserver_crt}", f"--tls-private-key-file={self.hc.apiserver_key}",
            f"--client-ca-file={self.hc.ca_crt}",
            "--authorization-mode=Node,RBAC", f"--enable-admission-plugins={ADMISSION_PLUGINS}",
            "--allow-privileged=true",
            f"--service-cluster-ip-range={SERVICE_CIDR}", "--service-node-port-range=30000-32767",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={self.sa_pub}", f"--service-account-signing-key-file={self.sa_key}",
            f"--kubelet-client-certificate={kc_crt}", f"--kubelet-client-key={kc_key}",
            # only `localhost` (the node's Hostname address) resolves to loopback; never dial the InternalIP
            "--kubelet-preferred-address-types=Hostname",
            "--profiling=false", "--v=1",
        ]

    # --- controller-manager, scheduler ----------------------------------------------------------------------
    def controller_manager_argv(self) -> list[str]:
        return [
            self.bin("kube-controller-manager"),
            f"--kubeconfig={self.kubeconfig('controller-manager')}",
            "--bind-address=127.0.0.1", f"--secure-port={self.ports['controller_manager']}", "--port=0",
            "--leader-elect=false", "--use-service-account-credentials=true",
            f"--service-account-private-key-file={self.sa_key}", f"--root-ca-file={self.hc.ca_crt}",
            f"--cluster-signing-cert-file={self.hc.ca_crt}", f"--cluster-signing-key-file={self.hc.ca_key}",
            # no cloud provider: these controllers have nothing to do
            "--controllers=*,bootstrapsigner,tokencleaner,-cloud-node-lifecycle,-route,-service",
            "--allocate-node-cidrs=false", f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--profiling=false", "--v=1",
        ]

    def scheduler_argv(self) -> list[str]:
        return [
            self.bin("kube-scheduler"),
            f"--kubeconfig={self.kubeconfig('scheduler')}",
            "--bind-address=127.0.0.1", f"--secure-port={self.ports['scheduler']}", "--port=0",
            "--leader-elect=false", "--profiling=false", "--v=1",
        ]
