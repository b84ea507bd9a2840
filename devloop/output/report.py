"""Progress and results: rich lines for people, JSON lines for tools.

The one place devloop writes to stdout and stderr. People see one line per step with its time
on stderr (stdout stays clean for `render` and for results); a long wait shows a spinner
naming what it waits for. With --json every event is one JSON object on stdout with `event`,
`step`, `status`, `seconds`; a command ends with one `result`, `error` or `interrupted` event.
Every event also carries `schema` (SCHEMA: raised when an event's fields change incompatibly)
and `devloop` (the version that wrote it).
How results read to people is views.py's business.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

import devloop

if TYPE_CHECKING:
    from rich.status import Status

    from devloop.base.errors import DevloopError
    from devloop.base.results import Result

# The --json events' format version: raise it when a field is renamed, removed or changes meaning (new
# fields and events do not change it). Tools check it before reading the events.
SCHEMA = 1

_MARKS = {"ok": "[green]✓[/green]", "skipped": "[dim]–[/dim]", "failed": "[red]✗[/red]"}


@dataclass
class StepTiming:
    step: str
    status: str
    seconds: float


@dataclass
class Step:
    """Handle a running step uses to add details, mark itself skipped, or say what it waits for."""

    name: str
    reporter: Reporter
    details: dict[str, Any] = field(default_factory=dict)
    status: str = "ok"
    note: str = ""

    def skip(self, why: str) -> None:
        self.status = "skipped"
        self.note = why

    def done(self, note: str) -> None:
        self.note = note

    def waiting(self, what: str) -> None:
        self.reporter._waiting(self, what)

    # What the step's actions did. A plan (--dry-run) did nothing, so it shows none of these;
    # what its probes found (skip, done, detail) it shows as a real run would.
    def did(self, note: str) -> None:
        if not self.reporter.planning:
            self.done(note)

    def did_nothing(self, why: str) -> None:
        if not self.reporter.planning:
            self.skip(why)

    def effects(self, **values: Any) -> None:
        if not self.reporter.planning:
            self.detail(**values)

    def detail(self, **values: Any) -> None:
        self.details.update(values)


class Reporter:
    def __init__(self, *, json_mode: bool = False, verbose: bool = False, err: Console | None = None) -> None:
        self.json_mode = json_mode
        self.verbose = verbose
        # soft_wrap: a step line stays one line in logs and pipes, whatever the width.
        self.err = err or Console(stderr=True, highlight=False, soft_wrap=True)
        self.timings: list[StepTiming] = []
        self._status: Status | None = None
        # A plan (--dry-run; the Session sets this) waits for nothing and shows no outcomes.
        self.planning = False

    # -- events -------------------------------------------------------------------------------
    def emit(self, event: str, **fields: Any) -> None:
        if self.json_mode:
            # `event` first (tools match lines on their start); the schema last, so no field can hide it.
            # devloop.__version__ is read here, not imported: reading it loads importlib.metadata (~20 ms).
            line = {"event": event, **fields, "schema": SCHEMA, "devloop": devloop.__version__}
            sys.stdout.write(json.dumps(line, default=str) + "\n")
            sys.stdout.flush()

    def info(self, message: str) -> None:
        if self.json_mode:
            self.emit("info", message=message)
        else:
            self.err.print(f"  {escape(message)}")

    def warn(self, message: str) -> None:
        if self.json_mode:
            self.emit("warning", message=message)
        else:
            self.err.print(f"[yellow]![/yellow] {escape(message)}")

    def say(self, *lines: str) -> None:
        """Lines (rich markup) for people only: --json carries the same facts as events."""
        if not self.json_mode:
            for line in lines:
                self.err.print(line)

    # -- the end of a command -----------------------------------------------------------------
    def result(self, result: Result) -> None:
        if self.json_mode:
            payload = result.payload()
            if result.with_timings:
                payload["timings"] = [
                    {"step": t.step, "status": t.status, "seconds": round(t.seconds, 3)} for t in self.timings
                ]
            self.emit("result", **payload)
            return
        from devloop.output.views import for_people

        text = for_people(result, sum(t.seconds for t in self.timings))
        self.say(*text.err)
        if text.out:
            sys.stdout.write(text.out)
            sys.stdout.flush()

    def error(self, exc: DevloopError) -> None:
        if self.json_mode:
            self.emit("error", message=exc.message, hint=exc.hint, exit_code=exc.exit_code, kind=type(exc).__name__)
            return
        from devloop.output.views import error_lines

        self._stop_spinner()
        self.say(*error_lines(exc.message, exc.hint))

    def interrupted(self, exit_code: int = 130) -> None:
        self._stop_spinner()
        if self.json_mode:
            self.emit("interrupted", exit_code=exit_code)
        else:
            self.err.print("[yellow]interrupted[/yellow]")

    def log_line(self, label: str | None, line: str) -> None:
        """A line of a container's log (`devloop logs`): stdout, as the program wrote it."""
        if self.json_mode:
            self.emit("log", container=label, line=line)
            return
        from devloop.output.views import log_line

        sys.stdout.write(log_line(label, line))
        sys.stdout.flush()

    def output_line(self, step: str, line: str) -> None:
        """A line of a child's output (build logs); shown only with --verbose."""
        if not self.verbose:
            return
        if self.json_mode:
            self.emit("output", step=step, line=line)
        else:
            self.err.print(f"    [dim]{escape(line)}[/dim]")

    # -- steps --------------------------------------------------------------------------------
    @contextmanager
    def step(self, name: str, label: str | None = None) -> Iterator[Step]:
        handle = Step(name=name, reporter=self)
        label = label or name
        self.emit("step", step=name, status="start", seconds=0.0)
        started = time.monotonic()
        try:
            yield handle
        except BaseException as exc:
            handle.status = "failed"
            seconds = time.monotonic() - started
            self._stop_spinner()
            self.timings.append(StepTiming(name, "failed", seconds))
            self.emit(
                "step",
                step=name,
                status="failed",
                seconds=round(seconds, 3),
                details={
                    **handle.details,
                    "error": str(exc) if not isinstance(exc, KeyboardInterrupt) else "interrupted",
                },
            )
            if not self.json_mode:
                self.err.print(f"{_MARKS['failed']} {escape(label)}  [dim]{seconds:.1f}s[/dim]")
            raise
        seconds = time.monotonic() - started
        self._stop_spinner()
        self.timings.append(StepTiming(name, handle.status, seconds))
        self.emit(
            "step",
            step=name,
            status=handle.status,
            seconds=round(seconds, 3),
            details=handle.details,
            **({"note": handle.note} if handle.note else {}),
        )
        if not self.json_mode:
            note = f"  [dim]{escape(handle.note)}[/dim]" if handle.note else ""
            self.err.print(f"{_MARKS[handle.status]} {escape(label)}{note}  [dim]{seconds:.1f}s[/dim]")

    def _waiting(self, step: Step, what: str) -> None:
        if self.planning:
            return
        if self.json_mode:
            self.emit("wait", step=step.name, waiting_for=what)
            return
        if not self.err.is_terminal:
            return
        text = f"{escape(step.name)}: waiting for {escape(what)}"
        if self._status is None:
            self._status = self.err.status(text)
            self._status.start()
        else:
            self._status.update(text)

    def _stop_spinner(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
