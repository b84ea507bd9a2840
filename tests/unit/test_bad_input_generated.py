"""Generated bad input: every broken profile or manifest exits 2, names the file and the key (or the
line), prints no traceback, and never reaches the cluster.

The cases are generated from the bundled Kubeless profile by a seeded random generator (so every
case has a stable id to re-run: `pytest tests/unit/test_bad_input_generated.py -k wrong-type-17`):
YAML syntax errors, duplicate keys, wrong types, unknown keys, bad image references, duplicate
components, missing dirs and files, jsonnet errors, and manifests that are not Kubernetes objects.

The bulk runs `devloop render` in-process (typer's CliRunner) with a `minikube` on PATH that
records every call; a few run `devloop up` (which would start a cluster) as a real subprocess.
Either way the recorder must stay empty: devloop has to refuse bad input before it touches
anything.
"""

from __future__ import annotations

import copy
import os
import random
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from devloop.cli import app

REPO = Path(__file__).resolve().parents[2]
FIXTURE_WS = REPO / "tests" / "fixtures" / "workspace"
BUNDLED = REPO / "devloop" / "profile" / "bundled" / "kubeless.yaml"
SEED = 12


@dataclass
class Case:
    id: str
    profile: dict | str  # a dict is dumped as YAML; a str is written as is
    files: dict[str, str] = field(default_factory=dict)  # workspace-relative path -> text
    where: str = "profile"  # the file the error must name: "profile" or a key of `files`
    # The message must contain one of these (a key path part, a line reference as `:N`, …).
    names: tuple[str, ...] = ()


def _base() -> dict:
    data = yaml.safe_load(BUNDLED.read_text())
    data["cluster"]["profile"] = "bad-input"
    return data


def _dump(data: dict) -> str:
    return yaml.safe_dump(data, sort_keys=False, width=10_000)


# -- generators ----------------------------------------------------------------------------------
SYNTAX_BREAKS = [
    "  key: [unclosed",
    "\tname: tab-indented",
    "key: value: another",
    "  - a\n - b",
    "'unterminated",
    "{a: 1",
    'key: "bad \\q escape"',
    "*undefined_alias",
    "? ",
    "  ]",
    "@reserved",
    "%YAML 1.1",
]


def gen_syntax(rng: random.Random, n: int) -> list[Case]:
    lines = _dump(_base()).splitlines()
    out = []
    for i in range(n):
        while True:
            broken = list(lines)
            at = rng.randrange(1, len(broken))
            broken.insert(at, rng.choice(SYNTAX_BREAKS))
            text = "\n".join(broken) + "\n"
            try:  # some breaks are valid YAML at some places (`  - a` continues a plain scalar): not a syntax case
                yaml.safe_load(text)
            except yaml.YAMLError:
                break
        out.append(Case(f"syntax-{i}", text, names=(":",)))
    return out


def gen_duplicate_keys(rng: random.Random, n: int) -> list[Case]:
    lines = _dump(_base()).splitlines()
    keyed = [i for i, line in enumerate(lines) if re.match(r"^\s*(- )?[a-z_]+:", line)]
    out = []
    for i in range(n):
        at = rng.choice(keyed)
        line = lines[at]
        indent = len(line) - len(line.lstrip(" -"))
        key = line.lstrip(" -").split(":", 1)[0]
        broken = list(lines)
        # Before a plain key line (its value may be a block below it); after a list item's first
        # key, whose siblings follow at the same indent.
        broken.insert(at + 1 if line.lstrip().startswith("- ") else at, " " * indent + f"{key}: duplicated")
        out.append(Case(f"duplicate-key-{i}", "\n".join(broken) + "\n", names=(f"duplicate key {key!r}",)))
    return out


