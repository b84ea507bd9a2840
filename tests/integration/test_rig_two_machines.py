"""Two profiles side by side on one host; destroying one leaves the other working and nothing behind."""

from __future__ import annotations

import os
import socket
import time

import pytest

from devrig import testing as rt
from support import require_rig, wait_until

pytestmark = [pytest.mark.rig, pytest.mark.slow, pytest.mark.destructive]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    require_rig(root=True, busybox=True)
    home = tmp_path_factory.mktemp("rig-pair") / ".minikube"
    booted = []
    try:
        for name in ("alpha", "beta"):
            machine, info, seconds = rt.boot_machine(name, home)
            print(f"\nboot of {name!r}: {seconds:.1f}s")
            booted.append((machine, info))
        yield home, booted
    finally:
        for machine, _ in booted:
            machine.destroy()


def test_both_profiles_run_their_own_cluster_engine_and_node(pair, tmp_path):
    _, booted = pair
    (alpha, a), (beta, b) = booted
    assert a.apiserver_port != b.apiserver_port and a.docker_host != b.docker_host
    assert a.ca_cert == b.ca_cert  # one CA per minikube home, as minikube does
    engine_ids = set()
    for machine, info in booted:
        assert machine.state().running
        name, engine_id = rt.docker(info, "info", "--format", "{{.Name}} {{.ID}}").stdout.split()
        assert name == info.name
        engine_ids.add(engine_id)
        image = rt.build_hello_image(info, f"rigtest/{info.name}:v1", f"id-{info.name}", tmp_path)
        rt.apply(info, rt.pod_manifest("hello", image))
    assert len(engine_ids) == 2, "each engine has an identity of its own, as each minikube node has"
    for _, info in booted:
        rt.wait_pod_phase(info, "hello", "Running", timeout=90)
        # each engine has only its own image: the pod really ran from the profile's engine
        other = "beta" if info.name == "alpha" else "alpha"
        images = rt.docker(info, "images", "--format", "{{.Repository}}").stdout.split()
        assert f"rigtest/{info.name}" in images and f"rigtest/{other}" not in images
    # /var/log/pods is hardcoded in the kubelet and each kubelet's GC deletes pod log dirs it does not know:
    # every profile sees only its own pods' logs there, and the host's directory is untouched
    for machine, info in booted:
        uid = rt.kubectl_json(info, "get", "pod", "hello")["metadata"]["uid"]
        seen = rt.in_machine_namespace(machine, "ls", "/var/log/pods").stdout.split()
        assert seen == [f"default_hello_{uid}"], seen
        assert f"default_hello_{uid}" not in os.listdir("/var/log/pods")
        assert f"build-id=id-{info.name}" in rt.kubectl(info, "logs", "hello").stdout


def test_destroy_one_leaves_the_other_working_and_nothing_behind(pair, tmp_path):
    home, booted = pair
    (alpha, a), (beta, b) = booted
    mount_ns = alpha._load()["mount_ns"]
    assert rt.leftover_processes(a, mount_ns), "alpha should have processes before destroy"
    t0 = time.monotonic()
    alpha.destroy()
    print(f"\ndestroy of 'alpha': {time.monotonic() - t0:.1f}s")
    booted.remove((alpha, a))

    assert rt.leftover_processes(a, mount_ns) == []
    assert not a.state_dir.exists() and not a.run_dir.exists()
    assert alpha.state().host == "missing"
    for port in (a.apiserver_port, int(a.docker_host.rsplit(":", 1)[1])):
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} of the destroyed profile still answers"
    with open("/proc/self/mounts") as fh:
        assert not [line for line in fh if str(a.state_dir) in line or str(a.run_dir) in line]

    assert beta.state().running
    assert rt.kubectl(b, "logs", "hello").stdout.strip().startswith(f"build-id=id-{b.name}")
    rt.apply(b, rt.pod_manifest("after", "k8s.gcr.io/pause:3.4.1"))
    rt.wait_pod_phase(b, "after", "Running", timeout=60)


def test_stop_keeps_data_and_boot_brings_it_back(pair):
    _, booted = pair
    machine, info = booted[-1]
    t0 = time.monotonic()
    machine.stop()
    print(f"\nstop of {info.name!r}: {time.monotonic() - t0:.1f}s")
    state = machine.state()
    assert (state.host, state.apiserver, state.kubelet) == ("stopped", "stopped", "stopped")
    assert machine.processes() == []
    t0 = time.monotonic()
    machine.boot()
    print(f"restart of {info.name!r}: {time.monotonic() - t0:.1f}s")
    assert machine.state().running
    # etcd kept the cluster: the pod object is still there and its container runs again on the restarted node
    wait_until(
        lambda: (
            rt.kubectl(info, "exec", "hello", "--", "/bin/busybox", "echo", "back", check=False).stdout.strip()
            == "back"
        ),
        90,
        "pod hello to run again after the restart (kubectl exec)",
    )
    assert "build-id=" in rt.kubectl(info, "logs", "hello").stdout
