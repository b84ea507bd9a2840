"""8b. runtimes: after the rollout, move the Functions to a runtime image that changed.

A runtime component's tag is written into the controller's runtime list at render (devloop.manifests.render,
`Rendered.runtimes`). Kubeless's function controller reads that list only when it starts
(function_controller.go:113); on start it lists every Function and updates each one's Deployment to the image
its runtime now names. So, when a runtime entry changed this cycle:

1. the controller Deployment (`runtime.controller`) is restarted (the pod template's
   `kubectl.kubernetes.io/restartedAt`, as `kubectl rollout restart`), unless apply already restarted or
   changed it, and its rollout is waited for;
2. the Functions using the entry (`spec.runtime` is `<id><version>`; for the `installation` phase only those
   with dependencies, for `runtime` only those not naming their own image) are listed, and devloop waits until
   each one's Deployment (named after the Function, in its namespace) names the new image and has rolled out;
3. the step says which Functions moved; `--json` has them in the step's `moved`.

A Function still on another image with an unchanged entry (an earlier cycle failed half-way) counts as changed:
the next cycle restarts the controller again rather than leave it behind.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from devloop.base.errors import WaitTimeout
from devloop.base.results import CycleResult
from devloop.base.waits import wait_for
from devloop.session import Session

POLL = 0.5


@dataclass
class RuntimeMove:
    """What the step did: controllers restarted, and each Function (ns/name) moved to which runtime tag."""

    changed: list[str] = field(default_factory=list)  # runtime names whose image changed (or lagged)
    restarted: list[str] = field(default_factory=list)  # Deployment/ns/name
    moved: dict[str, str] = field(default_factory=dict)  # "ns/name" -> tag
    without_deployment: list[str] = field(default_factory=list)  # Functions of the runtime with no Deployment
    seconds: float = 0.0


def _configmap(ns: str, name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"namespace": ns, "name": name}}


def live_images(session: Session, rendered: Any) -> dict[str, str | None]:
    """Before apply: the image each runtime entry names in the cluster now, by component (None when the
    ConfigMap, its key or the entry is not there yet)."""
    from devloop.manifests.render import runtime_entry

    out: dict[str, str | None] = {}
    if not getattr(rendered, "runtimes", None):
        return out
    kube = session.kube()
    for ri in rendered.runtimes:
        rt = session.profile.component(ri.component).runtime
        assert rt is not None
        live = kube.get(_configmap(rt.config.namespace, rt.config.name)) or {}
        text = (live.get("data") or {}).get(rt.config.key) if isinstance(live, dict) else None
        image = None
        if isinstance(text, str):
            try:
                entry = runtime_entry(json.loads(text), rt)
            except ValueError:
                entry = "not JSON"
            if isinstance(entry, dict) and isinstance(entry.get("image"), str):
                image = entry["image"]
        out[ri.component] = image
    return out


def uses(function: dict[str, Any], rt: Any) -> bool:
    """Whether the Function's Deployment takes its image from this runtime entry (kubeless
    pkg/utils/kubelessutil.go EnsureFuncDeployment, langruntime.go GetBuildContainer/GetCompilationContainer)."""
    spec = function.get("spec") or {}
    if spec.get("runtime") != rt.runtime_name:
        return False
    if rt.phase == "installation":
        return bool(spec.get("deps")) or "deps" in str(spec.get("function-content-type") or "")
    if rt.phase == "runtime":
        containers = ((((spec.get("deployment") or {}).get("spec") or {}).get("template") or {}).get("spec") or {}).get(
            "containers"
        ) or [{}]
        return not (isinstance(containers[0], dict) and containers[0].get("image"))
    return True


def _images(deploy: dict[str, Any] | None) -> list[str]:
    spec = (((deploy or {}).get("spec") or {}).get("template") or {}).get("spec") or {}
    return [
        c.get("image", "")
        for key in ("initContainers", "containers")
        for c in spec.get(key) or []
        if isinstance(c, dict)
    ]


def _ref(fn: dict[str, Any]) -> tuple[str, str]:
    meta = fn.get("metadata") or {}
    return meta.get("namespace") or "default", meta.get("name") or ""


def move_functions(
    session: Session,
    rendered: Any,
    before: dict[str, str | None],
    cycle: CycleResult,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> RuntimeMove:
    """Steps 1-3 of the module docstring for every runtime whose image changed this cycle."""
    report = RuntimeMove()
    runtimes = list(getattr(rendered, "runtimes", None) or [])
    if not runtimes:
        return report
    names = ", ".join(f"{ri.runtime}" for ri in runtimes)
    with session.reporter.step("runtimes", f"runtimes {names}") as step:
        t0 = clock()
        kube = session.kube()
        profile = session.profile
        listed: dict[str, list[dict[str, Any]]] = {}
        # (runtime image, its Functions as (ns, name))
        plan: list[tuple[Any, Any, list[tuple[str, str]]]] = []
        for ri in runtimes:
            rt = profile.component(ri.component).runtime
            assert rt is not None
            if rt.functions not in listed:
                listed[rt.functions] = list(kube.list_custom(rt.functions))
            fns: list[tuple[tuple[str, str], Any]] = []
            missing: list[tuple[tuple[str, str], Any]] = []
            for f in sorted(_ref(fn) for fn in listed[rt.functions] if uses(fn, rt)):
                deploy = kube.deployment(*f)
                (fns if deploy is not None else missing).append((f, deploy))
            # A Function without a Deployment is not waited for: its controller has not made one (it failed,
            # or it is not Kubeless's); it will get the new image when it does.
            report.without_deployment += [f"{ns}/{n}" for (ns, n), _ in missing]
            lagging = [f for f, deploy in fns if ri.new not in _images(deploy)]
            if before.get(ri.component) != ri.new or lagging:
                plan.append((ri, rt, [f for f, _ in fns]))
                report.changed.append(ri.runtime)
        step.detail(runtimes={ri.runtime: ri.new for ri in runtimes})
        if not plan:
            step.did_nothing("runtime images unchanged")
            return report

        # 1. the controller reads the runtime list at start only
        already = set(cycle.restarted) | set(cycle.changed_objects)
        controllers: list[tuple[str, str]] = []
        for _, rt, _ in plan:
            ctl = (rt.controller.namespace, rt.controller.name)
            ref = f"Deployment/{ctl[0]}/{ctl[1]}"
            if ctl in controllers or ref in already or ref in report.restarted:
                continue
            kube.restart_deployment(*ctl)
            report.restarted.append(ref)
            controllers.append(ctl)
        timeout = profile.timeouts.rollout
        if controllers:
            step.waiting("the restarted controller to roll out: " + ", ".join(f"{ns}/{n}" for ns, n in controllers))
            kube.wait_rollout(controllers, timeout=timeout, on_wait=step.waiting)

        # 2. the Functions' Deployments name the new image, then roll out
        targets = [(f, ri.new, ri.runtime) for ri, _, fns in plan for f in fns]
        if targets:
            deadline = clock() + timeout
            what = "; ".join(
                f"Deployments of the {ri.runtime} Functions ({', '.join(f'{ns}/{n}' for ns, n in fns)}) to run {ri.new}"
                for ri, _, fns in plan
                if fns
            )
            step.waiting(what)
            seen: dict[tuple[str, str], str] = {}

            def all_patched() -> bool:
                pending = False
                for f, tag, _ in targets:
                    images = _images(kube.deployment(*f))
                    if tag not in images:
                        seen[f] = f"{f[0]}/{f[1]} runs {', '.join(images) or 'no Deployment yet'}"
                        pending = True
                    else:
                        seen.pop(f, None)
                return not pending

            def timed_out(_: bool) -> str:
                still = "\n".join(f"  {text}" for text in seen.values())
                return f"{what}: not within {timeout:g}s (the controller did not update them):\n{still}"

            wait_for(
                all_patched,
                timeout=timeout,
                interval=POLL,
                describe=timed_out,
                clock=clock,
                sleep=sleep,
                hint=f"the controller's log says why: `kubectl logs -n {plan[0][1].controller.namespace} "
                f"deployment/{plan[0][1].controller.name}` (or `devloop logs`)",
            )
            left = max(1.0, deadline - clock())
            try:
                kube.wait_rollout([f for f, _, _ in targets], timeout=left, on_wait=step.waiting)
            except WaitTimeout as exc:
                raise WaitTimeout(f"{what}: {exc.message}", hint=exc.hint) from None
            report.moved = {f"{ns}/{n}": tag for (ns, n), tag, _ in targets}
        report.seconds = clock() - t0
        step.effects(
            moved=report.moved,
            restarted=report.restarted,
            changed=report.changed,
            without_deployment=report.without_deployment,
        )
        moved = _list(report.moved)
        restarted = f"{', '.join(report.restarted)} restarted" if report.restarted else "controller already restarted"
        if not targets:
            note = f"{restarted}; no Functions of {', '.join(report.changed)}: none to move"
        else:
            note = f"{restarted}; {len(report.moved)} Functions moved: {moved}"
        if report.without_deployment:
            note += f" ({len(report.without_deployment)} without a Deployment: {_list(report.without_deployment)})"
        step.did(note)
    return report


def _list(items: Iterable[str]) -> str:
    items = list(items)
    return ", ".join(items[:10]) + (f" and {len(items) - 10} more" if len(items) > 10 else "")