# Key paths and a few values each cannot take (never coercible: pydantic's lax mode turns "4" into 4).
NOT_A_STRING = [[1, 2], {"a": 1}, 3.5, True]
WRONG_TYPES: list[tuple[tuple, list]] = [
    (("name",), [[1], {"a": 1}]),
    (("namespace",), NOT_A_STRING),
    (("cluster",), ["devloop", [1], 5]),
    (("cluster", "profile"), NOT_A_STRING),
    (("cluster", "driver"), NOT_A_STRING),
    (("cluster", "kubernetes_version"), [1.21, [1], {"v": 1}]),
    (("cluster", "cpus"), ["lots", [4], {"n": 4}, 0]),
    (("cluster", "memory"), [[8], {"g": 8}, True, "8 gigs"]),
    (("cluster", "addons"), [{"ingress": True}, 3]),
    (("cluster", "allow_unsupported_kubernetes"), [{"a": 1}, [True], "perhaps"]),
    (("cluster", "extra_start_args"), [{"a": 1}, 3]),
    (("components",), [{"a": 1}, "function-controller", 3]),
    (("components", 0), ["function-controller", [1, 2], 4]),
    (("components", 1, "name"), NOT_A_STRING),
    (("components", 2, "dir"), NOT_A_STRING),
    (("components", 0, "build"), NOT_A_STRING),
    (("components", 3, "image"), NOT_A_STRING),
    (("components", 1, "replaces"), [{"a": 1}, 3, [[1]]]),
    (("components", 2, "inputs"), [{"a": 1}, 3, [], [["pkg"]]]),
    (("components", 0, "ignore"), [{"a": 1}, 3, [[1]]]),
    (("components", 3, "env"), [["A=1"], "A=1", {"A": [1]}]),
    (("manifests",), [{"a": 1}, "kubeless/kubeless.yaml", [], 3]),
    (("manifests", 0), [3, [1], {"yaml": [1]}, {"jsonnet": 3}]),
    (("cleanup",), [{"a": 1}, 3]),
    (("cleanup", 1), [[1], {"a": 1}, "Functions"]),
    (("ignore",), [{"a": 1}, 3]),
    (("timeouts",), [[1], "fast", 3]),
    (("timeouts", "rollout"), ["soon", [1], -1, 0, {"s": 1}]),
]


def _set(data: dict, path: tuple, value) -> None:
    target = data
    for part in path[:-1]:
        target = target.setdefault(part, {}) if isinstance(part, str) else target[part]
    target[path[-1]] = value


def _names_for(path: tuple) -> tuple[str, ...]:
    last_key = next((p for p in reversed(path) if isinstance(p, str)), None)
    if isinstance(path[-1], int):
        return (f"{last_key}[{path[-1]}]", f"{last_key}[")
    return (last_key,)


def gen_wrong_types(rng: random.Random, n: int) -> list[Case]:
    pairs = [(path, value) for path, values in WRONG_TYPES for value in values]
    rng.shuffle(pairs)
    out = []
    for i, (path, value) in enumerate(pairs[:n]):
        data = _base()
        _set(data, path, copy.deepcopy(value))
        out.append(Case(f"wrong-type-{i}", data, names=_names_for(path)))
    return out


UNKNOWN_KEYS = [
    "imagePullPolicy",
    "buidl",
    "Image",
    "replace",
    "input",
    "tiemouts",
    "context",
    "dockerfile",
    "namespaces",
    "x",
    "kubernetesVersion",
    "addon",
    "depends_on",
    "tag",
    "env_file",
]
MAPPINGS = [(), ("cluster",), ("components", 0), ("components", 1), ("components", 2), ("components", 3), ("timeouts",)]


def gen_unknown_keys(rng: random.Random, n: int) -> list[Case]:
    out = []
    for i in range(n):
        data = _base()
        where = rng.choice(MAPPINGS + [("manifests", 0)])
        key = rng.choice(UNKNOWN_KEYS)
        if where == ("manifests", 0):
            data["manifests"][0] = {"yaml": data["manifests"][0], key: "x"}
        else:
            _set(data, where + (key,), rng.choice(["x", 1, [1], {"a": "b"}]))
        out.append(Case(f"unknown-key-{i}", data, names=(key,)))
    return out


