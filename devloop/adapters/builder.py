"""Image builds: a component's own build command, run with minikube's docker-env, into the daemon
of the cluster (Builder); or, where docker-env cannot reach the pods' runtime (containerd or cri-o,
several nodes), run with the user's own Docker and then `minikube image load`ed (LoadBuilder). The
Session hands one out (a dry run gets the double in adapters/dry.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devloop.adapters import proc
from devloop.base.errors import BuildFailed, ClusterError, CommandFailed, DevloopError

if TYPE_CHECKING:
    from devloop.adapters.protocols import EngineAdapter
    from devloop.output.report import Reporter


def transfer_mode(setting: str, runtime: str, *, nodes: int = 1) -> tuple[str, str]:
    """(docker-env | load, why) for the profile's cluster.image_transfer setting."""
    if setting != "auto":
        return setting, "set in the profile"
    if runtime != "docker":
        return "load", (
            f"the {runtime} runtime does not run what the node's dockerd holds: images are built with "
            "your Docker and loaded with `minikube image load`"
        )
    if nodes > 1:
        return "load", "docker-env refuses clusters of several nodes (ENV_MULTINODE_CONFLICT): images are loaded"
    return "docker-env", "built straight into the node's dockerd, where the kubelet finds them"


class Builder:
    def __init__(
        self,
        *,
        context: str,
        docker: Callable[[], EngineAdapter],
        docker_env: Callable[[], dict[str, str]],
        reporter: Reporter,
        timeout: float,
    ) -> None:
        self.context = context
        self._docker = docker
        self._docker_env = docker_env
        self.reporter = reporter
        self.timeout = timeout

    def prepare(self) -> None:
        """Step 3 (docker-env): builds must land in this profile's daemon, and minikube names its
        daemon after the profile; anything else would build images the cluster never sees."""
        with self.reporter.step("docker-env", f"docker-env of {self.context}") as step:
            name = self._docker().daemon_name()
            if name != self.context:
                raise ClusterError(
                    f"docker-env of minikube profile {self.context!r} leads to a daemon named {name!r}",
                    hint="the build would not be visible to the cluster; run `devloop reset`",
                )
            step.done(self._docker_env().get("DOCKER_HOST", ""))

    def connect(self) -> None:
        """Read the docker-env and make the client; raises DevloopError when there is none."""
        self._docker()

    def _why_build_failed(self, cwd: Path) -> str:
        """The next step after a failed build: the engine may have died under it (then `devloop up`
        re-reads docker-env, which restarts it), or the build itself is broken."""
        try:
            alive = self._docker().alive()
        except DevloopError:
            alive = False
        if not alive:
            return (
                "minikube's Docker engine stopped answering during the build: `devloop up` restarts it "
                "(`devloop status` shows the docker-env target)"
            )
        return f"the build's own output is above; fix it and save (watch retries), or run it by hand in {cwd}"

    def image_exists(self, tag: str) -> bool:
        return self._docker().image_exists(tag)

    def missing(self, tags: Iterable[str]) -> list[str]:
        return [tag for tag in tags if not self.image_exists(tag)]

    def build(self, component: Any, tag: str, *, cwd: Path, on_line: Callable[[str], None] | None = None) -> None:
        """Run the component's build command for `tag`; fail unless the image is then in the daemon."""
        run_build(
            component,
            tag,
            env=self._docker_env(),
            cwd=cwd,
            timeout=self.timeout,
            on_line=on_line,
            hint=lambda: self._why_build_failed(cwd),
            engine=f"minikube's Docker engine ({self.context})",
            disk_hint=minikube_disk_hint(self.context),
        )
        if not self.image_exists(tag):
            raise ClusterError(
                f"build of {component.name} succeeded but {tag} is not in minikube's daemon",
                hint="the build command must tag its image with {image} and build with the docker-env it is given",
            )


