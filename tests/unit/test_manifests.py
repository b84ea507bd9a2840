"""Manifest loading (YAML, jsonnet), image substitution, pull policy and ordering."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from devloop.base.errors import ConfigError
from devloop.manifests.render import (
    configmaps_read_by,
    dump_yaml,
    load_manifests,
    object_ref,
    order_for_apply,
    order_for_delete,
    parse_yaml_manifests,
    render,
)
from devloop.profile.lookup import Profile, load_profile

REPO = Path(__file__).resolve().parents[2]
WORKSPACE = REPO / "tests" / "fixtures" / "workspace"
BUILT = {
    "function-controller": "kubeless-function-controller:dev-111111111111",
    "function-image-builder": "kubeless-function-image-builder:dev-222222222222",
    "http-trigger-controller": "http-trigger-controller:dev-333333333333",
    "cronjob-trigger-controller": "cronjob-trigger-controller:dev-444444444444",
}


@pytest.fixture(scope="module")
def profile() -> Profile:
    return load_profile("kubeless", cwd=REPO)


@pytest.fixture(scope="module")
def objs(profile) -> list[dict]:
    return load_manifests(profile, WORKSPACE)


def by_ref(objects, ref):
    return next(o for o in objects if object_ref(o) == ref)


DEPLOY = "Deployment/kubeless/kubeless-controller-manager"
CONFIG = "ConfigMap/kubeless/kubeless-config"


def containers_of(obj):
    return {c["name"]: c for c in obj["spec"]["template"]["spec"]["containers"]}


def profile_with(tmp_path, **changes) -> Profile:
    data = yaml.safe_load((REPO / "devloop" / "profile" / "bundled" / "kubeless.yaml").read_text())
    data.update(changes)
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_profile(str(path), cwd=tmp_path)


# --------------------------------------------------------------------------- loading


def test_loads_the_kubeless_manifest_of_the_sample_workspace(objs):
    assert [object_ref(o) for o in objs] == [
        CONFIG,
        DEPLOY,
        "ServiceAccount/kubeless/controller-acct",
        "ClusterRole/kubeless-controller-deployer",
        "ClusterRoleBinding/kubeless-controller-deployer",
        "CustomResourceDefinition/functions.kubeless.io",
        "CustomResourceDefinition/httptriggers.kubeless.io",
        "CustomResourceDefinition/cronjobtriggers.kubeless.io",
    ]


def test_empty_documents_are_skipped_and_lists_flattened(tmp_path):
    text = """
---
---
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}
- {apiVersion: v1, kind: ConfigMapList, items: [{apiVersion: v1, kind: ConfigMap, metadata: {name: b}}]}
---
apiVersion: v1
kind: Service
metadata: {name: c}
"""
    objs = parse_yaml_manifests(text, tmp_path / "m.yaml")
    assert [object_ref(o) for o in objs] == ["ConfigMap/a", "ConfigMap/b", "Service/c"]


def test_missing_manifest_names_the_file_and_the_profile_key(profile, tmp_path):
    with pytest.raises(ConfigError) as info:
        load_manifests(profile, tmp_path)
    text = str(info.value)
    assert f"manifest {tmp_path / 'kubeless' / 'kubeless.yaml'} does not exist" in text
    assert f"(profile {profile.source}, manifests[0])" in text
    assert "--workspace" in text


def test_yaml_syntax_error_names_file_line_column(tmp_path):
    with pytest.raises(ConfigError) as info:
        parse_yaml_manifests("apiVersion: v1\nkind: [x\n", tmp_path / "m.yaml")
    assert str(info.value).startswith(f"{tmp_path / 'm.yaml'}:3:1: invalid YAML")


def test_document_that_is_not_an_object(tmp_path):
    with pytest.raises(ConfigError) as info:
        parse_yaml_manifests(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n- just\n- a list\n", tmp_path / "m.yaml"
        )
    assert (
        str(info.value) == f"{tmp_path / 'm.yaml'}:5: document 2: expected a Kubernetes object (a mapping), found list"
    )


def test_object_without_kind(tmp_path):
    with pytest.raises(ConfigError) as info:
        parse_yaml_manifests("apiVersion: v1\nmetadata: {name: a}\n", tmp_path / "m.yaml")
    assert (
        "document 1: expected a Kubernetes object with apiVersion and kind, found keys ['apiVersion', 'metadata']"
        in str(info.value)
    )


def write_jsonnet_workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "lib").mkdir(parents=True)
    (ws / "app").mkdir()
    (ws / "lib" / "k.libsonnet").write_text(
        "{ configMap(name, data):: {apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: name}, data: data} }\n"
    )
    (ws / "app" / "main.jsonnet").write_text("""
