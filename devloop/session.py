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
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from devloop.base.errors import ClusterError, DevloopError, UnsafeContext
from devloop.base.paths import default_cache_dir
from devloop.output.report import Reporter

if TYPE_CHECKING:
    import threading

    from devloop.adapters.host import HostResources
    from devloop.adapters.kube import Kubeconfig
    from devloop.adapters.kube.serving import Serving
    from devloop.adapters.protocols import BuilderAdapter, EngineAdapter, KubeAdapter, MinikubeAdapter
    from devloop.profile.lookup import Profile
    from devloop.sources.fingerprint import Fingerprinter


_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass
class Session:
    profile: Profile
    workspace: Path
    reporter: Reporter
    dry_run: bool = False
    # status and doctor: nothing may change the cluster (no `minikube docker-env`: it restarts dockerd)
    read_only: bool = False
    kubeconfig: str | None = None
    minikube_binary: str = "minikube"
    cache_dir: Path = field(default_factory=default_cache_dir)
    # Factories: tests replace these to swap an adapter for another implementation.
    make_minikube: Callable[[str, str], MinikubeAdapter] | None = None
    # called with context= and kubeconfig= (a path list or None)
    make_kube: Callable[..., KubeAdapter] | None = None
    make_docker: Callable[[dict[str, str]], EngineAdapter] | None = None
    # driver -> HostResources: what minikube's driver has to give (adapters/host.py), checked under --force
    make_host: Callable[[str], HostResources] | None = None

    _minikube: MinikubeAdapter | None = None
    _kube: KubeAdapter | None = None
    _docker: EngineAdapter | None = None
    _docker_env: dict[str, str] | None = None
    _fingerprinter: Fingerprinter | None = None
    _kubeconfig_data: Kubeconfig | None = None
    _just_guarded: bool = False  # kube() has just passed the guard for the client it made (see kube())

    _builder: BuilderAdapter | None = None
    # the background connect and what it found ("env", and "engine" when it is this profile's)
    _engine_prefetch: tuple[threading.Thread, dict[str, Any]] | None = None
    _docker_env_recorded: bool = False
    _recorded_failed: bool = False
    # `up`: `minikube docker-env` asked in the background beside the cluster step ("env", "engine", "error")
    _docker_env_prefetch: tuple[threading.Thread, dict[str, Any]] | None = None
    _prefetched_docker: tuple[dict[str, str], EngineAdapter] | None = None  # (docker-env's answer, its engine)

    def __post_init__(self) -> None:
        # A dry run is a plan: nothing is waited for and actions have no outcomes to show.
        self.reporter.planning = self.dry_run

    @property
    def context(self) -> str:
        return self.profile.cluster.profile

    @property
    def minikube(self) -> MinikubeAdapter:
        if self._minikube is None:
            if self.make_minikube is not None:
                self._minikube = self.make_minikube(self.context, self.minikube_binary)
            else:
                from devloop.adapters.minikube.cli import Minikube

                self._minikube = Minikube(self.context, binary=self.minikube_binary, kubeconfig=self.kubeconfig)
            if self.dry_run:
                from devloop.adapters.dry import DryMinikube

                self._minikube = DryMinikube(self._minikube, self.reporter)
        return self._minikube

    def builder(self) -> BuilderAdapter:
        if self._builder is None:
            from devloop.adapters.builder import Builder, LoadBuilder

            if self.image_transfer()[0] == "load":
                from devloop.adapters.host import user_docker_env

                self._builder = LoadBuilder(
                    context=self.context,
                    minikube=self.minikube,
                    engine_env=user_docker_env,
                    make_docker=self._make_engine,
                    reporter=self.reporter,
                    timeout=self.profile.timeouts.build,
                )
            else:
                self._builder = Builder(
                    context=self.context,
                    docker=self.docker,
                    docker_env=self.docker_env,
                    reporter=self.reporter,
                    timeout=self.profile.timeouts.build,
                )
            if self.dry_run:
                from devloop.adapters.dry import DryBuilder

                self._builder = DryBuilder(self._builder, self.reporter)
        return self._builder

    def image_transfer(self) -> tuple[str, str]:
        """(docker-env | load, why): how built images reach this profile's cluster (adapters/builder.py)."""
        from devloop.adapters.builder import transfer_mode

        cluster = self.profile.cluster
        try:
            config = self.minikube.profile_config()
        except DevloopError:
            config = None
        nodes = len(config.nodes) if config is not None and config.nodes else 1
        return transfer_mode(cluster.image_transfer, cluster.container_runtime, nodes=nodes)

    def user_engine(self) -> tuple[dict[str, str], EngineAdapter] | None:
        """The user's own Docker engine (DOCKER_HOST, or the default socket), not the node's, with its env."""
        from devloop.adapters.host import user_docker_env

        env = user_docker_env()
        return (env, self._make_engine(env)) if env else None

    def _make_engine(self, env: dict[str, str]) -> EngineAdapter:
        if self.make_docker is not None:
            return self.make_docker(env)
        from devloop.adapters.docker_engine import DockerEngine

        return DockerEngine(env)

    @property
    def fingerprinter(self) -> Fingerprinter:
        if self._fingerprinter is None:
            from devloop.sources.fingerprint import Fingerprinter

            self._fingerprinter = Fingerprinter(self.cache_dir / "fingerprints")
        return self._fingerprinter

    # -- Kubernetes, behind the context guard --------------------------------------------
    def kube(self) -> KubeAdapter:
        if self._kube is None and self.dry_run:
            from devloop.adapters.dry import DryKube
            from devloop.manifests.render import object_ref

            self._kube = DryKube(self.reporter, object_ref)  # no client, so no context to guard
        if self._kube is None:
            self.guard_context()  # may leave behind the client it asked through (see _node_says)
            # the next guard_context() (prepare_cluster's, right after the cluster step) need not ask again: the
            # client made now is used without asking anyway, until forget_cluster_state() drops both
            self._just_guarded = True
        if self._kube is None:
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
        if self._just_guarded and self._kube is not None:
            self._just_guarded = False
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
        at_node = (parts.hostname, parts.port or 443) == (host, int(port))
        if at_node and host not in _LOOPBACK:
            return  # the node's own address on minikube's network: no other profile has it
        update = (
            f"run `minikube update-context -p {self.context}` to rewrite the entry (it also makes "
            f"{self.context!r} your current kube context), or `devloop reset`"
        )
        if not at_node and (host in _LOOPBACK or info.get("provider") != "minikube.sigs.k8s.io"):
            raise UnsafeContext(
                f"kube context {self.context!r} points at {server}, but minikube profile "
                f"{self.context!r} serves its API at https://{host}:{port}; refusing to touch it",
                hint=update,
            )
        # A loopback port (Docker Desktop, WSL and rootless Docker forward one to the node; so does the test
        # cluster) or a remote DOCKER_HOST's address: a stale port may now be another profile's, and all profiles
        # of a home share one CA, so neither the address nor a handshake verified against the CA tells them apart.
        # The leaf does: each profile has an API server certificate of its own (profiles/<P>/apiserver.crt), and
        # a completed handshake proves the server holds its key. That needs only a TLS handshake (no request, no
        # credentials). When it cannot tell (nothing answers, a certificate no profile has on disk), minikube's
        # own check decides: `status` says Kubeconfig: Configured only when the entry's host and port are the
        # profile's endpoint as minikube computes it (cluster/status.go:455-458). Nothing but that handshake
        # reaches the server before one of them has confirmed it. minikube's confirmation is remembered for the
        # config.json it was given with (every `minikube start` rewrites that file).
        from devloop.adapters.minikube.engine_endpoint import confirmed_server, remember_confirmed_server

        if info.get("unlike_minikubes_entry"):  # F7: minikube's word covers one kubeconfig entry only
            raise UnsafeContext(
                f"kube context {self.context!r} points at {server}, but {info['unlike_minikubes_entry']}: "
                "`minikube status` vouches only for that entry; refusing to touch it",
                hint=update,
            )
        # The certificate the server proves it holds says which profile of this minikube home it is (every
        # profile has its own apiserver.crt, all signed by the home's one CA): one TLS handshake, no request.
        serving = self._serving(server, info)
        if serving is not None and serving.verdict == "profile" and serving.profile == self.context:
            return
        if serving is not None and serving.verdict == "profile":
            raise UnsafeContext(
                f"kube context {self.context!r} points at {server}, which is minikube profile {serving.profile!r} "
                "now (it presents that profile's API server certificate): the port is stale; refusing to touch it",
                hint=update,
            )
        if serving is not None and serving.verdict == "foreign":
            raise UnsafeContext(
                f"kube context {self.context!r} points at {server}, which answers with a certificate this "
                f"minikube's CA did not sign ({serving.detail}): not profile {self.context!r}'s API server; "
                "refusing to touch it",
                hint=update,
            )
        # Otherwise (no answer, no TLS, a certificate of this CA no profile has on disk) minikube decides.
        if self.make_minikube is None and confirmed_server(self.context, self.cache_dir) == server:
            # F6: config.json outlives `minikube stop --keep-context-active`, and Docker may hand the stale port
            # to another profile: a cluster of this minikube home (its CA) answering there names itself
            named = self._node_says(info)
            if named in (None, self.context):
                return
            raise UnsafeContext(
                f"kube context {self.context!r} points at {server}, which is minikube profile {named!r} now "
                "(its primary node's minikube.k8s.io/name label): the port is stale; refusing to touch it",
                hint=update,
            )
        status = self.minikube.status()
        if status.kubeconfig == "Configured" and status.name in ("", self.context):
            if self.make_minikube is None and not self.dry_run:
                remember_confirmed_server(self.context, self.cache_dir, server)
            return
        said = f"Kubeconfig: {status.kubeconfig}" if status.kubeconfig else f"the cluster is {status.state}"
        raise UnsafeContext(
            f"kube context {self.context!r} points at {server}, and `minikube status -p {self.context}` does not "
            f"confirm that is the profile's API server ({said}); the port may be stale, or another profile's now; "
            "refusing to touch it",
            hint=update,
        )

    def _serving(self, server: str, info: dict) -> Serving | None:
        """Who serves `server`, told by its certificate (adapters/kube/serving.py), when the context's cluster
        entry trusts exactly this profile's minikube CA (so the client, too, accepts only servers it signed);
        None when that cannot be asked (no config.json, another CA or none in the entry, a test's double)."""
        try:
            config = self.minikube.profile_config()
        except DevloopError:
            return None
        home = getattr(config, "home", None)
        if config is None or home is None:
            return None
        from devloop.adapters.kube.serving import serving_profile
        from devloop.adapters.minikube.home import trusts_profile_ca

        cluster = self.loaded_kubeconfig().clusters.get(info.get("cluster") or "") or {}
        if not trusts_profile_ca(cluster, config):
            return None
        return serving_profile(server, Path(home))

    def _node_says(self, info: dict) -> str | None:
        """Which minikube profile the server behind the context belongs to, by one read: minikube labels its
        primary node with the profile's name (kubeadm.go LabelAndUntaintNode, v1.36-v1.39), and asking needs a
        kubeconfig entry that trusts this minikube home's CA (so the server holds a certificate minikube made).
        None when that cannot tell (another CA, no answer, no such node, a test's double): `minikube status`
        decides then. The client is kept for the command when it is the profile's."""
        if self.make_kube is not None:
            return None
        try:
            config = self.minikube.profile_config()
        except DevloopError:
            return None
        if config is None:
            return None
        from devloop.adapters.minikube.home import trusts_profile_ca

        cluster = self.loaded_kubeconfig().clusters.get(info.get("cluster") or "") or {}
        if not trusts_profile_ca(cluster, config):
            return None
        from devloop.adapters.kube import Kube

        try:
            kube = Kube(context=self.context, kubeconfig=self.loaded_kubeconfig())
            node = kube.minikube_primary_node(timeout=3.0)
        except DevloopError:
            return None
        named = node.get("profile") if node else None
        if named == self.context:
            self._kube = kube
        else:
            kube.close()
        return named

    # -- minikube's Docker daemon ------------------------------------------------------------
    def docker_env(self) -> dict[str, str]:
        if self._docker_env is None and self.read_only:
            from devloop.adapters.minikube.engine_endpoint import read_only_docker_env

            env, why = read_only_docker_env(self.context, self.cache_dir)
            if env is None:
                raise ClusterError(
                    f"minikube's Docker engine for {self.context!r}: {why}",
                    hint="run `devloop up` (it asks minikube and remembers the answer)",
                )
            self._docker_env = env
        if self._docker_env is None and not self.dry_run and self.make_minikube is None and not self._recorded_failed:
            # docker-env's recorded answer for this very config.json (engine_endpoint.py); docker() checks it
            # against the engine and asks minikube (which also restarts a dead dockerd) when it does not hold
            from devloop.adapters.minikube.engine_endpoint import read_only_docker_env

            env, _ = read_only_docker_env(self.context, self.cache_dir)
            if env is not None:
                self._docker_env, self._docker_env_recorded = env, True
        if self._docker_env is None and (asked := self._prefetched_docker_env()) is not None:
            from devloop.adapters.minikube.engine_endpoint import remember_docker_env

            self._docker_env = asked
            remember_docker_env(self.context, self.cache_dir, asked)
        if self._docker_env is None:
            from devloop.adapters.minikube.engine_endpoint import remember_docker_env

            self._docker_env = self.minikube.docker_env()
            if not self.dry_run:
                remember_docker_env(self.context, self.cache_dir, self._docker_env)
        return self._docker_env

    def prefetch_engine(self) -> bool:
        """Connect to the engine docker-env last answered for this config.json, in the background: its TLS
        handshake and /info then overlap the API server's (a no-change `up` waits on both). Only a recorded
        answer is used (asking minikube restarts a stopped dockerd: never on speculation); docker() takes
        the connection if it is the profile's daemon, and makes its own otherwise. False when no answer is
        recorded (see prefetch_docker_env)."""
        if self.dry_run or self.read_only or self.make_minikube is not None or self._docker is not None:
            return True
        if self.profile.cluster.image_transfer == "load":
            return True
        import threading

        from devloop.adapters.minikube.engine_endpoint import read_only_docker_env

        env, _ = read_only_docker_env(self.context, self.cache_dir)
        if env is None:
            return False
        box: dict[str, Any] = {"env": env}

        def connect() -> None:
            try:
                engine = self._make_engine(env)
                if engine.daemon_name() == self.context:
                    box["engine"] = engine
                else:
                    engine.close()
            except Exception:  # noqa: BLE001 - the foreground path asks again and reports what is wrong
                pass

        thread = threading.Thread(target=connect, name="engine-prefetch", daemon=True)
        thread.start()
        self._engine_prefetch = (thread, box)
        return True

    def prefetch_docker_env(self) -> None:
        """`up`, when prefetch_engine found no docker-env answer recorded for this config.json (the docker
        driver's forwarded engine port is not on disk: engine_endpoint.py): ask `minikube docker-env` in a thread, and connect to
        the engine it names, while the cluster step runs: a no-change `up` asks it anyway (the build step's
        engine), so this only moves the call earlier. It is never run for a read-only command, a dry run, a
        profile minikube has not created, or a profile whose images are loaded instead. `minikube start` and
        `delete` wait for it first (_SettledFirst), so it never runs beside them, and a start drops its answer
        (forget_cluster_state); a failed call is simply asked again in the foreground, which reports it."""
        if self.dry_run or self.read_only or self.make_minikube is not None:
            return
        if self._docker_env is not None or self._docker is not None or self._docker_env_prefetch is not None:
            return
        from devloop.adapters.minikube.home import read_profile_config

        try:
            if read_profile_config(self.context) is None or self.image_transfer()[0] != "docker-env":
                return
        except DevloopError:
            return
        import threading

        minikube = self.minikube
        box: dict[str, Any] = {}

        def ask() -> None:
            try:
                env = minikube.docker_env()
                box["env"] = env
                engine = self._make_engine(env)
                if engine.daemon_name() == self.context:
                    box["engine"] = engine
                else:
                    engine.close()
            except Exception as exc:  # noqa: BLE001 - asked again in the foreground, which reports it
                box.setdefault("error", exc)

        thread = threading.Thread(target=ask, name="docker-env-prefetch", daemon=True)
        thread.start()
        self._docker_env_prefetch = (thread, box)
        self._minikube = cast("MinikubeAdapter", _SettledFirst(minikube, self.settle_docker_env_prefetch))

    def settle_docker_env_prefetch(self) -> None:
        """Wait for the background docker-env (if any) and drop what it found: the cluster is about to change."""
        box = self._join_docker_env_prefetch()
        if box is not None and box.get("engine") is not None:
            box["engine"].close()

    def _join_docker_env_prefetch(self) -> dict[str, Any] | None:
        if self._docker_env_prefetch is None:
            return None
        thread, box = self._docker_env_prefetch
        self._docker_env_prefetch = None
        thread.join()  # bounded by docker-env's own deadline and the engine client's timeouts
        return box

    def _prefetched_docker_env(self) -> dict[str, str] | None:
        box = self._join_docker_env_prefetch()
        if box is None or "env" not in box:
            return None
        if box.get("engine") is not None:
            self._prefetched_docker = (box["env"], box["engine"])
        return dict(box["env"])

    def _prefetched_engine(self, env: dict[str, str]) -> EngineAdapter | None:
        if self._engine_prefetch is None:
            return None
        thread, box = self._engine_prefetch
        self._engine_prefetch = None
        thread.join()  # bounded by the engine client's own timeouts
        engine = box.get("engine")
        if engine is not None and box["env"] != env:
            engine.close()
            return None
        return engine

    def docker(self) -> EngineAdapter:
        if self._docker is None:
            env = self.docker_env()
            if self._docker_env_recorded and (engine := self._prefetched_engine(env)) is not None:
                self._docker = engine
                return self._docker
            if not self._docker_env_recorded:
                prefetched, self._prefetched_docker = self._prefetched_docker, None
                if prefetched is not None and prefetched[0] == env:
                    self._docker = prefetched[1]
                else:
                    if prefetched is not None:
                        prefetched[1].close()
                    self._docker = self._make_engine(env)
                return self._docker
            try:
                engine = self._make_engine(env)
                if engine.daemon_name() != self.context:
                    engine.close()
                    raise ClusterError("the recorded docker-env leads to another daemon")
                self._docker = engine
            except ClusterError:
                # stale (a restarted engine on a new port): ask minikube as if nothing had been recorded
                self._docker_env, self._docker_env_recorded, self._recorded_failed = None, False, True
                self._docker = self._make_engine(self.docker_env())
        return self._docker

    def forget_cluster_state(self) -> None:
        """After a start or reset the daemon, its certificates and the API endpoint may differ."""
        if self._docker is not None:
            self._docker.close()
        self._docker = None
        self._engine_prefetch = None  # its daemon may be gone with the old cluster
        self.settle_docker_env_prefetch()
        if self._prefetched_docker is not None:
            self._prefetched_docker[1].close()
            self._prefetched_docker = None
        self._docker_env = None
        self._docker_env_recorded = self._recorded_failed = False
        self._kube = None
        self._kubeconfig_data = None  # minikube rewrites it on start (new port, certificates)
        self._just_guarded = False


class _SettledFirst:
    """The minikube adapter while `up` asks docker-env in the background: a start or a delete first waits for
    that call (and drops its answer), so minikube never runs the two at once. Everything else is the adapter's."""

    def __init__(self, real: MinikubeAdapter, settle: Callable[[], None]) -> None:
        self.real = real
        self.settle = settle

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def start(self, **kwargs: Any) -> bool:
        self.settle()
        return self.real.start(**kwargs)

    def delete(self, **kwargs: Any) -> None:
        self.settle()
        self.real.delete(**kwargs)
