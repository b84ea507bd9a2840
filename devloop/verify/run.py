"""Running the profile's verify checks: one step line per check, a `verify` event, the record for `status`."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devloop.base.errors import ConfigError, DevloopError, WaitTimeout
from devloop.base.waits import wait_for
from devloop.session import Session

if TYPE_CHECKING:
    from devloop.adapters.protocols import KubeAdapter
    from devloop.output.report import Step
    from devloop.profile.schema import VerifyCall, VerifyCheck, VerifyExpect, VerifyHttp

# Polling: fast at first (a function answers within a second of its pod turning ready), then at most once a second.
FIRST_POLL = 0.2
MAX_POLL = 1.0
# One request may take this long before it counts as no answer (and is retried while time is left).
REQUEST_TIMEOUT = 10.0
# Pods whose log tail a failure shows, at most.
LOG_PODS = 3

HttpGet = Callable[..., tuple[int, str]]


@dataclass
class CheckResult:
    """One check's outcome, as the `verify` event, the step's details and `devloop status` carry it."""

    name: str
    kind: str  # call | http | job
    target: str  # what was asked, for people
    status: str = "ok"  # ok | failed | planned
    seconds: float = 0.0  # the whole check
    message: str = ""
    attempts: int = 0  # requests made (call, http)
    answer: str | None = None  # the last answer: "HTTP 200: hello world"
    # from the moment the pods were seen ready (call) to the passing answer
    after_ready: float | None = None
    log_tail: list[str] = field(default_factory=list)
    at: float = 0.0  # epoch seconds when it ended

    def payload(self) -> dict[str, Any]:
        return asdict(self)


class VerifyFailed(DevloopError):
    """A verify check failed after a deploy that worked: `cycle` is the deploy's CycleResult (watch keeps its
    tags), `results` every check's outcome."""

    def __init__(self, results: list[CheckResult], *, cycle: Any = None) -> None:
        failed = [r for r in results if r.status == "failed"]
        lines = [f"verify failed: {', '.join(r.name for r in failed)} ({len(failed)} of {len(results)} checks)"]
        for r in failed:
            lines.append(f"  {r.name} ({r.target}): {r.message}")
            lines += [f"    {line}" for line in r.log_tail]
        super().__init__(
            "\n".join(lines),
            hint="the deploy itself worked; the checks run again after the next deploy (`devloop up`, or a save "
            "under `devloop watch`); `devloop status` shows the last results",
        )
        self.results = results
        self.cycle = cycle


