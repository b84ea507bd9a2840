"""Live update during `watch`: build the binary, copy it into the running containers, restart them.

One LiveUpdater per watch. After every full cycle it learns what the pods run (note_deployed);
on a batch of changes it updates in place the components it can and hands back the others, each
with the reason it needs the image build; between batches it notices a live-updated container
that came back from its image (lost), so watch can converge that component at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devloop.base.errors import ClusterError, CommandFailed
from devloop.liveupdate import state
from devloop.liveupdate.plan import Baseline, containers_of, outside_live_inputs, rest_component, targets_of


@dataclass
class LiveResult:
    updated: dict[str, state.LiveRecord] = field(default_factory=dict)
    # components that need the image build, with why ("" when live update is simply not set up)
    full: dict[str, str] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)
    seconds: float = 0.0


class LiveUpdater:
    def __init__(self, session: Any, *, enabled: bool = True) -> None:
        self.session = session
        self.enabled = enabled
        self.baselines: dict[str, Baseline] = {}
        self.acted_on: frozenset | None = None  # the last loss watch converged (not retried every tick)

    # -- what is set up ---------------------------------------------------------------------
    def live_component(self, name: str) -> Any | None:
        component = next((c for c in self.session.profile.components if c.name == name), None)
        lu = getattr(component, "live_update", None)
        return component if (self.enabled and lu is not None and lu.enabled) else None

    @property
    def active(self) -> bool:
        return any(self.live_component(c.name) for c in self.session.profile.components)

    def records(self) -> dict[str, state.LiveRecord]:
        return state.load(self.session.cache_dir, self.session.context)

    def _rest_digest(self, component: Any) -> str:
        fp = self.session.fingerprinter.fingerprint(
            self.session.profile, rest_component(component), self.session.workspace
        )
        return fp.digest

    # -- around full cycles -------------------------------------------------------------------
    def snapshot(self) -> dict[str, str]:
        """The rest-fingerprints, taken *before* a full cycle: an edit landing during the cycle then
        makes the next batch take the image build (safe), never a live update on a stale base."""
        return {c.name: self._rest_digest(c) for c in self.session.profile.components if self.live_component(c.name)}

    def note_deployed(self, tags: dict[str, str], snapshot: dict[str, str]) -> None:
        """A full cycle deployed `tags` (every component's image of its current sources): live
        updates are converged and the baselines move."""
        for name, digest in snapshot.items():
            if name in tags:
                self.baselines[name] = Baseline(tags[name], digest)
        state.forget(self.session.cache_dir, self.session.context)

    # -- a batch ------------------------------------------------------------------------------
    def try_update(self, names: list[str], changed: list[Path]) -> LiveResult:
        """Live-update the batch's components, all or none: when one of them needs the image build,
        nothing is synced and all of them are returned in `full` (the full cycle then builds and
        rolls out every component whose image is missing, so a live update in the same batch would
        be undone at once anyway)."""
        from devloop.loop import steps as loop

        started = time.monotonic()
        result = LiveResult()
        records = self.records()
        plans: list[tuple[Any, Baseline, str]] = []
        pods: list[dict] | None = None
        for name in names:
            component = self.live_component(name)
            base = self.baselines.get(name)
            if component is None:
                result.full[name] = ""
                continue
            if base is None:
                result.full[name] = "what its pods run is not known yet (no full cycle in this watch)"
                continue
            tag = loop.component_tags(self.session, [name])[name]
            if tag == base.tag:
                result.unchanged.append(name)
                continue
            if self._rest_digest(component) != base.rest_digest:
                outside = outside_live_inputs(component, changed, self.session.workspace)
                which = f" ({', '.join(outside[:5])})" if outside else ""
                result.full[name] = f"a change outside live_update.inputs{which}"
                continue
            if pods is None:
                pods = self._pods()
            why = self._cannot_sync(pods, base, records.get(name))
            if why:
                result.full[name] = why
                continue
            plans.append((component, base, tag))
        if result.full:
            for component, _, _ in plans:
                result.full.setdefault(component.name, "another component of the batch needs the image build")
            result.seconds = time.monotonic() - started
            return result
        for component, base, tag in plans:
            outcome = self._update(component, base, tag, pods or [])
            if isinstance(outcome, str):
                result.full[component.name] = outcome
                break
            result.updated[component.name] = records[component.name] = outcome
            state.save(self.session.cache_dir, self.session.context, records)
        if result.full:
            for component, _, _ in plans:
                result.full.setdefault(component.name, "another component of the batch needs the image build")
        result.seconds = time.monotonic() - started
        return result

    @staticmethod
    def _cannot_sync(pods: list[dict], base: Baseline, record: state.LiveRecord | None) -> str:
        targets, problems = targets_of(pods, base.tag)
        if problems:
            return problems[0]
        if not targets:
            return f"no running container runs {base.tag}"
        if record is not None and set(record.containers) != {t.container_id for t in targets}:
            return (
                f"a pod or container was recreated since the last live update: it runs {base.tag} again, "
                "without the synced files"
            )
        return ""

    def _update(self, component: Any, base: Baseline, tag: str, pods: list[dict]) -> state.LiveRecord | str:
        """The live update of one component: its record, or why it needs the image build."""
        from devloop.adapters import containers, proc

        session, lu = self.session, component.live_update
        rep = session.reporter
        with rep.step(f"live {component.name}", f"live update {component.name}") as step:
            targets, _ = targets_of(pods, base.tag)
            cwd = Path(session.workspace) / component.dir
            step.waiting(f"`{lu.build}`")
            try:
                proc.run_shell(
                    lu.build,
                    env={**session.docker_env(), **dict(component.env)},
                    cwd=cwd,
                    timeout=session.profile.timeouts.build,
                    on_line=lambda line: rep.output_line(f"live {component.name}", line),
                )
            except CommandFailed as exc:
                raise CommandFailed(
                    exc.argv,
                    exc.exit_code_of_command,
                    exc.output_tail,
                    message=f"live update build of {component.name} failed: `{lu.build}` exited with code "
                    f"{exc.exit_code_of_command} (in {cwd})",
                ) from None
            files = {cwd / source: target for source, target in lu.sync.items()}
            absent = [str(p.relative_to(cwd)) for p in files if not p.is_file()]
            if absent:
                why = f"`{lu.build}` did not produce {', '.join(absent)} (live_update.sync)"
                step.skip("image build instead: " + why)
                return why
            payload = containers.archive(files)
            try:
                engine = session.docker()
            except ClusterError as exc:  # e.g. containerd's docker-env over ssh: no engine to copy through
                step.skip("image build instead: " + exc.message)
                return exc.message
            step.waiting(f"copying {', '.join(files.values())} into {len(targets)} container(s)")
            try:
                for target in targets:
                    containers.put_files(engine, target.container_id, payload)
                for target in targets:
                    containers.restart(engine, target.container_id)
            except containers.SyncFailed as exc:
                step.skip("image build instead: " + exc.message)
                return exc.message
            record = state.LiveRecord(
                component=component.name,
                base_tag=base.tag,
                live_tag=tag,
                files=list(files.values()),
                at=time.time(),
                containers={t.container_id: t.where for t in targets},
                converge=lu.converge,
            )
            step.detail(base=base.tag, live_tag=tag, files=record.files, containers=len(targets))
            step.done(f"synced {', '.join(record.files)} into {len(targets)} container(s)")
            return record

    def _pods(self) -> list[dict]:
        return self.session.kube().pods(self.session.profile.namespace, None)

    # -- between batches ----------------------------------------------------------------------
    def lost(self) -> dict[str, str]:
        """Live-updated components whose containers are no longer the ones synced into (the
        kubelet restarted one from the image, a pod was recreated): they run an older binary."""
        records = self.records()
        if not records:
            return {}
        pods = self._pods()
        out = {}
        for name, record in records.items():
            # by container ID, whatever its state: right after the live update's own restart the pod's
            # status may still say the container is not running, and that is not a loss
            now = set(containers_of(pods, record.base_tag))
            gone = [where for cid, where in record.containers.items() if cid not in now]
            if gone or now - set(record.containers):
                which = ", ".join(gone) or "a new container"
                out[name] = f"{which} came back from image {record.base_tag}, without the synced files"
        return out

    def pending_convergence(self) -> list[str]:
        return sorted(name for name, r in self.records().items() if r.converge == "stop")
