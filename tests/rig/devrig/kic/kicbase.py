"""The kicbase image, built offline: what minikube's deploy/kicbase/Dockerfile makes, on a debootstrapped Debian.

No registry is reachable, so `gcr.io/k8s-minikube/kicbase` cannot be pulled. This builds its equivalent from
Debian bookworm (kicbase's own base) and the minikube release's own files (`deploy/kicbase/` in the module
minikube was built from): the entrypoint, the sysctl and containerd files, the systemd pruning, the `docker`
user with passwordless sudo, sshd's ssh-rsa lines, /kind, /kic.txt and /version.json. Differences, each because
of this machine or of Debian rather than by choice:
- Debian's docker.io (20.10) and containerd instead of docker-ce from download.docker.com; no cri-dockerd,
  crictl, buildkit, podman, cri-o or nerdctl (not needed for Kubernetes < 1.24 with the docker runtime, which
  uses the kubelet's dockershim). /usr/bin/dockerd links to /usr/sbin/dockerd: minikube's docker unit names the
  former (pkg/provision/ubuntu.go).
- /etc/environment with an sbin PATH: minikube v1.36 runs `sudo env PATH=...:$PATH kubeadm` with the docker
  user's PATH, which Debian's sshd gives no sbin (kubeadm then finds no iptables or conntrack).
- /usr/sbin/runc is the rig's runc wrapper (cni/devrig-runc; the real one is runc.real beside it): this sandbox
  lacks CAP_SYS_RESOURCE, which privileged pods, oom_score_adj < 0 and minikube's nofile ulimit need.
- The entrypoint is preceded by kic-preinit, which covers the host-global sysctls the kubelet would write
  (kernel.panic_on_oops=1 and others: the node is privileged, its /proc/sys writable) with plain files in the
  node's own mount namespace; systemd-sysctl, systemd-modules-load and systemd-binfmt are masked.
- python3 (the runc wrapper is Python, and so are the ingress addon's stand-in images built on this base).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from .. import RigError, debootstrap, paths
from ..engine import KUBELET_SYSCTLS, RUNTIME_WRAPPER

SUITE = "bookworm"
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "sudo",
    "docker.io",
    "containerd",
    "runc",
    "conntrack",
    "iptables",
    "ebtables",
    "socat",
    "ca-certificates",
    "iproute2",
    "iputils-ping",
    "procps",
    "kmod",
    "ethtool",
    "lz4",
    "curl",
    "less",
    "netcat-openbsd",
    "openssl",
    "libseccomp2",
    "ipset",
    "zstd",
    "pigz",
    "xz-utils",
    "gnupg",
    "lsb-release",
    "nftables",
    "python3",
    "util-linux",
    "mount",
    "bash",
    "rsync",
    "libcap2-bin",
)  # kicbase's own list (deploy/kicbase/Dockerfile) in Debian's names, plus python3 (see above)
IMAGE = "local/kicbase:devrig"
MINIKUBE_FILES = {  # deploy/kicbase/<name> -> path in the node
    "entrypoint": "/usr/local/bin/entrypoint",
    "10-network-security.conf": "/etc/sysctl.d/10-network-security.conf",
    "11-tcp-mtu-probing.conf": "/etc/sysctl.d/11-tcp-mtu-probing.conf",
    "containerd.toml": "/etc/containerd/config.toml",
}
VERSION = "1"  # bump when the customisation below changes what the image holds

_CUSTOMISE = r"""
set -e
find /lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete
rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \
  /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \
  /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/*
echo "ReadKMsg=no" >> /etc/systemd/journald.conf
mkdir -p /etc/kubernetes/manifests
sed -i /usr/lib/systemd/system/systemd-tmpfiles-clean.timer -e 's#OnBootSec=.*#OnBootSec=1min#'
systemctl mask systemd-binfmt.service systemd-sysctl.service systemd-modules-load.service
sed -ri 's/^(hosts:\s*).*/\1files dns/' /etc/nsswitch.conf
cat >> /etc/ssh/sshd_config <<'SSHD'
PubkeyAcceptedAlgorithms +ssh-rsa
HostkeyAlgorithms +ssh-rsa
PubkeyAuthentication yes
PasswordAuthentication no
SSHD
systemctl disable containerd.service >/dev/null 2>&1 || true
systemctl enable docker.service ssh.service
groupadd -f docker
useradd -m -s /bin/bash -g docker -G sudo docker
usermod -p '*' docker && passwd -u docker >/dev/null 2>&1 || true
passwd -d docker >/dev/null
echo '%sudo ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/20-passwordless-sudo
chmod 0440 /etc/sudoers.d/20-passwordless-sudo
install -d -o docker -g docker /home/docker/.ssh
mkdir -p /kind
ln -sf /usr/sbin/dockerd /usr/bin/dockerd
echo 'PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"' > /etc/environment
mv /usr/sbin/runc /usr/sbin/runc.real
install -m 0755 /devrig-runc /usr/sbin/runc
rm -f /devrig-runc
install -m 0755 /kic-preinit /usr/local/bin/kic-preinit
rm -f /kic-preinit
chmod +x /usr/local/bin/entrypoint
rm -rf /usr/share/doc/* /usr/share/man/*
"""


def preinit_script() -> str:
    lines = [
        "#!/bin/sh",
        "# devrig kic: cover the host-global sysctls the kubelet writes with plain files, in this node's mount",
        "# namespace only (see devrig/kic/kicbase.py), then run minikube's entrypoint.",
        "set -e",
        "mkdir -p /run/devrig-sysctl",
    ]
    for key, value in KUBELET_SYSCTLS.items():
        name = key.replace("/", ".")
        lines.append(
            f"if [ -e /proc/sys/{key} ]; then echo {value} > /run/devrig-sysctl/{name}; "
            f"mount --bind /run/devrig-sysctl/{name} /proc/sys/{key}; fi"
        )
    lines.append('exec /usr/local/bin/entrypoint "$@"')
    return "\n".join(lines) + "\n"


def minikube_source(version: str) -> Path:
    """The module directory of k8s.io/minikube@version (build-minikube downloaded it)."""
    gomodcache = subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True, text=True).stdout.strip()
    src = Path(gomodcache, f"k8s.io/minikube@{version}")
    if not (src / "deploy/kicbase/entrypoint").is_file():
        raise RigError(f"no deploy/kicbase in {src}: run tests/rig/build-minikube {version} first")
    return src


def _key(base: Path, src: Path) -> str:
    h = hashlib.sha256()
    for part in (VERSION, base.name, _CUSTOMISE, preinit_script(), RUNTIME_WRAPPER.read_text()):
        h.update(part.encode())
    for name in sorted(MINIKUBE_FILES):
        h.update((src / "deploy/kicbase" / name).read_bytes())
    return h.hexdigest()[:16]


def tree_tarball(minikube_version: str) -> Path:
    """The customised tree, cached as a tarball next to the debootstrap ones (built on first use)."""
    base = debootstrap.rootfs_tarball(SUITE, PACKAGES)
    src = minikube_source(minikube_version)
    target = paths.cache_dir() / "kic" / f"kicbase-{_key(base, src)}.tar"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with debootstrap.file_lock(target.with_suffix(".lock")):
        if target.exists():
            return target
        with tempfile.TemporaryDirectory(prefix=".kicbase-", dir=target.parent) as tmp:
            root = Path(tmp, "root")
            root.mkdir()
            _sh(["tar", "--numeric-owner", "--xattrs", "-C", str(root), "-xf", str(base)], "unpacking the base tree")
            for name, dest in MINIKUBE_FILES.items():
                out = root / dest.lstrip("/")
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src / "deploy/kicbase" / name, out)
            shutil.copyfile(RUNTIME_WRAPPER, root / "devrig-runc")
            (root / "kic-preinit").write_text(preinit_script())
            (root / "version.json").write_text(json.dumps({"devrig": VERSION, "minikube_files": minikube_version}))
            (root / "kic.txt").write_text(f"kic! Build: devrig-{VERSION} (offline, see devrig/kic/kicbase.py)\n")
            _sh(["chroot", str(root), "/bin/sh", "-c", _CUSTOMISE], "customising the kicbase tree")
            part = Path(tmp, "tree.tar")
            _sh(["tar", "--numeric-owner", "--xattrs", "-C", str(root), "-cf", str(part), "."], "packing the tree")
            part.replace(target)
    return target


def ensure_image(docker_env: dict[str, str], minikube_version: str) -> str:
    """IMAGE in the engine docker_env reaches, from the cached tree; returns IMAGE."""
    tree = tree_tarball(minikube_version)
    label = f"devrig.kicbase={tree.stem}"
    have = subprocess.run(
        [str(paths.docker_cli()), "image", "inspect", "-f", '{{index .Config.Labels "devrig.kicbase"}}', IMAGE],
        env=docker_env,
        capture_output=True,
        text=True,
    )
    if have.returncode == 0 and have.stdout.strip() == tree.stem:
        return IMAGE
    debootstrap.import_image(
        tree,
        IMAGE,
        docker_env=docker_env,
        dockerfile_lines=[
            f"LABEL {label}",
            "ENV container=docker",
            "EXPOSE 22",
            "STOPSIGNAL SIGRTMIN+3",
            'ENTRYPOINT ["/usr/local/bin/kic-preinit", "/sbin/init"]',
        ],
    )
    return IMAGE


def _sh(argv: list[str], what: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RigError(f"{what} failed: {' '.join(argv[:3])} ...: {(result.stderr or result.stdout).strip()[-2000:]}")