class LoadBuilder:
    """Build with the user's Docker engine, then `minikube image load -p P TAG`; the cluster's own image list
    (`minikube image ls`) decides what exists, since image load exits 0 even for an image it could not find."""

    mode = "load"

    def __init__(
        self,
        *,
        context: str,
        minikube: Any,
        engine_env: Callable[[], dict[str, str] | None],
        make_docker: Callable[[dict[str, str]], Any],
        reporter: Reporter,
        timeout: float,
    ) -> None:
        self.context = context
        self.minikube = minikube
        self._engine_env = engine_env
        self._make_docker = make_docker
        self.reporter = reporter
        self.timeout = timeout
        self._env: dict[str, str] | None = None
        self._docker: Any = None
        self._listed: dict[str, set[str]] | None = None

    def prepare(self) -> None:
        with self.reporter.step("images", f"image transfer to {self.context}: build, then minikube image load") as step:
            self.connect()
            step.done(f"build with {self._env['DOCKER_HOST']}, load into {self.context}")  # type: ignore[index]

    def connect(self) -> None:
        if self._docker is not None:
            return
        env = self._engine_env()
        if not env:
            raise ClusterError(
                f"profile {self.context!r} loads images into minikube, but there is no Docker engine here to build "
                "them with (no DOCKER_HOST, no /var/run/docker.sock)",
                hint="start Docker or set DOCKER_HOST; or, for a one-node cluster, "
                "`cluster.container_runtime: docker` with `cluster.image_transfer: docker-env`",
            )
        self._env = dict(env)
        self._docker = self._make_docker(self._env)

    def _nodes(self) -> tuple[list[str], str]:
        """(config.json's node names, the runtime) when the cluster has several nodes; ([], "") otherwise."""
        try:
            config = self.minikube.profile_config()
        except DevloopError:
            config = None
        if config is None or len(config.nodes) < 2:
            return [], ""
        return [node.name for node in config.nodes], config.container_runtime or "docker"

    def _node_lists(self) -> dict[str, set[str]]:
        """Each node's images. `minikube image ls` merges the nodes (ListImages), so with one node lacking
        the image it still lists it; with several nodes each node is asked (Minikube.node_images)."""
        if self._listed is None:
            nodes, runtime = self._nodes()
            if not nodes:
                self._listed = {"": {normalize_ref(ref) for ref in self.minikube.images()}}
            else:
                self._listed = {
                    node: {normalize_ref(ref) for ref in self.minikube.node_images(node, runtime)} for node in nodes
                }
        return self._listed

    def nodes_without(self, tag: str) -> list[str]:
        """The nodes whose runtime lacks `tag` ("" is the primary, or the whole cluster when it has one node)."""
        want = normalize_ref(tag)
        return [node for node, images in self._node_lists().items() if want not in images]

    def image_exists(self, tag: str) -> bool:
        return not self.nodes_without(tag)

    def missing(self, tags: Iterable[str]) -> list[str]:
        return [tag for tag in tags if not self.image_exists(tag)]

    def build(self, component: Any, tag: str, *, cwd: Path, on_line: Callable[[str], None] | None = None) -> None:
        self.connect()
        check_build_disk(
            engine_disk_space(self._env),
            name=component.name,
            hint="free space there: `docker system prune` (stopped containers, unused networks, dangling images, "
            "build cache), then retry",
        )
        run_build(
            component,
            tag,
            env=self._env or {},
            cwd=cwd,
            timeout=self.timeout,
            on_line=on_line,
            engine=f"the Docker engine at {(self._env or {}).get('DOCKER_HOST')}",
            disk_hint="free space there: `docker system prune` (stopped containers, unused networks, "
            "dangling images, build cache), then retry",
        )
        if not self._docker.image_exists(tag):
            raise ClusterError(
                f"build of {component.name} succeeded but {tag} is not in the Docker engine at "
                f"{(self._env or {}).get('DOCKER_HOST')}",
                hint="the build command must tag its image with {image} and build with the DOCKER_HOST it is given",
            )
        self.minikube.image_load(tag, env=self._env, timeout=self.timeout, on_line=on_line)
        self._listed = None
        lacking = self.nodes_without(tag)
        if lacking == [""]:
            raise ClusterError(
                f"`minikube image load -p {self.context} {tag}` exited 0 but `minikube image ls` does not list it",
                hint=f"`minikube image load -p {self.context} --daemon {tag} --alsologtostderr` shows why",
            )
        if lacking:
            # minikube loads only into running nodes and exits 0 when a node fails (DoLoadImages)
            names = ", ".join(repr(node or "the primary node") for node in lacking)
            raise ClusterError(
                f"`minikube image load -p {self.context} {tag}` exited 0 but node(s) {names} do not have it: "
                "pods scheduled there would not find the image",
                hint=f"`minikube status -p {self.context}` shows whether every node runs; "
                f"`minikube image load -p {self.context} --daemon {tag} --alsologtostderr` shows why a node failed",
            )


def normalize_ref(ref: str) -> str:
    """docker.io/library/x:1 for x:1, as `minikube image ls` lists names (cruntime/docker.go:708-733)."""
    name = ref.strip()
    first, _, rest = name.partition("/")
    if not rest or ("." not in first and ":" not in first and first != "localhost"):
        name = f"docker.io/{name}" if rest else f"docker.io/library/{name}"
    if "@" not in name and ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return name


# What an engine (or the build's own tools) says when a filesystem is full: ENOSPC's strerror.
DISK_FULL = "no space left on device"

