"""What minikube would download, made offline: the Kubernetes binaries and images in MINIKUBE_HOME's cache.

minikube uses cached files as they are (pkg/minikube/download/binary.go) and, with no preload tarball reachable,
loads the image cache into the node instead (pkg/minikube/node/cache.go). So a seeded
`<MINIKUBE_HOME>/cache` lets the real `minikube start --kubernetes-version=v1.21.14` run with no network:

    cache/linux/amd64/v1.21.14/{kubeadm,kubelet,kubectl}     the rig's builds (kubeadm built here, same stamps)
    cache/images/amd64/registry.k8s.io/kube-apiserver_v1.21.14  ... one `docker save` tarball per image

Each image tarball carries two names, registry.k8s.io/<x> (minikube's list, bootstrapper/images) and
k8s.gcr.io/<x>: minikube writes no imageRepository into its kubeadm v1beta2 config, so kubeadm v1.21 and the
kubelet fall back to k8s.gcr.io. What each image is:
- kube-apiserver, -controller-manager, -scheduler: FROM scratch plus the rig's static binary;
- kube-proxy: a slim Debian (iptables, conntrack, ipset) plus the rig's binary;
- etcd 3.4.13-0: Debian's etcd-server binary (3.4.23) on the slim Debian, under the tag kubeadm asks for;
- pause 3.4.1: the rig's build of kubernetes' pause.c;
- coredns v1.8.0 and storage-provisioner v5: built here from their Go modules (coredns@v1.8.0, minikube's own
  cmd/storage-provisioner, from v1.25.2: see go_binary).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .. import RigError, debootstrap, paths

K8S = paths.DEFAULT_KUBERNETES_VERSION
SLIM_PACKAGES = (
    "iptables",
    "conntrack",
    "ipset",
    "kmod",
    "ebtables",
    "iproute2",
    "python3",
    "openssl",
    "curl",
    "ca-certificates",
)  # also the base of the ingress addon's stand-ins (ingress.py)
SLIM_IMAGE = "local/kic-slim:devrig"
COREDNS = "v1.8.0"  # devrig/coredns.py builds it
ETCD_TAG = "3.4.13-0"
PAUSE_TAG = "3.4.1"
STORAGE_PROVISIONER = "v5"
STORAGE_PROVISIONER_SOURCE = "v1.25.2"
VERSION = "1"


def bin_dir() -> Path:
    return paths.cache_dir() / "kic" / "bin"


def _go(argv: list[str], *, cwd: Path | None, env: dict[str, str], what: str, log: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as out:
        out.write(f"$ (cd {cwd}) {' '.join(argv)}\n")
        out.flush()
        result = subprocess.run(
            ["nice", "-n", "10", *argv], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=3600
        )
    if result.returncode != 0:
        raise RigError(f"building {what} failed (log {log}):\n{procs_tail(log)}")


def procs_tail(log: Path) -> str:
    from ..procs import tail

    return tail(log, 25)


def _k8s_ldflags() -> str:
    minor = K8S.split(".")[1]
    flags = ["-checklinkname=0"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={K8S}",
            f"-X {pkg}.gitMajor=1",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate=1970-01-01T00:00:00Z",
            f"-X {pkg}.gitCommit=",
        ]
    return " ".join(flags)


def go_binary(name: str) -> Path:
    """kubeadm or storage-provisioner, built once into the rig cache (CGO off, static)."""
    out = bin_dir() / name
    if out.exists():
        return out
    env = dict(os.environ, CGO_ENABLED="0", GOTOOLCHAIN="local", GOFLAGS="-buildvcs=false")
    log = paths.cache_dir() / "kic" / f"build-{name}.log"
    tmp = out.with_suffix(".tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    if name == "kubeadm":
        wrapper = paths.cache_dir() / "k8s" / K8S / "src" / "wrapper"
        if not (wrapper / "go.mod").exists():
            raise RigMissingError(f"no prepared Kubernetes sources at {wrapper}: {paths.BUILD_HINT}")
        # The wrapper's go.sum covers the six commands the rig builds, not kubeadm's own dependencies
        # (corefile-migration, system-validators): a private copy may add them (-mod=mod, from the proxy).
        work = paths.cache_dir() / "kic" / "kubeadm-wrapper"
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(wrapper, work)
        _go(
            ["go", "build", "-mod=mod", "-ldflags", _k8s_ldflags(), "-o", str(tmp), "k8s.io/kubernetes/cmd/kubeadm"],
            cwd=work,
            env=env,
            what="kubeadm",
            log=log,
        )
        shutil.rmtree(work, ignore_errors=True)
    elif name == "storage-provisioner":
        # The v5 image was built in 2021; today's source has a client-go without the endpoints lock its leader
        # election asks for ("endpoints lock is removed, migrate to leases"). v1.25.2's (client-go 0.23) still
        # builds what v5 is.
        src = _module_dir(f"k8s.io/minikube@{STORAGE_PROVISIONER_SOURCE}", env)
        _go(
            [
                "go",
                "build",
                "-ldflags",
                f"-checklinkname=0 -X k8s.io/minikube/pkg/storage.version={STORAGE_PROVISIONER}",
                "-o",
                str(tmp),
                "./cmd/storage-provisioner",
            ],
            cwd=src,
            env=env,
            what="storage-provisioner",
            log=log,
        )
    else:
        raise ValueError(name)
    tmp.replace(out)
    return out


def coredns_binary() -> Path:
    """The rig's CoreDNS build (scripts/build-rig --with-coredns, the same one cluster DNS runs)."""
    from .. import coredns

    if not coredns.binary().exists():
        build_rig = paths.PACKAGE_DIR.parents[2] / "scripts" / "build-rig"
        result = subprocess.run([str(build_rig), "--with-coredns"], capture_output=True, text=True, timeout=3600)
        if result.returncode != 0 or not coredns.binary().exists():
            raise RigError(f"scripts/build-rig --with-coredns failed:\n{(result.stdout + result.stderr)[-2000:]}")
    return coredns.binary()


