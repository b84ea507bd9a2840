"""One cycle of `devloop watch` and what follows a failed one: the retry schedule, live updates, convergence.

The engine (devloop.watch.engine) decides when a cycle runs; this module runs it under the profile lock
and keeps the counters (WatchStats) that decide whether and when a failure is retried. The loop's steps
are called through their module (`steps.run_cycle(...)`), so a stand-in set on devloop.loop.steps is the one run.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any

from devloop.base.errors import BuildFailed, CommandFailed, ConfigError, DevloopError
from devloop.loop import steps
from devloop.output import views
from devloop.session import Session
from devloop.verify import VerifyFailed

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
    # The last deploy's verify checks failed: the next save runs the cycle (and the checks) even unchanged.
    verify_failed: bool = False


@functools.cache
def _backoff() -> Any:
    # Imported here: tenacity pulls in asyncio, and only a failed cycle needs it.
    from tenacity import wait_chain, wait_fixed

    return wait_chain(*(wait_fixed(seconds) for seconds in RETRY_DELAYS))


def retry_delay(attempt: int) -> float:
    """Seconds before retry number `attempt` (1 for the first): RETRY_DELAYS in turn, the last one repeating."""
    from tenacity import RetryCallState

    # wait_chain picks its strategy by the call state's attempt number; nothing here calls a function.
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = attempt
    return float(_backoff()(state))


def retry(session: Session, stats: WatchStats, strategy: str, live: Any) -> None:
    rep = session.reporter
    rep.emit("retry", attempt=stats.attempts, after=stats.last_error)
    rep.info(f"retrying (attempt {stats.attempts}) after: {(stats.last_error or '').splitlines()[0]}")
    run(session, stats, components=None, strategy=strategy, prepare=True, live=live)


def unchanged(session: Session, stats: WatchStats, components: list[str]) -> bool:
    """True when every component's fingerprint equals the tag the last good cycle deployed."""
    if stats.verify_failed or not components or not all(c in stats.tags for c in components):
        return False
    try:
        tags = steps.component_tags(session, components)
    except DevloopError:
        return False  # let the cycle run and report it
    return all(stats.tags.get(name) == tag for name, tag in tags.items())


def run(
    session: Session, stats: WatchStats, *, components: list[str] | None, strategy: str, prepare: bool, live: Any = None
) -> None:
    from devloop.base.lock import hold_for

    rep = session.reporter
    started = time.monotonic()
    stats.cycles += 1
    stats.retry_at = None
    verify_error: VerifyFailed | None = None
    try:
        with hold_for(session, wait=stats.wait_lock):
            if prepare:
                if stats.needs_prepare:
                    # The engine or the API server may have been restarted since: re-read docker-env
                    # (minikube restarts a dead engine there) and reconnect.
                    session.forget_cluster_state()
                steps.prepare_cluster(session)
            # before the cycle: an edit landing during it then takes the image build next time (never a stale base)
            snapshot = live.snapshot() if live is not None and live.active else None
            keep = {name: stats.tags[name] for name in stats.gone if name in stats.tags}
            extra: dict[str, Any] = {"keep_tags": keep} if keep else {}  # stand-ins for run_cycle may not take it
            try:
                result = steps.run_cycle(session, triggered_by=components, strategy=strategy, **extra)
            except VerifyFailed as exc:
                if exc.cycle is None:
                    raise
                verify_error, result = exc, exc.cycle  # deployed: only its checks failed
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
    stats.needs_prepare = False
    stats.attempts = 0
    if verify_error is not None:
        _failed(session, stats, verify_error)
        return
    stats.last_error = None
    stats.verify_failed = False
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
    if isinstance(exc, VerifyFailed):
        stats.verify_failed = True
        return  # deployed, and checked: the next save deploys and checks again
    if isinstance(exc, ConfigError):
        return  # the profile or the workspace: an edit fixes it, and an edit starts a cycle
    if isinstance(exc, BuildFailed) and stats.attempts >= BUILD_RETRIES:
        stats.attempts = 0
        return  # failed again: the sources, not a fault; the next change retries
    stats.needs_prepare = True
    stats.attempts += 1
    delay = retry_delay(stats.attempts)
    stats.retry_at = time.monotonic() + delay
    rep = session.reporter
    rep.emit("retry_scheduled", seconds=delay, attempt=stats.attempts)
    rep.say(f"[dim]retrying in {delay:g}s (or on the next change)[/dim]")


def live_update(session: Session, stats: WatchStats, live: Any, components: list[str], paths: list[Any]) -> list[str]:
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
        if session.profile.verify:
            _verify_live(session, stats)
    reasons = {name: why for name, why in result.full.items() if why}
    if reasons:
        rep.emit("live-fallback", reasons=reasons)
        for name, why in sorted(reasons.items()):
            rep.info(f"{name}: image build instead of a live update: {why}")
    return sorted(result.full)


def _verify_live(session: Session, stats: WatchStats) -> None:
    """The checks after a live update: new code runs in the containers, so the loop's work is checked as after a
    rollout. A failure is reported like a failed cycle; the next save runs the checks again."""
    from devloop.base.lock import hold_for
    from devloop.verify import run_checks

    try:
        with hold_for(session, wait=stats.wait_lock):
            run_checks(session, trigger="live-update")
    except DevloopError as exc:
        stats.failed += 1
        stats.last_error = exc.message
        stats.verify_failed = isinstance(exc, VerifyFailed) or stats.verify_failed
        _show_failure(session, exc)
        return
    stats.verify_failed = False


def converge_lost(session: Session, stats: WatchStats, live: Any, strategy: str) -> None:
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
    run(session, stats, components=sorted(lost), strategy=strategy, prepare=False, live=live)


def converge_on_stop(session: Session, stats: WatchStats, live: Any, strategy: str) -> None:
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
    run(session, stats, components=pending, strategy=strategy, prepare=False, live=live)


def _show_failure(session: Session, exc: DevloopError) -> None:
    """The error as the CLI would show it, but watching goes on."""
    rep = session.reporter
    fields: dict[str, Any] = {"message": exc.message, "hint": exc.hint, "kind": type(exc).__name__}
    if isinstance(exc, CommandFailed):
        fields.update(exit_code=exc.exit_code_of_command, output_tail=exc.output_tail)
    rep.emit("cycle", status="failed", **fields)
    rep.say(*views.watch_cycle_failed(exc.message, exc.hint))
