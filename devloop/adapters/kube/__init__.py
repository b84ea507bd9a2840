"""The Kubernetes API, always through one explicitly named kube context (never the current one).

    kubeconfig.py  the merged kubeconfig, read once (Kubeconfig), and the context lookups
    transport.py   plain JSON requests with retries; typed errors (NotFound, Conflict, Unprocessable)
    discovery.py   kinds → API paths (Resource), object references (ObjRef)
    objects.py     get, create, server-side apply, delete and wait, namespaces, CRDs, lists
    workloads.py   Deployments and pods: restart, rollout wait, logs
    cleanup.py     custom resources removed without hanging (CleanReport)
    diagnosis.py   pure readings: accessors, label selectors, rollout and pod state
    client.py      Kube, which wires them together

Every wait has a deadline (devloop.base.waits); a timeout says what it waited for and what it saw last.
"""

from __future__ import annotations

from .cleanup import CleanReport, StrippedObject, StuckObject
from .client import Kube
from .diagnosis import (
    is_deleting,
    label_selector,
    meta_of,
    namespace_of,
    pod_problem,
    rollout_status,
    spec_of,
    status_of,
    workload_selector,
)
from .discovery import ObjRef, Resource
from .kubeconfig import Kubeconfig, context_info, context_server, kubeconfig_paths
from .transport import ApiError, Conflict, NotFound, Unprocessable

__all__ = [
    "ApiError",
    "CleanReport",
    "Conflict",
    "Kube",
    "Kubeconfig",
    "NotFound",
    "ObjRef",
    "Resource",
    "StrippedObject",
    "StuckObject",
    "Unprocessable",
    "context_info",
    "context_server",
    "is_deleting",
    "kubeconfig_paths",
    "label_selector",
    "meta_of",
    "namespace_of",
    "pod_problem",
    "rollout_status",
    "spec_of",
    "status_of",
    "workload_selector",
]
