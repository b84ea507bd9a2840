"""Pure readings of Kubernetes objects: accessors, label selectors, rollout and pod state.

Nothing here talks to a cluster, so commands may use it on whatever objects they hold.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from devloop.base.errors import ClusterError

# Pods in these states never start however long one waits: a rollout fails at once.
PERMANENT_POD_REASONS = {"ErrImageNeverPull", "InvalidImageName"}


# -- accessors: objects from the API may carry `null` where a mapping is expected ------------


def meta_of(obj: dict | None) -> dict[str, Any]:
    return (obj or {}).get("metadata") or {}


def spec_of(obj: dict | None) -> dict[str, Any]:
    return (obj or {}).get("spec") or {}


def status_of(obj: dict | None) -> dict[str, Any]:
    return (obj or {}).get("status") or {}


def namespace_of(obj: dict | None) -> str | None:
    return meta_of(obj).get("namespace") or None


def is_deleting(obj: dict | None) -> bool:
    return bool(meta_of(obj).get("deletionTimestamp"))


# -- label selectors -------------------------------------------------------------------------


def label_selector(selector: dict | None) -> str:
    """A LabelSelector (matchLabels and matchExpressions) as the `labelSelector` query string.

    Both parts count: dropping matchExpressions would select pods the workload does not own.
    """
    selector = selector or {}
    terms = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In":
            terms.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            terms.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            terms.append(str(key))
        elif op == "DoesNotExist":
            terms.append(f"!{key}")
        else:
            raise ClusterError(
                f"label selector operator {op!r} (key {key!r}) is not one of In, NotIn, Exists, DoesNotExist"
            )
    return ",".join(terms)


def workload_selector(workload: dict) -> str:
    """The pod selector of a Deployment (or any workload with spec.selector) as a query string."""
    return label_selector(spec_of(workload).get("selector"))


# -- conditions, owners, what is left ---------------------------------------------------------


def owner_text(meta: dict) -> str | None:
    owners = meta.get("ownerReferences") or []
    return ", ".join(f"{o.get('kind')} {o.get('name')}" for o in owners) or None


def conditions_text(obj: dict, *, only_true: bool = True) -> str:
    parts = []
    for cond in status_of(obj).get("conditions") or []:
        if only_true and cond.get("status") != "True":
            continue
        text = f"{cond.get('type')}={cond.get('status')}"
        if cond.get("reason"):
            text += f" ({cond['reason']})"
        if cond.get("message"):
            text += f": {cond['message']}"
        parts.append(text)
    return "; ".join(parts)


def describe_remaining(obj: dict, ref: Any) -> str:
    """Why an object (named by `ref`) is still there: finalizers, deletion, owner, conditions."""
    meta = meta_of(obj)
    parts = [str(ref), f"finalizers {meta.get('finalizers') or '[]'}"]
    if meta.get("deletionTimestamp"):
        parts.append(f"deletionTimestamp {meta['deletionTimestamp']}")
    parts.append(f"owner {owner_text(meta) or 'none'}")
    conditions = conditions_text(obj)
    if conditions and getattr(ref, "kind", "") in ("CustomResourceDefinition", "Namespace"):
        parts.append(f"conditions: {conditions}")
    return ", ".join(parts)


def content(obj: dict) -> dict:
    """An object minus what every write changes (resourceVersion, managedFields), so taking over
    field ownership with server-side apply does not count as a change."""
    copy = dict(obj)
    meta = dict(meta_of(copy))
    for key in ("resourceVersion", "managedFields"):
        meta.pop(key, None)
    copy["metadata"] = meta
    return copy


# -- rollout and pods -------------------------------------------------------------------------


def rollout_status(deploy: dict) -> tuple[bool, str]:
    """(done, message) like `kubectl rollout status` for one Deployment."""
    meta, spec, status = meta_of(deploy), spec_of(deploy), status_of(deploy)
    name = f"{meta.get('namespace')}/{meta.get('name')}"
    if meta.get("generation", 0) > status.get("observedGeneration", 0):
        return False, f"deployment {name}: waiting for the controller to observe the new spec"
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return False, f"deployment {name} exceeded its progress deadline"
    wanted = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    replicas = status.get("replicas", 0)
    available = status.get("availableReplicas", 0)
    if updated < wanted:
        return False, f"deployment {name}: {updated} of {wanted} new replicas have been updated"
    if replicas > updated:
        return False, f"deployment {name}: {replicas - updated} old replicas are pending termination"
    if available < updated:
        return False, f"deployment {name}: {available} of {updated} updated replicas are available"
    return True, f"deployment {name} successfully rolled out"


def pod_problem(pod: dict) -> tuple[str | None, str] | None:
    """(reason, text) of why a pod is not ready, or None when it is ready."""
    meta, status = meta_of(pod), status_of(pod)
    name = f"pod {meta.get('namespace')}/{meta.get('name')}"
    phase = status.get("phase", "Pending")
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    ready = conditions.get("Ready", {}).get("status") == "True"
    if phase == "Running" and ready:
        return None
    for key in ("initContainerStatuses", "containerStatuses"):
        for cs in status.get(key) or []:
            problem = _container_problem(name, cs, init=key == "initContainerStatuses")
            if problem:
                return problem
    scheduled = conditions.get("PodScheduled")
    if scheduled and scheduled.get("status") == "False":
        return "Unschedulable", f"{name} is Pending: {scheduled.get('message') or scheduled.get('reason')}"
    if phase == "Pending" and not status.get("containerStatuses"):
        node = spec_of(pod).get("nodeName")
        where = f"on node {node}" if node else "not yet scheduled"
        return "Pending", f"{name} is Pending ({where})"
    if phase in ("Failed", "Unknown"):
        return phase, f"{name} is {phase}: {status.get('reason', '')} {status.get('message', '')}".rstrip()
    not_ready = conditions.get("ContainersReady") or conditions.get("Ready") or {}
    detail = not_ready.get("message") or "containers are not ready"
    return "NotReady", f"{name} is {phase} but not ready: {detail}"


def _container_problem(pod_name: str, cs: dict, *, init: bool) -> tuple[str | None, str] | None:
    state = cs.get("state") or {}
    waiting = state.get("waiting")
    container = cs.get("name")
    if waiting and waiting.get("reason") not in (None, "ContainerCreating", "PodInitializing"):
        reason = waiting.get("reason")
        text = f"{pod_name} container {container}: {reason}"
        if waiting.get("message"):
            text += f": {waiting['message']}"
        last = (cs.get("lastState") or {}).get("terminated")
        if last:
            text += f" (last exit code {last.get('exitCode')}"
            text += f", {last.get('reason')})" if last.get("reason") else ")"
        image = cs.get("image")
        if image and image not in text and reason in ("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull"):
            text += f" [image {image}]"
        return reason, text
    terminated = state.get("terminated")
    if terminated and not init and terminated.get("exitCode", 0) != 0:
        reason = terminated.get("reason") or "Error"
        return reason, f"{pod_name} container {container} exited with code {terminated.get('exitCode')} ({reason})"
    return None


# Waiting reasons of a container on its way up, not of one that crashed.
STARTING_REASONS = {"ContainerCreating", "PodInitializing"}


def is_fresh(pod: dict) -> bool:
    """A pod that is not Ready and has never restarted a container: one a rollout is bringing up. Taken
    when a rollout wait begins; other pods (Ready, or restarted before, e.g. after an engine restart)
    are not this rollout's, and their history is no crash of it."""
    statuses = status_of(pod).get("containerStatuses") or []
    return pod_problem(pod) is not None and all(cs.get("restartCount", 0) == 0 for cs in statuses)


