"""The dry run: doubles of the minikube, kube and build adapters that say what they would run.

The Session hands these out under `--dry-run`; the steps in loop.py run the same code either
way. Each double prints (as `would ...` lines through the reporter) the exact argv or API call
the real adapter would make, and answers the way a plan needs:

- minikube: read-only probes (version, status, addons, docker-env, profiles) still run, and a
  failing probe reads as "no cluster" instead of failing the plan; start, delete and addon
  enables are printed, not run, and answer that they did nothing (`start` and `enable_addon`
  return False).
- kube: no client is made and no context is checked (a plan must work without a cluster).
  Writes and the rollout wait are printed. Reads answer the worst case, so the plan lists
  every call the real run might make: every manifest object exists, every controller is ready
  (cleanup keeps its grace period), server-side apply changes nothing it can know of.
- build: the daemon is asked which images exist when it answers; builds are printed, not run;
  no image is required to exist.

Waits that follow a printed call (CRDs becoming Established, the ingress webhook answering)
are implied by it and print nothing; the Reporter shows no waits in a plan.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devloop.adapters.protocols import Buildable, BuilderAdapter, KubeAdapter, MinikubeAdapter, OnLine
from devloop.base.errors import DevloopError
from devloop.output.report import Reporter

if TYPE_CHECKING:
    from devloop.adapters.kube.cleanup import CleanReport
    from devloop.adapters.minikube.home import ProfileConfig
    from devloop.adapters.minikube.output import ClusterStatus
    from devloop.adapters.minikube.versions import MinikubeVersion


def _would(reporter: Reporter, what: str) -> None:
    reporter.info(f"would {what}")


class DryMinikube:
    def __init__(self, real: MinikubeAdapter, reporter: Reporter) -> None:
        self.real = real
        self.reporter = reporter
        self._deleted = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)  # profiles, profile: read-only

    def _run(self, *args: str) -> None:
        _would(self.reporter, "run: " + shlex.join([self.real.binary, *args]))

    # -- read-only: asked of the real minikube
    @property
    def binary(self) -> str:
        return self.real.binary

    @property
    def profile_name(self) -> str:
        return self.real.profile_name

    def api_endpoint(self) -> tuple[str, int] | None:
        return self.real.api_endpoint()

    def docker_env(self) -> dict[str, str]:
        return self.real.docker_env()

    def images(self) -> list[str]:
        return self.real.images()

    def profile_config(self) -> ProfileConfig | None:
        return self.real.profile_config()

    def start_args(self, **settings: Any) -> list[str]:
        return self.real.start_args(**settings)

    def version(self) -> MinikubeVersion:
        from devloop.adapters.minikube.versions import MinikubeTooOld, MinikubeVersion, require_supported

        try:
            # judged here too: a double (or a fake) may hand back a version it did not judge
            return require_supported(self.real.version())
        except MinikubeTooOld:
            raise  # a minikube devloop cannot run on: the plan refuses as the real run would
        except DevloopError:
            return MinikubeVersion(version="unknown")  # unreadable: needs_force, an unknown version needs none

    def status(self) -> ClusterStatus:
        from devloop.adapters.minikube.cli import ClusterStatus

        if self._deleted:
            return ClusterStatus("Missing")
        try:
            return self.real.status()
        except DevloopError:
            return ClusterStatus("Missing")

    def addons(self) -> dict[str, bool]:
        return self.real.addons() if self.status().running else {}

    # -- changes: printed
    def delete(self, **_: Any) -> None:
        self._run("delete", "-p", self.real.profile_name)
        self._deleted = True

    def start(self, *, timeout: float = 0, on_line: OnLine | None = None, **settings: Any) -> bool:
        self._run(*self.real.start_args(**settings))
        return False

    def enable_addon(
        self,
        name: str,
        *,
        images: Mapping[str, str] | None = None,
        registries: Mapping[str, str] | None = None,
        **_: Any,
    ) -> bool:
        from devloop.adapters.minikube.cli import addon_override_args

        self._run("addons", "enable", name, "-p", self.real.profile_name, *addon_override_args(images, registries))
        return False

    def image_load(self, ref: str, **_: Any) -> None:
        self._run("image", "load", "-p", self.real.profile_name, ref)


class DryKube:
    def __init__(self, reporter: Reporter, describe: Callable[[dict[str, Any]], str]) -> None:
        self.reporter = reporter
        self.describe = describe  # an object as the plan names it: manifests.object_ref

    def close(self) -> None:
        pass

    # -- reads: the worst case
    def exists(self, obj: dict[str, Any]) -> bool:
        return True

    def get(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        return obj

    def deployment(self, namespace: str, name: str) -> dict[str, Any]:
        return {"metadata": {"namespace": namespace, "name": name}, "status": {"readyReplicas": 1}}

    def pods(self, namespace: str, selector: str | None) -> list[dict[str, Any]]:
        return []

    def list_custom(self, resource: str) -> list[dict[str, Any]]:
        return []

    def minikube_primary_node(self, **_: Any) -> dict[str, Any] | None:
        return None  # no server is asked: minikube's status decides

    def pod_logs(self, namespace: str, pod: str, container: str, **_: Any) -> Iterator[str]:
        return iter(())

    # -- writes and waits
    def ensure_namespace(self, name: str, **_: Any) -> bool:
        _would(self.reporter, f"create Namespace/{name} if absent")
        return True

    def delete_namespace(self, name: str, **_: Any) -> None:
        _would(self.reporter, f"delete Namespace/{name} and wait until it is gone")

    def clean_custom_resources(self, resources: Sequence[str], **_: Any) -> CleanReport:
        from devloop.adapters.kube.cleanup import CleanReport

        for resource in resources:
            _would(self.reporter, f"delete all {resource} in all namespaces, then strip finalizers still holding them")
        return CleanReport()  # nothing was deleted, stripped or left stuck

    def delete_objects(self, objs: Iterable[dict[str, Any]], **_: Any) -> None:
        for obj in objs:
            _would(self.reporter, f"delete {self.describe(obj)}")

    def create(self, obj: dict[str, Any]) -> bool:
        _would(self.reporter, f"create {self.describe(obj)}")
        return False

    def server_side_apply(self, obj: dict[str, Any], **_: Any) -> bool:
        _would(self.reporter, f"server-side apply {self.describe(obj)}")
        return False

    def restart_deployment(self, namespace: str, name: str) -> None:
        _would(self.reporter, f"restart Deployment/{namespace}/{name}")

    def wait_rollout(self, deployments: Sequence[tuple[str, str]], **_: Any) -> None:
        _would(self.reporter, "wait for the rollout of " + ", ".join(f"{ns}/{name}" for ns, name in deployments))

    def wait_crds_established(self, names: Sequence[str], **_: Any) -> None:
        pass

    def wait_admission(self, obj: dict[str, Any], **_: Any) -> None:
        pass

    # -- verify: a plan calls nothing (devloop.verify says what each check would do)
    def service_proxy_get(
        self, namespace: str, service: str, port: str | int | None, path: str, **_: Any
    ) -> tuple[int, str]:
        _would(self.reporter, f"GET services/{service}:{port or ''}/proxy{path} in {namespace}")
        return 200, ""

    def node_internal_ip(self, **_: Any) -> str | None:
        return None


class DryBuilder:
    def __init__(self, real: BuilderAdapter, reporter: Reporter) -> None:
        self.real = real
        self.reporter = reporter
        self._reachable = False

    def prepare(self) -> None:
        # No target check: nothing is built. Whether the daemon answers decides only whether the
        # plan can tell which images exist.
        try:
            self.real.connect()
            self._reachable = True
        except DevloopError:
            self._reachable = False

    def image_exists(self, tag: str) -> bool:
        return self._reachable and self.real.image_exists(tag)

    def missing(self, tags: Iterable[str]) -> list[str]:
        return []

    def connect(self) -> None:
        self.prepare()

    def build(self, component: Buildable, tag: str, *, cwd: Path, **_: Any) -> None:
        _would(self.reporter, f"run in {cwd}: {component.build_command(tag)}")


# mypy checks that the doubles still stand in for the real adapters
_minikube: type[MinikubeAdapter] = DryMinikube
_kube: type[KubeAdapter] = DryKube
_builder: type[BuilderAdapter] = DryBuilder