# minikube's own check of the node's /var (machine/start.go, skipped under --force): refused at 99% used,
# warned about at 85%, in both cases only with less than 20 GiB left.
DISK_REFUSE_PERCENT = 99
DISK_WARN_PERCENT = 85
DISK_ENOUGH_GIB = 20
_GIB = 1024**3


@dataclass(frozen=True)
class DiskSpace:
    path: str  # the engine's data root (docker info DockerRootDir)
    free_bytes: int
    total_bytes: int
    source: str  # the engine, for messages

    @property
    def used_percent(self) -> int:
        return 100 - (self.free_bytes * 100 // self.total_bytes) if self.total_bytes else 0


def engine_disk_space(env: Mapping[str, str] | None) -> DiskSpace | None:
    """Free space of the data root of the Docker engine `env` names (the user's: what the docker driver's node
    and a `load` build write to), by `docker info` and statvfs. None when that cannot be told from here: no
    engine, a remote or VM-backed one (Docker Desktop: the root is inside its VM), a root this user cannot stat."""
    from devloop.adapters.docker_engine import DockerEngine

    host = (env or {}).get("DOCKER_HOST", "")
    if not host.startswith("unix://") or not Path(host[len("unix://") :]).exists():
        return None
    try:
        with DockerEngine(dict(env or {}), timeout=5) as engine:
            info = engine.info()
    except DevloopError:
        return None
    root = info.get("DockerRootDir")
    if not isinstance(root, str) or not root:
        return None
    try:
        st = os.statvfs(root)
    except OSError:
        return None
    return DiskSpace(root, st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize, f"the Docker engine at {host}")


def disk_verdict(space: DiskSpace | None) -> tuple[str, str] | None:
    """("refuse" | "warn", what is wrong) by minikube's thresholds, or None when there is room (or no answer)."""
    if space is None or space.free_bytes >= DISK_ENOUGH_GIB * _GIB:
        return None
    used = space.used_percent
    if used < DISK_WARN_PERCENT:
        return None
    said = (
        f"{space.path} of {space.source} is {used}% full ({space.free_bytes / _GIB:.1f} GiB free of "
        f"{space.total_bytes / _GIB:.1f} GiB)"
    )
    return ("refuse" if used >= DISK_REFUSE_PERCENT else "warn"), said


def check_build_disk(space: DiskSpace | None, *, name: str, hint: str) -> None:
    """Before a build: a data root as full as minikube refuses to start on fails now, not mid-build."""
    verdict = disk_verdict(space)
    if verdict is not None and verdict[0] == "refuse":
        raise ClusterError(f"build of {name} not started: {verdict[1]}, out of disk space", hint=hint)


def minikube_disk_hint(profile: str) -> str:
    """What frees room in minikube's engine. Its data root is the node's /var/lib/docker: inside the VM's
    disk (VM drivers: --disk-size, fixed when the profile is created) or, with the docker driver, on the
    host's Docker storage."""
    return (
        f"free space in minikube's engine: `eval $(minikube -p {profile} docker-env) && docker system prune` "
        "(stopped containers, unused networks, dangling images, build cache; `docker image prune -a` also "
        "drops unused images); with a VM driver the disk is fixed at creation: `minikube delete -p "
        f"{profile}` and `minikube start -p {profile} --disk-size=40g`; with the docker driver free space "
        "on the host's Docker storage. Then run `devloop up` again"
    )


def run_build(
    component: Any,
    tag: str,
    *,
    env: dict[str, str],
    cwd: Path,
    timeout: float,
    on_line: Callable[[str], None] | None,
    hint: Callable[[], str] | None = None,
    engine: str = "the Docker engine",
    disk_hint: str | None = None,
) -> None:
    """A component's build command for `tag`, with the engine's environment under the component's own;
    a failure names the component, the command, its exit code and (when given) why. A full disk
    (ENOSPC in the output) is said as such: no edit fixes it."""
    command = component.build_command(tag)
    try:
        proc.run_shell(command, env={**env, **dict(component.env)}, cwd=cwd, timeout=timeout, on_line=on_line)
    except CommandFailed as exc:
        if DISK_FULL in exc.output_tail.lower():
            raise BuildFailed(
                exc.argv,
                exc.exit_code_of_command,
                exc.output_tail,
                message=f"build of {component.name} failed: no space left on device in {engine} "
                f"(`{command}` exited with code {exc.exit_code_of_command})",
                hint=disk_hint or "free disk space where the build writes, then retry",
            ) from None
        raise BuildFailed(
            exc.argv,
            exc.exit_code_of_command,
            exc.output_tail,
            message=f"build of {component.name} failed: `{command}` exited with code {exc.exit_code_of_command} (in {cwd})",
            hint=hint() if hint is not None else None,
        ) from None
