"""`devloop status`: what is running, what is built, what is stale, what is stuck.

Read-only. Every section is gathered on its own: a missing cluster or a refused context is
reported in its section and the rest still says what it can (fingerprints need no cluster).
The report is one dict (`--json` prints it as one object); views.status_lines renders it for people.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from devloop.adapters.kube.diagnosis import (
    is_deleting,
    meta_of,
    pod_problem,
    rollout_status,
    spec_of,
    status_of,
    workload_selector,
)
from devloop.base.errors import DevloopError
from devloop.base.results import StatusResult
from devloop.session import Session


def status(session: Session) -> StatusResult:
    session.read_only = True  # no `minikube docker-env` here: it restarts dockerd (see adapters/engine_endpoint.py)
    result: dict[str, Any] = {"command": "status", "profile": session.profile.name, "context": session.context}
    result["cluster"] = _cluster(session)
    result["image_transfer"] = _image_transfer(session)
    running = result["cluster"].get("state") == "Running"
    loads = result["image_transfer"]["mode"] == "load"
    if loads:
        result["docker_env"] = {"skipped": "not used: images are built with your Docker and `minikube image load`ed"}
    else:
        result["docker_env"] = _docker_env(session) if running else _unavailable(result["cluster"])
    components = _fingerprints(session)
    kube, kube_error = None, None
    if running:
        try:
            kube = session.kube()
        except DevloopError as exc:
            kube_error = _err(exc)
    objects, manifest_error = _manifest_objects(session)
    live: list[dict] = []
    if kube is not None and objects is not None:
        live = _live_objects(kube, objects)
    exists: Callable[[str], bool] | None
    if loads:
        exists = session.builder().image_exists if running else None  # `minikube image ls`: a query
    else:
        exists = session.docker().image_exists if result["docker_env"].get("matches") is True else None
    result["components"] = _components(session, components, live, exists)
    result["live_updates"] = _live_updates(session, result["components"])
    result["verify"] = _verify(session)
    if kube is None:
        why = kube_error or _unavailable(result["cluster"])
        result["deployments"] = why
        result["cleanup"] = why
        result["stuck"] = []
    else:
        result["deployments"] = _deployments(session, kube, objects, live) if objects is not None else manifest_error
        result["cleanup"], result["stuck"] = _cleanup(session, kube)
        result["stuck"] += _stuck_live(live)
    result["healthy"] = _healthy(result)
    return StatusResult(report=result)


# -- sections ------------------------------------------------------------------------------------
def _err(exc: DevloopError) -> dict:
    return {"error": exc.message, **({"hint": exc.hint} if exc.hint else {})}


def _unavailable(cluster: dict) -> dict:
    if "error" in cluster:
        return {"error": "no cluster to ask", "hint": cluster.get("hint")}
    return {"error": f"cluster is {cluster.get('state', 'unknown')}", "hint": "run `devloop up`"}


def _cluster(session: Session) -> dict:
    from devloop.adapters.minikube import probe

    try:
        st = probe.running(session) or session.minikube.status()
    except DevloopError as exc:
        return _err(exc)
    out = {"state": st.state, "host": st.host, "kubelet": st.kubelet, "apiserver": st.apiserver}
    if st.detail:
        out["detail"] = st.detail
    if not st.running:
        out["hint"] = "run `devloop up` to start it"
    return out


def _image_transfer(session: Session) -> dict:
    mode, why = session.image_transfer()
    return {"mode": mode, "setting": session.profile.cluster.image_transfer, "why": why}


def _docker_env(session: Session) -> dict:
    try:
        env = session.docker_env()
    except DevloopError as exc:
        return _err(exc)
    out: dict[str, Any] = {"DOCKER_HOST": env.get("DOCKER_HOST"), "expected_daemon": session.context}
    shell = os.environ.get("DOCKER_HOST")
    # Whether `docker build` typed in this shell would land in minikube's daemon.
    out["shell_DOCKER_HOST"] = shell
    out["shell_matches"] = shell == env.get("DOCKER_HOST")
    try:
        out["daemon"] = session.docker().daemon_name()
    except DevloopError as exc:
        out.update(_err(exc))
        out["matches"] = False
        return out
    out["matches"] = out["daemon"] == session.context
    if not out["matches"]:
        out["hint"] = "builds would not be visible to the cluster; run `devloop reset`"
    return out


def _fingerprints(session: Session) -> dict[str, dict]:
    from devloop.sources.fingerprint import tag_for

    out: dict[str, dict] = {}
    for c in session.profile.components:
        try:
            fp = session.fingerprinter.fingerprint(session.profile, c, session.workspace)
            out[c.name] = {
                "fingerprint": fp.short,
                "tag": tag_for(c, fp.digest),
                "inputs": fp.files,
                **({"missing_inputs": list(fp.missing)} if fp.missing else {}),
            }
        except (DevloopError, OSError) as exc:
            out[c.name] = {"error": getattr(exc, "message", str(exc))}
    return out


def _manifest_objects(session: Session) -> tuple[list[dict] | None, dict | None]:
    from devloop.manifests import render

    try:
        return render.load_manifests(session.profile, session.workspace), None
    except DevloopError as exc:
        return None, _err(exc)


_LIVE_KINDS = ("Deployment", "ConfigMap", "Namespace", "CustomResourceDefinition", "StatefulSet", "DaemonSet")


def _live_objects(kube: Any, objects: list[dict]) -> list[dict]:
    live = []
    for obj in objects:
        if obj.get("kind") not in _LIVE_KINDS:
            continue
        try:
            got = kube.get(obj)
        except DevloopError:
            continue
        if got is not None:
            live.append(got)
    return live


def _image_refs(value: Any) -> list[str]:
    """Image references in a ConfigMap value: the value itself, or strings inside JSON."""
    from devloop.profile.lookup import parse_image_ref

    if not isinstance(value, str):
        return []
    text = value.strip()
    if text[:1] in "[{":
        try:
            doc = json.loads(text)
        except ValueError:
            return []
        found: list[str] = []
        stack = [doc]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
            elif isinstance(node, str) and ":" in node and parse_image_ref(node):
                found.append(node)
        return found
    return [text] if ":" in text and parse_image_ref(text) else []


def _running_images(live: list[dict]) -> list[tuple[str, str]]:
    """(image, where) for every container of live workloads and image-like ConfigMap value."""
    from devloop.manifests import render

    out = []
    for obj in live:
        ref = render.object_ref(obj)
        if obj.get("kind") == "ConfigMap":
            for key, value in (obj.get("data") or {}).items():
                out += [(img, f"{ref} data.{key}") for img in _image_refs(value)]
            continue
        for c in render.containers(obj):
            if c.get("image"):
                out.append((c["image"], f"{ref} container {c.get('name')}"))
    return out


def _components(session: Session, fps: dict[str, dict], live: list[dict], exists: Any) -> list[dict]:
    from devloop.profile.lookup import normalize_repo, parse_image_ref

    images = _running_images(live)
    out = []
    for c in session.profile.components:
        entry: dict[str, Any] = {"name": c.name, **fps.get(c.name, {})}
        tag = entry.get("tag")
        own = normalize_repo(own_ref.repo) if (own_ref := parse_image_ref(c.image)) else c.image
        upstream = {r.repo for r in (parse_image_ref(x) for x in c.replaces) if r}
        running = sorted({img for img, _ in images if (r := parse_image_ref(img)) and r.repo in ({own} | upstream)})
        entry["running"] = running
        entry["running_in"] = sorted({where for img, where in images if img in running})
        built = None
        if tag and exists is not None:
            try:
                built = exists(tag)
            except DevloopError as exc:
                entry["built_error"] = exc.message
        entry["built"] = built
        entry["state"] = _component_state(tag, built, running, upstream)
        out.append(entry)
    return out


LIVE_UPDATED = "live-updated: its current sources run, synced over the previous image (watch converges it)"


def _live_updates(session: Session, components: list[dict]) -> list[dict]:
    """What live updates left running (watch's record), while the pods still name the image it was synced over."""
    from devloop.liveupdate import state as live_state

    by_name = {c["name"]: c for c in components}
    out = []
    for name, record in sorted(live_state.load(session.cache_dir, session.context).items()):
        comp = by_name.get(name)
        if comp is not None and record.base_tag not in comp.get("running", []):
            continue  # rolled out since (by `devloop apply`, say): the record is history
        out.append(
            {
                "component": name,
                "description": record.describe(),
                "base_tag": record.base_tag,
                "live_tag": record.live_tag,
                "files": record.files,
                "at": record.at,
                "converge": record.converge,
            }
        )
        if comp is not None:
            comp["live"] = record.describe()
            if comp.get("tag") == record.live_tag:
                comp["state"] = LIVE_UPDATED
    return out


def _verify(session: Session) -> dict:
    """The last results of the profile's verify checks (recorded by the last deploy; no cluster is asked)."""
    from devloop.verify import state as verify_state

    names = [c.name for c in session.profile.verify]
    if not names:
        return {"checks": []}  # nothing to say: the profile has no checks
    last = verify_state.load(session.cache_dir, session.context)
    if last is None:
        return {"checks": [], "note": "not run yet: the next deploy (`devloop up`, `devloop watch`) runs them"}
    checks = [c for c in last["checks"] if isinstance(c, dict) and c.get("name") in names]
    out: dict[str, Any] = {"at": last["at"], "trigger": last["trigger"], "checks": checks}
    missing = [n for n in names if n not in {c.get("name") for c in checks}]
    if missing:
        out["not_run"] = missing  # added to the profile since
    return out


def _component_state(tag: str | None, built: bool | None, running: list[str], upstream: set[str]) -> str:
    from devloop.profile.lookup import parse_image_ref

    if tag is None:
        return "unknown (fingerprint failed)"
    if running and all(r == tag for r in running):
        return "up to date"
    if running and all((p := parse_image_ref(r)) and p.repo in upstream for r in running):
        return "running the upstream image, not a devloop build (run `devloop up`)"
    if not running:
        return "built, not deployed" if built else "not deployed"
    if built:
        return "built, not deployed yet: the cluster runs an older build (run `devloop apply`)"
    return "sources changed since the running build (run `devloop up`)"


def _deployments(session: Session, kube: Any, objects: list[dict], live: list[dict]) -> list[dict]:
    by_ref = {(meta_of(o).get("namespace"), meta_of(o).get("name")): o for o in live if o.get("kind") == "Deployment"}
    out = []
    for obj in objects:
        if obj.get("kind") != "Deployment":
            continue
        meta = meta_of(obj)
        ns = meta.get("namespace") or session.profile.namespace or "default"
        name = meta.get("name")
        entry: dict[str, Any] = {"namespace": ns, "name": name}
        dep = by_ref.get((ns, name)) or by_ref.get((meta.get("namespace"), name))
        if dep is None:
            entry.update(state="missing", message=f"deployment {ns}/{name} does not exist")
            out.append(entry)
            continue
        done, message = rollout_status(dep)
        st = status_of(dep)
        entry.update(
            state="rolled out" if done else "progressing",
            message=message,
            replicas=spec_of(dep).get("replicas", 1),
            ready=st.get("readyReplicas", 0),
        )
        if not done:
            try:
                problems = [pod_problem(p) for p in kube.pods(ns, workload_selector(dep))]
            except DevloopError as exc:
                problems = [("error", exc.message)]
            entry["pods"] = [problem[1] for problem in problems if problem]
        out.append(entry)
    return out


def _cleanup(session: Session, kube: Any) -> tuple[list[dict], list[dict]]:
    counts, stuck = [], []
    for resource in session.profile.cleanup:
        try:
            objs = kube.list_custom(resource)
        except DevloopError as exc:
            counts.append({"resource": resource, **_err(exc)})
            continue
        counts.append({"resource": resource, "count": len(objs)})
        stuck += [_stuck_entry(o, resource) for o in objs if is_deleting(o)]
    return counts, stuck


def _stuck_entry(obj: dict, kind: str | None = None) -> dict:
    meta = meta_of(obj)
    return {
        "kind": kind or obj.get("kind"),
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "deleting_since": meta.get("deletionTimestamp"),
        "finalizers": list(meta.get("finalizers") or []),
        **(
            {
                "conditions": [
                    f"{c.get('type')}: {c.get('message')}"
                    for c in status_of(obj).get("conditions") or []
                    if c.get("status") == "True"
                ]
            }
            if obj.get("kind") == "Namespace"
            else {}
        ),
    }


def _stuck_live(live: list[dict]) -> list[dict]:
    return [_stuck_entry(o) for o in live if is_deleting(o)]


def _healthy(result: dict) -> bool:
    engine_ok = "skipped" in result["docker_env"] or result["docker_env"].get("matches") is True
    if result["cluster"].get("state") != "Running" or not engine_ok:
        return False
    if not isinstance(result["deployments"], list) or any(d["state"] != "rolled out" for d in result["deployments"]):
        return False
    if result["stuck"]:
        return False
    if any(c.get("status") == "failed" for c in result.get("verify", {}).get("checks", [])):
        return False
    return all(c.get("state") in ("up to date", LIVE_UPDATED) for c in result["components"])
