"""Debounce timing with a fake clock (and one real wait): quiet window, cap, nothing lost."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from devloop.watch.debounce import Batch, Debouncer


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_batch_closes_after_quiet_window(clock: FakeClock) -> None:
    d = Debouncer(quiet=0.3, cap=5.0, clock=clock)
    d.add(Path("/w/a/x.go"), {"a"})
    clock.advance(0.1)
    d.add(Path("/w/a/y.go"), {"a"})
    clock.advance(0.29)  # 0.29 s since the last event: still inside the window
    assert d.take() is None
    assert d.due_in() == pytest.approx(0.01)
    clock.advance(0.01)
    batch = d.take()
    assert batch is not None
    assert batch.paths == {Path("/w/a/x.go"), Path("/w/a/y.go")}
    assert batch.components == {"a"}
    assert batch.reason == "quiet"
    assert d.take() is None and d.due_in() is None


def test_continuous_events_close_at_the_cap(clock: FakeClock) -> None:
    d = Debouncer(quiet=0.3, cap=5.0, clock=clock)
    batches: list[Batch] = []
    for i in range(70):  # one event every 100 ms for 7 s: the quiet window never passes
        d.add(Path(f"/w/a/{i}"), {"a"})
        clock.advance(0.1)
        if (b := d.take()) is not None:
            batches.append(b)
    assert len(batches) == 1
    assert batches[0].reason == "cap"
    assert batches[0].closed_at - batches[0].opened_at == pytest.approx(5.0)
    first = batches[0].paths
    clock.advance(0.3)
    rest = d.take()
    assert rest is not None and rest.reason == "quiet"
    # every event is in exactly one batch
    assert first | rest.paths == {Path(f"/w/a/{i}") for i in range(70)}
    assert not first & rest.paths


def test_events_during_a_run_go_into_the_next_batch(clock: FakeClock) -> None:
    d = Debouncer(quiet=0.3, cap=5.0, clock=clock)
    d.add(Path("/w/a/x.go"), {"a"})
    clock.advance(0.3)
    running = d.take()
    assert running is not None and running.components == {"a"}
    # the build runs for 4 s; edits land meanwhile
    clock.advance(1.0)
    d.add(Path("/w/b/y.go"), {"b"})
    clock.advance(1.0)
    d.add(Path("/w/a/x.go"), {"a"})
    clock.advance(2.0)
    nxt = d.take()  # the run is over and the window has long passed: ready at once
    assert nxt is not None
    assert nxt.paths == {Path("/w/b/y.go"), Path("/w/a/x.go")}
    assert nxt.components == {"a", "b"}


def test_paths_of_no_component_never_open_a_batch(clock: FakeClock) -> None:
    d = Debouncer(quiet=0.3, cap=5.0, clock=clock)
    d.add(Path("/w/bundles/out"), set())
    assert not d.pending()
    clock.advance(10)
    assert d.take() is None


def test_debouncer_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError, match="quiet window"):
        Debouncer(quiet=0)
    with pytest.raises(ValueError, match="cap"):
        Debouncer(quiet=1.0, cap=0.5)


@pytest.mark.timeout(30)
def test_wait_blocks_until_due_and_close_wakes_it() -> None:
    d = Debouncer(quiet=0.05, cap=1.0)
    t0 = time.monotonic()
    threading.Timer(0.05, lambda: d.add(Path("/w/a/x"), {"a"})).start()
    batch = d.wait(timeout=2)
    assert batch is not None and batch.components == {"a"}
    assert time.monotonic() - t0 >= 0.09  # blocked until the quiet window after the event passed
    assert d.wait(timeout=0.05) is None
    threading.Timer(0.05, d.close).start()
    # Without the wake-up this wait would sit out its 600 s and trip the test's 30 s deadline.
    assert d.wait(timeout=600) is None


def test_batch_describe_names_the_files() -> None:
    paths = frozenset(Path(f"/w/a/f{i}.go") for i in range(7))
    b = Batch(paths, frozenset({"a"}), manifests_changed=False, opened_at=0, closed_at=0, reason="quiet")
    assert b.describe(limit=3, relative_to=Path("/w")) == "a/f0.go, a/f1.go, a/f2.go and 4 more"


def test_a_manifest_change_opens_a_batch_of_its_own_kind(clock: FakeClock) -> None:
    d = Debouncer(quiet=0.3, cap=5.0, clock=clock)
    d.add(Path("/w/k/kubeless.yaml"), set(), manifest=True)
    assert d.pending()
    clock.advance(0.3)
    b = d.take()
    assert b is not None and b.manifests_changed and b.components == frozenset()
    d.add(Path("/w/a/x.go"), {"a"})
    clock.advance(0.3)
    nxt = d.take()
    assert nxt is not None and not nxt.manifests_changed and nxt.components == {"a"}
