"""The engine of `devloop watch`: `up` once, then rebuild and redeploy the components whose inputs change.

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
from typing import Any

from devloop.base.results import WatchResult
from devloop.output import views
from devloop.session import Session
from devloop.watch import cycle
from devloop.watch.cycle import WatchStats

# How often the idle loop wakes to notice a stop request or an edited profile; KeyboardInterrupt
# needs no wake-up.
_TICK = 1.0


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
            cycle.run(session, stats, components=None, strategy=strategy, prepare=True, live=live)
        _say_watching(session, info, watcher)
        while not stop.is_set():
            if _follow_profile(session, reloader):
                watcher.stop()
                live = LiveUpdater(session, enabled=live_update)
                watcher, info = start_watcher()
                cycle.run(session, stats, components=None, strategy=strategy, prepare=True, live=live)
                _say_watching(session, info, watcher)
                continue
            batch = watcher.next_batch(timeout=_wait(stats))
            if batch is None:
                if stats.retry_at is not None and time.monotonic() >= stats.retry_at:
                    cycle.retry(session, stats, strategy, live)
                    _say_watching(session, info, watcher)
                elif live.active:
                    cycle.converge_lost(session, stats, live, strategy)
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
                cycle.run(session, stats, components=None, strategy=strategy, prepare=stats.needs_prepare, live=live)
                _say_watching(session, info, watcher)
                continue
            forced = stats.force & set(components)
            stats.force -= forced
            if not stats.needs_prepare and not forced and cycle.unchanged(session, stats, components):
                stats.skipped_unchanged += 1
                rep.emit("skipped", components=components, why="fingerprints unchanged")
                rep.info(f"inputs of {', '.join(components)} are unchanged (same fingerprint): nothing to do")
                continue
            if live.active:
                components = cycle.live_update(session, stats, live, components, list(batch.paths))
                if not components:
                    _say_watching(session, info, watcher)
                    continue
            cycle.run(session, stats, components=components, strategy=strategy, prepare=stats.needs_prepare, live=live)
            _say_watching(session, info, watcher)
    except KeyboardInterrupt:
        watcher.stop()
        cycle.converge_on_stop(session, stats, live, strategy)  # a second Ctrl-C leaves it to the next `up`
        raise
    finally:
        watcher.stop()
        own.release()
    cycle.converge_on_stop(session, stats, live, strategy)
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