# ("UPPER/case" is valid: Docker reads an upper-case first component as a registry host.)
BAD_REFS = [
    "Upper-Case",
    "repo/UPPER",
    "a b",
    "foo:",
    ":tag",
    "foo@sha256:123",
    "-lead",
    "foo//bar",
    "foo:tag:tag",
    "",
    "foo/",
    "repo:t@g",
    "http://registry/x",
    "a..b",
    "ünïcode",
]
BAD_REPOS = BAD_REFS + ["repo:tagged", "repo@sha256:" + "a" * 64]


def gen_bad_images(rng: random.Random, n: int) -> list[Case]:
    out = []
    for i in range(n):
        data = _base()
        c = rng.randrange(4)
        if rng.random() < 0.5:
            data["components"][c]["image"] = rng.choice(BAD_REPOS)
            names = ("image",)
        else:
            data["components"][c]["replaces"] = [rng.choice(BAD_REFS)]
            names = ("replaces",)
        out.append(Case(f"bad-image-{i}", data, names=names))
    return out


def gen_duplicate_components(rng: random.Random, n: int) -> list[Case]:
    out = []
    for i in range(n):
        data = _base()
        a, b = rng.sample(range(4), 2)
        kind = rng.choice(["name", "image", "replaces", "whole"])
        if kind == "whole":
            data["components"].append(copy.deepcopy(data["components"][a]))
            names = ("name",)
        elif kind == "replaces":
            data["components"][b]["replaces"] = list(data["components"][a]["replaces"])
            names = ("replaces",)
        else:
            data["components"][b][kind] = data["components"][a][kind]
            names = (kind,)
        out.append(Case(f"duplicate-component-{i}", data, names=names))
    return out


def gen_missing(rng: random.Random, n: int) -> list[Case]:
    out = []
    for i in range(n):
        data = _base()
        if rng.random() < 0.5:
            c = rng.randrange(4)
            data["components"][c]["dir"] = rng.choice(["no-such-checkout", "kubeless/nope", "http-trigger-x"])
            names = ("dir", data["components"][c]["name"])
        else:
            data["manifests"] = [rng.choice(["kubeless/missing.yaml", "nowhere/k.yaml", "kubeless"])]
            names = ("manifests[0]",)
        out.append(Case(f"missing-{i}", data, names=names))
    return out


JSONNET_BREAKS = [
    ("local x = ;\n{}\n", ":1"),
    ("{ a: 1,, }\n", ":1"),
    ("local k = import 'nope.libsonnet';\nk\n", ":1"),
    ("{\n  apiVersion: 'v1',\n  kind: error 'boom: no kind for you',\n}\n", ":3"),
    ("[\n  undefined_variable,\n]\n", ":2"),
    ("42\n", "$"),
    ("'just a string'\n", "$"),
    ("[1, 2]\n", "$[0]"),
    ("{ apiVersion: 'v1', kind: 3, metadata: { name: 'x' } }\n", "kind"),
    ("{ apiVersion: 'v1', kind: 'ConfigMap' }\n", "metadata.name"),
    ("{ items: [ { apiVersion: 'v1', kind: 'Secret', metadata: {} } ] }\n", "metadata.name"),
    ("std.parseJson('{')\n", ":1"),
    ("local f(x) = f(x);\nf(1)\n", ":1"),
    ("{ a: std.extVar('missing') }\n", ":1"),
]


def gen_jsonnet(rng: random.Random, n: int) -> list[Case]:
    out = []
    for i in range(n):
        text, name = JSONNET_BREAKS[i % len(JSONNET_BREAKS)] if i < len(JSONNET_BREAKS) else rng.choice(JSONNET_BREAKS)
        data = _base()
        rel = f"cases/jsonnet-{i}/main.jsonnet"
        data["manifests"] = [{"jsonnet": rel}]
        out.append(Case(f"jsonnet-{i}", data, files={rel: text}, where=rel, names=(name,)))
    return out