local k = import 'k.libsonnet';
{
  zconfig: k.configMap('z', {mode: std.extVar('mode')}),
  nested: { deploy: {apiVersion: 'apps/v1', kind: 'Deployment', metadata: {name: 'd', namespace: 'ns'},
                     spec: {template: {spec: {containers: [{name: 'c', image: 'kubeless/function-controller:latest'}]}}}} },
  alist: [k.configMap('a1', {}), null, k.configMap('a2', {})],
}
""")
    return ws


def test_jsonnet_is_rendered_with_jpath_and_walked_like_kubecfg(tmp_path):
    ws = write_jsonnet_workspace(tmp_path)
    profile = profile_with(
        tmp_path, manifests=[{"jsonnet": "app/main.jsonnet", "jpath": ["lib"], "ext_vars": {"mode": "dev"}}]
    )
    objs = load_manifests(profile, ws)
    # keys in sorted order, lists in order, null skipped
    assert [object_ref(o) for o in objs] == ["ConfigMap/a1", "ConfigMap/a2", "Deployment/ns/d", "ConfigMap/z"]
    assert objs[-1]["data"] == {"mode": "dev"}
    rendered = render(objs, {"function-controller": BUILT["function-controller"]}, profile)
    assert rendered.objects[2]["spec"]["template"]["spec"]["containers"][0]["image"] == BUILT["function-controller"]


def test_jsonnet_error_names_the_file_and_the_jpath(tmp_path):
    ws = write_jsonnet_workspace(tmp_path)
    profile = profile_with(tmp_path, manifests=[{"jsonnet": "app/main.jsonnet", "ext_vars": {"mode": "x"}}])
    with pytest.raises(ConfigError) as info:
        load_manifests(profile, ws)
    text = str(info.value)
    assert f"{ws / 'app' / 'main.jsonnet'}: jsonnet evaluation failed:" in text
    assert "k.libsonnet" in text
    assert "no jpath directories are set in the profile" in text


def test_jsonnet_output_with_a_scalar_where_objects_are_expected(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "bad.jsonnet").write_text("{ a: { b: 5 } }")
    profile = profile_with(tmp_path, manifests=[{"jsonnet": "bad.jsonnet"}])
    with pytest.raises(ConfigError) as info:
        load_manifests(profile, ws)
    assert str(info.value) == f"{ws / 'bad.jsonnet'}: looking for Kubernetes objects at $.a.b, found int 5"


# --------------------------------------------------------------------------- rendering


def test_every_container_of_the_controller_manager_gets_its_built_tag(objs, profile):
    r = render(objs, BUILT, profile)
    cs = containers_of(by_ref(r.objects, DEPLOY))
    assert cs["kubeless-function-controller"]["image"] == BUILT["function-controller"]
    assert cs["http-trigger-controller"]["image"] == BUILT["http-trigger-controller"]
    assert cs["cronjob-trigger-controller"]["image"] == BUILT["cronjob-trigger-controller"]
    assert {c["imagePullPolicy"] for c in cs.values()} == {"IfNotPresent"}


def test_builder_image_in_the_configmap_is_replaced(objs, profile):
    r = render(objs, BUILT, profile)
    cm = by_ref(r.objects, CONFIG)
    assert cm["data"]["builder-image"] == BUILT["function-image-builder"]
    # provision-image looks like an image too but no component replaces it
    assert cm["data"]["provision-image"] == by_ref(objs, CONFIG)["data"]["provision-image"]


def test_substitutions_are_reported_with_object_path_old_and_new(objs, profile):
    r = render(
        objs,
        {
            "http-trigger-controller": BUILT["http-trigger-controller"],
            "function-image-builder": BUILT["function-image-builder"],
        },
        profile,
    )
    got = {(s.object, s.path, s.old, s.new, s.component) for s in r.substitutions}
    assert got == {
        (
            CONFIG,
            "data.builder-image",
            "kubeless/function-image-builder:latest",
            BUILT["function-image-builder"],
            "function-image-builder",
        ),
        (
            DEPLOY,
            "spec.template.spec.containers[http-trigger-controller].image",
            "kubeless/http-trigger-controller:v1.0.3",
            BUILT["http-trigger-controller"],
            "http-trigger-controller",
        ),
    }


def test_components_not_built_keep_their_references(objs, profile):
    r = render(objs, {"function-controller": BUILT["function-controller"]}, profile)
    cs = containers_of(by_ref(r.objects, DEPLOY))
    assert cs["kubeless-function-controller"]["image"] == BUILT["function-controller"]
    assert cs["http-trigger-controller"]["image"] == "kubeless/http-trigger-controller:v1.0.3"
    assert by_ref(r.objects, CONFIG)["data"]["builder-image"] == "kubeless/function-image-builder:latest"
    assert render(objs, {}, profile).substitutions == []


def test_pull_policy_is_set_only_on_containers_using_a_built_image(profile):
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "n"},
        "spec": {
            "template": {
                "spec": {
                    "initContainers": [
                        {"name": "init", "image": "kubeless/function-controller:latest"},
                        {"name": "other-init", "image": "busybox:latest"},
                    ],
                    "containers": [
                        {"name": "main", "image": "kubeless/http-trigger-controller", "imagePullPolicy": "Always"},
                        {"name": "sidecar", "image": "nginx:latest"},
                    ],
                }
            }
        },
    }
    r = render([deploy], BUILT, profile)
    spec = r.objects[0]["spec"]["template"]["spec"]
    init = {c["name"]: c for c in spec["initContainers"]}
    main = {c["name"]: c for c in spec["containers"]}
    assert init["init"] == {"name": "init", "image": BUILT["function-controller"], "imagePullPolicy": "IfNotPresent"}
    assert init["other-init"] == {"name": "other-init", "image": "busybox:latest"}
    assert main["main"]["imagePullPolicy"] == "IfNotPresent"  # was Always: would pull a local-only tag and fail
    assert main["sidecar"] == {"name": "sidecar", "image": "nginx:latest"}
    assert any(s.path == "spec.template.spec.initContainers[init].image" for s in r.substitutions)


@pytest.mark.parametrize(
    "kind,spec_path",
    [
        ("Pod", ("spec",)),
        ("StatefulSet", ("spec", "template", "spec")),
        ("DaemonSet", ("spec", "template", "spec")),
        ("Job", ("spec", "template", "spec")),
        ("CronJob", ("spec", "jobTemplate", "spec", "template", "spec")),
    ],
)
def test_all_pod_template_kinds(profile, kind, spec_path):
    pod_spec = {"containers": [{"name": "c", "image": "docker.io/kubeless/cronjob-trigger-controller:v1.0.3"}]}
    obj: dict = {"apiVersion": "v1", "kind": kind, "metadata": {"name": "x", "namespace": "n"}}
    cur = obj
    for key in spec_path[:-1]:
        cur = cur.setdefault(key, {})
    cur[spec_path[-1]] = pod_spec
    r = render([obj], BUILT, profile)
    out = r.objects[0]
    for key in spec_path:
        out = out[key]
    assert out["containers"][0]["image"] == BUILT["cronjob-trigger-controller"]
    assert r.substitutions[0].path == ".".join(spec_path) + ".containers[c].image"


def test_latest_tag_in_a_profile_is_rendered_with_the_dev_tag(profile):
    """A manifest keeping `:latest` (pull policy Always by default) must never reach the cluster
    for a built component: that would be ImagePullBackOff on an image only minikube has."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "kubeless/function-controller:latest"}]},
    }
    c = render([pod], BUILT, profile).objects[0]["spec"]["containers"][0]
    assert c == {"name": "c", "image": BUILT["function-controller"], "imagePullPolicy": "IfNotPresent"}


