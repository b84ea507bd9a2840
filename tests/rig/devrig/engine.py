"""A Docker engine like minikube's: one dockerd per profile, unix socket for the node, TCP+TLS for docker-env.

dockerd runs in a mount + UTS namespace of its own (hostname = profile name, so `docker info` Name is the
profile, as in minikube).  The kubelet later joins the same mount namespace (see node.py): the two then see
the same mounts (pod volumes, container rootfs) while nothing they mount leaks to the host, and the
namespace also holds private bind mounts over the paths the kubelet hardcodes (/var/log/pods ...).  When
the namespace's last process is gone its mounts vanish with it, so wiping the data-root needs no unmounting.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
from pathlib import Path

from . import RigError, baseimages, paths, procs
from .procs import Proc

PAUSE_IMAGE = "k8s.gcr.io/pause:3.4.1"
RUNTIME_NAME = "devrig-runc"
RUNTIME_WRAPPER = paths.CNI_DIR / "devrig-runc"
# A fault switch (see standin/faults.py): the engine's data root on a small tmpfs with this many MB free.
DISK_FREE_SWITCH = "DEVRIG_ENGINE_DISK_FREE_MB"

# Paths the kubelet (v1.21) hardcodes: shared by every kubelet on the host unless hidden per namespace.
# /var/log/pods: each kubelet's GC deletes pod log dirs of pods it does not know, i.e. another profile's.
# /etc/docker: dockerd keeps its identity (key.json -> `docker info` ID) there; one per engine, as in minikube.
PRIVATE_HOST_DIRS = ("/var/log/pods", "/var/log/containers", "/var/lib/kubelet/device-plugins", "/etc/docker")
# Host sysctls the kubelet insists on (and writes unless they match): it reads these copies instead, so the
# host's kernel settings stay as they are (kernel.panic_on_oops=1 would make the VM reboot on an oops).
KUBELET_SYSCTLS = {
    "vm/overcommit_memory": 1,
    "vm/panic_on_oom": 0,
    "kernel/panic": 10,
    "kernel/panic_on_oops": 1,
    "kernel/keys/root_maxkeys": 1000000,
    "kernel/keys/root_maxbytes": 25000000,
}

_NS_SETUP = r"""
set -e
hostname "$DEVRIG_HOSTNAME"
# dockerd uses a system containerd if /run/containerd/containerd.sock exists (Debian's containerd service):
# all engines would then share one containerd namespace. A private /run/containerd makes each start its own,
# and keeps the shims' sockets (/run/containerd/s/...) inside the namespace.
mkdir -p /run/containerd
mount -t tmpfs -o mode=0711 devrig-containerd /run/containerd
for pair in $DEVRIG_BINDS; do
  src="${pair%%=*}"; dst="${pair#*=}"
  mkdir -p "$src" "$dst"
  mount --bind "$src" "$dst"
done
for pair in $DEVRIG_FILE_BINDS; do
  mount --bind "${pair%%=*}" "${pair#*=}"
done
# Fault switch DEVRIG_ENGINE_DISK_FREE_MB (standin/faults.py): the data root on a tmpfs holding a copy of
# it plus that much room, so a build's large layer hits the engine's real ENOSPC. Only in this namespace:
# it vanishes with the engine, and the on-disk data root is left as it was.
if [ -n "$DEVRIG_DISK_FREE_MB" ]; then
  mkdir -p "$DEVRIG_DISK_STAGE"
  mount -t tmpfs -o size=$(( $(du -sm "$DEVRIG_DATA_ROOT" | cut -f1) + DEVRIG_DISK_FREE_MB + 64 ))m devrig-disk \
    "$DEVRIG_DISK_STAGE"
  cp -a "$DEVRIG_DATA_ROOT/." "$DEVRIG_DISK_STAGE/"
  used_kb=$(df -k --output=used "$DEVRIG_DISK_STAGE" | tail -n 1)
  mount -o remount,size=$(( used_kb + DEVRIG_DISK_FREE_MB * 1024 ))k "$DEVRIG_DISK_STAGE"
  mount --move "$DEVRIG_DISK_STAGE" "$DEVRIG_DATA_ROOT"
