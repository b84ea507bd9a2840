"""The CLI as a user runs it, without a cluster: render, profile errors, exit codes, JSON lines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from support import DevloopRun, run_devloop

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "workspace"


def devloop(*args: str, cwd: Path, env: dict | None = None) -> DevloopRun:
    return run_devloop(
        *args, cwd=cwd, extra_env={"XDG_CACHE_HOME": str(cwd / ".cache"), **(env or {})}, json_mode=False, timeout=60
    )


def test_render_replaces_every_built_image_and_sets_pull_policy_only_there(tmp_path):
    done = devloop("render", "--workspace", str(FIXTURES), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    objects = list(yaml.safe_load_all(done.stdout))
    deploy = next(o for o in objects if o["kind"] == "Deployment")
    containers = deploy["spec"]["template"]["spec"]["containers"]
    images = [c["image"] for c in containers]
    assert [i.split(":")[0] for i in images] == [
        "kubeless-function-controller",
        "http-trigger-controller",
        "cronjob-trigger-controller",
    ]
    assert all(":dev-" in i for i in images)
    assert all(c["imagePullPolicy"] == "IfNotPresent" for c in containers)
    config = next(o for o in objects if o["kind"] == "ConfigMap")
    assert config["data"]["builder-image"].startswith("kubeless-function-image-builder:dev-")
    assert config["data"]["provision-image"].startswith("kubeless/unzip@sha256:")
    kinds = [o["kind"] for o in objects]
    assert kinds.index("CustomResourceDefinition") < kinds.index("ClusterRole") < kinds.index("Deployment")


def test_render_is_stable_and_follows_source_edits(tmp_path):
    import shutil

    ws = tmp_path / "ws"
    shutil.copytree(FIXTURES, ws)
    first = devloop("render", "--workspace", str(ws), cwd=tmp_path).stdout
    assert devloop("render", "--workspace", str(ws), cwd=tmp_path).stdout == first
    (ws / "http-trigger" / "cmd" / "http-trigger-controller").mkdir(parents=True, exist_ok=True)
    (ws / "http-trigger" / "cmd" / "http-trigger-controller" / "extra.go").write_text("package main\n")
    second = devloop("render", "--workspace", str(ws), cwd=tmp_path).stdout
    changed = {line.strip() for line in second.splitlines()} - {line.strip() for line in first.splitlines()}
    assert changed and all("http-trigger-controller:dev-" in line for line in changed)


def test_broken_profile_exits_2_naming_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\ncluster: {profile: x}\nnamespace: x\nmanifests: [a.yaml]\ncomponents:\n"
        "  - {name: a, dir: a, build: make, image: a}\n"
    )
    done = devloop("up", "--profile", str(bad), "--dry-run", cwd=tmp_path)
    assert done.returncode == 2
    assert str(bad) in done.stderr
    assert "components[a].build" in done.stderr  # a component is named by its name, not its index
    assert "{image}" in done.stderr


def test_json_error_is_one_object_with_exit_code(tmp_path):
    done = devloop("render", "--profile", "no-such-profile", "--json", cwd=tmp_path)
    assert done.returncode == 2
    event = done.last
    assert event["event"] == "error" and event["exit_code"] == 2
    assert "no-such-profile" in event["message"]


def test_bad_strategy_is_a_usage_error(tmp_path):
    done = devloop("apply", "--strategy", "yolo", cwd=tmp_path)
    assert done.returncode == 2
    assert "recreate" in done.stderr


def test_profiles_list_shows_the_bundled_kubeless_profile(tmp_path):
    done = devloop("profiles", "list", cwd=tmp_path)
    assert done.returncode == 0
    name, origin, path = done.stdout.splitlines()[0].split("\t")
    assert (name, origin) == ("kubeless", "bundled") and path.endswith("kubeless.yaml")


def test_help_does_not_import_heavy_libraries(tmp_path):
    probe = (
        "import sys; sys.argv=['devloop','--help']\n"
        "from devloop import cli\n"
        "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
        "heavy=[m for m in ('kubernetes','docker','watchdog','sh','pydantic','_gojsonnet') if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in done.stdout, done.stdout[-500:]


def test_up_without_the_checkouts_fails_before_touching_any_cluster(tmp_path):
    # No minikube on PATH either: the workspace check must come first.
    done = devloop("up", cwd=tmp_path, env={"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"})
    assert done.returncode == 2
    assert f"components[function-controller].dir: {tmp_path / 'kubeless'}" in done.stderr
    assert "kubeless.yaml: the workspace lacks the checkouts" in done.stderr  # the profile file, named
    assert "--workspace" in done.stderr
    assert "minikube" not in done.stderr


def test_every_file_of_kubeconfig_reaches_the_session(tmp_path, monkeypatch):
    # KUBECONFIG=a:b is a merge of both files (kubectl's rule); the CLI once kept only `a`.
    from typer.testing import CliRunner

    from devloop import cli
    from devloop.base.errors import ConfigError
    from devloop.session import Session

    seen = []

    def record(self):
        seen.append(self.kubeconfig)
        raise ConfigError("stop here")

    monkeypatch.setattr(Session, "__post_init__", record)
    monkeypatch.chdir(tmp_path)
    files = f"{tmp_path / 'a'}:{tmp_path / 'b'}"
    done = CliRunner().invoke(cli.app, ["status", "--workspace", str(FIXTURES)], env={"KUBECONFIG": files})
    assert done.exit_code == 2, done.output
    assert seen == [files]


def test_help_lists_strategies_and_shows_no_type_names_for_flags(tmp_path):
    done = devloop("up", "--help", cwd=tmp_path, env={"COLUMNS": "200"})
    assert done.returncode == 0
    assert "apply|recreate" in done.stdout
    assert "<bool>" not in done.stdout
    assert "<str>" not in done.stdout
    assert "--install-completion" in devloop("--help", cwd=tmp_path, env={"COLUMNS": "200"}).stdout


def test_profiles_show_prints_the_yaml_on_stdout_and_its_path_on_stderr(tmp_path):
    done = devloop("profiles", "show", "kubeless", cwd=tmp_path)
    assert done.returncode == 0
    assert done.stdout.startswith("#") and "name: kubeless" in done.stdout
    assert done.stderr.strip().startswith("# ") and done.stderr.strip().endswith("kubeless.yaml")
    event = json.loads(devloop("profiles", "show", "kubeless", "--json", cwd=tmp_path).stdout)
    assert set(event) == {"event", "command", "name", "path", "text", "schema", "devloop"}
