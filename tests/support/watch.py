"""A `devloop watch --json` process for e2e tests: its events read as they come, waits on them with deadlines."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from support.cli import parse_events, spawn_devloop
from support.waits import wait_until


class Watch:
    def __init__(self, cluster, workspace: Path, profile: Path | None = None) -> None:
        # the cache beside the workspace, as run_devloop puts it: `status` reads the live update records there
        self.proc = spawn_devloop(
            "watch",
            "--profile",
            str(profile or workspace.parent / "profile.yaml"),
            "--workspace",
            str(workspace),
            "--json",
            env=cluster.env,
            json_mode=False,
            extra_env={"XDG_CACHE_HOME": str(workspace.parent / "cache")},
        )
        self.events: list[dict] = []
        self.stderr: list[str] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=lambda: self.stderr.extend(self.proc.stderr), daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self._lock:
                self.events.extend(parse_events(line))

    def mark(self) -> int:
        with self._lock:
            return len(self.events)

    def since(self, mark: int) -> list[dict]:
        with self._lock:
            return list(self.events[mark:])

    def wait(self, mark: int, pred, timeout: float, what: str) -> dict:
        def found():
            hit = next((e for e in self.since(mark) if pred(e)), None)
            if hit is None and self.proc.poll() is not None:
                raise AssertionError(f"devloop watch exited {self.proc.returncode} before {what}\n{self.tail(mark)}")
            return hit

        return wait_until(found, timeout, what, interval=0.05, detail=lambda: self.tail(mark))

    def tail(self, mark: int) -> str:
        return (
            f"events: {json.dumps(self.since(mark)[-10:], indent=1, default=str)}\nstderr: {''.join(self.stderr[-20:])}"
        )

    def cycle(self, mark: int, timeout: float = 300) -> dict:
        cycle = self.wait(mark, lambda e: e["event"] == "cycle", timeout, "a full cycle")
        assert cycle["status"] == "ok", self.tail(mark)
        return cycle

    def live(self, mark: int, timeout: float = 120) -> dict:
        return self.wait(mark, lambda e: e["event"] == "live-update", timeout, "a live update")
