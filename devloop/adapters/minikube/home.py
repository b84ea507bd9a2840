"""What minikube keeps on disk about a profile, read without running minikube.

Every fact below holds in minikube v1.36.0, v1.37.0, v1.38.0, v1.38.1 and master after v1.38.1
(file:line given for v1.38.1; the report of issue 13 lists each tag):

- The home is `$MINIKUBE_HOME` when its basename is `.minikube`, else `$MINIKUBE_HOME/.minikube`,
  else `~/.minikube` (pkg/minikube/localpath/localpath.go:43-51, MiniPath).
- A profile is `<home>/profiles/<P>/config.json` (pkg/minikube/config/profile.go:319-325), the
  JSON of ClusterConfig with Go field names and no json tags (pkg/minikube/config/types.go:36,
  116, 144): `Driver`, `KubernetesConfig.{KubernetesVersion,ContainerRuntime,APIServerName}`,
  `KubernetesConfig.FeatureGates` (the `--feature-gates` text),
  `Nodes[].{Name,IP,Port,ControlPlane,Worker}`, `Addons` (map name -> bool), `EmbedCerts`.
- It is rewritten by a rename on every save (profile.go:137-171), and every `minikube start`
  saves it (pkg/minikube/node/start.go:400), so its (mtime, size, inode) changes whenever a start
  may have moved the cluster: a good key for answers cached from minikube.
- `minikube addons list` reads `Addons` from it (cmd/minikube/cmd/config/addons_list.go:129,
  pkg/minikube/assets/addons.go:89): reading the map here is the same answer.
- The cluster CA is `<home>/ca.crt` (localpath.go:129) and the kubeconfig entry minikube writes
  names it (or embeds it with --embed-certs) (pkg/minikube/node/start.go:653-661,
  pkg/minikube/kubeconfig/settings.go:84-90); the client pair is `profiles/<P>/client.{crt,key}`.
- docker-env's TLS files are `<home>/certs/{ca,cert,key}.pem` (docker-env.go:377,
  pkg/minikube/machine/client.go:117-120). Its DOCKER_HOST is `tcp://<node IP>:2376`
  (docker-env.go:349, 369, 553-554, 572; constants.go:51) unless the driver needs a port forward
  (docker driver on macOS/Windows/WSL, rootless, remote daemons: driver.go:243-262), where the
  port is the one Docker picked for `--publish=127.0.0.1::2376` (pkg/drivers/kic/oci/oci.go:511)
  and is read with `docker container inspect` (oci/network.go:160-179): not on disk. So devloop
  caches docker-env's answer keyed by this file (engine_endpoint.py, Session.docker_env) instead.

Nothing here contacts anything; a missing or unreadable file is reported, never guessed around.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from devloop.base.errors import ClusterError


def minikube_home(environ: Mapping[str, str] | None = None) -> Path:
    env = (os.environ if environ is None else environ).get("MINIKUBE_HOME", "")
    if not env:
        return Path.home() / ".minikube"
    # taken literally, as minikube does (localpath.MiniPath expands nothing): a `~` the shell left unexpanded
    # names a directory `~` under the working directory, which devloop shares with the minikube it runs
    path = Path(env)
    return path if path.name == ".minikube" else path / ".minikube"


def home_notice(environ: Mapping[str, str] | None = None) -> str | None:
    """What to tell a user whose MINIKUBE_HOME starts with `~`, which minikube does not expand; else None."""
    env = (os.environ if environ is None else environ).get("MINIKUBE_HOME", "")
    if not env.startswith("~"):
        return None
    return (
        f"MINIKUBE_HOME is {env!r}: minikube does not expand `~`, so it keeps its profiles in "
        f"{(Path.cwd() / minikube_home(environ))}, under the current directory, and so does devloop; "
        f"set MINIKUBE_HOME={os.path.expanduser(env)} (unquoted ~ in the shell) if you meant your home"
    )


def config_path(profile: str, home: Path | None = None) -> Path:
    return (home or minikube_home()) / "profiles" / profile / "config.json"


@dataclass(frozen=True)
class Node:
    name: str
    ip: str
    port: int
    control_plane: bool
    worker: bool


@dataclass(frozen=True)
class ProfileConfig:
    """The parts of a profile's config.json devloop relies on."""

    profile: str
    path: Path
    home: Path
    key: str  # changes whenever minikube rewrites the file (see module doc)
    driver: str
    container_runtime: str
    kubernetes_version: str
    apiserver_name: str
    nodes: tuple[Node, ...]
    addons: dict[str, bool] = field(default_factory=dict)
    # KubernetesConfig.FeatureGates as `minikube start --feature-gates` saved it (start_flags.go:888)
    feature_gates: str = ""

    @property
    def primary(self) -> Node | None:
        """The primary control plane: the unnamed control-plane node (config.PrimaryControlPlane)."""
        primary = next((n for n in self.nodes if n.control_plane and n.name == ""), None)
        return primary or next((n for n in self.nodes if n.control_plane), None)

    @property
    def endpoint(self) -> tuple[str, int] | None:
        node = self.primary
        if node is None or not node.ip or not node.port:
            return None  # saved before the host got its address (start.go:399-400)
        return node.ip, node.port

    @property
    def ca_cert(self) -> Path:
        return self.home / "ca.crt"

    @property
    def docker_cert_dir(self) -> Path:
        return self.home / "certs"

    def addon_enabled(self, name: str) -> bool:
        return bool(self.addons.get(name, False))