def _module_dir(module: str, env: dict[str, str]) -> Path:
    result = subprocess.run(
        ["go", "mod", "download", "-json", module],
        env=dict(env, GONOSUMDB="k8s.io/minikube"),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=paths.cache_dir(),
    )
    if result.returncode != 0:
        raise RigError(f"go mod download {module} failed: {(result.stdout + result.stderr).strip()[-1500:]}")
    return Path(json.loads(result.stdout)["Dir"])


class RigMissingError(RigError):
    pass


def images() -> dict[str, tuple[str, ...]]:
    """minikube's cache name (registry.k8s.io/...) -> every name the tarball carries."""
    out: dict[str, tuple[str, ...]] = {}
    for name, tag in (
        ("kube-apiserver", K8S),
        ("kube-controller-manager", K8S),
        ("kube-scheduler", K8S),
        ("kube-proxy", K8S),
        ("etcd", ETCD_TAG),
        ("pause", PAUSE_TAG),
        ("coredns/coredns", COREDNS),
    ):
        out[f"registry.k8s.io/{name}:{tag}"] = (f"registry.k8s.io/{name}:{tag}", f"k8s.gcr.io/{name}:{tag}")
    sp = f"gcr.io/k8s-minikube/storage-provisioner:{STORAGE_PROVISIONER}"
    out[sp] = (sp,)
    return out


def cache_path(ref: str) -> str:
    """minikube's cache file for an image: cache/images/<arch>/<name>_<tag> (localpath.ImagePathInCache)."""
    return "images/amd64/" + ref.replace(":", "_")


