"""Runtimes as components: the profile's `runtime` key and its errors, the substitution into kubeless-config's
`runtime-images` JSON at render, and the step after the rollout that restarts the controller and waits until
the affected Functions' Deployments run the new image (devloop.loop.runtimes), over FakeKube."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import yaml

from devloop.base.errors import ConfigError, WaitTimeout
from devloop.base.results import CycleResult
from devloop.loop import runtimes
from devloop.manifests import render as manifests
from devloop.output.report import Reporter
from devloop.profile.lookup import load_profile, parse_profile
from devloop.session import Session
from support.cli import parse_events
from support.fakes import FakeKube

REPO = Path(__file__).resolve().parents[2]
BUNDLED = REPO / "devloop" / "profile" / "bundled" / "kubeless.yaml"
WORKSPACE = REPO / "tests" / "fixtures" / "workspace"
TAG = "kubeless-python:dev-0123456789ab"
CTL = ("kubeless", "kubeless-controller-manager")


def bundled() -> dict:
    return yaml.safe_load(BUNDLED.read_text())


def write_profile(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def runtime_component(data: dict) -> dict:
    return next(c for c in data["components"] if c["name"] == "runtime-python")


def python_entry(configmap: dict, version: str) -> list[dict]:
    runtimes_list = json.loads(configmap["data"]["runtime-images"])
    python = next(r for r in runtimes_list if r["ID"] == "python")
    return next(v for v in python["versions"] if v["version"] == version)["images"]


def rendered_for(profile, tags: dict[str, str]):
    return manifests.render(manifests.load_manifests(profile, WORKSPACE), tags, profile)


def configmap_of(rendered) -> dict:
    return next(o for o in rendered.objects if o["kind"] == "ConfigMap")


# -- render --------------------------------------------------------------------------------------------------
def test_render_writes_the_built_tag_at_the_entry_and_nowhere_else(tmp_path):
    profile = load_profile(str(BUNDLED), cwd=tmp_path)
    original = configmap_of(rendered_for(profile, {}))
    rendered = rendered_for(profile, {"runtime-python": TAG})
    cm = configmap_of(rendered)
    images = {i["phase"]: i["image"] for i in python_entry(cm, "3.8")}
    assert images["runtime"] == TAG
    assert images["installation"] == "python:3.8"  # the other phase of the same version is left alone
    for version in ("3.6", "3.7"):
        assert python_entry(cm, version) == python_entry(original, version)
    # the rest of the list is unchanged: only that one value differs
    before, after = json.loads(original["data"]["runtime-images"]), json.loads(cm["data"]["runtime-images"])
    python_entry(original, "3.8")  # (sanity: present)
    for a, b in zip(before, after, strict=True):
        if a["ID"] != "python":
            assert a == b
    [ri] = rendered.runtimes
    assert (ri.component, ri.runtime, ri.phase, ri.config, ri.key, ri.new) == (
        "runtime-python",
        "python3.8",
        "runtime",
        "ConfigMap/kubeless/kubeless-config",
        "runtime-images",
        TAG,
    )
    assert ri.old.startswith("kubeless/python@sha256:")
    sub = next(s for s in rendered.substitutions if s.component == "runtime-python")
    assert sub.path == "data.runtime-images#python3.8.runtime" and sub.new == TAG


def test_an_unbuilt_runtime_leaves_the_json_text_byte_for_byte(tmp_path):
    profile = load_profile(str(BUNDLED), cwd=tmp_path)
    loaded = manifests.load_manifests(profile, WORKSPACE)
    text = next(o for o in loaded if o["kind"] == "ConfigMap")["data"]["runtime-images"]
    rendered = manifests.render(loaded, {"function-controller": "kubeless-function-controller:dev-x"}, profile)
    assert configmap_of(rendered)["data"]["runtime-images"] == text
    assert rendered.runtimes == []
    # parse and dump of the released list is the same text, so a tag swap changes only that value
    swapped = configmap_of(rendered_for(profile, {"runtime-python": TAG}))["data"]["runtime-images"]
    old = next(i["image"] for i in python_entry({"data": {"runtime-images": text}}, "3.8") if i["phase"] == "runtime")
    assert swapped == text.replace(json.dumps(old), json.dumps(TAG))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"id": "pithon"}, "no runtime with ID 'pithon' (it has ballerina, dotnetcore, go,"),
        ({"version": "3.9"}, "runtime 'python' has no version '3.9' (it has 3.6, 3.7, 3.8)"),
        ({"phase": "compilation"}, "python3.8 has no 'compilation' image (its phases: installation, runtime)"),
        ({"config": {"name": "other-config"}}, "the manifests have no ConfigMap kubeless/other-config to write"),
        ({"config": {"key": "runtimes"}}, "ConfigMap kubeless/kubeless-config has no data key 'runtimes' (its keys:"),
    ],
)
def test_an_entry_the_manifests_lack_is_a_profile_error_at_its_line(tmp_path, change, message):
    data = bundled()
    runtime_component(data)["runtime"].update(change)
    path = write_profile(tmp_path, data)
    profile = load_profile(str(path), cwd=tmp_path)
    with pytest.raises(ConfigError) as err:
        rendered_for(profile, {"runtime-python": TAG})
    text = err.value.message
    line = next(i for i, ln in enumerate(path.read_text().splitlines(), 1) if ln.strip() == "runtime:")
    assert text.startswith(f"{path}:{line + 1}: components[runtime-python].runtime: "), text
    assert message in text.replace("ConfigMap kubeless/kubeless-config data.runtime-images: ", ""), text


# -- profile errors -------------------------------------------------------------------------------------------
def profile_error(tmp_path: Path, **runtime) -> str:
    data = bundled()
    runtime_component(data)["runtime"] = runtime
    text = yaml.safe_dump(data, sort_keys=False)
    with pytest.raises(ConfigError) as err:
        parse_profile(text, tmp_path / "p.yaml")
    return err.value.message


def test_a_version_written_as_a_number_asks_for_quotes(tmp_path):
    text = profile_error(tmp_path, id="python", version=3.8)
    assert "components[runtime-python].runtime.version: " in text
    assert 'expected the version as a quoted string (like "3.8"), found the number 3.8' in text
    assert text.startswith(f"{tmp_path / 'p.yaml'}:")


def test_runtime_keys_are_checked(tmp_path):
    assert "runtime.phase: expected one of runtime, installation, compilation, found 'build'" in profile_error(
        tmp_path, id="python", version="3.8", phase="build"
    )
    assert "runtime.id: expected a runtime ID of letters" in profile_error(tmp_path, id="python3", version="3.8")
    assert "runtime.version: expected a version of digits and dots" in profile_error(
        tmp_path, id="python", version="v3.8"
    )
    assert "runtime.controller.name: expected a Kubernetes name" in profile_error(
        tmp_path, id="python", version="3.8", controller={"name": "Kubeless"}
    )
    assert "runtime.functions: expected a resource as plural.group" in profile_error(
        tmp_path, id="python", version="3.8", functions="functions"
    )
    typo = profile_error(tmp_path, id="python", version="3.8", phases="runtime")
    assert "components[runtime-python].runtime.phases" in typo


def test_two_components_for_one_entry_are_refused(tmp_path):
    data = bundled()
    twin = dict(runtime_component(data), name="runtime-python-b", image="kubeless/python-b")
    data["components"].append(twin)
    with pytest.raises(ConfigError) as err:
        parse_profile(yaml.safe_dump(data, sort_keys=False), tmp_path / "p.yaml")
    assert (
        "components[runtime-python-b].runtime: expected each runtime image to come from one component, found "
        "python3.8 runtime image also in component 'runtime-python'"
    ) in err.value.message


# -- the step after the rollout -------------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def function(name: str, runtime: str = "python3.8", ns: str = "default", **spec) -> dict:
    return {
        "apiVersion": "kubeless.io/v1beta1",
        "kind": "Function",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"runtime": runtime, "handler": "h.f", **spec},
    }


def deployment(name: str, image: str, ns: str = "default") -> dict:
    return {
        "metadata": {"name": name, "namespace": ns, "generation": 2},
        "spec": {
            "replicas": 1,
            "template": {
                "spec": {
                    "initContainers": [{"name": "prepare", "image": "kubeless/unzip:devrig"}],
                    "containers": [{"name": name, "image": image}],
                }
            },
        },
        "status": {"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1},
    }


OLD = "kubeless/python@sha256:" + "5" * 64


class Controller:
    """Plays Kubeless's function controller: on restart it re-reads the runtime list and updates the
    Deployment of every Function of that runtime (here: python3.8 to `image`)."""

    def __init__(self, kube: FakeKube, image: str, *, patches: bool = True) -> None:
        self.kube, self.image, self.patches = kube, image, patches
        self.runtime = parse_profile(BUNDLED.read_text(), BUNDLED).component("runtime-python").runtime

    def __call__(self, namespace: str, name: str) -> None:
        if not self.patches or (namespace, name) != CTL:
            return
        for fn in self.kube.custom.get("functions.kubeless.io", []):
            key = (fn["metadata"]["namespace"], fn["metadata"]["name"])
            if runtimes.uses(fn, self.runtime):
                self.kube.deployments[key] = deployment(key[1], self.image, key[0])


def make_session(tmp_path: Path, kube: FakeKube) -> Session:
    data = bundled()
    data["cluster"]["profile"] = f"runtimes-unit-{uuid.uuid4().hex[:8]}"
    path = write_profile(tmp_path, data)
    session = Session(
        profile=load_profile(str(path), cwd=tmp_path),
        workspace=WORKSPACE,
        reporter=Reporter(json_mode=True),
        dry_run=False,
        cache_dir=tmp_path / "cache",
    )
    session._kube = kube
    return session


def cluster(functions: list[dict], *, patches: bool = True) -> tuple[FakeKube, Controller]:
    kube = FakeKube(
        custom={"functions.kubeless.io": functions},
        deployments={
            (f["metadata"]["namespace"], f["metadata"]["name"]): deployment(
                f["metadata"]["name"], OLD, f["metadata"]["namespace"]
            )
            for f in functions
        },
    )
    controller = Controller(kube, TAG, patches=patches)
    kube.on_restart = controller
    return kube, controller


def step_events(capsys) -> list[dict]:
    return [e for e in parse_events(capsys.readouterr().out) if e.get("step") == "runtimes"]


def run_step(tmp_path, kube, controller, *, before=OLD, cycle=None, clock=None):
    session = make_session(tmp_path, kube)
    rendered = rendered_for(session.profile, {"runtime-python": TAG})
    clock = clock or Clock()
    return runtimes.move_functions(
        session, rendered, {"runtime-python": before}, cycle or CycleResult(), clock=clock, sleep=clock.sleep
    )


def test_a_changed_runtime_restarts_the_controller_and_moves_only_its_functions(tmp_path, capsys):
    fns = [
        function("hello"),
        function("other", ns="team"),
        function("old-python", runtime="python3.7"),
        function("custom", deployment={"spec": {"template": {"spec": {"containers": [{"image": "mine:1"}]}}}}),
    ]
    kube, controller = cluster(fns)
    report = run_step(tmp_path, kube, controller)
    assert kube.restarts == [CTL]
    assert kube.rollouts[0] == [CTL]  # the controller's rollout first
    assert sorted(kube.rollouts[1]) == [("default", "hello"), ("team", "other")]
    assert report.moved == {"default/hello": TAG, "team/other": TAG}
    assert report.restarted == ["Deployment/kubeless/kubeless-controller-manager"]
    assert kube.deployments[("default", "old-python")]["spec"]["template"]["spec"]["containers"][0]["image"] == OLD
    events = step_events(capsys)
    start, done = events[0], events[-1]
    assert start["status"] == "start" and done["status"] == "ok"
    assert done["details"]["moved"] == {"default/hello": TAG, "team/other": TAG}
    assert done["details"]["runtimes"] == {"python3.8": TAG}
    assert "2 Functions moved: default/hello, team/other" in done["note"]


def test_a_controller_apply_already_restarted_is_not_restarted_again(tmp_path, capsys):
    kube, controller = cluster([function("hello")])
    cycle = CycleResult(restarted=["Deployment/kubeless/kubeless-controller-manager"])
    controller("kubeless", "kubeless-controller-manager")  # what apply's restart set going
    kube.restarts.clear()
    report = run_step(tmp_path, kube, controller, cycle=cycle)
    assert kube.restarts == [] and report.restarted == []
    assert kube.rollouts == [[("default", "hello")]]
    assert report.moved == {"default/hello": TAG}
    assert "controller already restarted; 1 Functions moved: default/hello" in step_events(capsys)[-1]["note"]


def test_no_functions_says_so_and_moves_on(tmp_path, capsys):
    kube, controller = cluster([function("js", runtime="nodejs14")])
    report = run_step(tmp_path, kube, controller)
    assert kube.restarts == [CTL] and report.moved == {}
    note = step_events(capsys)[-1]["note"]
    assert "no Functions of python3.8: none to move" in note


def test_an_unchanged_runtime_whose_functions_run_it_does_nothing(tmp_path, capsys):
    kube, controller = cluster([function("hello")])
    kube.deployments[("default", "hello")] = deployment("hello", TAG)
    report = run_step(tmp_path, kube, controller, before=TAG)
    assert kube.restarts == [] and kube.rollouts == [] and report.moved == {}
    assert step_events(capsys)[-1]["status"] == "skipped"


def test_a_function_left_behind_by_an_earlier_cycle_is_moved_on_the_next(tmp_path):
    kube, controller = cluster([function("hello")])  # config already says TAG, the Deployment still OLD
    report = run_step(tmp_path, kube, controller, before=TAG)
    assert kube.restarts == [CTL] and report.moved == {"default/hello": TAG}


def test_a_controller_that_never_updates_the_functions_times_out_saying_what_it_waited_for(tmp_path):
    kube, controller = cluster([function("hello")], patches=False)
    clock = Clock()
    with pytest.raises(WaitTimeout) as err:
        run_step(tmp_path, kube, controller, clock=clock)
    text = str(err.value)
    assert "Deployments of the python3.8 Functions (default/hello) to run " + TAG in text
    assert "not within 180s" in text and f"default/hello runs kubeless/unzip:devrig, {OLD}" in text
    assert "kubectl logs -n kubeless deployment/kubeless-controller-manager" in text
    assert clock.now >= 500 + 180


def test_installation_phase_moves_only_functions_with_dependencies(tmp_path):
    data = bundled()
    runtime_component(data)["runtime"]["phase"] = "installation"
    path = write_profile(tmp_path, data)
    rt = load_profile(str(path), cwd=tmp_path).component("runtime-python").runtime
    assert runtimes.uses(function("deps", deps="requests\n"), rt)
    assert not runtimes.uses(function("plain"), rt)
    assert not runtimes.uses(function("deps", runtime="python3.7", deps="requests\n"), rt)


def test_a_function_without_a_deployment_is_named_but_not_waited_for(tmp_path, capsys):
    """A controller that made no Deployment for it (it failed, or it is a stand-in) would make the wait hang."""
    kube, controller = cluster([function("hello"), function("broken")])
    del kube.deployments[("default", "broken")]
    controller.patches = False
    kube.deployments[("default", "hello")] = deployment("hello", TAG)
    report = run_step(tmp_path, kube, controller, before=TAG)  # config unchanged, hello already moved
    assert kube.restarts == [] and report.without_deployment == ["default/broken"]
    assert step_events(capsys)[-1]["status"] == "skipped"
    kube.deployments[("default", "hello")] = deployment("hello", OLD)
    controller.patches = True
    report = run_step(tmp_path, kube, controller)
    assert report.moved == {"default/hello": TAG} and report.without_deployment == ["default/broken"]
    done = step_events(capsys)[-1]
    assert done["details"]["without_deployment"] == ["default/broken"]
    assert "(1 without a Deployment: default/broken)" in done["note"]
