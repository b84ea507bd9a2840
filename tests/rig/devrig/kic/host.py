"""An engine for minikube's docker driver, in a network and mount namespace of its own.

    netns devrig-kic-<id>   lo only; dockerd adds its bridges (the `minikube` network 192.168.49.0/24) and
                            iptables rules here, never on the host
    mount namespace         a tmpfs on /run (dockerd's sockets, containerd, and the empty
                            /run/current-system/kernel-modules/lib/modules: minikube mounts that NixOS path
                            into the node when it exists, instead of creating /lib/modules, absent here, on the
                            host: pkg/drivers/kic/oci/oci.go), an empty dir over /etc/docker
    dockerd                 -H unix:///run/docker.sock (inside) and tcp://127.0.0.1:<port> (inside, forwarded)
    portmirror              host 127.0.0.1:<p> -> namespace 127.0.0.1:<p> for the engine's port and every port
                            a container publishes on 127.0.0.1 (the node's 22, 2376, 8443, ...)
    bin/minikube            the real binary, run in the mount namespace (it stats the NixOS path there) and
                            the host's network, with DOCKER_HOST pointing at the forwarded engine

Everything is undone by stop(): processes killed by group, the namespace deleted, the cgroup removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

from .. import RigError, netns, paths, procs
from ..engine import RUNTIME_NAME, RUNTIME_WRAPPER
from ..procs import Proc

_HOLDER = r"""
set -e
mount -t tmpfs -o mode=0755 devrig-kic-run /run
mkdir -p /run/current-system/kernel-modules/lib/modules
mkdir -p "$DEVRIG_KIC_ETC_DOCKER"
mount --bind "$DEVRIG_KIC_ETC_DOCKER" /etc/docker
exec sleep infinity
"""


class KicHost:
    def __init__(self, root: Path, *, name: str | None = None):
        self.root = root
        self.name = name or f"devrig-kic-{os.getpid()}"
        self.netns = netns.NETNS_DIR / self.name
        self.engine_port = 0
        self.holder: Proc | None = None
        self.dockerd: Proc | None = None
        self.mirror: Proc | None = None
        self.logs = root / "logs"
        self.bin_dir = root / "bin"

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if not self.netns.exists():
            _run(["ip", "netns", "add", self.name], f"creating network namespace {self.name}")
        netns.NodeNetwork(self.name, 0).check_not_host()
        _run(["nsenter", f"--net={self.netns}", "--", "ip", "link", "set", "lo", "up"], "bringing lo up")
        env = dict(os.environ, DEVRIG_KIC_ETC_DOCKER=str(self.root / "etc-docker"))
        self.holder = procs.spawn(
            [
                "nsenter",
                f"--net={self.netns}",
                "--",
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                _HOLDER,
            ],
            log=self.logs / "holder.log",
            env=env,
            pidfile=self.root / "holder.pid",
        )
        procs.wait_for(self._holder_ready, 10, "the namespace holder to mount its private /run")
        self.engine_port = procs.free_port()
        (self.root / "daemon.json").write_text("{}\n")
        dockerd = [
            "nsenter",
            "-t",
            str(self.holder.pid),
            "-m",
            "-n",
            "--",
            str(paths.dockerd_bin()),
            f"--config-file={self.root / 'daemon.json'}",
            f"--data-root={self.root / 'docker-data'}",
            "--exec-root=/run/docker",
            "--pidfile=/run/docker.pid",
            "-H",
            "unix:///run/docker.sock",
            "-H",
            f"tcp://127.0.0.1:{self.engine_port}",
            f"--add-runtime={RUNTIME_NAME}={RUNTIME_WRAPPER}",
            f"--default-runtime={RUNTIME_NAME}",
            f"--cgroup-parent=/{self.name}",
            "--exec-opt=native.cgroupdriver=cgroupfs",
            "--shutdown-timeout=5",
        ]
        clean = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_") and k != "NOTIFY_SOCKET"}
        self.dockerd = procs.spawn(dockerd, log=self.logs / "dockerd.log", env=clean, pidfile=self.root / "dockerd.pid")
        self.mirror = procs.spawn(
            [
                sys.executable,
                "-m",
                "devrig.kic.portmirror",
                "--netns",
                str(self.netns),
                "--engine",
                f"127.0.0.1:{self.engine_port}",
            ],
            log=self.logs / "portmirror.log",
            env=clean,
            pidfile=self.root / "portmirror.pid",
            cwd=paths.PACKAGE_DIR.parent,
        )
        procs.wait_for(
            self._engine_answers,
            60,
            f"the kic engine to answer on 127.0.0.1:{self.engine_port} (forwarded)",
            detail=lambda: (
                f"dockerd log:\n{procs.tail(self.logs / 'dockerd.log')}\n"
                f"portmirror log:\n{procs.tail(self.logs / 'portmirror.log')}"
            ),
        )
        (self.root / "state.json").write_text(json.dumps(self.state()) + "\n")

    def stop(self) -> None:
        procs.terminate_all({"portmirror": self.mirror, "dockerd": self.dockerd}, timeout=30)
        procs.terminate(self.holder, what="namespace holder", timeout=10)
        leftovers = netns.NodeNetwork(self.name, 0).members() if self.netns.exists() else set()
        for pid in leftovers:
            procs.kill_pid(pid)
        if self.netns.exists():
            _run(["ip", "netns", "delete", self.name], f"deleting network namespace {self.name}")
        remove_cgroups(self.name)

    def state(self) -> dict:
        return {
            "name": self.name,
            "engine_port": self.engine_port,
            "holder": self.holder.to_json() if self.holder else None,
        }

    # ------------------------------------------------------------------ what tests use
    @property
    def docker_host(self) -> str:
        return f"tcp://127.0.0.1:{self.engine_port}"

    def docker_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env.update(DOCKER_HOST=self.docker_host, DOCKER_BUILDKIT="0")
        return env

    def docker(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [str(paths.docker_cli()), *args], env=self.docker_env(), capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise RigError(f"docker {' '.join(args)} (kic engine) failed: {result.stderr.strip()[-2000:]}")
        return result

    def minikube_wrapper(self, real_minikube: Path) -> Path:
        """bin/minikube: the real binary in the holder's mount namespace, the host's network."""
        assert self.holder is not None
        self.bin_dir.mkdir(parents=True, exist_ok=True)
        wrapper = self.bin_dir / "minikube"
        wrapper.write_text(
            "#!/bin/sh\n"
            "# devrig kic: the real minikube in the kic engine's mount namespace (see devrig/kic/host.py)\n"
            f'exec nsenter -t {self.holder.pid} -m -- {real_minikube} "$@"\n'
        )
        wrapper.chmod(0o755)
        return wrapper

    # ------------------------------------------------------------------ probes
    def _holder_ready(self) -> bool:
        assert self.holder is not None
        if not procs.alive(self.holder):
            raise RigError(f"the kic namespace holder exited:\n{procs.tail(self.logs / 'holder.log')}")
        probe = Path(f"/proc/{self.holder.pid}/root/run/current-system/kernel-modules/lib/modules")
        return probe.is_dir() and procs.cmdline(self.holder.pid).startswith("sleep")

    def _engine_answers(self) -> bool:
        for proc, what in ((self.dockerd, "dockerd"), (self.mirror, "portmirror")):
            if not procs.alive(proc):
                raise RigError(f"the kic {what} exited:\n{procs.tail(self.logs / (what + '.log'))}")
        result = subprocess.run(
            [str(paths.docker_cli()), "version", "--format", "{{.Server.Version}}"],
            env=self.docker_env(),
            capture_output=True,
            text=True,
            timeout=10,
        )
        return result.returncode == 0 and bool(result.stdout.strip())


def remove_cgroups(name: str) -> None:
    """rmdir the engine's --cgroup-parent in every hierarchy, deepest first (empty once its processes are gone)."""
    for top in Path("/sys/fs/cgroup").iterdir():
        root = top / name
        if not root.is_dir():
            continue
        for sub in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                sub.rmdir()
        with contextlib.suppress(OSError):
            root.rmdir()


def _run(argv: list[str], what: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RigError(f"{what}: {' '.join(argv)} failed: {result.stderr.strip()}")