def _dockerfile(ref: str) -> tuple[list[str], dict[str, Path]]:
    name = ref.split("/", 1)[1].rsplit(":", 1)[0]
    k8s_bin = paths.k8s_bin_dir(K8S)
    if name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        return [
            "FROM scratch",
            "ENV PATH=/usr/local/bin:/usr/bin:/bin",
            f"COPY {name} /usr/local/bin/{name}",
            f'ENTRYPOINT ["/usr/local/bin/{name}"]',
        ], {name: k8s_bin / name}
    if name == "kube-proxy":
        return [
            f"FROM {SLIM_IMAGE}",
            "COPY kube-proxy /usr/local/bin/kube-proxy",
            'ENTRYPOINT ["/usr/local/bin/kube-proxy"]',
        ], {"kube-proxy": k8s_bin / "kube-proxy"}
    if name == "etcd":
        return [f"FROM {SLIM_IMAGE}", "COPY etcd /usr/local/bin/etcd", 'CMD ["/usr/local/bin/etcd"]'], {
            "etcd": paths.etcd_bin()
        }
    if name == "pause":
        return ["FROM scratch", "COPY pause /pause", 'ENTRYPOINT ["/pause"]'], {"pause": paths.pause_bin()}
    if name == "coredns/coredns":
        return ["FROM scratch", "COPY coredns /coredns", "EXPOSE 53 53/udp", 'ENTRYPOINT ["/coredns"]'], {
            "coredns": coredns_binary()
        }
    if name == "k8s-minikube/storage-provisioner":
        return ["FROM scratch", "COPY storage-provisioner /storage-provisioner", 'CMD ["/storage-provisioner"]'], {
            "storage-provisioner": go_binary("storage-provisioner")
        }
    raise ValueError(ref)


def slim_image(docker_env: dict[str, str]) -> str:
    tree = debootstrap.rootfs_tarball("bookworm", SLIM_PACKAGES)
    have = _docker(
        docker_env, "image", "inspect", "-f", '{{index .Config.Labels "devrig.tree"}}', SLIM_IMAGE, check=False
    )
    if have.returncode != 0 or have.stdout.strip() != tree.stem:
        debootstrap.import_image(
            tree,
            SLIM_IMAGE,
            docker_env=docker_env,
            changes=[
                f"LABEL devrig.tree={tree.stem}",
                "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            ],
        )
    return SLIM_IMAGE


def _key() -> str:
    h = hashlib.sha256(VERSION.encode())
    for ref in images():
        lines, files = _dockerfile(ref)
        h.update("\n".join(lines).encode())
        for p in files.values():
            st = p.stat()
            h.update(f"{p}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()[:16]


def image_cache(docker_env: dict[str, str]) -> Path:
    """The seeded `cache` directory (a template: copy it into each MINIKUBE_HOME with hard links)."""
    root = paths.cache_dir() / "kic" / f"cache-{_key()}"
    if (root / ".complete").exists():
        return root
    slim_image(docker_env)
    with debootstrap.file_lock(root.with_suffix(".lock")):
        if (root / ".complete").exists():
            return root
        shutil.rmtree(root, ignore_errors=True)
        binaries = root / "linux" / "amd64" / K8S
        binaries.mkdir(parents=True)
        shutil.copy2(go_binary("kubeadm"), binaries / "kubeadm")
        for name in ("kubelet", "kubectl"):
            shutil.copy2(paths.k8s_bin(K8S, name), binaries / name)
        for ref, names in images().items():
            lines, files = _dockerfile(ref)
            with tempfile.TemporaryDirectory(prefix="devrig-kic-img-") as ctx:
                for fname, src in files.items():
                    shutil.copy2(src, Path(ctx, fname))
                Path(ctx, "Dockerfile").write_text("\n".join(lines) + "\n")
                _docker(docker_env, "build", "-q", "-t", names[0], ctx)
            for extra in names[1:]:
                _docker(docker_env, "tag", names[0], extra)
            out = root / cache_path(ref)
            out.parent.mkdir(parents=True, exist_ok=True)
            _docker(docker_env, "save", "-o", str(out), *names)
        (root / ".complete").write_text(_key() + "\n")
        for stale in root.parent.glob("cache-*"):  # earlier keys' caches: 1.4 GB each, never used again
            if stale.is_dir() and stale != root:
                shutil.rmtree(stale, ignore_errors=True)
                stale.with_suffix(".lock").unlink(missing_ok=True)
    return root


def _docker(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([str(paths.docker_cli()), *args], env=env, capture_output=True, text=True, timeout=900)
    if check and result.returncode != 0:
        raise RigError(f"docker {' '.join(args[:4])} ... failed: {result.stderr.strip()[-1500:]}")
    return result
