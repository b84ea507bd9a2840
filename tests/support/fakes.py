"""Test fakes of devloop's adapters (devloop/adapters/protocols.py), one each, for unit tests that need a
seam answered without a cluster. Each implements the part of its Protocol the code under test calls."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from devloop.adapters.minikube.cli import ClusterStatus, Minikube, MinikubeVersion

Obj = dict[str, Any]


class FakeKube:
    """KubeAdapter's reads as status, logs and live update make them: one Deployment, and its pods.

    `pods` is a list, or a function of the namespace that makes the list at each call (for a test that changes
    a pod between two calls). With `selector`, only a query carrying exactly that label selector finds them, as
    the API server would answer a query missing part of a Deployment's selector. Every query is recorded."""

    def __init__(
        self,
        pods: Sequence[Obj] | Callable[[str], Sequence[Obj]] = (),
        *,
        deployment: Obj | None = None,
        selector: str | None = None,
    ) -> None:
        self._pods = pods
        self.deploy = deployment
        self.selector = selector
        self.queries: list[tuple[str, str | None]] = []

    def deployment(self, namespace: str, name: str) -> Obj | None:
        return self.deploy

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
