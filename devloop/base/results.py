"""What each command returns: one dataclass per command, carrying its exit code.

`payload()` is the command's JSON result (`{"event": "result", **payload, "timings": ...}`);
its keys are a contract with scripts and the e2e tests, so they stay exactly as they were when
commands returned plain dicts. The exit code is the process's, not part of the payload (doctor
is the one command that always put it there). How a result looks to people lives in views.py.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar


@dataclass
class BuildOutcome:
    component: str
    tag: str
    built: bool
    seconds: float = 0.0


@dataclass
class CycleResult:
    """One pass of build, render, apply and wait (`up`, `apply`, each `watch` cycle)."""

    built: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    changed_objects: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    cleaned: int = 0
    stripped: int = 0
    triggered_by: list[str] = field(default_factory=list)


@dataclass
class Result:
    exit_code: int = field(default=0, kw_only=True)
    # Commands that run steps add their timings to the JSON result; `profiles` runs none.
    with_timings: ClassVar[bool] = True

    def payload(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("exit_code")
        return data


@dataclass
class UpResult(Result):
    profile: str
    strategy: str
    cycle: CycleResult

    def payload(self) -> dict[str, Any]:
        return {"command": "up", "profile": self.profile, "strategy": self.strategy, **asdict(self.cycle)}


@dataclass
class ApplyResult(Result):
    strategy: str
    cycle: CycleResult

    def payload(self) -> dict[str, Any]:
        return {"command": "apply", "strategy": self.strategy, **asdict(self.cycle)}


@dataclass
class WatchResult(Result):
    command: str = "watch"
    cycles: int = 0
    failed: int = 0
    batches: int = 0
    skipped_unchanged: int = 0
    tags: dict[str, str] = field(default_factory=dict)
    last_error: str | None = None


@dataclass
class ResetResult(Result):
    profile: str
    cluster: str
    command: str = "reset"

    def payload(self) -> dict[str, Any]:
        return {"command": self.command, "profile": self.profile, "cluster": self.cluster}


@dataclass
class BuildResult(Result):
    components: list[BuildOutcome]
    command: str = "build"

    def payload(self) -> dict[str, Any]:
        return {"command": self.command, "components": [asdict(o) for o in self.components]}


@dataclass
class CleanResult(Result):
    command: str = "clean"
    deleted: int = 0
    stripped: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)


@dataclass
class DownResult(Result):
    command: str = "down"
    cleaned: int = 0
    deleted_objects: int = 0
    namespace_deleted: bool = False


@dataclass
class RenderResult(Result):
    tags: dict[str, str]
    yaml: str
    objects: list[dict]

    def payload(self) -> dict[str, Any]:
        # The YAML is the text form of `objects`: JSON readers get the objects only.
        return {"command": "render", "tags": self.tags, "objects": self.objects}


@dataclass
class StatusResult(Result):
    """The report is a tree of plain data built section by section (commands/status.py)."""

    report: dict[str, Any]

    def payload(self) -> dict[str, Any]:
        return dict(self.report)


@dataclass
class LogsResult(Result):
    containers: list[dict]
    follow: bool

    def payload(self) -> dict[str, Any]:
        return {"command": "logs", "containers": self.containers, "follow": self.follow}


@dataclass
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str
    fix: str = ""


@dataclass
class DoctorResult(Result):
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return not any(c.status == "fail" for c in self.checks)

    def payload(self) -> dict[str, Any]:
        return {
            "command": "doctor",
            "ok": self.ok,
            "checks": [asdict(c) for c in self.checks],
            "exit_code": self.exit_code,
        }


@dataclass
class ProfileEntry:
    name: str
    path: str
    origin: str


@dataclass
class ProfilesListResult(Result):
    profiles: list[ProfileEntry]
    with_timings: ClassVar[bool] = False

    def payload(self) -> dict[str, Any]:
        return {"command": "profiles list", "profiles": [asdict(p) for p in self.profiles]}


@dataclass
class ProfileShowResult(Result):
    name: str
    path: str
    text: str
    with_timings: ClassVar[bool] = False

    def payload(self) -> dict[str, Any]:
        return {"command": "profiles show", "name": self.name, "path": self.path, "text": self.text}
