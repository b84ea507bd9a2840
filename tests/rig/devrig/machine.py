"""One minikube profile's machine: control plane + Docker engine + real kubelet node (+ optional kwok nodes).

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
import json
import os
import shutil
import signal
import ssl
import subprocess
import time
import http.client
from contextlib import contextmanager
from dataclasses import dataclass, field, asdict
from pathlib import Path

from . import RigError, kwoknodes, paths, procs
from .certs import HomeCerts
from .controlplane import ControlPlane
from .engine import Engine, unix_http
from .kapi import node_ready
from .node import NODE_NAME, Node
from .procs import Proc

RUNNING, STOPPED, ERROR, MISSING = "running", "stopped", "error", "missing"
RUN_ROOT = Path(os.environ.get("DEVRIG_RUN_DIR", "/run/devrig"))
PORT_NAMES = ("etcd_client", "etcd_peer", "apiserver", "controller_manager", "scheduler", "kubelet", "docker",
              "kwok")
# stop order: dependants first; the engine last (the kubelet lives in its mount namespace)
STOP_ORDER = ("kwok", "kubelet", "scheduler", "controller-manager", "apiserver", "etcd", "dockerd")
PARTS = STOP_ORDER
PORT_OWNER = {"etcd_client": "etcd", "etcd_peer": "etcd", "apiserver": "apiserver",
              "controller_manager": "controller-manager", "scheduler": "scheduler", "kubelet": "kubelet",
              "docker": "dockerd", "kwok": "kwok"}
# who must restart when a port moves (they were started with the old one)
PORT_DEPENDANTS = {"etcd_client": ("apiserver",), "apiserver": ("controller-manager", "scheduler", "kubelet", "kwok")}


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
    kubeconfig: Path          # admin kubeconfig written by the rig (context "devrig"), for tests and tools
    state_dir: Path
    run_dir: Path
    fake_nodes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


@dataclass
class MachineState:
    """Per part: "running", "stopped", "error" (process alive but not answering) or "missing" (no machine)."""
    host: str        # the Docker engine (minikube's "host": the node container)
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
            raise RigError(f"rig state {self.state_file} is corrupt ({exc}); `minikube delete -p {self.name}` "
                           f"or remove {self.dir}")

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
        ports = {}
        for pname in PORT_NAMES:
            ports[pname] = procs.free_port(avoid=taken | set(ports.values()))
        used_nets = {s.get("pod_net_index") for s in siblings}
        net_index = next(i for i in range(256) if i not in used_nets)
        run_id = hashlib.sha1(str(self.dir).encode()).hexdigest()[:12]
        return {
            "name": self.name, "kubernetes_version": version, "created": time.time(),
            "run_dir": str(RUN_ROOT / run_id), "ports": ports, "pod_net_index": net_index,
            "pod_cidr": f"10.244.{net_index}.0/24", "procs": {}, "mount_ns": None, "fake_nodes": 0,
        }

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
        ports = state["ports"]
        cp = ControlPlane(machine_dir=self.dir, home_certs=self.certs, version=state["kubernetes_version"],
                          ports=ports)
        engine = Engine(name=self.name, state_dir=self.dir / "engine", run_dir=run_dir, tcp_port=ports["docker"],
                        tls_ca=self.certs.docker_ca, tls_cert=self.certs.docker_server_crt,
                        tls_key=self.certs.docker_server_key, private_dirs_root=self.dir / "node" / "host")
        node = Node(machine_dir=self.dir, run_dir=run_dir, version=state["kubernetes_version"],
                    kubelet_port=ports["kubelet"], kubeconfig=cp.kubeconfig("kubelet"),
                    docker_socket=engine.socket, pod_cidr=state["pod_cidr"], client_ca=self.certs.ca_crt,
                    profile=self.name)
        return cp, engine, node

    @staticmethod
    def _proc(state: dict, part: str) -> Proc | None:
        return Proc.from_json(state["procs"].get(part))

    def _spawn(self, state: dict, part: str, argv: list[str], *, port_keys: tuple[str, ...] = ()) -> Proc:
        for key in port_keys:
            if not procs.port_free(state["ports"][key]):
                raise RigError(f"{part} of profile {self.name!r} cannot start: its port 127.0.0.1:"
                               f"{state['ports'][key]} is taken by another process; stop that process or "
                               f"delete and recreate the profile")
        proc = procs.spawn(argv, log=self.logs / f"{part}.log", pidfile=Path(state["run_dir"]) / f"{part}.pid",
                           env=_daemon_env())
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
        return procs.wait_for(guarded, max(deadline - time.monotonic(), 1), what,
                              detail=lambda: f"log {log}:\n{procs.tail(log)}")

    # --- boot ----------------------------------------------------------------------------------------------
    def boot(self, *, kubernetes_version: str = paths.DEFAULT_KUBERNETES_VERSION, fake_nodes: int = 0,
             timeout: float = 120) -> MachineInfo:
        deadline = time.monotonic() + timeout
        with self._lock():
            paths.require_parts(kubernetes_version, kwok=fake_nodes > 0)
            state = self._load()
            if state is None:
                state = self._new_state(kubernetes_version)
            elif state["kubernetes_version"] != kubernetes_version:
                raise RigError(f"profile {self.name!r} runs Kubernetes {state['kubernetes_version']}, not "
                               f"{kubernetes_version}; delete it first to change versions")
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

            etcd = self._proc(state, "etcd")
            if not procs.alive(etcd):
                etcd = self._spawn(state, "etcd", cp.etcd_argv(self.name), port_keys=("etcd_client", "etcd_peer"))
            dockerd = self._ensure_engine(state, engine, deadline)
            self._wait(f"etcd of {self.name!r} to report healthy on 127.0.0.1:{state['ports']['etcd_client']}",
                       "etcd", etcd, cp.etcd_healthy, deadline)
            mark("etcd healthy")
            apiserver = self._proc(state, "apiserver")
            if not procs.alive(apiserver):
                apiserver = self._spawn(state, "apiserver", cp.apiserver_argv(), port_keys=("apiserver",))
            self._wait(f"the {self.name!r} Docker engine to answer on {engine.socket}", "dockerd", dockerd,
                       engine.ping, deadline)
            mark("engine ready")
            engine.ensure_pause_image()
            kubelet, kubelet_started = self._ensure_kubelet(state, node, dockerd)
            api = cp.api()
            self._wait(f"kube-apiserver of {self.name!r} to be ready ({cp.server_url}/readyz)", "apiserver",
                       apiserver, api.readyz, deadline)
            mark("apiserver ready")
            # not earlier: the controller-manager gives up (exits) if /healthz is not allowed within ~10 s,
            # which happens on a loaded machine before the API server has its RBAC bootstrap policy
            for part, argv, port in (("controller-manager", cp.controller_manager_argv(), "controller_manager"),
                                     ("scheduler", cp.scheduler_argv(), "scheduler")):
                if not procs.alive(self._proc(state, part)):
                    self._spawn(state, part, argv, port_keys=(port,))
            # after a restart the Node object still says Ready from before: insist on a fresh heartbeat
            self._wait(f"node {NODE_NAME!r} of {self.name!r} to become Ready", "kubelet", kubelet,
                       lambda: node_ready(api.get(f"/api/v1/nodes/{NODE_NAME}"), since=kubelet_started - 1)
                       and _kubelet_healthz(state["ports"]["kubelet"]), deadline)
            mark("node Ready")
            api.patch(f"/api/v1/nodes/{NODE_NAME}", {"metadata": {"labels": node.labels()}})
            self._wait(f"the default ServiceAccount in {self.name!r} (created by kube-controller-manager)",
                       "controller-manager", self._proc(state, "controller-manager"),
                       lambda: api.get("/api/v1/namespaces/default/serviceaccounts/default"), deadline)
            mark("default ServiceAccount")
            fake = max(fake_nodes, state.get("fake_nodes", 0))
            if fake:
                self._boot_kwok(state, cp, fake, deadline)
                mark("kwok nodes Ready")
            state["last_boot"] = timings
            self._save(state)
            return self._info(state)

    def _ensure_engine(self, state: dict, engine: Engine, deadline: float) -> Proc:
        dockerd = self._proc(state, "dockerd")
        if procs.alive(dockerd):
            return dockerd
        # A dead engine leaves its shims, containers and the kubelet in the old mount namespace; the kubelet
        # must live in the engine's (new) namespace anyway: clear the old one first.
        procs.terminate(self._proc(state, "kubelet"), what="kubelet")
        self._sweep(state)
        if not procs.port_free(state["ports"]["docker"]):
            raise RigError(f"the Docker engine of {self.name!r} cannot start: 127.0.0.1:"
                           f"{state['ports']['docker']} is taken by another process")
        dockerd = engine.start()
        state["procs"]["dockerd"] = dockerd.to_json()
        self._save(state)
        # the recorded PID runs `sh` first and enters its namespace a moment later
        state["mount_ns"] = self._wait(
            f"the {self.name!r} engine to enter its own mount namespace", "dockerd", dockerd,
            lambda: (ns if (ns := procs.mount_ns(dockerd.pid)) not in procs.host_mount_namespaces() else None),
            deadline)
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
        for key, owner in PORT_OWNER.items():
            port = state["ports"][key]
            if procs.alive(self._proc(state, owner)) or procs.port_free(port):
                continue
            state["ports"][key] = procs.free_port(avoid=taken | set(state["ports"].values()))
            self._log(f"port {port} ({key}) is taken by another process; {owner} moves to {state['ports'][key]}")
            restart.update(PORT_DEPENDANTS.get(key, ()))
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
            kwok = self._spawn(state, "kwok", kwoknodes.argv(cp.kubeconfig("admin"), state["ports"]["kwok"]),
                               port_keys=("kwok",))
        api = cp.api()
        names = kwoknodes.ensure_nodes(api, count)
        state["fake_nodes"] = count
        self._save(state)
        for name in names:
            self._wait(f"kwok node {name!r} of {self.name!r} to become Ready", "kwok", kwok,
                       lambda n=name: node_ready(api.get(f"/api/v1/nodes/{n}")), deadline)

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
            procs.terminate_all(targets(("kwok", "kubelet", "scheduler", "controller-manager")))
            if procs.alive(self._proc(state, "dockerd")):
                self._kill_containers(state)
            procs.terminate_all(targets(("apiserver", "etcd", "dockerd")))
        else:
            procs.terminate_all(targets(STOP_ORDER), sig=signal.SIGKILL, timeout=10)
        self._sweep(state)

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
        procs.wait_for(lambda: not self._namespace_members(state) or None, 15,
                       f"processes of {self.name!r} (mount namespace {state['mount_ns']}) to exit after SIGKILL")

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
            else:
                run_dir = None
            for d in filter(None, (self.dir, run_dir)):
                _unmount_below(d)
                shutil.rmtree(d, ignore_errors=False) if d.exists() else None
            for f in (self.certs.client_crt, self.certs.client_key, self.certs.apiserver_crt,
                      self.certs.apiserver_key):
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
        host = _health(alive["dockerd"], engine.ping)
        apiserver = _health(alive["apiserver"], lambda: cp.api().readyz())
        kubelet = _health(alive["kubelet"], lambda: _kubelet_healthz(state["ports"]["kubelet"]))
        return MachineState(host=host, apiserver=apiserver, kubelet=kubelet, processes=alive)

    def info(self) -> MachineInfo | None:
        state = self._load()
        return self._info(state) if state else None

    def _info(self, state: dict) -> MachineInfo:
        cp, engine, _ = self._parts(state)
        count = state.get("fake_nodes", 0)
        return MachineInfo(
            name=self.name, apiserver_url=cp.server_url, apiserver_port=state["ports"]["apiserver"],
            ca_cert=self.certs.ca_crt, client_cert=self.certs.client_crt, client_key=self.certs.client_key,
            docker_host=engine.docker_host, docker_cert_path=self.certs.docker_dir, docker_socket=engine.socket,
            node_name=NODE_NAME, kubernetes_version=state["kubernetes_version"],
            kubeconfig=cp.kubeconfig("admin"), state_dir=self.dir, run_dir=Path(state["run_dir"]),
            fake_nodes=[kwoknodes.node_name(i) for i in range(count)],
        )

    def processes(self) -> list[int]:
        """Every live process belonging to this machine: recorded daemons, their mount namespace, children."""
        state = self._load()
        if state is None:
            return []
        pids = {p.pid for p in (self._proc(state, part) for part in STOP_ORDER) if procs.alive(p)}
        pids |= self._namespace_members(state)
        return sorted(pids | procs.descendants(pids))


def _health(alive: bool, probe) -> str:
    if not alive:
        return STOPPED
    try:
        return RUNNING if probe() else ERROR
    except Exception:
        return ERROR


def _kubelet_healthz(port: int) -> bool:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the kubelet's serving cert is self-signed; this is a liveness probe
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=3)
    try:
        conn.request("GET", "/healthz")
        resp = conn.getresponse()
        return resp.status == 200 and resp.read().strip() == b"ok"
    finally:
        conn.close()


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
