"""Deployments and their pods: read, restart, wait for a rollout, stream a container's log."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from typing import Any

from devloop.base.errors import ClusterError
from devloop.base.waits import wait_for

from .diagnosis import (
    PERMANENT_POD_REASONS,
    crashed_containers,
    is_deleting,
    is_fresh,
    meta_of,
    pod_problem,
    rollout_status,
    workload_selector,
)
from .discovery import DEPLOYMENTS, PODS
from .objects import Objects

ROLLOUT_POLL = 0.5
# Pods are listed at most this often while waiting: the fail-fast check, not the rollout itself.
POD_CHECK_EVERY = 1.0


class Workloads:
    def __init__(self, objects: Objects):
        self.objects = objects
        self.transport = objects.transport

    def deployment(self, namespace: str, name: str) -> dict | None:
        return self.transport.get(DEPLOYMENTS.path(namespace, name))

    def pods(self, namespace: str, selector: str | None) -> list[dict]:
        return self.objects.list(PODS, namespace=namespace, selector=selector or None)

    def restart_deployment(self, namespace: str, name: str) -> None:
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.transport.request(
            "PATCH",
            DEPLOYMENTS.path(namespace, name),
            body={"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": now}}}}},
            content_type="application/strategic-merge-patch+json",
        )

    def wait_rollout(
        self,
        deployments: list[tuple[str, str]],
        *,
        timeout: float,
        on_wait: Callable[[str], None] | None = None,
        fail_fast: bool = True,
    ) -> None:
        """Wait until each (namespace, name) Deployment has rolled out, as `kubectl rollout status`.

        On timeout (or at once, for a pod that can never start such as ErrImageNeverPull) the
        error names the pods that are not ready and why.
        """
        pending = list(deployments)
        messages: dict[tuple[str, str], str] = {}
        said: str | None = None
        next_pod_check = 0.0
        # Pods already running (or restarted) when the wait begins are history (an engine restart, an
        # earlier crash): only the pods this rollout brings are checked when it counts as done.
        settled: set[tuple[str, str]] = set()
        if fail_fast:
            for ns in sorted({ns for ns, _ in deployments}):
                settled |= {(ns, meta_of(p).get("name") or "") for p in self.pods(ns, None) if not is_fresh(p)}
        done_objects: dict[tuple[str, str], dict] = {}

        def rolled_out() -> bool:
            nonlocal pending, said, next_pod_check
            still = []
            for ns, name in pending:
                deploy = self.deployment(ns, name)
                if deploy is None:
                    messages[(ns, name)] = f"deployment {ns}/{name} does not exist"
                    still.append((ns, name))
                    continue
                done, message = rollout_status(deploy)
                messages[(ns, name)] = message
                if not done:
                    still.append((ns, name))
                else:
                    done_objects[(ns, name)] = deploy
            pending = still
            if not pending:
                if fail_fast:
                    for (ns, name), deploy in done_objects.items():
                        self._fail_if_crashed(ns, name, deploy, settled)
                return True
            now = time.monotonic()
            if fail_fast and now >= next_pod_check:
                next_pod_check = now + POD_CHECK_EVERY
                for ns, name in pending:
                    self._fail_if_hopeless(ns, name)
            summary = "; ".join(messages[d] for d in pending)
            if on_wait and summary != said:
                on_wait(summary)
                said = summary
            return False

        def timed_out(_: bool) -> str:
            lines = []
            for ns, name in pending:
                lines.append(f"  {messages[(ns, name)]}")
                lines += [f"    - {text}" for _, text in self.pod_problems(ns, name)]
            return f"rollout not finished within {timeout:g}s:\n" + "\n".join(lines)

        wait_for(rolled_out, timeout=timeout, interval=ROLLOUT_POLL, describe=timed_out)

    def _fail_if_crashed(self, namespace: str, name: str, deploy: dict, settled: set) -> None:
        """Ready is not running: a container that exits seconds after start is Ready for a moment, and the
        Deployment counts it available until its status catches up. Judged once, when all are done; no
        settle delay."""
        crashed = crashed_containers(self.pods(namespace, workload_selector(deploy)), settled)
        if crashed:
            raise ClusterError(
                f"deployment {namespace}/{name} rolled out, but its containers do not stay up:\n"
                + "\n".join(f"  - {t}" for t in crashed),
                hint=f"the container exits after it starts: `kubectl logs -n {namespace} deployment/{name} "
                "--previous` (or `devloop logs`) shows why",
            )

    def _fail_if_hopeless(self, namespace: str, name: str) -> None:
        fatal = [text for reason, text in self.pod_problems(namespace, name) if reason in PERMANENT_POD_REASONS]
        if fatal:
            raise ClusterError(
                f"deployment {namespace}/{name} cannot roll out:\n" + "\n".join(f"  - {t}" for t in fatal),
                hint="the image is not in minikube's Docker daemon and may not be pulled; build it "
                "(`devloop build`) or fix imagePullPolicy",
            )

    def pod_problems(self, namespace: str, name: str) -> list[tuple[str | None, str]]:
        """(reason, text) for each live pod of the Deployment that is not ready."""
        deploy = self.deployment(namespace, name)
        if deploy is None:
            return []
        selector = workload_selector(deploy)
        pods = [p for p in self.pods(namespace, selector) if not is_deleting(p)]
        if not pods:
            return [
                (None, f"no pods for deployment {namespace}/{name} (selector {selector}); see its ReplicaSet events")
            ]
        return [problem for pod in pods if (problem := pod_problem(pod)) is not None]

    def pod_logs(
        self, namespace: str, pod: str, container: str, *, follow: bool = False, tail_lines: int | None = None
    ) -> Iterator[str]:
        """A container's log, line by line; with `follow`, until the stream ends or the caller stops."""
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        kwargs: dict[str, Any] = {"container": container, "follow": follow, "_preload_content": False}
        if tail_lines is not None:
            kwargs["tail_lines"] = tail_lines
        if not follow:
            kwargs["_request_timeout"] = self.transport.request_timeout
        try:
            # the client's stub says str, but _preload_content=False hands back the urllib3 response
            resp: Any = client.CoreV1Api(self.transport.api).read_namespaced_pod_log(pod, namespace, **kwargs)
        except ApiException as exc:
            raise ClusterError(
                f"cannot read logs of {namespace}/{pod}/{container}: {exc.status} {exc.reason}",
                hint="the container may not have started yet; `devloop status` shows why",
            ) from None
        try:
            pending = b""
            for chunk in resp.stream(4096, decode_content=True):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    yield line.decode("utf-8", "replace")
            if pending:
                yield pending.decode("utf-8", "replace")
        finally:
            resp.release_conn()