class _CheckFailed(Exception):
    def __init__(self, message: str, *, namespace: str | None = None, selector: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.namespace = namespace
        self.selector = selector  # the pods whose log tail to show


# -- files -----------------------------------------------------------------------------------------------
def resolve(session: Session, rel: str, where: str) -> Path:
    """A fixture path: in the workspace, else beside the profile file (so a bundled profile ships its own)."""
    in_workspace = Path(session.workspace) / rel
    if in_workspace.is_file():
        return in_workspace
    source = session.profile.source
    beside = Path(source).parent / rel if source is not None else None
    if beside is not None and beside.is_file():
        return beside
    tried = f"{in_workspace}" + (f" nor {beside}" if beside is not None else "")
    prefix = f"{source}: " if source is not None else ""
    raise ConfigError(
        f"{prefix}{where}: {rel!r} is not a file (neither {tried})",
        hint="verify paths are relative to the workspace (--workspace) or to the profile's directory",
    )


def _load(session: Session, rel: str, where: str) -> list[dict[str, Any]]:
    from devloop.manifests.load import load_yaml_file

    objs = load_yaml_file(resolve(session, rel, where))
    if not objs:
        raise ConfigError(f"{resolve(session, rel, where)} ({where}): expected Kubernetes objects, found none")
    return objs


def _job_of(session: Session, check: VerifyCheck) -> dict[str, Any]:
    assert check.job is not None
    where = f"verify[{check.name}].job.manifest"
    objs = _load(session, check.job.manifest, where)
    jobs = [o for o in objs if o.get("kind") == "Job"]
    if len(objs) != 1 or len(jobs) != 1:
        kinds = ", ".join(str(o.get("kind")) for o in objs)
        raise ConfigError(
            f"{resolve(session, check.job.manifest, where)} ({where}): expected exactly one Job, found {kinds}"
        )
    return _with_namespace(jobs[0], check.job.namespace or session.profile.namespace)


def _with_namespace(obj: dict[str, Any], namespace: str) -> dict[str, Any]:
    meta = dict(obj.get("metadata") or {})
    meta.setdefault("namespace", namespace)
    return {**obj, "metadata": meta}


def check_files(session: Session) -> None:
    """Every fixture and Job manifest loads: before anything touches the cluster (like the manifests)."""
    for check in session.profile.verify:
        if check.call is not None and check.call.fixture is not None:
            _load(session, check.call.fixture, f"verify[{check.name}].call.fixture")
        if check.job is not None:
            _job_of(session, check)


# -- running ---------------------------------------------------------------------------------------------
def run_checks(
    session: Session,
    *,
    trigger: str = "deploy",
    cycle: Any = None,
    http_get: HttpGet | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[CheckResult]:
    """Run every check (a failed one does not stop the others); raise VerifyFailed when any failed.

    `trigger` (deploy, live-update) is recorded; `cycle` rides on VerifyFailed for the caller."""
    checks = list(session.profile.verify)
    if not checks:
        return []
    if http_get is None:
        from devloop.adapters import http

        http_get = http.get
    runner = _Runner(session, http_get=http_get, clock=clock, sleep=sleep)
    results = [runner.run(check) for check in checks]
    failed = any(r.status == "failed" for r in results)
    status = "planned" if session.dry_run else "failed" if failed else "ok"
    session.reporter.emit("verify", status=status, trigger=trigger, checks=[r.payload() for r in results])
    if not session.dry_run:
        from devloop.verify import state

        state.save(session.cache_dir, session.context, [r.payload() for r in results], trigger=trigger)
    if failed:
        raise VerifyFailed(results, cycle=cycle)
    return results


class _Runner:
    def __init__(
        self, session: Session, *, http_get: HttpGet, clock: Callable[[], float], sleep: Callable[[float], None]
    ) -> None:
        self.session = session
        self.http_get = http_get
        self.clock = clock
        self.sleep = sleep
        self.timeout = 0.0  # the check at hand's

    # -- one check, one step line
    def run(self, check: VerifyCheck) -> CheckResult:
        result = CheckResult(name=check.name, kind=check.kind, target=describe(self.session, check))
        rep = self.session.reporter
        started = self.clock()
        self.timeout = check.timeout
        try:
            with rep.step(f"verify {check.name}", f"verify {check.name}: {result.target}") as step:
                step.detail(kind=check.kind, target=result.target)
                if self.session.dry_run:
                    rep.info(f"would verify {check.name}: {result.target}")
                    result.status = "planned"
                    step.skip("planned")
                    return result
                try:
                    self._run(check, result, step, deadline=started + check.timeout)
                except _CheckFailed as exc:
                    result.status = "failed"
                    result.message = exc.message
                    result.log_tail = self._log_tail(exc.namespace, exc.selector, check.log_lines)
                    raise
                except DevloopError as exc:  # the cluster did not answer, a fixture was refused, ...
                    result.status = "failed"
                    result.message = exc.message
                    raise
                finally:
                    result.seconds = round(self.clock() - started, 3)
                    result.at = time.time()
                    step.detail(**{k: v for k, v in result.payload().items() if k not in ("name", "kind", "target")})
                step.done(_ok_note(result))
        except (_CheckFailed, DevloopError):
            pass  # the step line says it failed; VerifyFailed (run_checks) carries the message and log tail
        return result

    def _run(self, check: VerifyCheck, result: CheckResult, step: Step, *, deadline: float) -> None:
        if check.call is not None:
            self._call(check.call, result, step, deadline)
        elif check.http is not None:
            self._http(check.http, result, step, deadline)
        else:
            self._job(check, result, step, deadline)

    def _left(self, deadline: float) -> float:
        return max(0.0, deadline - self.clock())

    def _wait(self, condition: Callable[[], Any], deadline: float, describe: Any) -> Any:
        """wait_for until the check's deadline; polling at FIRST_POLL, then doubling up to MAX_POLL."""
        pause = [FIRST_POLL / 2]

        def interval() -> float:
            pause[0] = min(MAX_POLL, pause[0] * 2)
            return pause[0]

        return wait_for(
            condition,
            timeout=self._left(deadline),
            interval=interval,
            describe=describe,
            clock=self.clock,
            sleep=self.sleep,
        )

    @property
    def kube(self) -> KubeAdapter:
        return self.session.kube()

    # -- call: fixture, ready pods, GET through the service proxy
    def _call(self, call: VerifyCall, result: CheckResult, step: Step, deadline: float) -> None:
        ns = call.namespace or self.session.profile.namespace
        kube = self.kube
        if call.fixture is not None:
            rolled = self._apply_fixture(call.fixture, ns, result.name)
            if rolled:
                # a changed Deployment's old pods would still answer: wait until the new ones took over
                names = ", ".join(f"{n}/{d}" for n, d in rolled)
                step.waiting(f"the rollout of the fixture's {names}")
                kube.wait_rollout(rolled, timeout=max(self._left(deadline), 1.0), on_wait=step.waiting)
        ref = {"apiVersion": "v1", "kind": "Service", "metadata": {"namespace": ns, "name": call.service}}
        step.waiting(f"Service {ns}/{call.service} to exist")
        try:
            service = self._wait(lambda: kube.get(ref), deadline, f"Service {ns}/{call.service} does not exist")
        except WaitTimeout as exc:
            raise _CheckFailed(
                f"{exc.message} after {self.timeout:g}s"
                + (" (the fixture's controller makes it: is it running?)" if call.fixture else ""),
                namespace=ns,
                selector=call.pods,
            ) from None
        selector = call.pods
        if selector is None:
            wanted = (service.get("spec") or {}).get("selector") or {}
            selector = ",".join(f"{k}={v}" for k, v in sorted(wanted.items())) or None
        ready_at = self.clock()
        if selector is not None:
            ready_at = self._wait_pods(ns, selector, f"Service {ns}/{call.service}", step, deadline, result)
        port = f":{call.port}" if call.port is not None else ""
        step.waiting(f"an answer from services/{call.service}{port}/proxy{call.path} ({call.expect.describe()})")

        def ask() -> tuple[int, str]:
            return kube.service_proxy_get(
                ns, call.service, call.port, call.path, timeout=min(REQUEST_TIMEOUT, max(self._left(deadline), 1.0))
            )

        self._until_expected(ask, call.expect, result, deadline, ready_at=ready_at, namespace=ns, selector=selector)

    def _apply_fixture(self, rel: str, namespace: str, name: str) -> list[tuple[str, str]]:
        """Apply the fixture's objects; the (namespace, name) of each Deployment among them that changed."""
        profile = self.session.profile
        ssa_off = profile.cluster.feature_gates.get("ServerSideApply") is False
        rolled = []
        for obj in _load(self.session, rel, f"verify[{name}].call.fixture"):
            obj = _with_namespace(obj, namespace)
            changed = self.kube.server_side_apply(
                obj, field_manager="devloop-verify", on_fallback=self.session.reporter.info, known_off=ssa_off
            )
            if changed and obj.get("kind") == "Deployment":
                rolled.append((obj["metadata"]["namespace"], obj["metadata"]["name"]))
        return rolled

    def _wait_pods(
        self, ns: str, selector: str, behind: str, step: Step, deadline: float, result: CheckResult
    ) -> float:
        from devloop.adapters.kube.diagnosis import PERMANENT_POD_REASONS, is_deleting, pod_problem

        step.waiting(f"the pods behind {behind} ({selector}) to be ready")
        seen: list[str] = []

        def all_ready() -> bool:
            pods = [p for p in self.kube.pods(ns, selector) if not is_deleting(p)]
            problems = [problem for p in pods if (problem := pod_problem(p)) is not None]
            seen[:] = [text for _, text in problems] or ([] if pods else [f"no pods match {selector} in {ns}"])
            fatal = [text for reason, text in problems if reason in PERMANENT_POD_REASONS]
            if fatal:
                raise _CheckFailed(
                    f"the pods behind {behind} cannot start: {'; '.join(fatal)}", namespace=ns, selector=selector
                )
            return bool(pods) and not problems

        try:
            self._wait(all_ready, deadline, "not ready")
        except WaitTimeout:
            raise _CheckFailed(
                f"the pods behind {behind} ({selector}) were not ready within {self.timeout:g}s: "
                + "; ".join(seen or ["no pods"]),
                namespace=ns,
                selector=selector,
            ) from None
        return self.clock()

    def _until_expected(
        self,
        ask: Callable[[], tuple[int, str]],
        expect: VerifyExpect,
        result: CheckResult,
        deadline: float,
        *,
        ready_at: float | None,
        namespace: str | None,
        selector: str | None,
    ) -> None:
        body_re = re.compile(expect.body) if expect.body is not None else None

        def answered() -> bool:
            result.attempts += 1
            try:
                status, body = ask()
            except DevloopError as exc:
                result.answer = f"no answer: {exc.message}"
                return False
            result.answer = f"HTTP {status}: {_excerpt(body)}"
            status_ok = status == expect.status if expect.status is not None else 200 <= status < 300
            return status_ok and (body_re is None or body_re.search(body) is not None)

        try:
            self._wait(answered, deadline, "no expected answer")
        except WaitTimeout:
            raise _CheckFailed(
                f"no answer matched ({expect.describe()}) within {self.timeout:g}s, {result.attempts} attempts; the "
                f"last was {result.answer}",
                namespace=namespace,
                selector=selector,
            ) from None
        if ready_at is not None:
            result.after_ready = round(self.clock() - ready_at, 3)

    # -- http: a GET from this machine
    def _http(self, http: VerifyHttp, result: CheckResult, step: Step, deadline: float) -> None:
        url = http.url
        if "{node_ip}" in url:
            node_ip = self.kube.node_internal_ip(timeout=min(REQUEST_TIMEOUT, max(self._left(deadline), 1.0)))
            if node_ip is None:
                raise _CheckFailed("no node has an InternalIP to put in for {node_ip}")
            url = url.replace("{node_ip}", node_ip)
        result.target = describe_http(http, url)
        step.detail(target=result.target)
        step.waiting(f"an answer from {result.target}")

        def ask() -> tuple[int, str]:
            return self.http_get(url, host=http.host, timeout=min(REQUEST_TIMEOUT, max(self._left(deadline), 1.0)))

        ns = http.namespace or self.session.profile.namespace
        self._until_expected(ask, http.expect, result, deadline, ready_at=None, namespace=ns, selector=http.pods)

    # -- job: (re)create, wait until it succeeds
    def _job(self, check: VerifyCheck, result: CheckResult, step: Step, deadline: float) -> None:
        from devloop.adapters.kube.diagnosis import label_selector, meta_of, spec_of, status_of

        job = _job_of(self.session, check)
        ns, name = meta_of(job)["namespace"], meta_of(job).get("name")
        kube = self.kube
        if kube.exists(job):
            step.waiting(f"the previous Job {ns}/{name} to be gone")
            kube.delete_objects([job], timeout=max(self._left(deadline), 1.0))
        kube.create(job)
        step.waiting(f"Job {ns}/{name} to succeed")
        last: dict[str, Any] = {}

        def finished() -> bool:
            live = kube.get(job) or {}
            last.clear()
            last.update(live)
            st = status_of(live)
            for cond in st.get("conditions") or []:
                if cond.get("type") == "Failed" and cond.get("status") == "True":
                    raise _CheckFailed(
                        f"Job {ns}/{name} failed: {cond.get('reason') or ''} {cond.get('message') or ''}".rstrip(),
                        namespace=ns,
                        selector=_job_selector(live),
                    )
            wanted = spec_of(live).get("completions") or 1
            return int(st.get("succeeded") or 0) >= wanted

        try:
            self._wait(finished, deadline, "not done")
        except WaitTimeout:
            st = status_of(last)
            raise _CheckFailed(
                f"Job {ns}/{name} did not succeed within {self.timeout:g}s ({st.get('active') or 0} active, "
                f"{st.get('failed') or 0} failed pods)",
                namespace=ns,
                selector=_job_selector(last) or label_selector({"matchLabels": {"job-name": name}}),
            ) from None

    # -- the log tail of a failure
    def _log_tail(self, namespace: str | None, selector: str | None, lines: int) -> list[str]:
        if namespace is None or selector is None:
            return []
        from devloop.adapters.kube.diagnosis import is_deleting, meta_of, pod_problem, spec_of, status_of

        try:
            pods = [p for p in self.kube.pods(namespace, selector) if not is_deleting(p)]
        except DevloopError as exc:
            return [f"cannot list the pods ({selector}): {exc.message}"]
        if not pods:
            return [f"no pods match {selector} in {namespace}"]
        out: list[str] = []
        for pod in pods[:LOG_PODS]:
            name = meta_of(pod).get("name") or "?"
            problem = pod_problem(pod)
            out.append(f"pod {namespace}/{name}: {problem[1] if problem else 'ready'}")
            if lines <= 0:
                continue
            started = {
                cs.get("name")
                for key in ("initContainerStatuses", "containerStatuses")
                for cs in status_of(pod).get(key) or []
                if (cs.get("state") or {}).get("running") or (cs.get("state") or {}).get("terminated")
            }
            spec = spec_of(pod)
            for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
                cname = container.get("name")
                if cname not in started:
                    continue
                try:
                    tail = list(self.kube.pod_logs(namespace, name, cname, tail_lines=lines))
                except DevloopError as exc:
                    out.append(f"  {cname}: no log ({exc.message})")
                    continue
                out.append(f"  log of container {cname} (last {lines} lines):" if tail else f"  {cname}: empty log")
                out += [f"  | {line}" for line in tail[-lines:]]
        if len(pods) > LOG_PODS:
            out.append(f"({len(pods) - LOG_PODS} more pods match {selector})")
        return out


def _job_selector(job: dict[str, Any]) -> str | None:
    from devloop.adapters.kube.diagnosis import label_selector, spec_of

    selector = spec_of(job).get("selector")
    return label_selector(selector) if selector else None


def _excerpt(body: str, limit: int = 200) -> str:
    text = " ".join(body.split())
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def _ok_note(result: CheckResult) -> str:
    note = result.answer or "succeeded"
    if result.after_ready is not None:
        note += f", {result.after_ready:.1f}s after the pods were ready"
    if result.attempts > 1:
        note += f" ({result.attempts} attempts)"
    return note


# -- how a check reads to people ---------------------------------------------------------------------------
def describe(session: Session, check: VerifyCheck) -> str:
    if check.call is not None:
        call = check.call
        ns = call.namespace or session.profile.namespace
        port = f":{call.port}" if call.port is not None else ""
        return f"GET {ns}/services/{call.service}{port}/proxy{call.path} → {call.expect.describe()}"
    if check.http is not None:
        return describe_http(check.http, check.http.url)
    assert check.job is not None
    return f"Job from {check.job.manifest} → succeeded"


def describe_http(http: VerifyHttp, url: str) -> str:
    return f"GET {url}" + (f" (Host: {http.host})" if http.host else "") + f" → {http.expect.describe()}"
