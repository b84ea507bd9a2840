"""What the rest of devloop calls on each adapter, as Protocols: the real adapter, its dry-run double
(adapters/dry.py) and the tests' fakes (tests/support/fakes.py) are interchangeable behind them, and mypy
checks that each still is (each of those modules assigns its classes to these types).

Only what callers outside the adapter use is listed; a method a caller needs goes here first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from devloop.adapters.kube.cleanup import CleanReport
    from devloop.adapters.kube.objects import OnEvent
    from devloop.adapters.minikube.home import ProfileConfig
    from devloop.adapters.minikube.output import ClusterStatus
    from devloop.adapters.minikube.versions import MinikubeVersion

OnLine = Callable[[str], None]


class MinikubeAdapter(Protocol):
    """The `minikube` binary for one profile (adapters/minikube/cli.py Minikube)."""

    @property
    def binary(self) -> str: ...
    @property
    def profile_name(self) -> str: ...

    def version(self) -> MinikubeVersion: ...
    def status(self) -> ClusterStatus: ...
    def start(
        self,
        *,
        driver: str,
        kubernetes_version: str | None,
        cpus: int | str | None,
        memory: str | None,
        container_runtime: str | None = ...,
        force: bool = ...,
        docker_env: Sequence[str] = ...,
        feature_gates: Mapping[str, bool] | None = ...,
        extra_args: Sequence[str] = ...,
        timeout: float = ...,
        on_line: OnLine | None = ...,
    ) -> bool: ...
    def start_args(
        self,
        *,
        driver: str | None,
        kubernetes_version: str | None,
        cpus: int | str | None,
        memory: str | None,
        container_runtime: str | None = ...,
        force: bool = ...,
        docker_env: Sequence[str] = ...,
        feature_gates: Mapping[str, bool] | None = ...,
        extra_args: Sequence[str] = ...,
    ) -> list[str]: ...
    def delete(self, *, timeout: float = ...) -> None: ...
    def addons(self) -> dict[str, bool]: ...
    def enable_addon(self, name: str, *, timeout: float = ..., on_line: OnLine | None = ...) -> bool: ...
    def docker_env(self) -> dict[str, str]: ...
    def images(self) -> list[str]: ...
    def image_load(
        self, ref: str, *, env: dict[str, str] | None = ..., timeout: float, on_line: OnLine | None = ...
    ) -> None: ...
    def profile_config(self) -> ProfileConfig | None: ...
    def node_images(self, node: str, runtime: str) -> list[str]: ...
    def api_endpoint(self) -> tuple[str, int] | None: ...


class KubeAdapter(Protocol):
    """The Kubernetes API through the profile's context (adapters/kube/client.py Kube)."""

    def close(self) -> None: ...
    def get(self, obj: dict[str, Any]) -> dict[str, Any] | None: ...
    def exists(self, obj: dict[str, Any]) -> bool: ...
    # None from the real client; the dry run's double says False (it created nothing)
    def create(self, obj: dict[str, Any]) -> bool | None: ...
    def server_side_apply(
        self,
        obj: dict[str, Any],
        *,
        field_manager: str = ...,
        force: bool = ...,
        on_fallback: Callable[[str], None] | None = ...,
        known_off: bool = ...,
    ) -> bool: ...
    def delete_objects(self, objs: list[dict[str, Any]], *, timeout: float, on_event: OnEvent | None = ...) -> None: ...
    def wait_admission(self, obj: dict[str, Any], *, timeout: float, what: str | None = ...) -> None: ...
    def list_custom(self, resource: str) -> list[dict[str, Any]]: ...
    def wait_crds_established(self, names: list[str], *, timeout: float) -> None: ...
    def ensure_namespace(self, name: str, *, timeout: float = ...) -> bool: ...
    def delete_namespace(self, name: str, *, timeout: float) -> None: ...
    def deployment(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def minikube_primary_node(self, *, timeout: float) -> dict[str, Any] | None: ...
    def pods(self, namespace: str, selector: str | None) -> list[dict[str, Any]]: ...
    def restart_deployment(self, namespace: str, name: str) -> None: ...
    def wait_rollout(
        self,
        deployments: list[tuple[str, str]],
        *,
        timeout: float,
        on_wait: OnLine | None = ...,
        fail_fast: bool = ...,
    ) -> None: ...
    def pod_logs(
        self, namespace: str, pod: str, container: str, *, follow: bool = ..., tail_lines: int | None = ...
    ) -> Iterator[str]: ...
    def clean_custom_resources(
        self,
        resources: list[str],
        *,
        grace: float,
        strip_finalizers: bool,
        timeout: float,
        on_event: OnEvent | None = ...,
    ) -> CleanReport: ...
    # verify (devloop/verify/): a GET through the API server's service proxy, and the node's address
    def service_proxy_get(
        self, namespace: str, service: str, port: str | int | None, path: str, *, timeout: float
    ) -> tuple[int, str]: ...
    def node_internal_ip(self, *, timeout: float) -> str | None: ...


class Buildable(Protocol):
    """What a build needs of a profile's component (profile/schema.py Component, a layer above)."""

    @property
    def name(self) -> str: ...
    @property
    def env(self) -> Mapping[str, str]: ...
    def build_command(self, tag: str) -> str: ...


class BuilderAdapter(Protocol):
    """Builds images where the cluster sees them (adapters/builder.py Builder and LoadBuilder)."""

    def prepare(self) -> None: ...
    def connect(self) -> None: ...
    def image_exists(self, tag: str) -> bool: ...
    def missing(self, tags: Iterable[str]) -> list[str]: ...
    def build(self, component: Buildable, tag: str, *, cwd: Path, on_line: OnLine | None = ...) -> None: ...


class ContainerAPI(Protocol):
    """The low-level docker API calls adapters/containers.py makes (docker.APIClient's)."""

    def inspect_container(self, container: str) -> dict[str, Any]: ...
    def put_archive(self, container: str, path: str, data: bytes) -> bool: ...
    def restart(self, container: str, timeout: int) -> None: ...


class ContainerClient(Protocol):
    @property
    def api(self) -> ContainerAPI: ...


class ContainerEngine(Protocol):
    """An engine whose containers adapters/containers.py copies into and restarts (through docker's SDK)."""

    @property
    def client(self) -> ContainerClient: ...


class EngineAdapter(ContainerEngine, Protocol):
    """One Docker engine (adapters/docker_engine.py DockerEngine): minikube's, or the user's for `load`."""

    def info(self) -> dict[str, Any]: ...
    def daemon_name(self) -> str: ...
    def alive(self) -> bool: ...
    def image_exists(self, ref: str) -> bool: ...
    def close(self) -> None: ...


__all__ = [
    "Buildable",
    "BuilderAdapter",
    "ContainerAPI",
    "ContainerClient",
    "ContainerEngine",
    "EngineAdapter",
    "KubeAdapter",
    "MinikubeAdapter",
    "OnLine",
]
