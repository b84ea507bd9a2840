"""config.json as the real minikube v1.38.1 writes it for a docker-driver profile: every key, in its order.

Recorded from the real binary on the test machine (tests/e2e/test_real_minikube.py, the contract tests); the
stand-in fills in what it computes (None below) and keeps the rest. A key the stand-in never changes keeps
the value minikube writes by default. CustomAddonImages/CustomAddonRegistries are written by `addons enable
--images/--registries` (cmd_addons.py), after Addons.
"""

from __future__ import annotations

from typing import Any

TOP: dict[str, Any] = {
    "Name": None,
    "KeepContext": None,
    "EmbedCerts": None,
    "MinikubeISO": "",
    "KicBaseImage": None,
    "Memory": None,
    "CPUs": None,
    "DiskSize": 20000,
    "Driver": None,
    "HyperkitVpnKitSock": "",
    "HyperkitVSockPorts": [],
    "DockerEnv": None,
    "ContainerVolumeMounts": None,
    "InsecureRegistry": None,
    "RegistryMirror": [],
    "HostOnlyCIDR": "192.168.59.1/24",
    "HypervVirtualSwitch": "",
    "HypervUseExternalSwitch": False,
    "HypervExternalAdapter": "",
    "KVMNetwork": "default",
    "KVMQemuURI": "qemu:///system",
    "KVMGPU": False,
    "KVMHidden": False,
    "KVMNUMACount": 1,
    "APIServerPort": 8443,
    "DockerOpt": None,
    "DisableDriverMounts": False,
    "NFSShare": [],
    "NFSSharesRoot": "/nfsshares",
    "UUID": "",
    "NoVTXCheck": False,
    "DNSProxy": False,
    "HostDNSResolver": True,
    "HostOnlyNicType": "virtio",
    "NatNicType": "virtio",
    "SSHIPAddress": "",
    "SSHUser": "root",
    "SSHKey": "",
    "SSHPort": 22,
    "KubernetesConfig": None,
    "Nodes": None,
    "Addons": None,
    "VerifyComponents": {"apiserver": True, "system_pods": True},
    "StartHostTimeout": 360000000000,
    "ScheduledStop": None,
    "ExposedPorts": [],
    "ListenAddress": "",
    "Network": "",
    "Subnet": "",
    "MultiNodeRequested": False,
    "ExtraDisks": 0,
    "CertExpiration": 94608000000000000,
    "MountString": "",
    "Mount9PVersion": "9p2000.L",
    "MountGID": "docker",
    "MountIP": "",
    "MountMSize": 262144,
    "MountOptions": [],
    "MountPort": 0,
    "MountType": "9p",
    "MountUID": "docker",
    "BinaryMirror": "",
    "DisableOptimizations": False,
    "DisableMetrics": False,
    "DisableCoreDNSLog": False,
    "CustomQemuFirmwarePath": "",
    "SocketVMnetClientPath": "",
    "SocketVMnetPath": "",
    "StaticIP": "",
    "SSHAuthSock": "",
    "SSHAgentPID": 0,
    "GPUs": "",
    "AutoPauseInterval": 60000000000,
    "Rosetta": False,
}
KUBERNETES_CONFIG: dict[str, Any] = {
    "KubernetesVersion": None,
    "ClusterName": None,
    "Namespace": "default",
    "APIServerHAVIP": "",
    "APIServerName": "minikubeCA",
    "APIServerNames": None,
    "APIServerIPs": None,
    "DNSDomain": "cluster.local",
    "ContainerRuntime": None,
    "CRISocket": "",
    "NetworkPlugin": None,
    "FeatureGates": None,
    "ServiceCIDR": "10.96.0.0/12",
    "ImageRepository": "",
    "LoadBalancerStartIP": "",
    "LoadBalancerEndIP": "",
    "CustomIngressCert": "",
    "RegistryAliases": "",
    "ExtraOptions": None,
    "ShouldLoadCachedImages": True,
    "EnableDefaultCNI": False,
    "CNI": "",
}


def top_for(version: tuple[int, ...]) -> dict[str, Any]:
    """TOP as the release's ClusterConfig has it (pkg/minikube/config/types.go at each tag): v1.36 still has
    `Mount` (before MountString) and neither DisableCoreDNSLog (v1.37) nor Rosetta (v1.38)."""
    out: dict[str, Any] = {}
    for key, value in TOP.items():
        if key == "Rosetta" and version < (1, 38):
            continue
        if key == "DisableCoreDNSLog" and version < (1, 37):
            continue
        if key == "MountString" and version < (1, 37):
            out["Mount"] = False
        out[key] = value
    return out
