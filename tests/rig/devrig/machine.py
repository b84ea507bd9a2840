"""One minikube profile's machine: control plane + Docker engine + real kubelet node (+ optional kwok nodes).

Network layouts (state "network", chosen when the profile is created: $DEVRIG_NETWORK, default below):
- "netns": a network namespace per profile (netns.py) holds etcd, the control plane, the engine, the kubelet,
  kube-proxy and the pods, on minikube's fixed ports and a node address; the host reaches the API server and
  the engine's TLS port only through a forwarder on 127.0.0.1 (forward.py), as with the docker driver on
  macOS.  Pods have routed addresses and Services work.
- "loopback": everything on the host's loopback on free ports; pods get an address that routes nowhere.

State lives in <minikube home>/machines/<name>/ (rig.json: ports, PIDs, run dir; logs/; data dirs); sockets
and the engine's exec-root live in a short run dir /run/devrig/<id>/ (unix socket paths are limited to 108
bytes).  Processes are detached (own session) and survive the caller; they are found again through the
PIDs (+ start times) recorded in rig.json and are never looked up by name.

    m = Machine("p1", Path("~/.minikube").expanduser())
    info = m.boot()              # idempotent: starts only what is not running, waits for node Ready
    m.state()                    # MachineState(host=..., apiserver=..., kubelet=...)
    m.stop(); m.destroy()
"""

from __future__ import annotations

import fcntl
import hashlib
import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import RigError, coredns, kwoknodes, netns, paths, procs
from .certs import HomeCerts
from .controlplane import ControlPlane
from .engine import Engine, unix_http
from .kapi import node_ready
from .node import NODE_NAME, KubeProxy, Node
from .procs import Proc

RUNNING, STOPPED, ERROR, MISSING = "running", "stopped", "error", "missing"
RUN_ROOT = Path(os.environ.get("DEVRIG_RUN_DIR", "/run/devrig"))
LOOPBACK, NETNS = "loopback", "netns"
DEFAULT_NETWORK = NETNS
PORT_NAMES = ("etcd_client", "etcd_peer", "apiserver", "controller_manager", "scheduler", "kubelet", "docker", "kwok")
# with a node network: minikube's ports inside the namespace; only these are picked free on the host
NODE_PORTS = {
    "etcd_client": 2379,
    "etcd_peer": 2380,
    "apiserver": netns.APISERVER_PORT,
    "controller_manager": 10257,
    "scheduler": 10259,
    "kubelet": 10250,
    "docker": netns.DOCKER_PORT,
}
HOST_PORT_NAMES = ("apiserver", "docker", "kwok")
# stop order: dependants first; the engine after the kubelet (which lives in its mount namespace); the
# forwarders last (a stopping part may still be reached through them)
STOP_ORDER = (
    "kwok",
    "kube-proxy",
    "kubelet",
    "scheduler",
    "controller-manager",
    "apiserver",
    "etcd",
    "dockerd",
    "forward",
    "forward-out",
)
PARTS = STOP_ORDER
PORT_OWNER = {
    "etcd_client": "etcd",
    "etcd_peer": "etcd",
    "apiserver": "apiserver",
    "controller_manager": "controller-manager",
    "scheduler": "scheduler",
    "kubelet": "kubelet",
    "docker": "dockerd",
    "kwok": "kwok",
}
NETNS_PORT_OWNER = {"apiserver": "forward", "docker": "forward", "kwok": "kwok"}
# who must restart when a port moves (they were started with the old one)
PORT_DEPENDANTS = {"etcd_client": ("apiserver",), "apiserver": ("controller-manager", "scheduler", "kubelet", "kwok")}
NETNS_PORT_DEPENDANTS = {"apiserver": ("kwok",)}


def network_mode() -> str:
    mode = os.environ.get("DEVRIG_NETWORK") or DEFAULT_NETWORK
    if mode not in (LOOPBACK, NETNS):
        raise RigError(f"DEVRIG_NETWORK={mode!r}: expected {NETNS!r} (a network namespace per profile) or {LOOPBACK!r}")
    return mode