def read_profile_config(profile: str, home: Path | None = None) -> ProfileConfig | None:
    """The profile's config.json, or None when minikube has no such profile."""
    home = home or minikube_home()
    path = config_path(profile, home)
    try:
        st = path.stat()
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ClusterError(f"cannot read minikube's profile config {path}: {exc}") from None
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ClusterError(
            f"minikube's profile config {path} is not JSON ({exc})",
            hint=f"`minikube delete -p {profile}` removes a broken profile",
        ) from None
    if not isinstance(data, dict):
        raise ClusterError(f"minikube's profile config {path} is not a JSON object")
    k8s = data.get("KubernetesConfig") or {}
    nodes = tuple(
        Node(
            name=str(n.get("Name") or ""),
            ip=str(n.get("IP") or ""),
            port=int(n.get("Port") or 0),
            control_plane=bool(n.get("ControlPlane")),
            worker=bool(n.get("Worker")),
        )
        for n in (data.get("Nodes") or [])
        if isinstance(n, dict)
    )
    addons = {str(k): bool(v) for k, v in (data.get("Addons") or {}).items()}
    key = f"{st.st_mtime_ns}-{st.st_size}-{st.st_ino}-{hashlib.sha256(raw).hexdigest()[:16]}"
    return ProfileConfig(
        profile=profile,
        path=path,
        home=home,
        key=key,
        driver=str(data.get("Driver") or ""),
        container_runtime=str(k8s.get("ContainerRuntime") or ""),
        kubernetes_version=str(k8s.get("KubernetesVersion") or ""),
        apiserver_name=str(k8s.get("APIServerName") or ""),
        nodes=nodes,
        addons=addons,
        feature_gates=str(k8s.get("FeatureGates") or ""),
    )


class DockerEnvCache:
    """docker-env's last answer for a profile, valid while config.json is the one it was read with.

    The port forwarded for 2376 is not on disk (see the module doc), so the answer is kept rather
    than rebuilt. A start rewrites config.json, which drops the entry; anything else that moves
    the engine (a restarted Docker Desktop) shows up as a failed request, after which the caller
    forgets the entry and asks minikube again.
    """

    def __init__(self, cache_dir: Path, profile: str):
        self.path = Path(cache_dir) / "docker-env" / f"{profile}.json"

    def get(self, key: str) -> dict[str, str] | None:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("key") != key or not isinstance(data.get("env"), dict):
            return None
        return {str(k): str(v) for k, v in data["env"].items()}

    def put(self, key: str, env: Mapping[str, str]) -> None:
        import tempfile

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".docker-env-", dir=self.path.parent)
        with os.fdopen(fd, "w") as fh:
            json.dump({"key": key, "env": dict(env)}, fh)
        os.replace(tmp, self.path)

    def forget(self) -> None:
        self.path.unlink(missing_ok=True)


def trusts_profile_ca(cluster: Mapping, config: ProfileConfig) -> bool:
    """Whether a kubeconfig cluster entry trusts exactly this minikube home's CA (by file or embedded
    data, as minikube writes it), so a TLS handshake through it proves the server holds a certificate
    minikube signed. `insecure-skip-tls-verify` or another CA: False."""
    import base64

    if cluster.get("insecure-skip-tls-verify"):
        return False
    try:
        want = config.ca_cert.read_bytes().strip()
    except OSError:
        return False
    if cluster.get("certificate-authority-data"):
        try:
            have = base64.b64decode(str(cluster["certificate-authority-data"])).strip()
        except ValueError:
            return False
    elif cluster.get("certificate-authority"):
        try:
            have = Path(os.path.expanduser(str(cluster["certificate-authority"]))).read_bytes().strip()
        except OSError:
            return False
    else:
        return False
    return have == want


__all__ = [
    "DockerEnvCache",
    "Node",
    "ProfileConfig",
    "config_path",
    "minikube_home",
    "read_profile_config",
    "trusts_profile_ca",
]
