"""`devloop watch`: `up` once, then rebuild and redeploy the components whose inputs change.

The watcher starts before the first cycle, so nothing saved while `up` runs is lost. Each
batch names the files that triggered it; the batch's components are fingerprinted and, if
their inputs did not really change since the last successful cycle (a build touching its own
inputs, a `git checkout` there and back, an editor rewriting a file unchanged), nothing runs.
A failed cycle is shown and watching goes on; the next batch retries. Ctrl-C stops the
observer; a running build's process group is killed by the process runner, and the CLI exits
130 (cli.main freezes the heap first, so the exit does not wait for a full collection).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from devloop import loop, views
from devloop.errors import CommandFailed, DevloopError
from devloop.results import WatchResult
from devloop.session import Session

# How often the idle loop wakes to notice a stop request; KeyboardInterrupt needs no wake-up.
_TICK = 1.0


@dataclass
class WatchStats:
    cycles: int = 0
    failed: int = 0
    skipped_unchanged: int = 0
    batches: int = 0
    last_error: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


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
) -> WatchResult:
    """Run until interrupted (KeyboardInterrupt propagates) or until `stop` is set."""
    from devloop.errors import ConfigError
    from devloop.liveupdate.run import LiveUpdater
    from devloop.watcher import Debouncer, ProfileRouter, Watcher

    if debounce_ms <= 0:
        raise ConfigError(f"--debounce must be a positive number of milliseconds, got {debounce_ms}")
    if max_wait_ms < debounce_ms:
        raise ConfigError(f"--max-wait ({max_wait_ms} ms) must not be shorter than --debounce ({debounce_ms} ms)")
    rep = session.reporter
    stats = WatchStats()
    live = LiveUpdater(session, enabled=live_update)
    stop = stop or threading.Event()
    router = ProfileRouter(session.profile, session.workspace)
    watcher = Watcher(
        router,
        session.workspace,
        debouncer=Debouncer(quiet=debounce_ms / 1000, cap=max_wait_ms / 1000),
        poll=poll,
        on_notice=rep.warn,
    )
    info = watcher.start()
    try:
        rep.emit("watching", mode=info.mode, watches=info.watches, dirs=info.dirs, pruned=info.pruned,
                 seconds=round(info.seconds, 3))
        if initial:
            _cycle(session, stats, components=None, strategy=strategy, prepare=True, live=live)
        _say_watching(session, info)
        while not stop.is_set():
            batch = watcher.next_batch(timeout=_TICK)
            if batch is None:
                if live.active:
                    _converge_lost(session, stats, live, strategy)
                continue
            stats.batches += 1
            manifests_changed = batch.manifests_changed
            components = sorted(batch.components)
            files = sorted(str(_rel(p, session.workspace)) for p in batch.paths)
            rep.emit("changes", files=files, components=components, manifests=manifests_changed, reason=batch.reason)
            targets = components + (["manifests"] if manifests_changed else [])
            rep.say(views.watch_changed(batch.describe(relative_to=session.workspace), targets))
            if manifests_changed:
                # Re-render and apply everything; builds still skip images that exist.
                _cycle(session, stats, components=None, strategy=strategy, prepare=False, live=live)
                _say_watching(session, info)
                continue
            if _unchanged(session, stats, components):
                stats.skipped_unchanged += 1
                rep.emit("skipped", components=components, why="fingerprints unchanged")
                rep.info(f"inputs of {', '.join(components)} are unchanged (same fingerprint): nothing to do")
                continue
            if live.active:
                components = _live_update(session, stats, live, components, list(batch.paths))
                if not components:
                    _say_watching(session, info)
                    continue
            _cycle(session, stats, components=components, strategy=strategy, prepare=False, live=live)
            _say_watching(session, info)
    except KeyboardInterrupt:
        watcher.stop()
        _converge_on_stop(session, stats, live, strategy)  # a second Ctrl-C leaves it to the next `up`
        raise
    finally:
        watcher.stop()
    _converge_on_stop(session, stats, live, strategy)
    return WatchResult(cycles=stats.cycles, failed=stats.failed, batches=stats.batches,
                       skipped_unchanged=stats.skipped_unchanged, tags=stats.tags, last_error=stats.last_error)


def _rel(path: Any, base: Any) -> Any:
    try:
        return path.relative_to(base)
    except ValueError:
        return path


def _say_watching(session: Session, info: Any) -> None:
    session.reporter.say(views.watch_watching(info.dirs, info.mode))


def _unchanged(session: Session, stats: WatchStats, components: list[str]) -> bool:
    """True when every component's fingerprint equals the tag the last good cycle deployed."""
    if not components or not all(c in stats.tags for c in components):
        return False
    try:
        tags = loop.component_tags(session, components)
    except DevloopError:
        return False  # let the cycle run and report it
    return all(stats.tags.get(name) == tag for name, tag in tags.items())


def _cycle(session: Session, stats: WatchStats, *, components: list[str] | None, strategy: str, prepare: bool,
           live: Any = None) -> None:
    rep = session.reporter
    started = time.monotonic()
    stats.cycles += 1
    try:
        if prepare:
            loop.prepare_cluster(session)
        # before the cycle: an edit landing during it then takes the image build next time (never a stale base)
        snapshot = live.snapshot() if live is not None and live.active else None
        result = loop.run_cycle(session, triggered_by=components, strategy=strategy)
        if snapshot is not None:
            live.note_deployed(result.tags, snapshot)
    except DevloopError as exc:
        stats.failed += 1
        stats.last_error = exc.message
        _show_failure(session, exc)
        return
    stats.tags.update(result.tags)
    stats.last_error = None
    seconds = time.monotonic() - started
    rep.emit("cycle", status="ok", seconds=round(seconds, 3), built=result.built, components=components,
             restarted=result.restarted, changed_objects=len(result.changed_objects))
    rep.say(views.watch_cycle_done(seconds, result.built))


def _live_update(session: Session, stats: WatchStats, live: Any, components: list[str], paths: list[Any]) -> list[str]:
    """Live-update the batch where its profile allows; returns the components that need the full cycle."""
    rep = session.reporter
    try:
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
        rep.emit("live-update", status="ok", components=names, seconds=round(result.seconds, 3),
                 files={n: r.files for n, r in result.updated.items()})
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
    rep.warn(f"converging {', '.join(pending)}: building and rolling out the image of the live-updated sources "
             "(Ctrl-C again leaves it to the next `devloop up`)")
    _cycle(session, stats, components=pending, strategy=strategy, prepare=False, live=live)


def _show_failure(session: Session, exc: DevloopError) -> None:
    """The error as the CLI would show it, but watching goes on."""
    rep = session.reporter
    fields: dict[str, Any] = {"message": exc.message, "hint": exc.hint, "kind": type(exc).__name__}
    if isinstance(exc, CommandFailed):
        fields.update(exit_code=exc.exit_code_of_command, output_tail=exc.output_tail)
    rep.emit("cycle", status="failed", **fields)
    rep.say(*views.watch_cycle_failed(exc.message, exc.hint))
