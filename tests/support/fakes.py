"""Test fakes of devloop's adapters (devloop/adapters/protocols.py), one each, for unit tests that need a
seam answered without a cluster. Each implements the part of its Protocol the code under test calls."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from devloop.adapters.minikube.cli import ClusterStatus, Minikube, MinikubeVersion

Obj = dict[str, Any]


class FakeKube:
    """KubeAdapter's reads as status, logs, live update and verify make them: one Deployment, and its pods.

    `pods` is a list, or a function of the namespace that makes the list at each call (for a test that changes
    a pod between two calls). With `selector`, only a query carrying exactly that label selector finds them, as
    the API server would answer a query missing part of a Deployment's selector. Every query is recorded.

    For verify: `objects` maps (kind, namespace, name) to an object, or to a function making it at each read
    (None: absent); applied and created objects land there too, and are recorded in `applied`/`created`.
    `proxy` answers service proxy GETs: a list of (status, body) handed out in turn (the last one repeating;
    an exception instance is raised), or a function of (namespace, service, port, path). `logs` maps
    (pod, container) to its log lines; `node_ip` is the node's InternalIP.

    For runtimes: `custom` maps a custom resource ("functions.kubeless.io") to its objects (list_custom);
    `deployments` maps (namespace, name) to a Deployment, or a function making it at each read (deployment()
    falls back to `deployment` for other names); restart_deployment records (namespace, name) in `restarts`
    and calls `on_restart(namespace, name)`, where a test plays the controller that re-reads its config."""

    def __init__(
        self,
        pods: Sequence[Obj] | Callable[[str], Sequence[Obj]] = (),
        *,
        deployment: Obj | None = None,
        selector: str | None = None,
        objects: dict[tuple[str, str, str], Any] | None = None,
        proxy: Sequence[Any] | Callable[..., tuple[int, str]] = (),
        logs: dict[tuple[str, str], list[str]] | None = None,
        node_ip: str | None = "192.168.49.2",
        custom: dict[str, list[Obj]] | None = None,
        deployments: dict[tuple[str, str], Any] | None = None,
        on_restart: Callable[[str, str], None] | None = None,
    ) -> None:
        self._pods = pods
        self.deploy = deployment
        self.selector = selector
        self.queries: list[tuple[str, str | None]] = []
        self.objects: dict[tuple[str, str, str], Any] = dict(objects or {})
        self.proxy = proxy
        self.proxied: list[tuple[str, str, Any, str]] = []
        self.logs = dict(logs or {})
        self.node_ip = node_ip
        self.applied: list[Obj] = []
        self.created: list[Obj] = []
        self.deleted: list[Obj] = []
        self.rollouts: list[list[tuple[str, str]]] = []
        self.custom: dict[str, list[Obj]] = dict(custom or {})
        self.deployments: dict[tuple[str, str], Any] = dict(deployments or {})
        self.on_restart = on_restart
        self.restarts: list[tuple[str, str]] = []

    @staticmethod
    def _key(obj: Obj) -> tuple[str, str, str]:
        meta = obj.get("metadata") or {}
        return (obj.get("kind", ""), meta.get("namespace") or "", meta.get("name", ""))

    def get(self, obj: Obj) -> Obj | None:
        found = self.objects.get(self._key(obj))
        return found() if callable(found) else found

    def exists(self, obj: Obj) -> bool:
        return self.get(obj) is not None

    def server_side_apply(self, obj: Obj, **_: Any) -> bool:
        self.applied.append(obj)
        changed = self.objects.get(self._key(obj)) is None
        self.objects.setdefault(self._key(obj), obj)
        return changed

    def create(self, obj: Obj) -> None:
        self.created.append(obj)
        self.objects.setdefault(self._key(obj), obj)

    def delete_objects(self, objs: list[Obj], **_: Any) -> None:
        for obj in objs:
            self.deleted.append(obj)
            self.objects.pop(self._key(obj), None)

    def service_proxy_get(self, namespace: str, service: str, port: Any, path: str, **_: Any) -> tuple[int, str]:
        self.proxied.append((namespace, service, port, path))
        if callable(self.proxy):
            return self.proxy(namespace, service, port, path)
        answers = list(self.proxy)
        answer = answers[min(len(self.proxied), len(answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def node_internal_ip(self, **_: Any) -> str | None:
        return self.node_ip

    def wait_rollout(self, deployments: list[tuple[str, str]], **_: Any) -> None:
        self.rollouts.append(list(deployments))

    def pod_logs(self, namespace: str, pod: str, container: str, **kwargs: Any) -> Iterator[str]:
        lines = self.logs.get((pod, container), [])
        tail = kwargs.get("tail_lines")
        return iter(lines[-tail:] if tail else lines)

    def deployment(self, namespace: str, name: str) -> Obj | None:
        if (namespace, name) in self.deployments:
            found = self.deployments[(namespace, name)]
            return found() if callable(found) else found
        return self.deploy

    def list_custom(self, resource: str) -> list[Obj]:
        return list(self.custom.get(resource, []))

    def restart_deployment(self, namespace: str, name: str) -> None:
        self.restarts.append((namespace, name))
        if self.on_restart is not None:
            self.on_restart(namespace, name)

    def pods(self, namespace: str, selector: str | None) -> list[Obj]:
        self.queries.append((namespace, selector))
        if self.selector is not None and selector != self.selector:
            return []
        return list(self._pods(namespace) if callable(self._pods) else self._pods)


class FakeMinikube:
    """MinikubeAdapter for the loop's decisions: a cluster state, a version, an endpoint; start and delete
    change the state and are recorded in `calls`."""

    # The real argv builder: the dry run prints what the real call would run.
    binary = "minikube"
    profile_name = "devloop-kubeless"
    start_args = Minikube.start_args

    def __init__(self, *, state="Running", version="v1.36.0", endpoint=("127.0.0.1", 8443)):
        self.state = state
        self._version = version
        self.endpoint = endpoint
        self.calls: list[tuple] = []

    def status(self):
        self.calls.append(("status",))
        run = "Running" if self.state == "Running" else self.state
        return ClusterStatus(state=self.state, host=run, kubelet=run, apiserver=run, kubeconfig="Configured")

    def version(self):
        return MinikubeVersion(version=self._version)

    def start(self, **kwargs):
        self.calls.append(("start", kwargs))
        self.state = "Running"

    def delete(self, **kwargs):
        self.calls.append(("delete",))
        self.state = "Missing"

    def api_endpoint(self):
        return self.endpoint

    def docker_env(self):
        return {"DOCKER_HOST": "tcp://127.0.0.1:2376"}

    def profile_config(self):
        return None  # no minikube files behind a fake


class FakeDocker:
    """EngineAdapter as the builder asks it: which daemon it is, and which images it holds."""

    def __init__(self, name="devloop-kubeless", images=()):
        self.name = name
        self.images = set(images)

    def daemon_name(self):
        return self.name

    def alive(self):
        return True

    def image_exists(self, ref):
        return ref in self.images

    def close(self):
        pass
