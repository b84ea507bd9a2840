"""Fingerprints: what changes a digest, what must not, and the stat cache."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from devloop.base.errors import ConfigError
from devloop.profile.lookup import Profile, load_profile
from devloop.sources.fingerprint import Fingerprinter, tag_for
from devloop.sources.inputs import PathMapper, build_contexts, ignore_rules

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "tests" / "fixtures" / "workspace"


@pytest.fixture
def ws(tmp_path) -> Path:
    dest = tmp_path / "ws"
    shutil.copytree(SAMPLE, dest, symlinks=True)
    age(dest)
    return dest


@pytest.fixture(scope="module")
def profile() -> Profile:
    return load_profile("kubeless", cwd=REPO)


def age(root: Path, seconds: float = 60) -> None:
    """Backdate mtimes: files written within RACY_SECONDS are (rightly) never cached."""
    past = time.time() - seconds
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            os.utime(os.path.join(dirpath, name), (past, past), follow_symlinks=False)


class CountingFingerprinter(Fingerprinter):
    def __init__(self, cache_dir: Path) -> None:
        super().__init__(cache_dir)
        self.reads: list[str] = []

    def _hash_file(self, path: str) -> str:
        self.reads.append(path)
        return super()._hash_file(path)


@pytest.fixture
def fp(tmp_path) -> CountingFingerprinter:
    return CountingFingerprinter(tmp_path / "cache")


def digest(fp, profile, name, ws) -> str:
    return fp.fingerprint(profile, profile.component(name), ws).digest


def test_digest_covers_the_component_inputs(fp, profile, ws):
    f = fp.fingerprint(profile, profile.component("function-controller"), ws)
    assert len(f.digest) == 64 and f.missing == ()
    # cmd/function-controller/main.go, pkg/{controller,utils,version}/*.go, go.mod, go.sum, Dockerfile,
    # script/binary-controller, Makefile — not pkg/function-image-builder or pkg/function-proxy
    assert f.files == 9
    assert (
        tag_for(profile.component("function-controller"), f.digest)
        == f"kubeless-function-controller:dev-{f.digest[:12]}"
    )


def test_each_component_has_its_own_digest(fp, profile, ws):
    digests = {c.name: digest(fp, profile, c.name, ws) for c in profile.components}
    assert len(set(digests.values())) == len(profile.components) == 5


def test_content_change_changes_the_digest(fp, profile, ws):
    before = digest(fp, profile, "function-controller", ws)
    main = ws / "kubeless" / "cmd" / "function-controller" / "main.go"
    main.write_text(main.read_text() + "// edit\n")
    assert digest(fp, profile, "function-controller", ws) != before


def test_touch_without_content_change_keeps_the_digest(fp, profile, ws):
    before = digest(fp, profile, "function-controller", ws)
    main = ws / "kubeless" / "cmd" / "function-controller" / "main.go"
    os.utime(main, None)
    fp.reads.clear()
    assert digest(fp, profile, "function-controller", ws) == before
    assert fp.reads == [str(main)]  # the stat changed, so it was read again: only it


def test_added_and_removed_files_change_the_digest(fp, profile, ws):
    before = digest(fp, profile, "http-trigger-controller", ws)
    new = ws / "http-trigger" / "pkg" / "utils" / "new.go"
    new.write_text("package utils\n")
    added = digest(fp, profile, "http-trigger-controller", ws)
    assert added != before
    new.unlink()
    assert digest(fp, profile, "http-trigger-controller", ws) == before


def test_renaming_a_file_changes_the_digest(fp, profile, ws):
    before = digest(fp, profile, "http-trigger-controller", ws)
    d = ws / "http-trigger" / "pkg" / "utils"
    (d / "k8sutil.go").rename(d / "k8s_util.go")
    assert digest(fp, profile, "http-trigger-controller", ws) != before


def test_executable_bit_changes_the_digest(fp, profile, ws):
    before = digest(fp, profile, "function-controller", ws)
    os.chmod(ws / "kubeless" / "script" / "binary-controller", 0o644)
    assert digest(fp, profile, "function-controller", ws) != before


def test_build_command_and_profile_entry_are_part_of_the_digest(fp, profile, ws, tmp_path):
    before = digest(fp, profile, "function-controller", ws)
    data = yaml.safe_load((REPO / "devloop" / "profile" / "bundled" / "kubeless.yaml").read_text())
    data["components"][0]["build"] = "make function-controller CONTROLLER_IMAGE={image} V=1"
    p1 = tmp_path / "p1.yaml"
    p1.write_text(yaml.safe_dump(data))
    assert digest(fp, load_profile(str(p1), cwd=tmp_path), "function-controller", ws) != before
    data = yaml.safe_load((REPO / "devloop" / "profile" / "bundled" / "kubeless.yaml").read_text())
    data["components"][0]["env"] = {"GOFLAGS": "-mod=mod"}
    p2 = tmp_path / "p2.yaml"
    p2.write_text(yaml.safe_dump(data))
    assert digest(fp, load_profile(str(p2), cwd=tmp_path), "function-controller", ws) != before


def test_same_content_elsewhere_gives_the_same_digest(fp, profile, ws, tmp_path):
    other = tmp_path / "elsewhere"
    shutil.copytree(ws, other)
    assert digest(fp, profile, "cronjob-trigger-controller", ws) == digest(
        fp, profile, "cronjob-trigger-controller", other
    )


def test_ignored_build_outputs_do_not_change_the_digest(fp, profile, ws):
    before = {c.name: digest(fp, profile, c.name, ws) for c in profile.components}
    k = ws / "kubeless"
    (k / "bundles" / "kubeless_linux-amd64").mkdir(parents=True)
    (k / "bundles" / "kubeless_linux-amd64" / "kubeless-function-controller").write_bytes(b"\x7fELF")
    (k / "docker" / "function-controller" / "kubeless-function-controller").write_bytes(b"\x7fELF")
    (k / "docker" / "function-image-builder" / "imbuilder").write_bytes(b"\x7fELF")
    (k / "pkg" / "controller" / "function_controller.go.bak").write_text("old")
    (k / "pkg" / "controller" / ".function_controller.go.swp").write_text("vim")
    (k / "pkg" / "controller" / "function_controller.go~").write_text("emacs")
    (k / "pkg" / "controller" / ".#function_controller.go").write_text("emacs lock")
    (k / "pkg" / "controller" / "4913").write_text("vim probe")
    (k / "pkg" / "function-proxy" / "proxy.go").write_text("package proxy // not an input of the controller\n")
    (k / "pkg" / ".git").mkdir()
    (k / "pkg" / ".git" / "HEAD").write_text("ref: x")
    (ws / "http-trigger" / "vendor" / "x").mkdir(parents=True)
    (ws / "http-trigger" / "vendor" / "x" / "x.go").write_text("package x")
    (ws / "http-trigger" / "docker" / "http-controller" / "http-controller").write_bytes(b"\x7fELF")
    (ws / "cronjob-trigger" / "docker" / "cronjob-controller" / "cronjob-controller").write_bytes(b"\x7fELF")
    after = {c.name: digest(fp, profile, c.name, ws) for c in profile.components}
    assert after == before


def test_cronjob_vendor_is_an_input(fp, profile, ws):
    before = digest(fp, profile, "cronjob-trigger-controller", ws)
    (ws / "cronjob-trigger" / "vendor" / "modules.txt").write_text("# changed\n")
    assert digest(fp, profile, "cronjob-trigger-controller", ws) != before


def test_a_real_build_of_the_sample_does_not_change_its_own_fingerprint(fp, profile, ws):
    """The sample's make targets write binaries into bundles/ and into the image contexts, which
    are inside the inputs: the ignore rules keep them out, so a build cannot trigger itself."""
    if shutil.which("make") is None or not os.access("/bin/busybox", os.X_OK):
        pytest.skip("needs make and busybox-static")
    before = {c.name: digest(fp, profile, c.name, ws) for c in profile.components}
    for c in profile.components:
        if c.runtime is not None:
            continue  # runtime-python is a `docker build` of two files: it writes nothing into its inputs
        # DOCKER=true: everything the Makefile writes, without an engine
        cmd = c.build_command(tag_for(c, before[c.name])) + " DOCKER=true"
        result = subprocess.run(cmd, shell=True, cwd=ws / c.dir, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"devloop-sample: building {c.name} build-id=" in result.stdout
    assert (ws / "kubeless" / "docker" / "function-controller" / "kubeless-function-controller").exists()
    assert {c.name: digest(fp, profile, c.name, ws) for c in profile.components} == before


def test_dockerignore_of_the_build_context_is_honoured(fp, tmp_path):
    ws = tmp_path / "ws"
    app = ws / "app"
    (app / "src").mkdir(parents=True)
    (app / "Dockerfile").write_text("FROM scratch\nCOPY src /src\n")
    (app / "src" / "main.py").write_text("print(1)\n")
    (app / ".dockerignore").write_text("# comment\n*.log\nsrc/tmp\n!src/tmp/keep.txt\n")
    age(ws)
    p = tmp_path / "p.yaml"
    p.write_text(
        yaml.safe_dump(
            {
                "name": "app",
                "cluster": {"profile": "app"},
                "namespace": "app",
                "manifests": ["m.yaml"],
                "components": [{"name": "app", "dir": "app", "build": "docker build -t {image} .", "image": "app"}],
            }
        )
    )
    prof = load_profile(str(p), cwd=tmp_path)
    comp = prof.component("app")
    assert build_contexts(comp, ws) == [""]
    before = digest(fp, prof, "app", ws)
    (app / "build.log").write_text("noise")  # top-level *.log: ignored, as docker anchors at the context root
    (app / "src" / "tmp").mkdir()
    (app / "src" / "tmp" / "scratch").write_text("x")
    assert digest(fp, prof, "app", ws) == before
    (app / "src" / "deep.log").write_text("not top-level: docker sends it, so it counts")
    with_log = digest(fp, prof, "app", ws)
    assert with_log != before
    (app / "src" / "tmp" / "keep.txt").write_text("re-included by !")
    assert digest(fp, prof, "app", ws) != with_log
    rules = ignore_rules(prof, comp, ws)
    assert rules.ignored("build.log") and not rules.ignored("src/deep.log")


def test_dockerfile_stays_an_input_when_dockerignore_lists_it(fp, tmp_path):
    ws = tmp_path / "ws"
    (ws / "app").mkdir(parents=True)
    (ws / "app" / "Dockerfile").write_text("FROM scratch\n")
    (ws / "app" / ".dockerignore").write_text("Dockerfile\n.dockerignore\n*.txt\n")
    (ws / "app" / "notes.txt").write_text("x")
    age(ws)
    p = tmp_path / "p.yaml"
    p.write_text(
        yaml.safe_dump(
            {
                "name": "app",
                "cluster": {"profile": "app"},
                "namespace": "app",
                "manifests": ["m.yaml"],
                "components": [{"name": "app", "dir": "app", "build": "docker build -t {image} .", "image": "app"}],
            }
        )
    )
    prof = load_profile(str(p), cwd=tmp_path)
    f = fp.fingerprint(prof, prof.component("app"), ws)
    assert f.files == 2  # Dockerfile and .dockerignore, not notes.txt
    (ws / "app" / "Dockerfile").write_text("FROM scratch\nENV A=1\n")
    assert fp.fingerprint(prof, prof.component("app"), ws).digest != f.digest
    mapper = PathMapper(prof, ws)
    assert [c.name for c in mapper.components_for("app/Dockerfile")] == ["app"]
    assert mapper.components_for("app/notes.txt") == []


def test_missing_inputs_are_reported_and_count(fp, profile, ws):
    (ws / "kubeless" / "go.sum").unlink()
    f = fp.fingerprint(profile, profile.component("function-controller"), ws)
    assert f.missing == ("go.sum",)
    (ws / "kubeless" / "go.sum").write_text("")
    assert fp.fingerprint(profile, profile.component("function-controller"), ws).digest != f.digest


def test_missing_component_directory_is_a_config_error(fp, profile, tmp_path):
    with pytest.raises(ConfigError) as info:
        fp.fingerprint(profile, profile.component("http-trigger-controller"), tmp_path)
    assert f"components[http-trigger-controller].dir: directory {tmp_path / 'http-trigger'} does not exist" in str(
        info.value
    )
    if profile.source:
        assert str(info.value).startswith(f"{profile.source}: ")
    assert "--workspace must be the directory holding the checkouts" in str(info.value)


# --------------------------------------------------------------------------- stat cache


def test_warm_run_reads_no_file(fp, profile, ws):
    comp = profile.component("cronjob-trigger-controller")
    cold = fp.fingerprint(profile, comp, ws)
    assert cold.hashed == cold.files == len(fp.reads)
    fp.reads.clear()
    warm = CountingFingerprinter(fp.cache_dir).fingerprint(profile, comp, ws)  # a new process: cache from disk
    assert warm.digest == cold.digest and warm.hashed == 0


def test_cache_hit_does_not_open_files(fp, profile, ws):
    comp = profile.component("http-trigger-controller")
    before = fp.fingerprint(profile, comp, ws).digest
    main = ws / "http-trigger" / "cmd" / "http-trigger-controller" / "main.go"
    os.chmod(main, 0)  # size, mtime and inode unchanged: a read would fail (as non-root)
    try:
        fresh = CountingFingerprinter(fp.cache_dir)
        assert fresh.fingerprint(profile, comp, ws).digest == before
        assert fresh.reads == []
    finally:
        os.chmod(main, 0o644)


def test_recently_modified_files_are_not_trusted_from_the_cache(fp, profile, ws):
    """A write in the same timestamp tick keeps size and mtime: such files are re-read."""
    comp = profile.component("http-trigger-controller")
    main = ws / "http-trigger" / "cmd" / "http-trigger-controller" / "main.go"
    main.write_text(main.read_text() + "// a\n")  # fresh mtime
    fp.fingerprint(profile, comp, ws)
    fp.reads.clear()
    fp.fingerprint(profile, comp, ws)
    assert fp.reads == [str(main)]


def test_corrupt_cache_is_rebuilt(fp, profile, ws):
    comp = profile.component("function-controller")
    good = fp.fingerprint(profile, comp, ws)
    [cache_file] = list(fp.cache_dir.glob("stat-*.json"))
    for garbage in ("{not json", "[]", '{"format": 1, "base": "%s", "entries": {"go.mod": "x"}}' % "?", ""):
        cache_file.write_text(garbage)
        fresh = CountingFingerprinter(fp.cache_dir)
        result = fresh.fingerprint(profile, comp, ws)
        assert result.digest == good.digest and result.hashed == good.files
    # and the rebuilt cache works again
    assert CountingFingerprinter(fp.cache_dir).fingerprint(profile, comp, ws).hashed == 0


def test_cache_write_is_atomic_and_leaves_no_temp_files(fp, profile, ws):
    for c in profile.components:
        fp.fingerprint(profile, c, ws)
    names = sorted(p.name for p in fp.cache_dir.iterdir())
    assert all(n.startswith("stat-") and n.endswith(".json") for n in names)
    assert len(names) == 4  # one per checkout: kubeless, http-trigger, cronjob-trigger, runtimes


def test_components_sharing_a_checkout_share_the_cache(fp, profile, ws):
    fp.fingerprint(profile, profile.component("function-controller"), ws)
    fp.fingerprint(profile, profile.component("function-image-builder"), ws)
    fresh = CountingFingerprinter(fp.cache_dir)
    assert fresh.fingerprint(profile, profile.component("function-controller"), ws).hashed == 0
    assert fresh.fingerprint(profile, profile.component("function-image-builder"), ws).hashed == 0


def test_unwritable_cache_dir_still_gives_fingerprints(profile, ws, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    f = Fingerprinter(blocker / "cache").fingerprint(profile, profile.component("function-controller"), ws)
    assert len(f.digest) == 64


@pytest.mark.slow
def test_twenty_thousand_files_fingerprint_fast_when_warm(tmp_path):
    ws = tmp_path / "big"
    for d in range(200):
        sub = ws / "app" / "src" / f"d{d:03}"
        sub.mkdir(parents=True)
        for i in range(100):
            (sub / f"f{i:03}.go").write_text(f"package d{d}\n// {i}\n")
    (ws / "app" / "bundles").mkdir()
    age(ws)
    p = tmp_path / "p.yaml"
    p.write_text(
        yaml.safe_dump(
            {
                "name": "big",
                "cluster": {"profile": "big"},
                "namespace": "big",
                "manifests": ["m.yaml"],
                "ignore": ["bundles/", "*.tmp", "docker/*/*-controller", "*.bak", "ksonnet-lib/"],
                "components": [{"name": "app", "dir": "app", "build": "make IMAGE={image}", "image": "app"}],
            }
        )
    )
    prof = load_profile(str(p), cwd=tmp_path)
    fp = Fingerprinter(tmp_path / "cache")
    cold = fp.fingerprint(prof, prof.component("app"), ws)
    assert cold.files == 20_000
    warm_same_process = fp.fingerprint(prof, prof.component("app"), ws)
    warm_new_process = Fingerprinter(tmp_path / "cache").fingerprint(prof, prof.component("app"), ws)
    assert warm_same_process.digest == warm_new_process.digest == cold.digest
    # Warm runs read no file: only stats (speed is measured by `scripts/bench fingerprint`).
    assert warm_same_process.hashed == 0
    assert warm_new_process.hashed == 0