def _deployment() -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "kubeless"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "kubeless/function-controller:v1"}]},
            },
        },
    }


def _manifest_breaks(rng: random.Random) -> list[tuple[str, tuple[str, ...]]]:
    """(manifest text, names) pairs: each text is a broken manifest after a valid first document."""
    good = yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ok"}, "data": {"a": "b"}})
    breaks: list[tuple[object, tuple[str, ...]]] = [
        ("- just\n- a list\n", ("document 2", ":")),
        ("plain scalar\n", ("document 2", ":")),
        ({"metadata": {"name": "x"}}, ("apiVersion", "kind")),
        ({"apiVersion": "v1", "metadata": {"name": "x"}}, ("kind",)),
        ({"kind": "ConfigMap", "metadata": {"name": "x"}}, ("apiVersion",)),
        ({"apiVersion": "v1", "kind": ["ConfigMap"], "metadata": {"name": "x"}}, ("kind",)),
        ({"apiVersion": 1, "kind": "ConfigMap", "metadata": {"name": "x"}}, ("apiVersion",)),
        ({"apiVersion": "v1", "kind": "ConfigMap"}, ("metadata.name",)),
        ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": "x"}, ("metadata",)),
        ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": ["x"]}}, ("metadata.name",)),
        ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": 5}}, ("metadata.name",)),
        (
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": ["a"]}},
            ("metadata.namespace",),
        ),
        ({"apiVersion": "v1", "kind": "List", "items": ["not an object"]}, ("items[0]",)),
        ({"apiVersion": "v1", "kind": "List", "items": [{"kind": "Secret"}]}, ("items[0]",)),
        ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": ["a"]}, ("data",)),
        (
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"builder-image": ["a"]}},
            ("data",),
        ),
        ("key: [unclosed\n", (":",)),
        ("a: b\n  c: d\n", (":",)),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\nmetadata: {name: y}\n", ("duplicate key", ":")),
    ]
    for path, value, names in [
        (("spec",), "a string", ("spec",)),
        (("spec", "template"), [1], ("template",)),
        (("spec", "template", "spec"), "x", ("template.spec", "spec")),
        (("spec", "template", "spec", "containers"), {"name": "web"}, ("containers",)),
        (("spec", "template", "spec", "containers"), ["web"], ("containers[0]",)),
        (("spec", "template", "spec", "containers", 0, "image"), ["kubeless/function-controller"], ("image",)),
        (("spec", "template", "spec", "containers", 0, "image"), 42, ("image",)),
        (("spec", "template", "spec", "initContainers"), "busybox", ("initContainers",)),
        (("metadata",), ["web"], ("metadata",)),
    ]:
        doc = _deployment()
        _set(doc, path, value)
        breaks.append((doc, names))
    out = []
    for doc, names in breaks:
        text = doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False)
        out.append((good + "---\n" + text, names))
    rng.shuffle(out)
    return out


def gen_manifests(rng: random.Random, n: int) -> list[Case]:
    breaks = _manifest_breaks(rng)
    out = []
    for i in range(n):
        text, names = breaks[i % len(breaks)]
        data = _base()
        rel = f"cases/manifest-{i}/objects.yaml"
        # After the real manifest, so the broken file is not merely the first thing read.
        data["manifests"] = [data["manifests"][0], rel]
        out.append(Case(f"manifest-{i}", data, files={rel: text}, where=rel, names=names))
    return out


def generate() -> list[Case]:
    rng = random.Random(SEED)
    return (
        gen_syntax(rng, 30)
        + gen_duplicate_keys(rng, 15)
        + gen_wrong_types(rng, 60)
        + gen_unknown_keys(rng, 25)
        + gen_bad_images(rng, 25)
        + gen_duplicate_components(rng, 15)
        + gen_missing(rng, 15)
        + gen_jsonnet(rng, 20)
        + gen_manifests(rng, 40)
    )