def crashed_containers(pods: list[dict], settled: Collection[tuple[str, str]] = frozenset()) -> list[str]:
    """Containers of `pods` (minus the `settled` (namespace, pod): there, and not fresh, when the wait
    began) that are not running at the moment a rollout counts as done (it turned Ready and exited
    since, and the Deployment's status has not caught up), or that have restarted."""
    texts = []
    for pod in pods:
        meta = meta_of(pod)
        if is_deleting(pod) or (meta.get("namespace") or "", meta.get("name") or "") in settled:
            continue
        name = f"pod {meta.get('namespace')}/{meta.get('name')}"
        for cs in status_of(pod).get("containerStatuses") or []:
            state = cs.get("state") or {}
            restarts = cs.get("restartCount", 0)
            last = state.get("terminated") or (cs.get("lastState") or {}).get("terminated") or {}
            exit_text = (
                f"exit code {last.get('exitCode')}" + (f", {last['reason']}" if last.get("reason") else "")
                if last
                else ""
            )
            if (state.get("waiting") and state["waiting"].get("reason") not in STARTING_REASONS) or state.get(
                "terminated"
            ):
                why = (state.get("waiting") or {}).get("reason") or (
                    "terminated" if state.get("terminated") else "waiting"
                )
                texts.append(f"{name} container {cs.get('name')}: {why}" + (f" ({exit_text})" if exit_text else ""))
            elif restarts > 0:
                texts.append(
                    f"{name} container {cs.get('name')} restarted {restarts} time(s) during the rollout"
                    + (f" (last {exit_text})" if exit_text else "")
                )
    return texts
