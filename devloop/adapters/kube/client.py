"""Kube: the one object commands hold, always bound to one explicitly named kube context.

It only wires the parts together (kubeconfig → transport → discovery → objects, workloads,
cleanup) and hands out their operations under one name, so a fake can replace it whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from .cleanup import Cleaner, CleanReport
from .discovery import Discovery, Resource
from .kubeconfig import Kubeconfig
from .objects import Objects, OnEvent
from .transport import REQUEST_TIMEOUT, Transport
from .workloads import Workloads


class Kube:
    def __init__(
        self, *, context: str, kubeconfig: str | Kubeconfig | None = None, request_timeout: float = REQUEST_TIMEOUT
    ):
        """`kubeconfig`: a path list as kubectl takes it, or a Kubeconfig the caller loaded already."""
        self.config = Kubeconfig.load(kubeconfig)
        self.context = context
        self.transport = Transport(self.config, context, request_timeout=request_timeout)
        self.server = self.transport.server
        self.discovery = Discovery(self.transport, default_namespace=self.config.default_namespace(context))
        self.objects = Objects(self.transport, self.discovery)
        self.workloads = Workloads(self.objects)
        self.cleaner = Cleaner(self.objects)

    def close(self) -> None:
        self.transport.close()
        self.discovery.close()

    def __enter__(self) -> Kube:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- discovery ---------------------------------------------------------------------------

    def resource_for(self, api_version: str, kind: str) -> Resource:
        return self.discovery.resource_for(api_version, kind)

    # -- objects -----------------------------------------------------------------------------

    def get(self, obj: dict) -> dict | None:
        return self.objects.get(obj)

    def exists(self, obj: dict) -> bool:
        return self.objects.exists(obj)

    def create(self, obj: dict) -> None:
        self.objects.create(obj)

    def server_side_apply(
        self,
        obj: dict,
        *,
        field_manager: str = "devloop",
        force: bool = True,
        on_fallback: Callable[[str], None] | None = None,
        known_off: bool = False,
    ) -> bool:
        return self.objects.server_side_apply(
            obj, field_manager=field_manager, force=force, on_fallback=on_fallback, known_off=known_off
        )

    def delete_objects(self, objs: list[dict], *, timeout: float, on_event: OnEvent | None = None) -> None:
        self.objects.delete_objects(objs, timeout=timeout, on_event=on_event)

    def wait_admission(self, obj: dict, *, timeout: float, what: str | None = None) -> None:
        self.objects.wait_admission(obj, timeout=timeout, what=what)

    def list_custom(self, resource: str) -> list[dict]:
        return self.objects.list_custom(resource)

    def wait_crds_established(self, names: list[str], *, timeout: float) -> None:
        self.objects.wait_crds_established(names, timeout=timeout)

    def ensure_namespace(self, name: str, *, timeout: float = 120) -> bool:
        return self.objects.ensure_namespace(name, timeout=timeout)

    def delete_namespace(self, name: str, *, timeout: float) -> None:
        self.objects.delete_namespace(name, timeout=timeout)

    # -- workloads ---------------------------------------------------------------------------

    def deployment(self, namespace: str, name: str) -> dict | None:
        return self.workloads.deployment(namespace, name)

    def minikube_primary_node(self, *, timeout: float) -> dict | None:
        """{"profile", "ready"} of the node minikube labels as its primary (kubeadm.go LabelAndUntaintNode:
        minikube.k8s.io/primary=true, minikube.k8s.io/name=<profile>), asked once without retries; None when
        the server does not answer or has no such node."""
        from .transport import Transient

        try:
            status, payload = self.transport.request_once(
                "GET", "/api/v1/nodes", query={"labelSelector": "minikube.k8s.io/primary=true"}, timeout=timeout
            )
        except Transient:
            return None
        items = (payload or {}).get("items") or [] if status == 200 and isinstance(payload, dict) else []
        if len(items) != 1:
            return None
        node = items[0]
        labels = (node.get("metadata") or {}).get("labels") or {}
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (node.get("status") or {}).get("conditions") or []
        )
        return {"profile": labels.get("minikube.k8s.io/name"), "ready": ready}

    def pods(self, namespace: str, selector: str | None) -> list[dict]:
        return self.workloads.pods(namespace, selector)

    def restart_deployment(self, namespace: str, name: str) -> None:
        self.workloads.restart_deployment(namespace, name)

    def wait_rollout(
        self,
        deployments: list[tuple[str, str]],
        *,
        timeout: float,
        on_wait: Callable[[str], None] | None = None,
        fail_fast: bool = True,
    ) -> None:
        self.workloads.wait_rollout(deployments, timeout=timeout, on_wait=on_wait, fail_fast=fail_fast)

    def pod_logs(
        self, namespace: str, pod: str, container: str, *, follow: bool = False, tail_lines: int | None = None
    ) -> Iterator[str]:
        return self.workloads.pod_logs(namespace, pod, container, follow=follow, tail_lines=tail_lines)

    # -- reaching services (verify) ------------------------------------------------------------

    def service_proxy_get(
        self, namespace: str, service: str, port: str | int | None, path: str, *, timeout: float
    ) -> tuple[int, str]:
        """(status, body) of a GET through the API server's service proxy, as `kubeless function call` makes it."""
        from .proxy import service_proxy_get

        return service_proxy_get(self.transport, namespace, service, port, path, timeout=timeout)

    def node_internal_ip(self, *, timeout: float) -> str | None:
        """The InternalIP of minikube's (primary) node; None when no node has one."""
        from .proxy import node_internal_ip

        return node_internal_ip(self.transport, timeout=timeout)

    # -- cleanup -----------------------------------------------------------------------------

    def clean_custom_resources(
        self,
        resources: list[str],
        *,
        grace: float,
        strip_finalizers: bool,
        timeout: float,
        on_event: OnEvent | None = None,
    ) -> CleanReport:
        return self.cleaner.clean_custom_resources(
            resources, grace=grace, strip_finalizers=strip_finalizers, timeout=timeout, on_event=on_event
        )
