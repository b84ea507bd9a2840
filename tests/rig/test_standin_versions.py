"""The stand-in's release modes against running profiles: the containerd runtime (v1.39's default; docker-env's
ssh:// answer; `image load` landing where the pod's runtime finds it) and the Docker >= 29 engine gate of
v1.38 (the real v1.21 kubelet refused; `--docker-env DOCKER_MIN_API_VERSION=1.24` lets it through).

The releases' cluster-free behaviour is checked against the real binaries in test_minikube_contract.py."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from support import wait_until

BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static, which scripts/build-rig installs
GATE_MESSAGE = (
    "client version 1.41 is too old. Minimum supported API version is 1.44, please upgrade your client "
    "to a newer version"
)


def _image_tarball(path: Path, tag: str) -> str:
    """A `docker save` archive made without any daemon (the rig's host has none): one layer holding a static
    busybox. Returns the image ID (sha256 of its config), which `docker load` keeps."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        info = tar.gettarinfo(str(BUSYBOX), arcname="bin/busybox")
        info.uid = info.gid = 0
        with BUSYBOX.open("rb") as fh:
            tar.addfile(info, fh)
    layer_bytes = layer.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/bin/busybox", "sleep", "3600"], "Env": ["PATH=/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created_by": "tests/rig/test_standin_versions.py"}],
        },
        sort_keys=True,
    ).encode()
    image_id = hashlib.sha256(config).hexdigest()
    manifest = json.dumps(
        [{"Config": f"{image_id}.json", "RepoTags": [tag], "Layers": [f"{diff_id[7:]}/layer.tar"]}]
    ).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in (
            (f"{image_id}.json", config),
            (f"{diff_id[7:]}/layer.tar", layer_bytes),
            ("manifest.json", manifest),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return image_id


def _pod(name: str, image: str) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {
                "containers": [{"name": "c", "image": image, "imagePullPolicy": "Never"}],
                "terminationGracePeriodSeconds": 0,
            },
        }
    )


@pytest.fixture(scope="module")
def containerd_profile(rig_profile_factory):
    """A v1.39 profile: containerd by default (forced: 1.21 is older than its oldest supported 1.28)."""
    return rig_profile_factory(args=("--force",), env={"DEVRIG_MINIKUBE_VERSION": "v1.39.0"})


def test_v139_defaults_to_containerd(containerd_profile):
    cfg = json.loads(
        (
            containerd_profile.minikube_home / ".minikube" / "profiles" / containerd_profile.profile / "config.json"
        ).read_text()
    )
    assert cfg["KubernetesConfig"]["ContainerRuntime"] == "containerd"
    assert cfg["Nodes"][0]["ContainerRuntime"] == "containerd"


def test_containerd_docker_env_is_ssh(containerd_profile):
    out = containerd_profile.minikube("docker-env", "--shell", "none", "-o", "json")
    assert out.returncode == 0, out.stderr
    env = json.loads(out.stdout)
    assert env["DOCKER_HOST"].startswith("ssh://docker@127.0.0.1:")
    assert env["MINIKUBE_ACTIVE_DOCKERD"] == containerd_profile.profile
    assert "DOCKER_TLS_VERIFY" not in env and "DOCKER_CERT_PATH" not in env
    assert "! Using the docker-env command with the containerd runtime is a highly experimental feature" in out.stderr


def test_image_load_archive_runs_in_a_pod(containerd_profile, tmp_path):
    tag = "devrig-loaded:1"
    image_id = _image_tarball(tmp_path / "img.tar", tag)
    out = containerd_profile.minikube("image", "load", str(tmp_path / "img.tar"), timeout=300)
    assert (out.returncode, out.stderr) == (0, ""), out.stderr
    listed = containerd_profile.minikube("image", "ls")
    assert f"docker.io/library/{tag}" in listed.stdout.splitlines()
    containerd_profile.kubectl("apply", "-f", "-", input=_pod("loaded", tag))

    def running():
        pod = json.loads(containerd_profile.kubectl("get", "pod", "loaded", "-o", "json").stdout)
        statuses = pod.get("status", {}).get("containerStatuses") or []
        return statuses and statuses[0].get("state", {}).get("running") and statuses[0]

    status = wait_until(
        running,
        120,
        "pod `loaded` to run the loaded image",
        detail=lambda: containerd_profile.kubectl("describe", "pod", "loaded", check=False).stdout,
    )
    assert status["imageID"].endswith(image_id)


