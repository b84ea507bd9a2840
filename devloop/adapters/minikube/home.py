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
- Every `minikube start` saves it (pkg/minikube/node/start.go:400), so its (mtime, size, inode, content)
  changes whenever a start may have moved the cluster: a good key for answers cached from minikube.
- It is not always replaced whole: the first SaveProfile is a plain os.WriteFile (profile.go:148-151), later
  ones remove the file and then rename a new one into place (167-171: a moment with no file), and config.Write
  truncates and writes in place on every start and `addons enable` (config.go:234-241: a moment with an empty
  or half-written file). devloop's readers take no lock (status, doctor and watch run beside minikube), so a
  missing or unparsable file is read once more after REREAD_PAUSE before it counts, and what persists is
  reported without destructive advice: a race looks the same as a broken file.
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

from devloop.base.errors import ClusterError, WaitTimeout
from devloop.base.waits import wait_for

# How long a reader waits before reading config.json again: minikube's writes of this small file take
# microseconds to milliseconds, a start saves it a few times over seconds.
REREAD_PAUSE = 0.15


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
    network: str = ""  # `--network` (qemu's builtin/user network forwards ports: engine_endpoint.py)
    # what `addons enable --images/--registries` saved, merged over every enable (assets/addons.go
    # SelectAndPersistImages): image name -> image, image name -> registry
    custom_addon_images: dict[str, str] = field(default_factory=dict)
    custom_addon_registries: dict[str, str] = field(default_factory=dict)

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
    reads: list[_Read] = []

    def settled() -> bool:
        read = _read_once(path)
        reads.append(read)
        # the second answer stands whatever it is: one pause covers minikube's write windows (module doc)
        return read.data is not None or len(reads) > 1 or not read.may_be_mid_write

    try:
        wait_for(settled, timeout=REREAD_PAUSE * 4, interval=REREAD_PAUSE, describe="minikube's profile config")
    except WaitTimeout:
        pass  # not reached (the second read always settles it); the last read is reported either way
    read = reads[-1]
    if read.missing:
        return None
    if read.data is None:
        raise ClusterError(
            f"minikube's profile config {path} {read.problem}, on two reads {REREAD_PAUSE:g} s apart",
            hint=(
                "minikube rewrites this file in place on every start and `addons enable`, so a read can catch it "
                "half-written: run the command again. If it stays this way, look at the file (a minikube killed "
                f"mid-write leaves it truncated); `minikube profile list` shows whether minikube can read {profile!r}"
            ),
        )
    return _profile_config(profile, path, home, read)


@dataclass(frozen=True)
class _Read:
    missing: bool = False
    data: dict | None = None
    problem: str = ""
    key: str = ""
    may_be_mid_write: bool = False


def _read_once(path: Path) -> _Read:
    try:
        st = path.stat()
        raw = path.read_bytes()
    except FileNotFoundError:
        # Without its directory the profile does not exist (`minikube delete` removes it). With it, the file may
        # be between SaveProfile's remove and rename, or not yet written by the first save.
        return _Read(missing=True, may_be_mid_write=path.parent.is_dir())
    except OSError as exc:
        raise ClusterError(f"cannot read minikube's profile config {path}: {exc}") from None
    try:
        data = json.loads(raw)
    except ValueError as exc:
        return _Read(problem=f"is not JSON ({exc}; {len(raw)} bytes)", may_be_mid_write=True)
    if not isinstance(data, dict):
        return _Read(problem="is not a JSON object", may_be_mid_write=True)
    key = f"{st.st_mtime_ns}-{st.st_size}-{st.st_ino}-{hashlib.sha256(raw).hexdigest()[:16]}"
    return _Read(data=data, key=key)


def _profile_config(profile: str, path: Path, home: Path, read: _Read) -> ProfileConfig:
    data = read.data or {}
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
    return ProfileConfig(
        profile=profile,
        path=path,
        home=home,
        key=read.key,
        driver=str(data.get("Driver") or ""),
        container_runtime=str(k8s.get("ContainerRuntime") or ""),
        kubernetes_version=str(k8s.get("KubernetesVersion") or ""),
        apiserver_name=str(k8s.get("APIServerName") or ""),
        nodes=nodes,
        addons=addons,
        feature_gates=str(k8s.get("FeatureGates") or ""),
        network=str(data.get("Network") or ""),
        custom_addon_images=_string_map(data.get("CustomAddonImages")),
        custom_addon_registries=_string_map(data.get("CustomAddonRegistries")),
    )


def _string_map(value: object) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


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
