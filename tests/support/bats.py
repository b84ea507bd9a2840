"""Run a peer's bats suite as it is and hold its outcome against a written expectation, test by test.

`run_file` runs one .bats file with `bats --tap --timing` (the file unchanged, from the directory its tests expect,
usually the checkout's root). The expectation lists every test of the file in file order, each `pass` or `n/a`
with the reason it cannot apply here. Tests run in file order, in consecutive segments (`bats -f '^(A|B)$'`), so
that the `n/a` tests that would otherwise sit out a suite's own waits (Kubeless's libtest polls 300 times) can run
under a shorter `BATS_TEST_TIMEOUT`: a test that newly works still passes within it, one that cannot work is cut
short. `compare` gives the differences: a test expected to pass that did not (or was skipped), an `n/a` test that
passed, and tests the file gained or lost.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PASS = "pass"
NA = "n/a"
_TEST = re.compile(r'^\s*@test\s+"((?:[^"\\]|\\.)*)"\s*\{', re.M)
_LINE = re.compile(r"^(ok|not ok) (\d+) (.*?)(?: in (\d+)ms)?(?: # (skip|timeout)\b ?(.*))?$")


@dataclass(frozen=True)
class Expect:
    name: str
    outcome: str  # PASS or NA
    reason: str = ""  # why an NA test cannot apply here
    slow: bool = False  # NA and it would sit out the suite's own waits: run it under the n/a timeout

    def __post_init__(self) -> None:
        assert self.outcome in (PASS, NA), self.outcome
        assert (self.outcome == NA) == bool(self.reason), f"{self.name}: a reason for each n/a test, and only them"


@dataclass
class Result:
    name: str
    ok: bool
    skip: str | None = None
    timeout: bool = False
    ms: int | None = None
    detail: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.ok:
            return "skipped" if self.skip is not None else "passed"
        return "timed out" if self.timeout else "failed"


def bats_test_names(bats_file: Path) -> list[str]:
    """The @test names of a file, in order (what bats itself reports)."""
    return [m.group(1).replace('\\"', '"') for m in _TEST.finditer(bats_file.read_text())]


def parse_tap(text: str) -> list[Result]:
    results: list[Result] = []
    for line in text.splitlines():
        m = _LINE.match(line)
        if m:
            ok, _, name, ms, kind, rest = m.groups()
            results.append(
                Result(
                    name=name,
                    ok=ok == "ok",
                    skip=(rest or "") if kind == "skip" else None,
                    timeout=kind == "timeout",
                    ms=int(ms) if ms else None,
                )
            )
        elif line.startswith("#") and results:
            results[-1].detail.append(line[1:].removeprefix(" "))
    return results


def _ere(name: str) -> str:
    return re.sub(r"([.\[\]()*+?{}|^$\\])", r"\\\1", name)


def segments(expects: Sequence[Expect], na_timeout: int) -> list[tuple[int | None, list[Expect]]]:
    """Consecutive runs of tests sharing a per-test timeout (None: the suite's own waits)."""
    out: list[tuple[int | None, list[Expect]]] = []
    for e in expects:
        t = na_timeout if (e.slow and na_timeout > 0) else None
        if out and out[-1][0] == t:
            out[-1][1].append(e)
        else:
            out.append((t, [e]))
    return out


@dataclass
class FileRun:
    file: str
    results: list[Result]
    seconds: float
    tap: str  # every segment's TAP output, as bats printed it


def run_file(
    bats_file: Path,
    expects: Sequence[Expect],
    *,
    cwd: Path,
    env: Mapping[str, str],
    na_timeout: int,
    timeout: float = 7200,
    log=print,
) -> FileRun:
    t0 = time.monotonic()
    results: list[Result] = []
    taps: list[str] = []
    for seg_timeout, group in segments(expects, na_timeout):
        pattern = "^(" + "|".join(_ere(e.name) for e in group) + ")$"
        run_env = dict(env)
        run_env.pop("BATS_TEST_TIMEOUT", None)
        if seg_timeout:
            run_env["BATS_TEST_TIMEOUT"] = str(seg_timeout)
        argv = ["bats", "--tap", "--timing", "-f", pattern, str(bats_file)]
        done = subprocess.run(argv, cwd=cwd, env=run_env, capture_output=True, text=True, timeout=timeout)
        header = f"# $ {' '.join(argv[:-1])} {bats_file.name}" + (
            f"  (BATS_TEST_TIMEOUT={seg_timeout})" if seg_timeout else ""
        )
        taps.append(header + "\n" + done.stdout + (done.stderr and "# stderr:\n" + done.stderr))
        log(taps[-1])
        results += parse_tap(done.stdout)
    return FileRun(file=bats_file.name, results=results, seconds=time.monotonic() - t0, tap="\n".join(taps))


def compare(file: str, names: Sequence[str], expects: Sequence[Expect], results: Sequence[Result]) -> list[str]:
    """What differs from the expectation, one line each (empty: as expected)."""
    diffs = []
    expected = [e.name for e in expects]
    if list(names) != expected:
        gained = [n for n in names if n not in expected]
        lost = [n for n in expected if n not in names]
        diffs.append(f"{file}: the file's tests changed: new {gained}, gone {lost} (order: {list(names)})")
    got = {r.name: r for r in results}
    for e in expects:
        r = got.get(e.name)
        if r is None:
            if e.name in names:
                diffs.append(f"{file}: {e.name!r}: not reported by bats")
            continue
        if e.outcome == PASS and r.status != "passed":
            diffs.append(f"{file}: {e.name!r}: expected to pass, {r.status}: " + " | ".join(r.detail[-6:]))
        elif e.outcome == NA and r.status == "passed":
            diffs.append(f"{file}: {e.name!r}: listed as n/a ({e.reason}) but now passes")
    return diffs


def table(runs: Sequence[tuple[str, Sequence[Expect], Sequence[Result]]]) -> str:
    """A markdown table: file, test, result here, expected, reason."""
    lines = ["| file | test | here | expected | reason it cannot apply here |", "| --- | --- | --- | --- | --- |"]
    for file, expects, results in runs:
        got = {r.name: r for r in results}
        for e in expects:
            r = got.get(e.name)
            here = "not run" if r is None else r.status + (f" ({r.ms / 1000:.0f} s)" if r.ms is not None else "")
            lines.append(f"| {file} | {e.name} | {here} | {e.outcome} | {e.reason} |")
    return "\n".join(lines)
