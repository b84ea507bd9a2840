"""The real-minikube lane's parts that need no engine: the runc wrapper's spec rewrites, the node's sysctl cover,
the seeded cache's names and paths, the port mirror's reading of the engine's containers."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import resource

from devrig import paths
from devrig.engine import KUBELET_SYSCTLS
from devrig.kic import kicbase, seed
from devrig.kic.portmirror import published_ports


def _runc_wrapper():
    loader = importlib.machinery.SourceFileLoader("devrig_runc", str(paths.CNI_DIR / "devrig-runc"))
    spec = importlib.util.spec_from_loader("devrig_runc", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_the_runc_wrapper_drops_sys_resource_raises_oom_and_clamps_nofile():
    wrapper = _runc_wrapper()
    own = int(open("/proc/self/oom_score_adj").read())
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    every = ["CAP_CHOWN", "CAP_SYS_RESOURCE", "CAP_NET_ADMIN"]
    process = {
        "oomScoreAdj": -998,
        "capabilities": {k: list(every) for k in ("bounding", "effective", "permitted", "inheritable", "ambient")},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1048576, "soft": 1048576}, {"type": "RLIMIT_NPROC", "hard": 9}],
    }
    assert wrapper.fix_process(process) is True
    assert process["oomScoreAdj"] == max(own, -998)
    assert all(caps == ["CAP_CHOWN", "CAP_NET_ADMIN"] for caps in process["capabilities"].values())
    if hard != resource.RLIM_INFINITY:
        assert process["rlimits"][0] == {"type": "RLIMIT_NOFILE", "hard": hard, "soft": hard}
    assert process["rlimits"][1] == {"type": "RLIMIT_NPROC", "hard": 9}  # only nofile is touched


def test_the_runc_wrapper_leaves_a_spec_it_can_run_alone():
    wrapper = _runc_wrapper()
    process = {"oomScoreAdj": 1000, "capabilities": {"bounding": ["CAP_CHOWN"]}, "rlimits": []}
    assert wrapper.fix_process(process) is False


def test_kic_preinit_covers_every_host_global_key_the_kubelet_writes():
    script = kicbase.preinit_script()
    for key, value in KUBELET_SYSCTLS.items():
        assert f"echo {value} > /run/devrig-sysctl/{key.replace('/', '.')}" in script
        assert f"mount --bind /run/devrig-sysctl/{key.replace('/', '.')} /proc/sys/{key}" in script
    assert script.rstrip().endswith('exec /usr/local/bin/entrypoint "$@"')


def test_the_seeded_images_carry_both_names_at_minikubes_cache_paths():
    images = seed.images()
    assert images["registry.k8s.io/kube-apiserver:v1.21.14"] == (
        "registry.k8s.io/kube-apiserver:v1.21.14",
        "k8s.gcr.io/kube-apiserver:v1.21.14",
    )
    assert "registry.k8s.io/coredns/coredns:v1.8.0" in images and "registry.k8s.io/etcd:3.4.13-0" in images
    assert images["gcr.io/k8s-minikube/storage-provisioner:v5"] == ("gcr.io/k8s-minikube/storage-provisioner:v5",)
    # localpath.ImagePathInCache: <cache>/images/<arch>/<name with ':' as '_'>
    assert (
        seed.cache_path("registry.k8s.io/coredns/coredns:v1.8.0")
        == "images/amd64/registry.k8s.io/coredns/coredns_v1.8.0"
    )


def test_the_port_mirror_forwards_loopback_and_wildcard_tcp_publications_only():
    containers = [
        {
            "Ports": [
                {"IP": "0.0.0.0", "PrivatePort": 22, "PublicPort": 32772, "Type": "tcp"},
                {"IP": "127.0.0.1", "PrivatePort": 8443, "PublicPort": 32769, "Type": "tcp"},
                {"IP": "192.168.49.1", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                {"IP": "0.0.0.0", "PrivatePort": 53, "PublicPort": 5353, "Type": "udp"},
                {"PrivatePort": 2376, "Type": "tcp"},
            ]
        },
        {"Ports": None},
    ]
    assert published_ports(json.dumps(containers).encode()) == {32772, 32769}
    assert published_ports(b"not json") == set()
