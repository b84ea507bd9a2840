"""Profile loading and validation: every bad input names the file, the line, the key path and
what was expected versus found."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from devloop.base.errors import ConfigError
from devloop.profile.lookup import (
    Component,
    list_profiles,
    load_profile,
    parse_image_ref,
)

REPO = Path(__file__).resolve().parents[2]
BUNDLED = REPO / "devloop" / "profile" / "bundled" / "kubeless.yaml"


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """A cwd without ./profiles and an empty user config dir."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    return cwd


def base() -> dict:
    return yaml.safe_load(BUNDLED.read_text())


def write(tmp_path: Path, data, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def error_for(tmp_path: Path, data) -> str:
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_profile(str(path), cwd=tmp_path)
    assert info.value.exit_code == 2
    text = str(info.value)
    assert str(path) in text, text  # every message names the file
    return text


def mutate(fn) -> dict:
    data = base()
    fn(data)
    return data


# --------------------------------------------------------------------------- the bundled profile


def test_bundled_profile_is_the_default_and_encodes_the_kubeless_loop(isolated):
    p = load_profile(None, cwd=isolated)
    assert p.source == BUNDLED or p.source.resolve() == BUNDLED.resolve()
    assert p.name == "kubeless"
    assert p.cluster.profile == "devloop-kubeless"
    assert p.cluster.driver == "docker"
    assert p.cluster.kubernetes_version == "v1.21.14"
    assert p.cluster.addons == ["ingress"]
    assert p.cluster.cpus == 4 and p.cluster.memory == "8g"
    assert p.namespace == "kubeless"
    assert [c.name for c in p.components] == [
        "function-controller",
        "function-image-builder",
        "http-trigger-controller",
        "cronjob-trigger-controller",
        "runtime-python",
    ]
    rt = p.component("runtime-python")
    assert rt.dir == "runtimes" and rt.runtime is not None and rt.runtime.runtime_name == "python3.8"
    assert (rt.runtime.phase, rt.runtime.config.name, rt.runtime.controller.name) == (
        "runtime",
        "kubeless-config",
        "kubeless-controller-manager",
    )
    fc = p.component("function-controller")
    assert fc.dir == "kubeless"
    assert fc.build_command("kubeless-function-controller:dev-0123456789ab") == (
        "make function-controller CONTROLLER_IMAGE=kubeless-function-controller:dev-0123456789ab"
    )
    assert p.component("http-trigger-controller").build == "make http-controller-image HTTP_CONTROLLER_IMAGE={image}"
    assert p.component("cronjob-trigger-controller").dir == "cronjob-trigger"
    assert p.component("function-image-builder").matches("kubeless/function-image-builder:latest")
    assert p.cleanup_resources() == [
        ("httptriggers", "kubeless.io"),
        ("cronjobtriggers", "kubeless.io"),
        ("functions", "kubeless.io"),
    ]
    assert [m.path for m in p.manifests] == ["kubeless/kubeless.yaml"]
    assert p.timeouts.rollout == 180


def test_replaces_matches_repo_with_any_tag_or_digest_but_not_other_repos():
    c = Component(name="fc", dir="k", build="make {image}", image="fc", replaces=["kubeless/function-controller"])
    assert c.matches("kubeless/function-controller")
    assert c.matches("kubeless/function-controller:latest")
    assert c.matches("docker.io/kubeless/function-controller:v1.0.8")
    assert c.matches("kubeless/function-controller@sha256:" + "a" * 64)
    assert not c.matches("kubeless/function-controller-x:latest")
    assert not c.matches("other/function-controller:latest")


def test_replaces_with_a_tag_matches_only_that_tag():
    c = Component(name="fc", dir="k", build="make {image}", image="fc", replaces="busybox:1.36")
    assert c.matches("docker.io/library/busybox:1.36")
    assert not c.matches("busybox:1.35")
    c2 = Component(name="fc", dir="k", build="make {image}", image="fc", replaces=["busybox:latest"])
    assert c2.matches("busybox")  # no tag means latest


def test_image_ref_parsing():
    assert parse_image_ref("kubeless/go-init:1.13@sha256:" + "b" * 64).tag == "1.13"
    assert parse_image_ref("localhost:5000/x/y:dev").repo == "localhost:5000/x/y"
    assert parse_image_ref("not an image") is None


def test_build_command_quotes_the_tag_for_the_shell():
    c = Component(name="fc", dir="k", build="make x IMG={image} && echo {image}", image="fc")
    assert c.build_command("fc:dev-1") == "make x IMG=fc:dev-1 && echo fc:dev-1"


def test_name_defaults_to_the_file_stem(tmp_path):
    data = base()
    del data["name"]
    path = write(tmp_path, data, "mine.yaml")
    assert load_profile(str(path), cwd=tmp_path).name == "mine"


def test_jsonnet_manifest_entry(tmp_path):
    data = mutate(
        lambda d: d.__setitem__(
            "manifests",
            [
                {
                    "jsonnet": "kubeless/kubeless.jsonnet",
                    "jpath": ["kubeless/ksonnet-lib", "runtimes"],
                    "ext_vars": {"a": "b"},
                }
            ],
        )
    )
    p = load_profile(str(write(tmp_path, data)), cwd=tmp_path)
    m = p.manifests[0]
    assert (m.kind, m.path, m.jpath, m.ext_vars) == (
        "jsonnet",
        "kubeless/kubeless.jsonnet",
        ["kubeless/ksonnet-lib", "runtimes"],
        {"a": "b"},
    )


# --------------------------------------------------------------------------- lookup order


def test_lookup_order_project_then_user_then_bundled(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    cwd = tmp_path / "proj"
    (cwd / "profiles").mkdir(parents=True)
    (tmp_path / "cfg" / "devloop" / "profiles").mkdir(parents=True)
    user = write(
        tmp_path / "cfg" / "devloop" / "profiles",
        mutate(lambda d: d.__setitem__("namespace", "user-ns")),
        "kubeless.yaml",
    )
    assert load_profile("kubeless", cwd=cwd).namespace == "user-ns"
    assert load_profile("kubeless", cwd=cwd).source == user
    write(cwd / "profiles", mutate(lambda d: d.__setitem__("namespace", "project-ns")), "kubeless.yaml")
    assert load_profile("kubeless", cwd=cwd).namespace == "project-ns"
    listed = {p.name: p.origin for p in list_profiles(cwd)}
    assert listed == {"kubeless": "project"}


def test_a_path_is_loaded_as_a_path(tmp_path, isolated):
    path = write(tmp_path, mutate(lambda d: d.__setitem__("namespace", "by-path")), "x.yaml")
    assert load_profile(str(path), cwd=isolated).namespace == "by-path"
    (isolated / "sub").mkdir()
    write(isolated / "sub", mutate(lambda d: d.__setitem__("namespace", "rel")), "y.yaml")
    assert load_profile("sub/y.yaml", cwd=isolated).namespace == "rel"


def test_list_profiles_includes_user_and_bundled(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    (tmp_path / "cfg" / "devloop" / "profiles").mkdir(parents=True)
    write(tmp_path / "cfg" / "devloop" / "profiles", base(), "other.yaml")
    (tmp_path / "cwd").mkdir()
    listed = {p.name: p.origin for p in list_profiles(tmp_path / "cwd")}
    assert listed == {"kubeless": "bundled", "other": "user"}


# --------------------------------------------------------------------------- bad inputs


def test_unknown_profile_name_lists_where_it_looked_and_what_exists(isolated):
    with pytest.raises(ConfigError) as info:
        load_profile("kubeles", cwd=isolated)
    text = str(info.value)
    assert "no profile named 'kubeles'" in text
    assert str(isolated / "profiles" / "kubeles.yaml") in text
    assert "devloop/profiles/kubeles.yaml" in text  # the user config dir
    assert "available profiles: kubeless" in text


def test_missing_profile_file(isolated):
    with pytest.raises(ConfigError) as info:
        load_profile("nope/absent.yaml", cwd=isolated)
    assert f"profile file {isolated / 'nope' / 'absent.yaml'} does not exist" in str(info.value)


def test_yaml_syntax_error_names_file_line_and_column(tmp_path):
    text = "name: x\ncluster:\n  profile: [unclosed\nnamespace: y\n"
    msg = error_for(tmp_path, text)
    assert msg.startswith(f"{tmp_path / 'p.yaml'}:4:10: invalid YAML"), msg


def test_tab_indentation_is_a_yaml_error_with_position(tmp_path):
    msg = error_for(tmp_path, "name: x\ncluster:\n\tprofile: y\n")
    assert f"{tmp_path / 'p.yaml'}:3:1: invalid YAML" in msg


def test_duplicate_key_is_an_error(tmp_path):
    text = BUNDLED.read_text() + "\nnamespace: other\n"
    msg = error_for(tmp_path, text)
    assert "duplicate key 'namespace' (first defined on line" in msg


def test_empty_file(tmp_path):
    msg = error_for(tmp_path, "# nothing here\n")
    assert "profile is empty; expected a mapping with keys name, cluster, namespace, components, manifests" in msg


def test_top_level_not_a_mapping(tmp_path):
    msg = error_for(tmp_path, "- a\n- b\n")
    assert msg == f"{tmp_path / 'p.yaml'}:1: expected the profile to be a mapping of keys, found list"


def test_unknown_top_level_key_lists_valid_keys(tmp_path):
    msg = error_for(tmp_path, mutate(lambda d: d.__setitem__("namespaces", "x")))
    assert "namespaces: unknown key 'namespaces'; expected one of: name, cluster, namespace, components," in msg
    assert "hint: unknown keys are errors" in msg


def test_unknown_component_key_is_named_by_component(tmp_path):
    msg = error_for(tmp_path, mutate(lambda d: d["components"][2].__setitem__("bulid", "make")))
    assert (
        "components[http-trigger-controller].bulid: unknown key 'bulid' in components[http-trigger-controller]; "
        "expected one of: name, dir, build, image, replaces, inputs, ignore, env"
    ) in msg


def test_error_carries_the_line_of_the_key(tmp_path):
    data = mutate(lambda d: d["components"][2].__setitem__("bulid", "make"))
    path = write(tmp_path, data)
    line = next(i for i, ln in enumerate(path.read_text().splitlines(), 1) if "bulid" in ln)
    msg = error_for(tmp_path, data)
    assert msg.startswith(f"{path}:{line}: components[http-trigger-controller].bulid"), msg


def test_build_without_image_placeholder(tmp_path):
    msg = error_for(tmp_path, mutate(lambda d: d["components"][2].__setitem__("build", "make http-controller-image")))
    assert (
        "components[http-trigger-controller].build: expected the build command to contain the placeholder {image}"
        " (the tag devloop chooses), found 'make http-controller-image'"
    ) in msg


def test_missing_build(tmp_path):
    msg = error_for(tmp_path, mutate(lambda d: d["components"][1].pop("build")))
    assert "components[function-image-builder].build: required key is missing" in msg


def test_component_without_name_is_named_by_index(tmp_path):
    msg = error_for(tmp_path, mutate(lambda d: d["components"][3].pop("name")))
    assert "components[3].name: required key is missing" in msg


def test_duplicate_component_names(tmp_path):
    msg = error_for(tmp_path, mutate(lambda d: d["components"][1].__setitem__("name", "function-controller")))
    assert (
        "components[function-controller].name: expected unique component names, found 'function-controller' again"
        in msg
    )
    assert "(first at components[0])" in msg


def test_two_components_with_one_image(tmp_path):
    msg = error_for(tmp_path, mutate(lambda d: d["components"][1].__setitem__("image", "kubeless-function-controller")))
    assert (
        "components[function-image-builder].image: expected each component to build its own image, found "
        "'kubeless-function-controller' also in component 'function-controller'"
    ) in msg


def test_image_with_tag(tmp_path):
    msg = error_for(
        tmp_path, mutate(lambda d: d["components"][0].__setitem__("image", "kubeless-function-controller:latest"))
    )
    assert (
        "components[function-controller].image: expected an image repository without tag or digest (devloop picks "
        "the tag), found 'kubeless-function-controller:latest'"
    ) in msg


def test_image_with_uppercase(tmp_path):
    msg = error_for(tmp_path, mutate(lambda d: d["components"][0].__setitem__("image", "Kubeless/Controller")))
    assert "components[function-controller].image: expected a valid docker repository name" in msg
    assert "found 'Kubeless/Controller'" in msg


def test_bad_replaces_entry_is_named_by_index(tmp_path):
    msg = error_for(
        tmp_path, mutate(lambda d: d["components"][0].__setitem__("replaces", ["kubeless/ok", "Bad Image"]))
    )
    assert (
        "components[function-controller].replaces[1]: expected an image reference like "
        "'kubeless/function-controller' or 'repo:tag', found 'Bad Image'"
    ) in msg


def test_same_image_replaced_by_two_components(tmp_path):
    msg = error_for(
        tmp_path, mutate(lambda d: d["components"][2].__setitem__("replaces", ["kubeless/function-controller"]))
    )
    assert (
        "components[http-trigger-controller].replaces[0]: expected each image reference to be replaced by one "
        "component, found 'kubeless/function-controller' also in component 'function-controller'"
    ) in msg


def test_dir_escaping_the_workspace(tmp_path):
    msg = error_for(tmp_path, mutate(lambda d: d["components"][0].__setitem__("dir", "kubeless/../../etc")))
    assert (
        "components[function-controller].dir: expected the component directory to stay inside the workspace, "
        "found 'kubeless/../../etc'"
    ) in msg


def test_absolute_dir(tmp_path):
    msg = error_for(tmp_path, mutate(lambda d: d["components"][0].__setitem__("dir", "/src/kubeless")))
    assert "components[function-controller].dir: expected a path relative to the workspace" in msg
    assert "found absolute path '/src/kubeless'" in msg


def test_input_escaping_is_named_by_index(tmp_path):
    msg = error_for(tmp_path, mutate(lambda d: d["components"][3]["inputs"].__setitem__(2, "../kubeless/pkg")))
    assert (
        "components[cronjob-trigger-controller].inputs[2]: expected an input to stay inside the workspace, "
        "found '../kubeless/pkg'"
    ) in msg


def test_empty_inputs(tmp_path):
    msg = error_for(tmp_path, mutate(lambda d: d["components"][0].__setitem__("inputs", [])))
    assert "components[function-controller].inputs: expected at least 1 item(s), found an empty list" in msg


def test_inputs_not_a_list(tmp_path):
    msg = error_for(tmp_path, mutate(lambda d: d["components"][0].__setitem__("inputs", "pkg")))
    assert "components[function-controller].inputs: expected a list, found string 'pkg'" in msg


def test_env_values_must_be_strings(tmp_path):
    msg = error_for(tmp_path, mutate(lambda d: d["components"][0].__setitem__("env", {"GOFLAGS": 1})))
    assert "components[function-controller].env.GOFLAGS: expected a string, found number 1" in msg


def test_env_names_must_be_valid(tmp_path):
    msg = error_for(tmp_path, mutate(lambda d: d["components"][0].__setitem__("env", {"GO FLAGS": "x"})))
    assert "components[function-controller].env: expected environment variable names" in msg
    assert "found 'GO FLAGS'" in msg


def test_cleanup_entry_without_group(tmp_path):
    msg = error_for(tmp_path, mutate(lambda d: d["cleanup"].__setitem__(1, "cronjobtriggers")))
    assert (
        "cleanup[1]: expected a resource as plural.group like 'functions.kubeless.io', found 'cronjobtriggers'" in msg
    )


def test_cleanup_entry_with_uppercase_kind(tmp_path):
    msg = error_for(tmp_path, mutate(lambda d: d["cleanup"].__setitem__(0, "Function.kubeless.io")))
    assert "cleanup[0]: expected a resource as plural.group" in msg and "found 'Function.kubeless.io'" in msg


def test_cpus_not_a_number(tmp_path):
    msg = error_for(tmp_path, mutate(lambda d: d["cluster"].__setitem__("cpus", "lots")))
    assert "cluster.cpus: expected a whole number, found string 'lots'" in msg


def test_cpus_zero(tmp_path):
    msg = error_for(tmp_path, mutate(lambda d: d["cluster"].__setitem__("cpus", 0)))
    assert "cluster.cpus: expected at least 1 CPU, found 0" in msg


def test_memory_unparseable(tmp_path):
    msg = error_for(tmp_path, mutate(lambda d: d["cluster"].__setitem__("memory", "eight gigs")))
    assert "cluster.memory: expected a memory size like '8g', '8192mb', 'max' or 'no-limit', found 'eight gigs'" in msg


def test_kubernetes_version_as_a_yaml_number(tmp_path):
    msg = error_for(tmp_path, BUNDLED.read_text().replace("kubernetes_version: v1.21.14", "kubernetes_version: 1.21"))
    assert (
        "cluster.kubernetes_version: expected a version string like 'v1.21.14' (quote it in YAML), found number 1.21"
    ) in msg


def test_kubernetes_version_malformed(tmp_path):
    msg = error_for(tmp_path, mutate(lambda d: d["cluster"].__setitem__("kubernetes_version", "1.21")))
    assert "cluster.kubernetes_version: expected a Kubernetes version like 'v1.21.14', found '1.21'" in msg


def test_allow_unsupported_not_a_bool(tmp_path):
    msg = error_for(tmp_path, mutate(lambda d: d["cluster"].__setitem__("allow_unsupported_kubernetes", "sometimes")))
    assert "cluster.allow_unsupported_kubernetes: expected true or false, found string 'sometimes'" in msg


def test_missing_cluster_profile(tmp_path):
    msg = error_for(tmp_path, mutate(lambda d: d["cluster"].pop("profile")))
    assert "cluster.profile: required key is missing" in msg


def test_bad_minikube_profile_name(tmp_path):
    msg = error_for(tmp_path, mutate(lambda d: d["cluster"].__setitem__("profile", "dev loop")))
    assert "cluster.profile: expected a minikube profile name" in msg and "found 'dev loop'" in msg


def test_addon_name(tmp_path):
    msg = error_for(tmp_path, mutate(lambda d: d["cluster"].__setitem__("addons", ["ingress", "Ingress DNS"])))
    assert "cluster.addons[1]: expected a minikube addon name such as 'ingress', found 'Ingress DNS'" in msg


def test_cluster_not_a_mapping(tmp_path):
    msg = error_for(tmp_path, mutate(lambda d: d.__setitem__("cluster", "minikube")))
    assert "cluster: expected a mapping, found string 'minikube'" in msg


def test_bad_namespace(tmp_path):
    msg = error_for(tmp_path, mutate(lambda d: d.__setitem__("namespace", "Kubeless_NS")))
    assert (
        "namespace: expected a Kubernetes namespace name (lowercase DNS label, ≤ 63 chars), found 'Kubeless_NS'" in msg
    )


def test_no_manifests(tmp_path):
    msg = error_for(tmp_path, mutate(lambda d: d.__setitem__("manifests", [])))
    assert "manifests: expected at least 1 item(s), found an empty list" in msg


def test_manifest_entry_of_wrong_type(tmp_path):
    msg = error_for(tmp_path, mutate(lambda d: d.__setitem__("manifests", [5])))
    assert (
        "manifests[0]: expected a YAML path (string) or a mapping {jsonnet: path, jpath: [dirs]}, found number 5"
    ) in msg


def test_manifest_typo_in_jsonnet_key(tmp_path):
    msg = error_for(tmp_path, mutate(lambda d: d.__setitem__("manifests", [{"jsonet": "k.jsonnet"}])))
    assert (
        "manifests[0].jsonet: unknown key 'jsonet' in manifests[0]; expected one of: yaml, jsonnet, jpath, ext_vars"
        in msg
    )


def test_manifest_jpath_not_a_list(tmp_path):
    msg = error_for(tmp_path, mutate(lambda d: d.__setitem__("manifests", [{"jsonnet": "k.jsonnet", "jpath": "lib"}])))
    assert "manifests[0].jpath: expected a list, found string 'lib'" in msg


def test_manifest_jpath_for_a_yaml_file(tmp_path):
    msg = error_for(tmp_path, mutate(lambda d: d.__setitem__("manifests", [{"yaml": "k.yaml", "jpath": ["lib"]}])))
    assert "manifests[0]: 'jpath' and 'ext_vars' only apply to a jsonnet manifest" in msg


def test_manifest_path_escaping(tmp_path):
    msg = error_for(tmp_path, mutate(lambda d: d.__setitem__("manifests", ["../outside.yaml"])))
    assert "manifests[0]: expected a manifest to stay inside the workspace, found '../outside.yaml'" in msg


def test_negative_timeout(tmp_path):
    msg = error_for(tmp_path, mutate(lambda d: d["timeouts"].__setitem__("rollout", -5)))
    assert "timeouts.rollout: expected a number > 0, found -5" in msg


def test_timeout_typo(tmp_path):
    msg = error_for(tmp_path, mutate(lambda d: d["timeouts"].__setitem__("rolout", 5)))
    assert "timeouts.rolout: unknown key 'rolout' in timeouts; expected one of: cluster_start, addons, build," in msg


def test_several_problems_are_all_reported(tmp_path):
    def both(d):
        d["components"][0]["build"] = "make"
        d["cleanup"] = ["functions"]

    msg = error_for(tmp_path, mutate(both))
    assert "2 problems in the profile" in msg
    assert "components[function-controller].build" in msg and "cleanup[0]" in msg


def test_profile_component_lookup_names_the_known_components(isolated):
    p = load_profile(None, cwd=isolated)
    with pytest.raises(ConfigError) as info:
        p.component("controller")
    assert "profile 'kubeless' has no component 'controller'; its components are: function-controller," in str(
        info.value
    )


def test_deep_copy_of_base_is_not_shared():
    # guard for the helpers above: mutations must not leak between tests
    a, b = base(), base()
    a["components"][0]["name"] = "x"
    assert b["components"][0]["name"] == "function-controller"
    assert copy.deepcopy(a) == a


def test_bundled_profile_ships_inside_the_package():
    from importlib import resources

    shipped = resources.files("devloop.profile") / "bundled" / "kubeless.yaml"
    assert shipped.is_file()
    assert "name: kubeless" in shipped.read_text()
    assert (REPO / "profiles" / "kubeless.yaml").resolve() == BUNDLED.resolve()  # top-level link


@pytest.mark.parametrize("name", ["dev_loop", "x", "-dev", "dev-", "dev..loop"])
def test_profile_names_minikube_would_refuse_are_refused_here(tmp_path, name):
    msg = error_for(tmp_path, mutate(lambda d: d["cluster"].__setitem__("profile", name)))
    assert "cluster.profile: expected a minikube profile name" in msg and f"found {name!r}" in msg


@pytest.mark.parametrize("name", ["devloop-kubeless", "dl", "a.b-c", "Dev2"])
def test_profile_names_minikube_accepts_load(tmp_path, name):
    path = tmp_path / "p.yaml"
    data = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "devloop" / "profile" / "bundled" / "kubeless.yaml").read_text()
    )
    data["cluster"]["profile"] = name
    path.write_text(yaml.safe_dump(data))
    assert load_profile(str(path), cwd=tmp_path).cluster.profile == name
