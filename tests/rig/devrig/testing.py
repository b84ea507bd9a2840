"""Helpers for tests that drive a rig machine directly (kubectl, docker, images, pods).

Whether a test may run at all (rig built, root, busybox; skip or, under CI=true, fail) is decided in
one place: tests/support/rig.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from . import paths, procs
from .machine import Machine, MachineInfo

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")


def busybox() -> Path | None:
    """A busybox to copy into FROM-scratch images (Debian's busybox-static is linked statically)."""
    return next((Path(c) for c in BUSYBOX_CANDIDATES if Path(c).exists()), None)


def kubectl(info: MachineInfo, *args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    argv = [
        str(paths.k8s_bin(info.kubernetes_version, "kubectl")),
        f"--kubeconfig={info.kubeconfig}",
        "--request-timeout=30s",
        *args,
    ]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}{result.stdout}")
    return result


def kubectl_json(info: MachineInfo, *args: str) -> dict:
    return json.loads(kubectl(info, *args, "-o", "json").stdout)


def docker_env(info: MachineInfo) -> dict[str, str]:
    """What `minikube docker-env` exports; REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE stay as the machine sets them."""
    env = dict(os.environ)
    env.update(
        DOCKER_HOST=info.docker_host,
        DOCKER_TLS_VERIFY="1",
        DOCKER_CERT_PATH=str(info.docker_cert_path),
        DOCKER_BUILDKIT="0",
    )
    return env


def docker(info: MachineInfo, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(paths.docker_cli()), *args], env=docker_env(info), capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({result.returncode}):\n{result.stderr}{result.stdout}")
    return result


def build_hello_image(info: MachineInfo, tag: str, build_id: str, workdir: Path) -> str:
    """Build a tiny image through the engine's TCP+TLS endpoint: prints `build-id=<id>` then sleeps."""
    ctx = workdir / f"ctx-{build_id}"
    ctx.mkdir(parents=True, exist_ok=True)
    shutil.copy(busybox(), ctx / "busybox")
    (ctx / "Dockerfile").write_text(
        "FROM scratch\nCOPY busybox /bin/busybox\n"
        f'ENTRYPOINT ["/bin/busybox", "sh", "-c", "echo build-id={build_id}; exec /bin/busybox sleep 100000"]\n'
    )
    docker(info, "build", "-q", "-t", tag, str(ctx))
    return tag


def wait_pod_phase(
    info: MachineInfo, name: str, phase: str = "Running", timeout: float = 60, namespace: str = "default"
) -> dict:
    def probe():
        pod = kubectl_json(info, "-n", namespace, "get", "pod", name)
        return pod if pod.get("status", {}).get("phase") == phase else None

    return procs.wait_for(
        probe,
        timeout,
        f"pod {namespace}/{name} to be {phase}",
        interval=0.5,
        detail=lambda: kubectl(info, "-n", namespace, "describe", "pod", name, check=False).stdout,
    )


def pod_manifest(name: str, image: str, *, pull_policy: str | None = "Never", extra_spec: dict | None = None) -> str:
    container = {"name": "main", "image": image}
    if pull_policy:
        container["imagePullPolicy"] = pull_policy
    spec = {"containers": [container], "terminationGracePeriodSeconds": 0, **(extra_spec or {})}
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})


def apply(info: MachineInfo, manifest: str) -> None:
    result = subprocess.run(
        [str(paths.k8s_bin(info.kubernetes_version, "kubectl")), f"--kubeconfig={info.kubeconfig}", "apply", "-f", "-"],
        input=manifest,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        raise AssertionError(f"kubectl apply failed: {result.stderr}")


def leftover_processes(info: MachineInfo, mount_ns: str | None) -> list[str]:
    """Processes that still belong to a destroyed machine: by state/run dir in the cmdline or by namespace."""
    marks = (str(info.state_dir), str(info.run_dir))
    found = []
    for pid in procs.all_pids():
        if pid == os.getpid():
            continue
        line = procs.cmdline(pid)
        if any(m in line for m in marks) or (mount_ns and procs.mount_ns(pid) == mount_ns):
            found.append(f"{pid}: {line}")
    return found


def boot_machine(name: str, home: Path, **kwargs) -> tuple[Machine, MachineInfo, float]:
    machine = Machine(name, home)
    start = time.monotonic()
    info = machine.boot(**kwargs)
    return machine, info, time.monotonic() - start


def node_ready(node: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in node.get("status", {}).get("conditions", []))


def in_machine_namespace(machine: Machine, *argv: str) -> subprocess.CompletedProcess:
    """Run a command in the machine's mount namespace (what its dockerd and kubelet see)."""
    pid = machine._load()["procs"]["dockerd"]["pid"]
    return subprocess.run(
        ["nsenter", f"--target={pid}", "--mount", "--", *argv], capture_output=True, text=True, timeout=30, check=True
    )