@dataclass
class MachineInfo:
    name: str
    apiserver_url: str
    apiserver_port: int
    ca_cert: Path
    client_cert: Path
    client_key: Path
    docker_host: str
    docker_cert_path: Path
    docker_socket: Path
    node_name: str
    kubernetes_version: str
    kubeconfig: Path  # admin kubeconfig written by the rig (context "devrig"), for tests and tools
    state_dir: Path
    run_dir: Path
    fake_nodes: list[str] = field(default_factory=list)
    node_ip: str = "127.0.0.1"  # what `minikube ip` / `profile list` report (the node's address)
    node_port: int = 0  # the API server's port on node_ip (0: same as apiserver_port)
    network: str = LOOPBACK
    netns: Path | None = None  # the profile's network namespace (network "netns")

    def to_json(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


@dataclass
class MachineState:
    """Per part: "running", "stopped", "error" (process alive but not answering) or "missing" (no machine)."""

    host: str  # the Docker engine (minikube's "host": the node container)
    apiserver: str
    kubelet: str
    processes: dict[str, bool] = field(default_factory=dict)  # part -> recorded process alive

    @property
    def running(self) -> bool:
        return self.host == self.apiserver == self.kubelet == RUNNING


class Machine:
    def __init__(self, name: str, minikube_home: Path):
        self.name = name
        self.home = Path(minikube_home).expanduser().resolve()
        self.dir = self.home / "machines" / name
        self.state_file = self.dir / "rig.json"
        self.logs = self.dir / "logs"
        self.certs = HomeCerts(self.home, name)

    # --- state on disk -----------------------------------------------------------------------------------
    def _load(self) -> dict | None:
        try:
            return json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise RigError(
                f"rig state {self.state_file} is corrupt ({exc}); `minikube delete -p {self.name}` or remove {self.dir}"
            )

    def _save(self, state: dict) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        os.replace(tmp, self.state_file)

    def exists(self) -> bool:
        return self.state_file.exists()

    def _siblings(self) -> list[dict]:
        out = []
        for f in (self.home / "machines").glob("*/rig.json"):
            if f != self.state_file:
                try:
                    out.append(json.loads(f.read_text()))
                except (OSError, ValueError):
                    pass
        return out

    def _new_state(self, version: str) -> dict:
        siblings = self._siblings()
        taken = {p for s in siblings for p in s.get("ports", {}).values()}
        mode = network_mode()
        ports = {}
        for pname in HOST_PORT_NAMES if mode == NETNS else PORT_NAMES:
            ports[pname] = procs.free_port(avoid=taken | set(ports.values()))
        used_nets = {s.get("pod_net_index") for s in siblings}
        net_index = next(i for i in range(24) if i not in used_nets)
        run_id = hashlib.sha1(str(self.dir).encode()).hexdigest()[:12]
        state = {
            "name": self.name,
            "kubernetes_version": version,
            "created": time.time(),
            "run_dir": str(RUN_ROOT / run_id),
            "ports": ports,
            "pod_net_index": net_index,
            "pod_cidr": f"10.244.{net_index}.0/24",
            "procs": {},
            "mount_ns": None,
            "fake_nodes": 0,
            "network": mode,
        }
        if mode == NETNS:
            state["netns"] = f"devrig-{run_id}"
        return state

    @staticmethod
    def _network(state: dict) -> netns.NodeNetwork | None:
        if state.get("network", LOOPBACK) != NETNS:
            return None
        return netns.NodeNetwork(state["netns"], state["pod_net_index"])

    def _port_owner(self, state: dict) -> dict[str, str]:
        return NETNS_PORT_OWNER if self._network(state) else PORT_OWNER

    @contextmanager
    def _lock(self):
        """One boot/stop/destroy of a profile at a time (the stand-in may be called concurrently)."""
        self.home.joinpath("machines").mkdir(parents=True, exist_ok=True)
        with open(self.home / "machines" / f".{self.name}.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # --- parts ---------------------------------------------------------------------------------------------
    def _parts(self, state: dict) -> tuple[ControlPlane, Engine, Node]:
        run_dir = Path(state["run_dir"])
        host_ports = state["ports"]
        net = self._network(state)
        ports = {**host_ports, **NODE_PORTS} if net else host_ports
        cp = ControlPlane(
            machine_dir=self.dir,
            home_certs=self.certs,
            version=state["kubernetes_version"],
            ports=ports,
            node_ip=net.node_ip if net else None,
            netns_path=net.path if net else None,
            host_api_port=host_ports["apiserver"],
            feature_gates=state.get("feature_gates", ""),
        )
        engine = Engine(
            name=self.name,
            state_dir=self.dir / "engine",
            run_dir=run_dir,
            tcp_port=ports["docker"],
            tls_ca=self.certs.docker_ca,
            tls_cert=self.certs.docker_server_crt,
            tls_key=self.certs.docker_server_key,
            private_dirs_root=self.dir / "node" / "host",
            netns_prefix=net.prefix() if net else None,
            host_tcp_port=host_ports["docker"],
        )
        node = Node(
            machine_dir=self.dir,
            run_dir=run_dir,
            version=state["kubernetes_version"],
            kubelet_port=ports["kubelet"],
            kubeconfig=cp.kubeconfig("kubelet"),
            docker_socket=_kubelet_engine_socket(self.dir, engine.socket),
            pod_cidr=state["pod_cidr"],
            client_ca=self.certs.ca_crt,
            profile=self.name,
            node_ip=net.node_ip if net else None,
            pod_gateway=net.pod_gateway if net else None,
            netns_path=net.path if net else None,
            feature_gates=state.get("feature_gates", ""),
            cluster_dns=coredns.CLUSTER_DNS if state.get("coredns") else None,
        )
        return cp, engine, node

    @staticmethod
    def _proc(state: dict, part: str) -> Proc | None:
        return Proc.from_json(state["procs"].get(part))

    def _spawn(
        self, state: dict, part: str, argv: list[str], *, port_keys: tuple[str, ...] = (), in_node: bool = False
    ) -> Proc:
        """Start a daemon; `in_node`: inside the profile's network namespace, if it has one."""
        net = self._network(state)
        if net and in_node:
            argv = [*net.prefix(), *argv]
        if net:
            port_keys = tuple(k for k in port_keys if k in state["ports"] and not in_node)  # the rest: the node's
        for key in port_keys:
            if not procs.port_free(state["ports"][key]):
                raise RigError(
                    f"{part} of profile {self.name!r} cannot start: its port 127.0.0.1:"
                    f"{state['ports'][key]} is taken by another process; stop that process or "
                    f"delete and recreate the profile"
                )
        proc = procs.spawn(
            argv, log=self.logs / f"{part}.log", pidfile=Path(state["run_dir"]) / f"{part}.pid", env=_daemon_env()
        )
        state["procs"][part] = proc.to_json()
        self._save(state)  # recorded at once: a failed boot must still be stoppable
        return proc

    def _check_alive(self, proc: Proc, part: str) -> None:
        if not procs.alive(proc):
            log = self.logs / f"{part}.log"
            raise RigError(f"{part} of profile {self.name!r} exited during start-up; see {log}:\n{procs.tail(log)}")

    def _wait(self, what: str, part: str, proc: Proc | None, probe, deadline: float):
        def guarded():
            if proc is not None:
                self._check_alive(proc, part)
            return probe()

        log = self.logs / f"{part}.log"
        return procs.wait_for(
            guarded, max(deadline - time.monotonic(), 1), what, detail=lambda: f"log {log}:\n{procs.tail(log)}"
        )

    # --- boot ----------------------------------------------------------------------------------------------
    def boot(
        self,
        *,
        kubernetes_version: str = paths.DEFAULT_KUBERNETES_VERSION,
        fake_nodes: int = 0,
        timeout: float = 120,
        feature_gates: str | None = None,
    ) -> MachineInfo:
        """`feature_gates`: `A=false,B=true` for the API server, controller-manager, scheduler and kubelet (as
        minikube passes them; not kube-proxy); None keeps what the machine runs with. Changed gates restart
        those four, as minikube's reconfiguration of a running cluster re-runs kubeadm's control-plane phases."""
        deadline = time.monotonic() + timeout
        with self._lock():
            state = self._load()
            if state is None:
                state = self._new_state(kubernetes_version)
            elif state["kubernetes_version"] != kubernetes_version:
                raise RigError(
                    f"profile {self.name!r} runs Kubernetes {state['kubernetes_version']}, not "
                    f"{kubernetes_version}; delete it first to change versions"
                )
            if feature_gates is not None and feature_gates != state.get("feature_gates", ""):
                self._log(
                    f"boot: feature gates {state.get('feature_gates', '')!r} -> {feature_gates!r}: "
                    "restarting the API server, controller-manager, scheduler and kubelet"
                )
                procs.terminate_all(
                    {
                        part: self._proc(state, part)
                        for part in ("controller-manager", "scheduler", "kubelet", "apiserver")
                    }
                )
                state["feature_gates"] = feature_gates
            net = self._network(state)
            paths.require_parts(kubernetes_version, kwok=fake_nodes > 0, network=net is not None)
            state.setdefault("coredns", coredns.requested() and net is not None)  # chosen when the profile is made
            if state["coredns"]:
                coredns.require()
            self._save(state)
            self.logs.mkdir(parents=True, exist_ok=True)
            Path(state["run_dir"]).mkdir(parents=True, exist_ok=True)
            t0 = time.monotonic()
            timings: dict[str, float] = {}

            def mark(milestone: str) -> None:
                timings[milestone] = round(time.monotonic() - t0, 2)
                self._log(f"boot: {milestone} at +{timings[milestone]:.1f}s")

            self._move_busy_ports(state)
            self.certs.ensure()
            cp, engine, node = self._parts(state)
            cp.ensure_credentials()
            if net:
                net.ensure()
                self._ensure_forwarder(state, net)
                mark("node network")

            etcd = self._proc(state, "etcd")
            if not procs.alive(etcd):
                etcd = self._spawn(
                    state, "etcd", cp.etcd_argv(self.name), port_keys=("etcd_client", "etcd_peer"), in_node=True
                )
            dockerd = self._ensure_engine(state, engine, deadline)
            self._wait(
                f"etcd of {self.name!r} to report healthy on 127.0.0.1:{cp.ports['etcd_client']}",
                "etcd",
                etcd,
                cp.etcd_healthy,
                deadline,
            )
            mark("etcd healthy")
            apiserver = self._proc(state, "apiserver")
            if not procs.alive(apiserver):
                apiserver = self._spawn(state, "apiserver", cp.apiserver_argv(), port_keys=("apiserver",), in_node=True)
            self._wait(
                f"the {self.name!r} Docker engine to answer on {engine.socket}",
                "dockerd",
                dockerd,
                engine.ping,
                deadline,
            )
            mark("engine ready")
            engine.start_base_images()  # joined below, before the node is awaited
            engine.ensure_pause_image()
            kubelet, kubelet_started = self._ensure_kubelet(state, node, dockerd)
            api = cp.api()
            self._wait(
                f"kube-apiserver of {self.name!r} to be ready ({cp.server_url}/readyz)",
                "apiserver",
                apiserver,
                api.readyz,
                deadline,
            )
            mark("apiserver ready")
            # not earlier: the controller-manager gives up (exits) if /healthz is not allowed within ~10 s,
            # which happens on a loaded machine before the API server has its RBAC bootstrap policy
            for part, argv, port in (
                ("controller-manager", cp.controller_manager_argv(), "controller_manager"),
                ("scheduler", cp.scheduler_argv(), "scheduler"),
            ):
                if not procs.alive(self._proc(state, part)):
                    self._spawn(state, part, argv, port_keys=(port,), in_node=True)
            if net:
                self._ensure_kube_proxy(state, cp)
            # minikube's node has its images preloaded; here: the bases a registry would have served
            built = engine.ensure_base_images()
            if built:
                mark(f"base images built ({', '.join(built)})")
            # after a restart the Node object still says Ready from before: insist on a fresh heartbeat
            self._wait(
                f"node {NODE_NAME!r} of {self.name!r} to become Ready",
                "kubelet",
                kubelet,
                lambda: (
                    node_ready(api.get(f"/api/v1/nodes/{NODE_NAME}"), since=kubelet_started - 1)
                    and _kubelet_healthz(cp.ports["kubelet"], net)
                ),
                deadline,
            )
            mark("node Ready")
            api.patch(f"/api/v1/nodes/{NODE_NAME}", {"metadata": {"labels": node.labels()}})
            self._wait(
                f"the default ServiceAccount in {self.name!r} (created by kube-controller-manager)",
                "controller-manager",
                self._proc(state, "controller-manager"),
                lambda: api.get("/api/v1/namespaces/default/serviceaccounts/default"),
                deadline,
            )
            mark("default ServiceAccount")
            if state.get("coredns"):
                coredns.ensure_image(engine.has_image, engine.cli_env(), self.name)
                coredns.deploy(api)
                self._wait(
                    f"CoreDNS of {self.name!r} to be ready", "kubelet", kubelet, lambda: coredns.ready(api), deadline
                )
                mark("coredns ready")
            fake = max(fake_nodes, state.get("fake_nodes", 0))
            if fake:
                self._boot_kwok(state, cp, fake, deadline)
                mark("kwok nodes Ready")
            state["last_boot"] = timings
            self._save(state)
            return self._info(state)

    def _ensure_forwarder(self, state: dict, net: netns.NodeNetwork) -> None:
        """The host's only way in: 127.0.0.1:<port> -> the node's API server and engine TLS port (and back out
        to host loopback ports the node must reach, see reach_host_port)."""
        specs = (("forward", "--into", {"apiserver": NODE_PORTS["apiserver"], "docker": NODE_PORTS["docker"]}),)
        for part, flag, mapping in specs:
            if procs.alive(self._proc(state, part)):
                continue
            argv = [sys.executable, "-m", "devrig.forward", f"--netns={net.path}"]
            for key, node_port in mapping.items():
                argv.append(f"{flag}=127.0.0.1:{state['ports'][key]}={net.node_ip}:{node_port}")
            self._spawn_forwarder(state, part, argv)
        out_ports = state.get("out_ports") or []
        if out_ports and not procs.alive(self._proc(state, "forward-out")):
            argv = [
                sys.executable,
                "-m",
                "devrig.forward",
                f"--netns={net.path}",
                *(f"--out=127.0.0.1:{p}=127.0.0.1:{p}" for p in out_ports),
            ]
            self._spawn_forwarder(state, "forward-out", argv)

    def _spawn_forwarder(self, state: dict, part: str, argv: list[str]) -> Proc:
        log = self.logs / f"{part}.log"
        proc = procs.spawn(argv, log=log, pidfile=Path(state["run_dir"]) / f"{part}.pid", env=_daemon_env())
        state["procs"][part] = proc.to_json()
        self._save(state)
        self._wait(
            f"the {part} process of {self.name!r} to listen",
            part,
            proc,
            lambda: b"port(s) ready" in log.read_bytes().rsplit(b"\n=== ", 1)[-1],
            time.monotonic() + 15,
        )
        return proc

    def reach_host_port(self, port: int) -> None:
        """Let the node reach the host's 127.0.0.1:<port> at its own 127.0.0.1:<port> (e.g. a webhook served
        on the host); a no-op without a node network, where both are the same loopback."""
        with self._lock():
            state = self._load()
            net = self._network(state) if state else None
            if net is None:
                return
            out_ports = state.setdefault("out_ports", [])
            if port in out_ports and procs.alive(self._proc(state, "forward-out")):
                return
            if port not in out_ports:
                out_ports.append(port)
            procs.terminate(self._proc(state, "forward-out"), what=f"forward-out of {self.name!r}")
            self._ensure_forwarder(state, net)

    def _ensure_kube_proxy(self, state: dict, cp: ControlPlane) -> None:
        if procs.alive(self._proc(state, "kube-proxy")):
            return
        proxy = KubeProxy(
            machine_dir=self.dir,
            version=state["kubernetes_version"],
            kubeconfig=cp.kubeconfig("kube-proxy"),
            cluster_cidr=state["pod_cidr"],
        )
        proxy.write_config()
        self._spawn(state, "kube-proxy", proxy.argv(), in_node=True)

    def _ensure_engine(self, state: dict, engine: Engine, deadline: float) -> Proc:
        dockerd = self._proc(state, "dockerd")
        if procs.alive(dockerd):
            return dockerd
        # A dead engine leaves its shims, containers and the kubelet in the old mount namespace; the kubelet
        # must live in the engine's (new) namespace anyway: clear the old one first.
        procs.terminate(self._proc(state, "kubelet"), what="kubelet")
        self._sweep(state)
        if self._network(state) is None and not procs.port_free(state["ports"]["docker"]):
            raise RigError(
                f"the Docker engine of {self.name!r} cannot start: 127.0.0.1:"
                f"{state['ports']['docker']} is taken by another process"
            )
        dockerd = engine.start()
        state["procs"]["dockerd"] = dockerd.to_json()
        self._save(state)
        # the recorded PID runs `sh` first and enters its namespace a moment later
        state["mount_ns"] = self._wait(
            f"the {self.name!r} engine to enter its own mount namespace",
            "dockerd",
            dockerd,
            lambda: ns if (ns := procs.mount_ns(dockerd.pid)) not in procs.host_mount_namespaces() else None,
            deadline,
        )
        self._save(state)
        return dockerd

    def _ensure_kubelet(self, state: dict, node: Node, dockerd: Proc) -> tuple[Proc, float]:
        """The running kubelet, or a new one in the engine's namespace; and when it started (0 = before)."""
        kubelet = self._proc(state, "kubelet")
        if procs.alive(kubelet) and procs.mount_ns(kubelet.pid) == state["mount_ns"]:
            return kubelet, 0.0
        procs.terminate(kubelet, what="kubelet")
        node.write_config()
        started = time.time()
        return self._spawn(state, "kubelet", node.argv(dockerd.pid), port_keys=("kubelet",)), started

    def _move_busy_ports(self, state: dict) -> None:
        """A part that is not running gets a new port if another process took its old one meanwhile."""
        taken = {p for sib in self._siblings() for p in sib.get("ports", {}).values()}
        restart: set[str] = set()
        dependants = NETNS_PORT_DEPENDANTS if self._network(state) else PORT_DEPENDANTS
        for key, owner in self._port_owner(state).items():
            port = state["ports"][key]
            if procs.alive(self._proc(state, owner)) or procs.port_free(port):
                continue
            state["ports"][key] = procs.free_port(avoid=taken | set(state["ports"].values()))
            self._log(f"port {port} ({key}) is taken by another process; {owner} moves to {state['ports'][key]}")
            restart.update(dependants.get(key, ()))
        if restart:
            procs.terminate_all({part: self._proc(state, part) for part in restart})
        self._save(state)

    def _log(self, message: str) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.logs / "rig.log", "a") as fh:
            fh.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {message}\n")

    def _boot_kwok(self, state: dict, cp: ControlPlane, count: int, deadline: float) -> None:
        paths.require_parts(state["kubernetes_version"], kwok=True)
        kwok = self._proc(state, "kwok")
        if not procs.alive(kwok):
            kwok = self._spawn(
                state, "kwok", kwoknodes.argv(cp.kubeconfig("admin"), state["ports"]["kwok"]), port_keys=("kwok",)
            )
        api = cp.api()
        names = kwoknodes.ensure_nodes(api, count)
        state["fake_nodes"] = count
        self._save(state)
        for name in names:
            self._wait(
                f"kwok node {name!r} of {self.name!r} to become Ready",
                "kwok",
                kwok,
                lambda n=name: node_ready(api.get(f"/api/v1/nodes/{n}")),
                deadline,
            )

    # --- stop / destroy ------------------------------------------------------------------------------------
    def stop(self) -> None:
        with self._lock():
            state = self._load()
            if state is not None:
                t0 = time.monotonic()
                self._stop(state)
                self._log(f"stop: done in {time.monotonic() - t0:.1f}s")

    def _stop(self, state: dict, *, graceful: bool = True) -> None:
        """Graceful: dependants first (kubelet before the engine, so it restarts nothing), data kept intact.
        Not graceful (destroy): SIGKILL everything at once, the data is about to go anyway."""

        def targets(parts):
            return {f"{part} of {self.name!r}": self._proc(state, part) for part in parts}

        if graceful:
            procs.terminate_all(targets(("kwok", "kube-proxy", "kubelet", "scheduler", "controller-manager")))
            if procs.alive(self._proc(state, "dockerd")):
                self._kill_containers(state)
            procs.terminate_all(targets(("apiserver", "etcd", "dockerd")))
            procs.terminate_all(targets(("forward", "forward-out")))
        else:
            procs.terminate_all(targets(STOP_ORDER), sig=signal.SIGKILL, timeout=10)
        self._sweep(state)
        self._sweep_network(state)

    def _sweep_network(self, state: dict) -> None:
        """SIGKILL whatever is left in the node's network namespace: every process there is the profile's."""
        net = self._network(state)
        if net is None or not net.exists():
            return
        net.check_not_host()
        members = net.members() - {os.getpid()}
        for pid in members | procs.descendants(members):
            procs.kill_pid(pid)
        procs.wait_for(
            lambda: not (net.members() - {os.getpid()}) or None,
            15,
            f"processes in the network namespace {net.path} of {self.name!r} to exit after SIGKILL",
        )

    def _kill_containers(self, state: dict) -> None:
        """Kill containers first: dockerd would give each 10 s to honour SIGTERM (busybox sleep never does)."""
        sock = Path(state["run_dir"]) / "docker.sock"
        try:
            status, body = unix_http(sock, "GET", "/containers/json", timeout=5)
            if status == 200:
                for c in json.loads(body):
                    unix_http(sock, "POST", f"/containers/{c['Id']}/kill", timeout=10)
        except OSError:
            pass  # engine not answering: the sweep below takes care of its children

    def _sweep(self, state: dict) -> None:
        """SIGKILL anything left in the machine's mount namespace (containerd shims, containers below them)."""
        leftovers = self._namespace_members(state)
        if not leftovers:
            return
        leftovers |= procs.descendants(leftovers)
        for pid in leftovers:
            procs.kill_pid(pid)
        procs.wait_for(
            lambda: not self._namespace_members(state) or None,
            15,
            f"processes of {self.name!r} (mount namespace {state['mount_ns']}) to exit after SIGKILL",
        )

    def _namespace_members(self, state: dict) -> set[int]:
        """Live processes in the machine's mount namespace that name its state or run dir on their command line.

        Namespace ids are inode numbers, which the kernel reuses once a namespace is gone, possibly for another
        profile's engine; the command-line mark makes sure only this machine's daemons are picked (dockerd,
        containerd and the shims name the run dir, the kubelet the state dir); containers are their children.
        """
        ns = state.get("mount_ns")
        if not ns or ns in procs.host_mount_namespaces():
            return set()  # never the host's own namespace
        marks = (str(self.dir) + "/", str(state["run_dir"]) + "/")
        return {pid for pid in procs.pids_in_mount_ns(ns) if any(m in procs.cmdline(pid) for m in marks)}

    def destroy(self) -> None:
        with self._lock():
            state = self._load()
            if state is not None:
                self._stop(state, graceful=False)
                run_dir = Path(state["run_dir"])
                net = self._network(state)
                if net is not None:
                    net.delete()  # as `minikube delete` removes the profile's docker network
            else:
                run_dir = None
            for d in filter(None, (self.dir, run_dir)):
                _unmount_below(d)
                shutil.rmtree(d, ignore_errors=False) if d.exists() else None
            for f in (self.certs.client_crt, self.certs.client_key, self.certs.apiserver_crt, self.certs.apiserver_key):
                f.unlink(missing_ok=True)
            try:
                self.certs.client_crt.parent.rmdir()
            except OSError:
                pass  # the stand-in keeps its own files there (config.json); it removes the directory

    def kill_part(self, part: str, sig: int = signal.SIGKILL) -> bool:
        """Fault injection: signal one recorded daemon (see PARTS); True if it was running."""
        if part not in PARTS:
            raise ValueError(f"unknown part {part!r}; one of {', '.join(PARTS)}")
        state = self._load()
        proc = self._proc(state, part) if state else None
        if not procs.alive(proc):
            return False
        os.kill(proc.pid, sig)
        return True

    # --- status --------------------------------------------------------------------------------------------
    def state(self) -> MachineState:
        state = self._load()
        if state is None:
            return MachineState(MISSING, MISSING, MISSING)
        alive = {part: procs.alive(self._proc(state, part)) for part in STOP_ORDER}
        cp, engine, node = self._parts(state)
        net = self._network(state)
        host = _health(alive["dockerd"], engine.ping)
        apiserver = _health(alive["apiserver"], lambda: cp.api().readyz())
        kubelet = _health(alive["kubelet"], lambda: _kubelet_healthz(cp.ports["kubelet"], net))
        return MachineState(host=host, apiserver=apiserver, kubelet=kubelet, processes=alive)

    def info(self) -> MachineInfo | None:
        state = self._load()
        return self._info(state) if state else None

    def _info(self, state: dict) -> MachineInfo:
        cp, engine, _ = self._parts(state)
        count = state.get("fake_nodes", 0)
        net = self._network(state)
        return MachineInfo(
            name=self.name,
            apiserver_url=cp.server_url,
            apiserver_port=state["ports"]["apiserver"],
            ca_cert=self.certs.ca_crt,
            client_cert=self.certs.client_crt,
            client_key=self.certs.client_key,
            docker_host=engine.docker_host,
            docker_cert_path=self.certs.docker_dir,
            docker_socket=engine.socket,
            node_name=NODE_NAME,
            kubernetes_version=state["kubernetes_version"],
            kubeconfig=cp.kubeconfig("admin"),
            state_dir=self.dir,
            run_dir=Path(state["run_dir"]),
            fake_nodes=[kwoknodes.node_name(i) for i in range(count)],
            node_ip=net.node_ip if net else "127.0.0.1",
            node_port=cp.ports["apiserver"] if net else state["ports"]["apiserver"],
            network=LOOPBACK if net is None else NETNS,
            netns=net.path if net else None,
        )

    def processes(self) -> list[int]:
        """Every live process belonging to this machine: recorded daemons, their mount namespace, children."""
        state = self._load()
        if state is None:
            return []
        pids = {p.pid for p in (self._proc(state, part) for part in STOP_ORDER) if procs.alive(p)}
        pids |= self._namespace_members(state)
        net = self._network(state)
        if net is not None:
            pids |= net.members() - {os.getpid()}
        return sorted(pids | procs.descendants(pids))


def _health(alive: bool, probe) -> str:
    if not alive:
        return STOPPED
    try:
        return RUNNING if probe() else ERROR
    except Exception:
        return ERROR


def _kubelet_healthz(port: int, net: netns.NodeNetwork | None = None) -> bool:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the kubelet's serving cert is self-signed; this is a liveness probe
    conn = _NodeHTTPS("127.0.0.1", port, context=ctx, timeout=3)
    conn.netns_path = net.path if net else None
    try:
        conn.request("GET", "/healthz")
        resp = conn.getresponse()
        return resp.status == 200 and resp.read().strip() == b"ok"
    finally:
        conn.close()


class _NodeHTTPS(http.client.HTTPSConnection):
    """HTTPS to a port of the node's own namespace (its loopback), from the host."""

    netns_path: Path | None = None

    def connect(self):
        sock = netns.connect(self.netns_path, self.host, self.port, timeout=self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def _kubelet_engine_socket(machine_dir: Path, engine_socket: Path) -> Path:
    """The engine as the kubelet dials it: through the stand-in's Docker API gate when the stand-in put one in
    front (standin/apigate.py writes its socket into this file), else directly."""
    gate = machine_dir / "kubelet-docker-endpoint"
    return Path(gate.read_text().strip()) if gate.is_file() else engine_socket


def _daemon_env() -> dict[str, str]:
    """Daemons must not inherit a docker-env or a kubeconfig meant for the caller."""
    drop = ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "KUBECONFIG", "NOTIFY_SOCKET")
    return {k: v for k, v in os.environ.items() if k not in drop}


def _unmount_below(root: Path) -> None:
    """Normally nothing is mounted below a machine (mounts live in its namespace); undo leftovers lazily."""
    prefix = str(root.resolve()) + "/"
    with open("/proc/self/mounts") as fh:
        targets = [line.split()[1].replace("\\040", " ") for line in fh]
    for target in sorted((t for t in targets if (t + "/").startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", target], capture_output=True, timeout=30)
