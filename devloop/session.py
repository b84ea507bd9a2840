"""What a command works with: the profile, the workspace, the reporter and the adapters.

Adapters are created lazily (heavy imports stay off the start-up path) and can be swapped
by tests through the factories; under --dry-run the minikube, kube and build adapters are the
doubles in adapters/dry.py, which print what they would run. The Kubernetes adapter is only handed out after the
context guard has passed: every API call goes through the context named after the
minikube profile, and only when that context's server is that minikube's API server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from devloop.errors import ClusterError, UnsafeContext
from devloop.paths import default_cache_dir
from devloop.report import Reporter

if TYPE_CHECKING:
    from devloop.adapters.builder import Builder
    from devloop.adapters.docker_engine import DockerEngine
    from devloop.adapters.kube import Kube, Kubeconfig
    from devloop.adapters.minikube import Minikube
    from devloop.fingerprint import Fingerprinter
    from devloop.profile import Profile


_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass
class Session:
    profile: Profile
    workspace: Path
    reporter: Reporter
    dry_run: bool = False
    kubeconfig: str | None = None
    minikube_binary: str = "minikube"
    cache_dir: Path = field(default_factory=default_cache_dir)
    # Factories: tests replace these to swap an adapter for another implementation.
    make_minikube: Callable[[str, str], Any] | None = None
    make_kube: Callable[..., Any] | None = None
    make_docker: Callable[[dict[str, str]], Any] | None = None

    _minikube: Any = None
    _kube: Any = None
    _docker: Any = None
    _docker_env: dict[str, str] | None = None
    _fingerprinter: Any = None
    _kubeconfig_data: Any = None

    _builder: Any = None

    def __post_init__(self) -> None:
        # A dry run is a plan: nothing is waited for and actions have no outcomes to show.
        self.reporter.planning = self.dry_run

    @property
    def context(self) -> str:
        return self.profile.cluster.profile

    @property
    def minikube(self) -> Minikube:
        if self._minikube is None:
            if self.make_minikube is not None:
                self._minikube = self.make_minikube(self.context, self.minikube_binary)
            else:
                from devloop.adapters.minikube import Minikube

                self._minikube = Minikube(self.context, binary=self.minikube_binary)
            if self.dry_run:
                from devloop.adapters.dry import DryMinikube

                self._minikube = DryMinikube(self._minikube, self.reporter)
        return self._minikube

    def builder(self) -> Builder:
        if self._builder is None:
            from devloop.adapters.builder import Builder

            self._builder = Builder(context=self.context, docker=self.docker, docker_env=self.docker_env,
                                    reporter=self.reporter, timeout=self.profile.timeouts.build)
            if self.dry_run:
                from devloop.adapters.dry import DryBuilder

                self._builder = DryBuilder(self._builder, self.reporter)
        return self._builder

    @property
    def fingerprinter(self) -> Fingerprinter:
        if self._fingerprinter is None:
            from devloop.fingerprint import Fingerprinter

            self._fingerprinter = Fingerprinter(self.cache_dir / "fingerprints")
        return self._fingerprinter

    # -- Kubernetes, behind the context guard --------------------------------------------
    def kube(self) -> Kube:
        if self._kube is None and self.dry_run:
            from devloop.adapters.dry import DryKube
            from devloop.manifests import object_ref

            self._kube = DryKube(self.reporter, object_ref)  # no client, so no context to guard
        if self._kube is None:
            self.guard_context()
            if self.make_kube is not None:
                self._kube = self.make_kube(context=self.context, kubeconfig=self.kubeconfig)
            else:
                from devloop.adapters.kube import Kube

                self._kube = Kube(context=self.context, kubeconfig=self.loaded_kubeconfig())
        return self._kube

    def loaded_kubeconfig(self) -> Kubeconfig:
        """The kubeconfig files, read once: the context guard and the client see the same entries."""
        if self._kubeconfig_data is None:
            from devloop.adapters.kube import Kubeconfig

            self._kubeconfig_data = Kubeconfig.load(self.kubeconfig)
        return self._kubeconfig_data

    def guard_context(self) -> None:
        """Refuse, before any API call, a context whose server is not this minikube profile's.
        A dry run makes no API call, so it has nothing to guard (and may have no cluster yet)."""
        if self.dry_run:
            return
        from devloop.adapters.kube import context_info

        info = context_info(self.context, self.loaded_kubeconfig())
        server = info["server"]
        endpoint = self.minikube.api_endpoint()
        if endpoint is None:
            raise ClusterError(
                f"minikube has no profile {self.context!r}, so there is no cluster to talk to",
                hint="run `devloop up` (or `devloop reset`) to create it",
            )
        host, port = endpoint
        parts = urlsplit(server)
        if (parts.hostname, parts.port or 443) == (host, int(port)):
            return
        # Docker Desktop, WSL and rootless docker: minikube writes a forwarded loopback port, not
        # the node's address. Accept that only for a cluster entry minikube itself marked.
        forwarded = (parts.hostname in _LOOPBACK and host not in _LOOPBACK
                     and info.get("provider") == "minikube.sigs.k8s.io")
        if not forwarded:
            raise UnsafeContext(
                f"kube context {self.context!r} points at {server}, but minikube profile "
                f"{self.context!r} serves its API at https://{host}:{port}; refusing to touch it",
                hint=f"run `minikube update-context -p {self.context}` or `devloop reset`",
            )

    # -- minikube's Docker daemon ------------------------------------------------------------
    def docker_env(self) -> dict[str, str]:
        if self._docker_env is None:
            self._docker_env = self.minikube.docker_env()
        return self._docker_env

    def docker(self) -> DockerEngine:
        if self._docker is None:
            env = self.docker_env()
            if self.make_docker is not None:
                self._docker = self.make_docker(env)
            else:
                from devloop.adapters.docker_engine import DockerEngine

                self._docker = DockerEngine(env)
        return self._docker

    def forget_cluster_state(self) -> None:
        """After a start or reset the daemon, its certificates and the API endpoint may differ."""
        if self._docker is not None:
            self._docker.close()
        self._docker = None
        self._docker_env = None
        self._kube = None
        self._kubeconfig_data = None  # minikube rewrites it on start (new port, certificates)