def test_runtime_images_json_values_are_replaced_and_the_rest_kept_byte_for_byte(tmp_path):
    profile = profile_with(
        tmp_path,
        components=[
            {
                "name": "python-runtime",
                "dir": "runtimes",
                "build": "make push IMAGE={image}",
                "image": "dev-python",
                "replaces": ["kubeless/python"],
            }
        ],
    )
    text = (
        '[{"ID": "python", "versions": [{"images": [{"command": "pip install", "image": "python:3.8", '
        '"phase": "installation"}, {"image":"kubeless/python@sha256:' + "5" * 64 + '", "phase": "runtime"}], '
        '"name": "python38"}]}, {"ID": "x", "note": "the string \\"image\\": \\"kubeless/python\\" stays"}]'
    )
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "kubeless-config", "namespace": "kubeless"},
        "data": {"runtime-images": text},
    }
    r = render([cm], {"python-runtime": "dev-python:dev-abc"}, profile)
    out = r.objects[0]["data"]["runtime-images"]
    assert out == text.replace('"kubeless/python@sha256:' + "5" * 64 + '"', '"dev-python:dev-abc"')
    parsed = json.loads(out)
    assert parsed[0]["versions"][0]["images"][1]["image"] == "dev-python:dev-abc"
    assert parsed[0]["versions"][0]["images"][0]["image"] == "python:3.8"
    [sub] = r.substitutions
    assert (sub.path, sub.old, sub.new) == (
        "data.runtime-images#image[1]",
        "kubeless/python@sha256:" + "5" * 64,
        "dev-python:dev-abc",
    )


