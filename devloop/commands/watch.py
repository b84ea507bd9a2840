"""`devloop watch`: `up` once, then rebuild and redeploy the components whose inputs change.

The watcher starts before the first cycle, so nothing saved while `up` runs is lost. Each
batch names the files that triggered it; the batch's components are fingerprinted and, if
their inputs did not really change since the last successful cycle (a build touching its own
inputs, a `git checkout` there and back, an editor rewriting a file unchanged), nothing runs.
One watch per minikube profile: the `watcher` lock is held for watch's whole life (a second
watch refuses at once, naming this one), the profile lock during each cycle and live update (a
`devloop up` in another terminal waits for the cycle, and a cycle for it, up to --wait-lock).

A failed cycle is shown and watching goes on; the next batch retries. When the failure is not the
sources' fault (the cluster, the engine, the lock: anything but a profile error or a build that
fails again), the cycle is also retried on its own with back-off, re-checking the cluster and
re-reading docker-env first, so no edit is lost to a fault even if nothing is saved afterwards.
The profile file is followed: an invalid edit is shown and the last valid profile stays in use; a
valid one is loaded and a full cycle runs. A component directory that goes away (a checkout moved or
deleted) is said once; its components stay as deployed (cycles render them with their last tag) and
the others go on; when it is back (or cloned afresh) it is watched again and one cycle runs for it. Ctrl-C, SIGTERM and SIGHUP stop the observer; a running
build's process group is killed by the process runner, and the CLI exits 130, 143 or 129 (cli.main
freezes the heap first, so the exit does not wait for a full collection).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from devloop.base.errors import BuildFailed, CommandFailed, ConfigError, DevloopError
from devloop.base.results import WatchResult
from devloop.loop import steps as loop
from devloop.output import views
from devloop.session import Session

# How often the idle loop wakes to notice a stop request or an edited profile; KeyboardInterrupt
# needs no wake-up.
_TICK = 1.0
# Seconds before each retry of a failed cycle (the last one repeats).
RETRY_DELAYS = (2.0, 5.0, 10.0, 20.0, 30.0)
# A build that fails again after this many retries is the sources' problem: the next change retries it.
BUILD_RETRIES = 1


@dataclass
class WatchStats:
    cycles: int = 0
    failed: int = 0
    skipped_unchanged: int = 0
    batches: int = 0
    last_error: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    # After a failure that was not the sources' fault: re-check the cluster before the next cycle.
    needs_prepare: bool = False
    retry_at: float | None = None
    attempts: int = 0
    # --wait-lock: how long a cycle waits for another devloop changing the profile.
    wait_lock: float = 600.0
    # Components whose directory came back: their next batch runs a cycle even with unchanged fingerprints.
    force: set[str] = field(default_factory=set)
    # Components whose directory is gone: cycles render them with the tag last deployed, unbuilt.
    gone: set[str] = field(default_factory=set)


def watch(
    session: Session,
    *,
    initial: bool = True,
    debounce_ms: int = 300,
    max_wait_ms: int = 5000,
    poll: bool = False,
    strategy: str = "apply",
    stop: threading.Event | None = None,
    live_update: bool = True,
    wait_lock: float = 600.0,
) -> WatchResult:
    """Run until interrupted (KeyboardInterrupt propagates) or until `stop` is set."""
    from devloop.base.errors import ConfigError
    from devloop.base.lock import ProfileLock
    from devloop.profile.reload import ProfileReloader
    from devloop.watch.live_update import LiveUpdater
    from devloop.watch.watcher import Debouncer, ProfileRouter, Watcher

    if debounce_ms <= 0:
        raise ConfigError(f"--debounce must be a positive number of milliseconds, got {debounce_ms}")
    if max_wait_ms < debounce_ms:
        raise ConfigError(f"--max-wait ({max_wait_ms} ms) must not be shorter than --debounce ({debounce_ms} ms)")
    rep = session.reporter
    stats = WatchStats(wait_lock=wait_lock)
    live = LiveUpdater(session, enabled=live_update)
    stop = stop or threading.Event()
    own = ProfileLock(session.context, kind="watcher")
    own.acquire(wait=0)  # a second watch on this profile: LockBusy naming the first, at once
    reloader = ProfileReloader(session.profile)

    def start_watcher() -> tuple[Any, Any]:
        w = Watcher(
            ProfileRouter(session.profile, session.workspace),
            session.workspace,
            debouncer=Debouncer(quiet=debounce_ms / 1000, cap=max_wait_ms / 1000),
            poll=poll,
            on_notice=rep.warn,
            on_root=lambda change, path, comps: _on_root(session, stats, change, path, comps),
        )
        started = w.start()
        rep.emit(
            "watching",
            mode=started.mode,
            watches=started.watches,
            dirs=started.dirs,
            pruned=started.pruned,
            seconds=round(started.seconds, 3),
        )
        return w, started

    try:
        watcher, info = start_watcher()
    except BaseException:
        own.release()
        raise
    try:
        if initial:
            _cycle(session, stats, components=None, strategy=strategy, prepare=True, live=live)
        _say_watching(session, info, watcher)
        while not stop.is_set():
            if _follow_profile(session, reloader):
                watcher.stop()
                live = LiveUpdater(session, enabled=live_update)
                watcher, info = start_watcher()
                _cycle(session, stats, components=None, strategy=strategy, prepare=True, live=live)
                _say_watching(session, info, watcher)
                continue
            batch = watcher.next_batch(timeout=_wait(stats))
            if batch is None:
                if stats.retry_at is not None and time.monotonic() >= stats.retry_at:
                    _retry(session, stats, strategy, live)
                    _say_watching(session, info, watcher)
                elif live.active:
                    _converge_lost(session, stats, live, strategy)
                continue
            stats.batches += 1
            manifests_changed = batch.manifests_changed
            # A directory that moved away may still send events (its old watches follow it): check now,
            # not at the next tick, and leave its components out until it is back.
            watcher.check_roots()
            gone = watcher.gone_components()
            components = sorted(batch.components - gone)
            if not components and not manifests_changed:
                rep.emit("skipped", components=sorted(batch.components), why="their directory is gone")
                continue
            files = sorted(str(_rel(p, session.workspace)) for p in batch.paths)
            rep.emit("changes", files=files, components=components, manifests=manifests_changed, reason=batch.reason)
            targets = components + (["manifests"] if manifests_changed else [])
            rep.say(views.watch_changed(batch.describe(relative_to=session.workspace), targets))
            if manifests_changed:
                # Re-render and apply everything; builds still skip images that exist.
                _cycle(session, stats, components=None, strategy=strategy, prepare=stats.needs_prepare, live=live)
                _say_watching(session, info, watcher)
                continue
            forced = stats.force & set(components)
            stats.force -= forced
            if not stats.needs_prepare and not forced and _unchanged(session, stats, components):
                stats.skipped_unchanged += 1
                rep.emit("skipped", components=components, why="fingerprints unchanged")
                rep.info(f"inputs of {', '.join(components)} are unchanged (same fingerprint): nothing to do")
                continue
            if live.active:
                components = _live_update(session, stats, live, components, list(batch.paths))
                if not components:
                    _say_watching(session, info, watcher)
                    continue
            _cycle(session, stats, components=components, strategy=strategy, prepare=stats.needs_prepare, live=live)
            _say_watching(session, info, watcher)
    except KeyboardInterrupt:
        watcher.stop()
        _converge_on_stop(session, stats, live, strategy)  # a second Ctrl-C leaves it to the next `up`
        raise
    finally:
        watcher.stop()
        own.release()
    _converge_on_stop(session, stats, live, strategy)
    return WatchResult(
        cycles=stats.cycles,
        failed=stats.failed,
        batches=stats.batches,
        skipped_unchanged=stats.skipped_unchanged,
        tags=stats.tags,
        last_error=stats.last_error,
    )


def _wait(stats: WatchStats) -> float:
    if stats.retry_at is None:
        return _TICK
    return max(0.05, min(_TICK, stats.retry_at - time.monotonic()))


def _follow_profile(session: Session, reloader: Any) -> bool:
    """True when the profile file changed into a valid, different profile (now the session's)."""
    from devloop.profile.reload import Invalid

    change = reloader.check()
    if change is None:
        return False
    rep = session.reporter
    path = str(reloader.path)
    if isinstance(change, Invalid):
        rep.emit("profile", status="invalid", path=path, message=change.error.message, hint=change.error.hint)
        rep.say(
            *views.error_lines(change.error.message, change.error.hint),
            "[dim]still watching with the last valid profile; fix the file to reload it[/dim]",
        )
        return False
    new = change.profile
    if new.cluster.profile != session.profile.cluster.profile:
        message = (
            f"{path}: cluster.profile changed from {session.profile.cluster.profile!r} to "
            f"{new.cluster.profile!r}; a watch follows one minikube profile"
        )
        hint = "stop this watch (Ctrl-C) and start it again to watch the other profile"
        rep.emit("profile", status="invalid", path=path, message=message, hint=hint)
        rep.say(*views.error_lines(message, hint))
        reloader.current = session.profile
        return False
    session.profile = new
    session.forget_cluster_state()
    rep.emit("profile", status="reloaded", path=path)
    rep.info(f"profile {path} changed: reloaded; running a full cycle with it")
    return True


def _retry(session: Session, stats: WatchStats, strategy: str, live: Any) -> None:
    rep = session.reporter
    rep.emit("retry", attempt=stats.attempts, after=stats.last_error)
    rep.info(f"retrying (attempt {stats.attempts}) after: {(stats.last_error or '').splitlines()[0]}")
    _cycle(session, stats, components=None, strategy=strategy, prepare=True, live=live)


def _rel(path: Any, base: Any) -> Any:
    try:
        return path.relative_to(base)
    except ValueError:
        return path


def _say_watching(session: Session, info: Any, watcher: Any = None) -> None:
    session.reporter.say(views.watch_watching(info.dirs, info.mode))
    for path in sorted(watcher.gone() if watcher is not None else ()):
        session.reporter.say(f"[dim]still waiting for {_rel(path, session.workspace)} to come back[/dim]")


def _on_root(session: Session, stats: WatchStats, change: str, path: Any, components: frozenset[str]) -> None:
    """A component directory went away or came back (called from the watcher's guard thread)."""
    rep = session.reporter
    where = _rel(path, session.workspace)
    names = ", ".join(sorted(components))
    if change == "gone":
        stats.gone |= components
        message = f"{where} is gone: waiting for it to come back ({names} left as deployed)"
    else:
        stats.gone -= components
        stats.force |= components  # one cycle for it even when the sources are the same as before
        what = "is back" if change == "back" else "was replaced by another directory"
        message = f"{where} {what}: watching it again; running a cycle for {names}"
    rep.emit("directory", status=change, path=str(where), components=sorted(components), message=message)
    rep.say(f"[yellow]![/yellow] {message}" if change == "gone" else f"  {message}")


def _unchanged(session: Session, stats: WatchStats, components: list[str]) -> bool:
    """True when every component's fingerprint equals the tag the last good cycle deployed."""
    if not components or not all(c in stats.tags for c in components):
        return False
    try:
        tags = loop.component_tags(session, components)
    except DevloopError:
        return False  # let the cycle run and report it
    return all(stats.tags.get(name) == tag for name, tag in tags.items())


def _cycle(
    session: Session, stats: WatchStats, *, components: list[str] | None, strategy: str, prepare: bool, live: Any = None
) -> None:
    from devloop.base.lock import hold_for

    rep = session.reporter
    started = time.monotonic()
    stats.cycles += 1
    stats.retry_at = None
    try:
        with hold_for(session, wait=stats.wait_lock):
            if prepare:
                if stats.needs_prepare:
                    # The engine or the API server may have been restarted since: re-read docker-env
                    # (minikube restarts a dead engine there) and reconnect.
                    session.forget_cluster_state()
                loop.prepare_cluster(session)
            # before the cycle: an edit landing during it then takes the image build next time (never a stale base)
            snapshot = live.snapshot() if live is not None and live.active else None
            keep = {name: stats.tags[name] for name in stats.gone if name in stats.tags}
            extra = {"keep_tags": keep} if keep else {}
            result = loop.run_cycle(session, triggered_by=components, strategy=strategy, **extra)
            if snapshot is not None:
                live.note_deployed(result.tags, snapshot)
    except DevloopError as exc:
        _failed(session, stats, exc)
        return
    except Exception as exc:  # noqa: BLE001 - watch outlives anything a cycle runs into
        _failed(
            session,
            stats,
            DevloopError(
                f"unexpected {type(exc).__name__} in a cycle: {exc}",
                hint="watching goes on and retries; please report this (with --verbose output)",
            ),
        )
        return
    stats.tags.update(result.tags)
    stats.last_error = None
    stats.needs_prepare = False
    stats.attempts = 0
    seconds = time.monotonic() - started
    rep.emit(
        "cycle",
        status="ok",
        seconds=round(seconds, 3),
        built=result.built,
        components=components,
        restarted=result.restarted,
        changed_objects=len(result.changed_objects),
        tags=result.tags,
    )
    rep.say(views.watch_cycle_done(seconds, result.built))


def _failed(session: Session, stats: WatchStats, exc: DevloopError) -> None:
    """Show the failure; schedule a retry unless only an edit can fix it."""
    stats.failed += 1
    stats.last_error = exc.message
    _show_failure(session, exc)
    if isinstance(exc, ConfigError):
        return  # the profile or the workspace: an edit fixes it, and an edit starts a cycle
    if isinstance(exc, BuildFailed) and stats.attempts >= BUILD_RETRIES:
        stats.attempts = 0
        return  # failed again: the sources, not a fault; the next change retries
    stats.needs_prepare = True
    delay = RETRY_DELAYS[min(stats.attempts, len(RETRY_DELAYS) - 1)]
    stats.attempts += 1
    stats.retry_at = time.monotonic() + delay
    rep = session.reporter
    rep.emit("retry_scheduled", seconds=delay, attempt=stats.attempts)
    rep.say(f"[dim]retrying in {delay:g}s (or on the next change)[/dim]")


def _live_update(session: Session, stats: WatchStats, live: Any, components: list[str], paths: list[Any]) -> list[str]:
    """Live-update the batch where its profile allows; returns the components that need the full cycle."""
    from devloop.base.lock import hold_for

    rep = session.reporter
    try:
        with hold_for(session, wait=stats.wait_lock):  # it changes running containers
            result = live.try_update(components, paths)
    except DevloopError as exc:  # the fast build failed: shown like a failed build, the next save retries
        stats.failed += 1
        stats.last_error = exc.message
        _show_failure(session, exc)
        return []
    if result.updated:
        names = sorted(result.updated)
        for name, record in result.updated.items():
            stats.tags[name] = record.live_tag
        stats.last_error = None
        rep.emit(
            "live-update",
            status="ok",
            components=names,
            seconds=round(result.seconds, 3),
            files={n: r.files for n, r in result.updated.items()},
        )
        rep.say(views.watch_live_done(result.seconds, names))
    reasons = {name: why for name, why in result.full.items() if why}
    if reasons:
        rep.emit("live-fallback", reasons=reasons)
        for name, why in sorted(reasons.items()):
            rep.info(f"{name}: image build instead of a live update: {why}")
    return sorted(result.full)


def _converge_lost(session: Session, stats: WatchStats, live: Any, strategy: str) -> None:
    """A live-updated container that came back from its image runs the older binary: roll out the image
    of the current sources at once (once per loss; a failed cycle waits for the next save)."""
    try:
        lost = live.lost()
    except DevloopError:
        return  # the cluster does not answer: the next cycle says why
    key = frozenset(lost.items())
    if not lost or key == getattr(live, "acted_on", None):
        return
    live.acted_on = key
    rep = session.reporter
    rep.emit("live-lost", components=sorted(lost), reasons=lost)
    for name, why in sorted(lost.items()):
        rep.warn(f"{name}: {why}; rolling out the image of its current sources")
    _cycle(session, stats, components=sorted(lost), strategy=strategy, prepare=False, live=live)


def _converge_on_stop(session: Session, stats: WatchStats, live: Any, strategy: str) -> None:
    """converge: stop — the Deployment gets the real image of the live-updated sources before watch ends,
    so no later restart can bring back an older binary."""
    try:
        pending = live.pending_convergence()
    except DevloopError:
        return
    if not pending:
        return
    rep = session.reporter
    rep.emit("live-converge", components=pending)
    rep.warn(
        f"converging {', '.join(pending)}: building and rolling out the image of the live-updated sources "
        "(Ctrl-C again leaves it to the next `devloop up`)"
    )
    _cycle(session, stats, components=pending, strategy=strategy, prepare=False, live=live)


def _show_failure(session: Session, exc: DevloopError) -> None:
    """The error as the CLI would show it, but watching goes on."""
    rep = session.reporter
    fields: dict[str, Any] = {"message": exc.message, "hint": exc.hint, "kind": type(exc).__name__}
    if isinstance(exc, CommandFailed):
        fields.update(exit_code=exc.exit_code_of_command, output_tail=exc.output_tail)
    rep.emit("cycle", status="failed", **fields)
    rep.say(*views.watch_cycle_failed(exc.message, exc.hint))