fi
exec "$@"
"""


def unix_http(sock: Path, method: str, path: str, timeout: float = 3) -> tuple[int, bytes]:
    """Minimal HTTP/1.0 over the engine's unix socket (no client library: probes must not hang)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(sock))
        s.sendall(f"{method} {path} HTTP/1.0\r\nHost: docker\r\n\r\n".encode())
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body


class Engine:
    def __init__(
        self,
        *,
        name: str,
        state_dir: Path,
        run_dir: Path,
        tcp_port: int,
        tls_ca: Path,
        tls_cert: Path,
        tls_key: Path,
        private_dirs_root: Path,
        netns_prefix: list[str] | None = None,
        host_tcp_port: int | None = None,
    ):
        """netns_prefix: run inside the profile's network namespace, listening there on `tcp_port` (minikube's
        2376) on every address, reached from the host through the forwarded `host_tcp_port` on loopback."""
        self.name = name
        self.netns_prefix = netns_prefix or []
        self.listen_host = "0.0.0.0" if netns_prefix else "127.0.0.1"
        self.host_tcp_port = host_tcp_port or tcp_port
        self.state_dir = state_dir  # <machine>/engine: data-root, daemon.json
        self.run_dir = run_dir  # short path (unix socket length limit): sockets, exec-root
        self.tcp_port = tcp_port
        self.tls = (tls_ca, tls_cert, tls_key)
        self.private_dirs_root = private_dirs_root
        self.data_root = state_dir / "data"
        self.exec_root = run_dir / "exec"
        self.socket = run_dir / "docker.sock"
        self.log = state_dir.parent / "logs" / "dockerd.log"
        self.pidfile = run_dir / "dockerd.launch.pid"

    @property
    def docker_host(self) -> str:
        return f"tcp://127.0.0.1:{self.host_tcp_port}"

    def argv(self) -> list[str]:
        config = self.state_dir / "daemon.json"
        ca, cert, key = self.tls
        return [
            str(paths.dockerd_bin()),
            # an own (empty) config file, so a host /etc/docker/daemon.json never leaks in
            f"--config-file={config}",
            f"--data-root={self.data_root}",
            f"--exec-root={self.exec_root}",
            f"--pidfile={self.run_dir / 'docker.pid'}",
            "-H",
            f"unix://{self.socket}",
            "-H",
            f"tcp://{self.listen_host}:{self.tcp_port}",
            "--tlsverify",
            f"--tlscacert={ca}",
            f"--tlscert={cert}",
            f"--tlskey={key}",
            "--iptables=false",
            "--ip6tables=false",
            "--bridge=none",
            "--ip-forward=false",
            "--ip-masq=false",
            "--userland-proxy=false",
            f"--add-runtime={RUNTIME_NAME}={RUNTIME_WRAPPER}",
            f"--default-runtime={RUNTIME_NAME}",
            "--exec-opt=native.cgroupdriver=cgroupfs",
            # containers that ignore SIGTERM (busybox sleep as PID 1) must not hold up stop for 15 s
            "--shutdown-timeout=3",
        ]

    def start(self) -> Proc:
        for d in (self.state_dir, self.data_root, self.exec_root):
            d.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "daemon.json").write_text("{}\n")
        binds = []
        for host_dir in PRIVATE_HOST_DIRS:
            src = self.private_dirs_root / host_dir.strip("/").replace("/", "_")
            binds.append(f"{src}={host_dir}")
        file_binds = []
        sysctl_dir = self.private_dirs_root / "sysctl"
        sysctl_dir.mkdir(parents=True, exist_ok=True)
        for key, value in KUBELET_SYSCTLS.items():
            if Path("/proc/sys", key).exists():
                copy = sysctl_dir / key.replace("/", ".")
                copy.write_text(f"{value}\n")
                file_binds.append(f"{copy}=/proc/sys/{key}")
        # The engine and the pods resolve names through loopback only: an image pull (the `:latest` trap) fails
        # at once with "connection refused" instead of sending DNS queries off the machine.
        resolv = self.private_dirs_root / "resolv.conf"
        resolv.write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        file_binds.append(f"{resolv}=/etc/resolv.conf")
        env = dict(os.environ)
        env.update(DEVRIG_HOSTNAME=self.name, DEVRIG_BINDS=" ".join(binds), DEVRIG_FILE_BINDS=" ".join(file_binds))
        free = os.environ.get(DISK_FREE_SWITCH, "").strip()
        if free:
            if not free.isdigit():
                raise RigError(f"{DISK_FREE_SWITCH}={free!r}: expected whole megabytes, e.g. 32")
            env.update(
                DEVRIG_DISK_FREE_MB=free,
                DEVRIG_DATA_ROOT=str(self.data_root),
                DEVRIG_DISK_STAGE=str(self.state_dir / "disk-stage"),
            )
        else:
            env.pop("DEVRIG_DISK_FREE_MB", None)
        for var in ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "NOTIFY_SOCKET"):
            env.pop(var, None)
        argv = [
            *self.netns_prefix,
            "unshare",
            "--mount",
            "--uts",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            _NS_SETUP,
            "devrig-ns",
            *self.argv(),
        ]
        return procs.spawn(argv, log=self.log, env=env, pidfile=self.pidfile)

    def ping(self) -> bool:
        try:
            status, body = unix_http(self.socket, "GET", "/_ping", timeout=2)
        except OSError:
            return False
        return status == 200 and body.strip() == b"OK"

    def wait_ready(self, proc: Proc, timeout: float) -> None:
        def probe():
            if not procs.alive(proc):
                raise RigError(f"dockerd for {self.name!r} exited; see {self.log}:\n{procs.tail(self.log)}")
            return self.ping()

        procs.wait_for(
            probe,
            timeout,
            f"dockerd of {self.name!r} to answer /_ping on {self.socket}",
            detail=lambda: f"log {self.log}:\n{procs.tail(self.log)}",
        )

    def has_image(self, ref: str) -> bool:
        status, _ = unix_http(self.socket, "GET", f"/images/{ref}/json")
        return status == 200

    def cli_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env.update(DOCKER_HOST=f"unix://{self.socket}", DOCKER_BUILDKIT="0")
        return env

    def ensure_pause_image(self) -> None:
        """No registry is reachable: build k8s.gcr.io/pause from the locally built static pause binary."""
        if self.has_image(PAUSE_IMAGE):
            return
        pause = paths.pause_bin()
        if not os.access(pause, os.X_OK):
            raise RigError(f"pause binary missing at {pause}; {paths.BUILD_HINT}")
        with tempfile.TemporaryDirectory(prefix="devrig-pause-") as ctx:
            Path(ctx, "pause").write_bytes(pause.read_bytes())
            os.chmod(Path(ctx, "pause"), 0o755)
            Path(ctx, "Dockerfile").write_text('FROM scratch\nCOPY pause /pause\nENTRYPOINT ["/pause"]\n')
            result = subprocess.run(
                [str(paths.docker_cli()), "build", "-q", "-t", PAUSE_IMAGE, ctx],
                env=self.cli_env(),
                capture_output=True,
                text=True,
                timeout=120,
            )
        if result.returncode != 0:
            raise RigError(
                f"building {PAUSE_IMAGE} in the {self.name!r} engine failed: "
                f"{result.stderr.strip() or result.stdout.strip()}"
            )

    def start_base_images(self) -> None:
        """Start loading the base images (a few seconds of `docker load`) beside the rest of the boot."""
        self._base_images = baseimages.start(self.has_image, self.cli_env(), self.name)

    def ensure_base_images(self) -> list[str]:
        """The base images the upstream Dockerfiles name, made of Debian (see baseimages.py); waits for a load
        start_base_images began."""
        pending = getattr(self, "_base_images", None)
        self._base_images = None
        if pending is not None:
            return pending.result()
        return baseimages.ensure(self.has_image, self.cli_env(), self.name)

    def info_name(self) -> str:
        status, body = unix_http(self.socket, "GET", "/info")
        return json.loads(body)["Name"] if status == 200 else ""