def test_runtime_images_in_the_real_manifest(objs, tmp_path):
    profile = profile_with(
        tmp_path,
        components=[
            {
                "name": "nodejs",
                "dir": "runtimes",
                "build": "make IMAGE={image}",
                "image": "dev-nodejs",
                "replaces": ["kubeless/nodejs"],
            }
        ],
    )
    r = render(objs, {"nodejs": "dev-nodejs:dev-1"}, profile)
    before = json.loads(by_ref(objs, CONFIG)["data"]["runtime-images"])
    after = json.loads(by_ref(r.objects, CONFIG)["data"]["runtime-images"])
    old_images = [i["image"] for rt in before for v in rt["versions"] for i in v["images"]]
    new_images = [i["image"] for rt in after for v in rt["versions"] for i in v["images"]]
    assert len(old_images) == len(new_images)
    for old, new in zip(old_images, new_images):
        assert new == ("dev-nodejs:dev-1" if old.startswith("kubeless/nodejs@") else old)
    assert sum(1 for s in r.substitutions if s.component == "nodejs") == sum(
        1 for i in old_images if i.startswith("kubeless/nodejs@")
    )


def test_render_never_mutates_its_input(objs, profile):
    snapshot = copy.deepcopy(objs)
    r = render(objs, BUILT, profile)
    assert objs == snapshot
    r.objects[1]["metadata"]["name"] = "changed"
    assert objs == snapshot


def test_unknown_component_in_images_is_an_error(objs, profile):
    with pytest.raises(ConfigError) as info:
        render(objs, {"function-controler": "x:1"}, profile)
    assert "profile 'kubeless' has no component 'function-controler'; its components are:" in str(info.value)


# --------------------------------------------------------------------------- ordering and helpers


def test_order_for_apply_puts_dependencies_first(objs):
    extra = [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc", "namespace": "kubeless"}},
        {"apiVersion": "kubeless.io/v1beta1", "kind": "Function", "metadata": {"name": "f", "namespace": "kubeless"}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kubeless"}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "rb", "namespace": "kubeless"},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "r", "namespace": "kubeless"},
        },
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "kubeless"}},
    ]
    ordered = [object_ref(o) for o in order_for_apply(list(objs) + extra)]
    assert ordered == [
        "Namespace/kubeless",
        "CustomResourceDefinition/functions.kubeless.io",
        "CustomResourceDefinition/httptriggers.kubeless.io",
        "CustomResourceDefinition/cronjobtriggers.kubeless.io",
        "ClusterRole/kubeless-controller-deployer",
        "Role/kubeless/r",
        "ClusterRoleBinding/kubeless-controller-deployer",
        "RoleBinding/kubeless/rb",
        CONFIG,
        "ServiceAccount/kubeless/controller-acct",
        "Secret/kubeless/s",
        "Service/kubeless/svc",
        DEPLOY,
        "Function/kubeless/f",
    ]
    assert [object_ref(o) for o in order_for_delete(list(objs) + extra)] == list(reversed(ordered))


def test_object_ref():
    assert object_ref({"kind": "Deployment", "metadata": {"name": "d", "namespace": "n"}}) == "Deployment/n/d"
    assert object_ref({"kind": "ClusterRole", "metadata": {"name": "c"}}) == "ClusterRole/c"


def test_configmaps_read_by_a_deployment(objs):
    assert configmaps_read_by(by_ref(objs, DEPLOY)) == {"kubeless-config"}
    deploy = {
        "kind": "Deployment",
        "spec": {
            "template": {
                "spec": {
                    "initContainers": [
                        {"envFrom": [{"configMapRef": {"name": "from-env"}}, {"secretRef": {"name": "s"}}]}
                    ],
                    "containers": [
                        {
                            "env": [
                                {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "keyref", "key": "k"}}},
                                {"name": "B", "value": "plain"},
                            ]
                        }
                    ],
                    "volumes": [
                        {"name": "v", "configMap": {"name": "vol"}},
                        {
                            "name": "p",
                            "projected": {"sources": [{"configMap": {"name": "projected"}}, {"secret": {"name": "x"}}]},
                        },
                    ],
                }
            }
        },
    }
    assert configmaps_read_by(deploy) == {"from-env", "keyref", "vol", "projected"}


def test_dump_yaml_round_trips(objs, profile):
    r = render(objs, BUILT, profile)
    text = dump_yaml(r.objects)
    assert text.startswith("---\napiVersion: v1\n")
    assert list(yaml.safe_load_all(text)) == r.objects