CASES = generate()


# -- running them --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("bad-input")
    ws = root / "ws"
    shutil.copytree(FIXTURE_WS, ws)
    bin_dir = root / "bin"
    bin_dir.mkdir()
    calls = root / "minikube-calls"
    # Records any call at all: even a read-only probe means devloop went past loading.
    recorder = bin_dir / "minikube"
    recorder.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexit 99\n')
    recorder.chmod(0o755)
    for name in ("kubectl", "docker", "make"):
        (bin_dir / name).symlink_to(recorder)
    env = {
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
        "XDG_CACHE_HOME": str(root / "cache"),
        "XDG_STATE_HOME": str(root / "state"),
        "KUBECONFIG": str(root / "no-kubeconfig"),
        "DEVLOOP_PROFILE": None,
        "DEVLOOP_WORKSPACE": None,
        "COLUMNS": "200",
    }
    return {"root": root, "ws": ws, "calls": calls, "env": env}


def _materialize(case: Case, sandbox: dict) -> tuple[Path, Path]:
    profile = sandbox["root"] / "profiles" / f"{case.id}.yaml"
    profile.parent.mkdir(exist_ok=True)
    profile.write_text(case.profile if isinstance(case.profile, str) else _dump(case.profile))
    for rel, text in case.files.items():
        path = sandbox["ws"] / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    named = profile if case.where == "profile" else sandbox["ws"] / case.where
    return profile, named


def _check(case: Case, code: int, output: str, named: Path, calls: Path) -> None:
    assert "Traceback" not in output, output
    assert code == 2, f"exit {code}, expected 2:\n{output}"
    flat = " ".join(output.split())
    assert str(named) in flat, f"the message does not name {named}:\n{output}"
    assert any(n in flat for n in case.names), f"the message names none of {case.names}:\n{output}"
    assert not calls.exists(), f"minikube was called: {calls.read_text()}"


def test_enough_cases_of_every_kind():
    assert len(CASES) >= 200
    assert len({c.id for c in CASES}) == len(CASES)
    kinds = {c.id.rsplit("-", 1)[0] for c in CASES}
    assert kinds == {
        "syntax",
        "duplicate-key",
        "wrong-type",
        "unknown-key",
        "bad-image",
        "duplicate-component",
        "missing",
        "jsonnet",
        "manifest",
    }


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_render_refuses_bad_input(case: Case, sandbox):
    profile, named = _materialize(case, sandbox)
    result = CliRunner().invoke(
        app,
        ["render", "--profile", str(profile), "--workspace", str(sandbox["ws"])],
        env=sandbox["env"],
        catch_exceptions=True,
    )
    output = result.output + (
        result.stderr if result.stderr_bytes is not None and result.stderr not in result.output else ""
    )
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        raise AssertionError("unhandled exception:\n" + "".join(traceback.format_exception(result.exception)))
    _check(case, result.exit_code, output, named, sandbox["calls"])


# A few of each kind, as a user runs them: `devloop up` (which would start a cluster) in its own process.
SUBPROCESS_CASES = [pytest.param(c, id=c.id) for c in CASES if c.id.endswith("-3")]


@pytest.mark.parametrize("case", SUBPROCESS_CASES)
def test_up_refuses_bad_input_before_touching_the_cluster(case: Case, sandbox):
    profile, named = _materialize(case, sandbox)
    env = {k: v for k, v in {**os.environ, **sandbox["env"]}.items() if v is not None}
    done = subprocess.run(
        [sys.executable, "-m", "devloop", "up", "--profile", str(profile), "--workspace", str(sandbox["ws"])],
        env=env,
        cwd=sandbox["root"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    _check(case, done.returncode, done.stdout + done.stderr, named, sandbox["calls"])