def test_image_load_by_name_reads_the_local_daemon(containerd_profile, tmp_path):
    """minikube takes a name from the docker client's daemon (DOCKER_HOST); here another engine: the
    profile's own TCP+TLS endpoint stands for a host daemon the rig does not have."""
    from devrig.machine import Machine

    info = Machine(containerd_profile.profile, containerd_profile.minikube_home / ".minikube").info()
    env = {"DOCKER_HOST": info.docker_host, "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(info.docker_cert_path)}
    missing = containerd_profile.minikube("image", "load", "devrig-absent:1", env=env, timeout=120)
    assert missing.returncode == 80 and "GUEST_IMAGE_LOAD" in missing.stderr
    # the image reaches that daemon the way a user's build would put it there
    import docker
    import docker.tls

    certs = Path(info.docker_cert_path)
    local = docker.DockerClient(
        base_url=info.docker_host,
        version="1.41",
        tls=docker.tls.TLSConfig(
            client_cert=(str(certs / "cert.pem"), str(certs / "key.pem")), ca_cert=str(certs / "ca.pem"), verify=True
        ),
    )
    local.api.trust_env = False
    _image_tarball(tmp_path / "img.tar", "devrig-byname:1")
    local.images.load((tmp_path / "img.tar").read_bytes())
    present = containerd_profile.minikube("image", "load", "devrig-byname:1", env=env, timeout=300)
    assert (present.returncode, present.stderr) == (0, ""), present.stderr
    assert "docker.io/library/devrig-byname:1" in containerd_profile.minikube("image", "ls").stdout.splitlines()


# --- the Docker >= 29 engine of v1.38 --------------------------------------------------------------------


def test_v138_engine_refuses_the_v121_kubelet(rig_env, rig_built):
    profile = f"gate-{int(time.time()) % 100000}"
    env = {**rig_env.env, "DEVRIG_MINIKUBE_VERSION": "v1.38.1", "DEVRIG_KUBEADM_INIT_TIMEOUT": "15"}
    try:
        out = subprocess.run(
            ["minikube", "start", "-p", profile, "--driver=docker", "--kubernetes-version=v1.21.14", "--force"],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert out.returncode == 109, out.stderr
        assert "! initialization failed, will try again: wait: /bin/bash -c" in out.stderr
        assert "X Exiting due to K8S_KUBELET_NOT_RUNNING: wait: " in out.stderr
        assert "- The kubelet is not running" in out.stderr
        assert GATE_MESSAGE in out.stdout + out.stderr  # "Problems detected in kubelet"
        log = rig_env.minikube_home / ".minikube" / "machines" / profile / "logs" / "kubelet.log"
        assert GATE_MESSAGE in log.read_text()  # the real kubelet's own error
    finally:
        subprocess.run(["minikube", "delete", "-p", profile], env=rig_env.env, capture_output=True, timeout=120)


def test_v138_docker_min_api_version_lets_it_through(rig_profile_factory):
    cluster = rig_profile_factory(
        args=("--force", "--docker-env", "DOCKER_MIN_API_VERSION=1.24"), env={"DEVRIG_MINIKUBE_VERSION": "v1.38.1"}
    )
    nodes = json.loads(cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    assert [n["metadata"]["labels"]["minikube.k8s.io/version"] for n in nodes] == ["v1.38.1"]


def test_containerd_docker_env_off_the_docker_driver_is_14(containerd_profile):
    """docker-env.go:672-682: containerd's docker-env needs the docker driver (kvm2/qemu: exit 14). The
    stand-in only makes docker-driver profiles, so the saved config is edited, then put back."""
    path = containerd_profile.minikube_home / ".minikube" / "profiles" / containerd_profile.profile / "config.json"
    saved = path.read_text()
    try:
        path.write_text(json.dumps({**json.loads(saved), "Driver": "kvm2"}))
        out = containerd_profile.minikube("docker-env", "--shell", "none")
        assert out.returncode == 14
        assert out.stdout == "false exit code 14\n"
        assert (
            "X Exiting due to MK_USAGE: the docker-env command only supports the containerd runtime with the "
            "docker driver"
        ) in out.stderr
    finally:
        path.write_text(saved)
