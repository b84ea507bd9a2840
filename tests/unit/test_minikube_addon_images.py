"""cluster.addon_images / addon_registries: minikube's `addons enable ADDON --images=Name=img,...
--registries=Name=reg,...` from the profile, for air-gapped and mirrored clusters (issue 18, "What to build" 3).

minikube's rules (assets/addons.go, v1.28.0-v1.38.1): the flags are split on `,` then `=`; an unknown image name
is only warned about and minikube's own image used; a custom image drops the addon's default registry, and a
registry saved by an earlier enable (CustomAddonRegistries) still prefixes it unless it is given again, `''`
being minikube's default; both maps are saved in config.json and merged over every enable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devloop.adapters.dry import DryMinikube
from devloop.adapters.minikube import cli as mk
from devloop.adapters.minikube.home import read_profile_config
from devloop.adapters.proc import Completed
from devloop.base.errors import ConfigError
from devloop.loop import cluster as loop_cluster
from devloop.output.report import Reporter
from devloop.profile.lookup import load_profile
from devloop.session import Session

P = "devloop-kubeless"
LOCAL = {
    "IngressController": "local/ingress-nginx-controller:dev",
    "KubeWebhookCertgenCreate": "local/kube-webhook-certgen:dev",
    "KubeWebhookCertgenPatch": "local/kube-webhook-certgen:dev",
}


def _profile(tmp_path: Path, cluster_extra: str, *, addons: str = "[ingress]"):
    path = tmp_path / "p.yaml"
    path.write_text(
        "name: t\nnamespace: default\ncluster:\n  profile: devloop-kubeless\n"
        f"  addons: {addons}\n{cluster_extra}manifests: [a.yaml]\n"
    )
    return load_profile(str(path), cwd=tmp_path), path


# -- the profile keys ------------------------------------------------------------------------------------------
def test_the_keys_load_and_an_image_without_registry_gets_an_empty_one(tmp_path):
    profile, _ = _profile(
        tmp_path,
        "  addon_images:\n    ingress:\n"
        "      IngressController: local/ingress-nginx-controller:dev\n"
        "      KubeWebhookCertgenCreate: mirror.example:5000/ingress-nginx/kube-webhook-certgen:v1.6.7@sha256:"
        + "a" * 64
        + "\n  addon_registries:\n    ingress:\n      KubeWebhookCertgenPatch: mirror.example:5000\n",
    )
    images, registries = profile.cluster.addon_overrides("ingress")
    assert images == {
        "IngressController": "local/ingress-nginx-controller:dev",
        "KubeWebhookCertgenCreate": "mirror.example:5000/ingress-nginx/kube-webhook-certgen:v1.6.7@sha256:" + "a" * 64,
    }
    assert registries == {
        "IngressController": "",
        "KubeWebhookCertgenCreate": "",
        "KubeWebhookCertgenPatch": "mirror.example:5000",
    }
    assert profile.cluster.addon_overrides("dashboard") == ({}, {})


@pytest.mark.parametrize(
    ("extra", "line", "where", "says"),
    [
        (
            "  addon_images:\n    ingress:\n      IngressController: a:1\n      KubeWebhookCertgen: b:1\n",
            9,
            "cluster.addon_images.ingress.KubeWebhookCertgen",
            "ingress has no image named 'KubeWebhookCertgen' (minikube would ignore it and use its own image); "
            "expected one of: IngressController, KubeWebhookCertgenCreate, KubeWebhookCertgenPatch",
        ),
        (
            "  addon_images:\n    ingress:\n      IngressController: 'a:1,KubeWebhookCertgenPatch=b:1'\n",
            8,
            "cluster.addon_images.ingress.IngressController",
            "expected an image reference like 'local/ingress-nginx-controller:dev'",
        ),
        (
            "  addon_images:\n    ingress:\n      IngressController: ''\n",
            8,
            "cluster.addon_images.ingress.IngressController",
            "expected an image reference",
        ),
        (
            "  addon_registries:\n    ingress:\n      IngressController: https://mirror.example\n",
            8,
            "cluster.addon_registries.ingress.IngressController",
            "expected a registry like 'mirror.example:5000' (no scheme)",
        ),
        (
            "  addon_images:\n    dashboard:\n      Dashboard: local/dashboard:dev\n",
            8,  # the line of its mapping, as for any key whose value is one
            "cluster.addon_images.dashboard",
            "'dashboard' is not in cluster.addons",
        ),
        (
            "  addon_registries:\n    ingress:\n      ingressController: mirror.example\n",
            8,
            "cluster.addon_registries.ingress.ingressController",
            "expected an addon image name as minikube spells it, like 'IngressController'",
        ),
        (
            "  addon_images:\n    ingress:\n      IngressController: 5\n",
            8,
            "cluster.addon_images.ingress.IngressController",
            "expected a string, found number 5",
        ),
    ],
)
def test_bad_names_and_values_are_refused_at_their_line(tmp_path, extra, line, where, says):
    with pytest.raises(ConfigError) as err:
        _profile(tmp_path, extra)
    assert f"p.yaml:{line}: {where}: {says}" in err.value.message


# -- the adapter and the dry run -------------------------------------------------------------------------------
class Run:
    def __init__(self):
        self.calls = []

    def __call__(self, argv, **kwargs):
        self.calls.append(list(argv))
        return Completed(list(argv), 0, "* The 'ingress' addon is enabled\n", "", "")


def test_enable_passes_minikubes_flags_sorted():
    run = Run()
    assert mk.Minikube(P, run=run).enable_addon(
        "ingress", images=LOCAL, registries={"IngressController": "", "KubeWebhookCertgenPatch": "m.example:5000"}
    )
    assert run.calls[0] == [
        "minikube",
        "addons",
        "enable",
        "ingress",
        "-p",
        P,
        "--images=IngressController=local/ingress-nginx-controller:dev,"
        "KubeWebhookCertgenCreate=local/kube-webhook-certgen:dev,KubeWebhookCertgenPatch=local/kube-webhook-certgen:dev",
        "--registries=IngressController=,KubeWebhookCertgenPatch=m.example:5000",
    ]
    mk.Minikube(P, run=run).enable_addon("ingress")
    assert run.calls[1] == ["minikube", "addons", "enable", "ingress", "-p", P]


def test_the_dry_run_prints_the_same_flags(capsys):
    reporter = Reporter(json_mode=False)
    DryMinikube(mk.Minikube(P, run=Run()), reporter).enable_addon(
        "ingress", images={"IngressController": "x:1"}, registries={"IngressController": ""}
    )
    assert (
        f"would run: minikube addons enable ingress -p {P} --images=IngressController=x:1 --registries=IngressController="
        in capsys.readouterr().err
    )


# -- the loop: enabled with them, enabled again when minikube saved others -------------------------------------
class Minikube:
    profile_name = P
    binary = "minikube"

    def __init__(self, home: Path, *, enabled: bool, saved_images=None, saved_registries=None):
        self.home = home
        self.enabled = enabled
        self.calls: list[tuple[str, dict]] = []
        path = home / "profiles" / P / "config.json"
        path.parent.mkdir(parents=True)
        data = {"Name": P, "Addons": {"ingress": enabled}, "KubernetesConfig": {}, "Nodes": []}
        if saved_images is not None:
            data["CustomAddonImages"] = saved_images
        if saved_registries is not None:
            data["CustomAddonRegistries"] = saved_registries
        path.write_text(json.dumps(data))

    def addons(self):
        return {"ingress": self.enabled}

    def profile_config(self):
        return read_profile_config(P, self.home)

    def enable_addon(self, name, **kwargs):
        self.calls.append((name, kwargs))
        return True


class Kube:
    def wait_rollout(self, *_, **__):
        pass

    def wait_admission(self, *_, **__):
        pass


def _session(tmp_path: Path, minikube: Minikube, extra: str) -> Session:
    profile, _ = _profile(tmp_path, extra)
    session = Session(profile=profile, workspace=tmp_path, reporter=Reporter(json_mode=True), cache_dir=tmp_path / "c")
    session._minikube = minikube  # type: ignore[assignment]
    session.kube = lambda **_: Kube()  # type: ignore[method-assign]
    session.user_engine = lambda: None  # type: ignore[method-assign]  # hermetic: no Docker of this machine's
    return session


IMAGES = "  addon_images:\n    ingress:\n      IngressController: local/ingress-nginx-controller:dev\n"


def test_a_new_addon_is_enabled_with_the_profiles_images(tmp_path):
    minikube = Minikube(tmp_path / "mk", enabled=False)
    assert loop_cluster.enable_addons(_session(tmp_path, minikube, IMAGES)) == ["ingress"]
    assert minikube.calls == [
        (
            "ingress",
            {
                "timeout": 540,
                "on_line": minikube.calls[0][1]["on_line"],
                "images": {"IngressController": "local/ingress-nginx-controller:dev"},
                "registries": {"IngressController": ""},
            },
        )
    ]


def test_an_enabled_addon_with_the_saved_images_is_left_alone(tmp_path):
    minikube = Minikube(
        tmp_path / "mk",
        enabled=True,
        saved_images={"IngressController": "local/ingress-nginx-controller:dev"},
        saved_registries={"IngressController": ""},
    )
    assert loop_cluster.enable_addons(_session(tmp_path, minikube, IMAGES), cluster_started=False) == []
    assert minikube.calls == []


@pytest.mark.parametrize(
    ("saved_images", "saved_registries"),
    [
        (None, None),  # enabled before the profile had the key
        ({"IngressController": "local/ingress-nginx-controller:old"}, {"IngressController": ""}),
        ({"IngressController": "local/ingress-nginx-controller:dev"}, {"IngressController": "mirror.example"}),
    ],
)
def test_an_enabled_addon_with_other_saved_images_is_enabled_again(tmp_path, saved_images, saved_registries):
    minikube = Minikube(tmp_path / "mk", enabled=True, saved_images=saved_images, saved_registries=saved_registries)
    assert loop_cluster.enable_addons(_session(tmp_path, minikube, IMAGES), cluster_started=False) == ["ingress"]
    assert minikube.calls[0][1]["images"] == {"IngressController": "local/ingress-nginx-controller:dev"}


def test_without_overrides_nothing_new_is_passed(tmp_path):
    minikube = Minikube(tmp_path / "mk", enabled=False, saved_images={"IngressController": "whatever:1"})
    loop_cluster.enable_addons(_session(tmp_path, minikube, ""))
    assert set(minikube.calls[0][1]) == {"timeout", "on_line"}


# -- addon images only the user's Docker holds are loaded into the node first -----------------------------------
class UserEngine:
    def __init__(self, images):
        self.images = set(images)
        self.closed = False

    def image_exists(self, ref):
        return ref in self.images

    def close(self):
        self.closed = True


class LoadingMinikube(Minikube):
    def __init__(self, home: Path, node_images=()):
        super().__init__(home, enabled=False)
        self.node = list(node_images)
        self.loaded: list[tuple[str, dict]] = []

    def images(self):
        return list(self.node)

    def image_load(self, ref, **kwargs):
        self.loaded.append((ref, kwargs))
        self.node.append(ref)


THREE = (
    "  addon_images:\n    ingress:\n      IngressController: local/ctl:1\n"
    "      KubeWebhookCertgenCreate: local/certgen:1\n      KubeWebhookCertgenPatch: local/certgen:1\n"
)


def _loading_session(tmp_path, minikube, user_images, extra=THREE):
    session = _session(tmp_path, minikube, extra)
    engine = UserEngine(user_images)
    env = {"DOCKER_HOST": "tcp://127.0.0.1:2375"}
    session.user_engine = lambda: (env, engine)  # type: ignore[method-assign]
    return session, engine


def test_addon_images_only_the_users_docker_has_are_loaded_before_the_addon_is_enabled(tmp_path):
    minikube = LoadingMinikube(tmp_path / "mk")
    session, engine = _loading_session(tmp_path, minikube, {"local/ctl:1", "local/certgen:1"})
    assert loop_cluster.enable_addons(session) == ["ingress"]
    # each image once (certgen serves two names), from the user's engine, before `addons enable`
    assert [ref for ref, _ in minikube.loaded] == ["local/ctl:1", "local/certgen:1"]
    assert minikube.loaded[0][1]["env"] == {"DOCKER_HOST": "tcp://127.0.0.1:2375"}
    assert minikube.calls and engine.closed


def test_addon_images_the_node_has_or_the_user_lacks_or_a_registry_serves_are_not_loaded(tmp_path):
    minikube = LoadingMinikube(tmp_path / "mk", node_images=["docker.io/local/ctl:1"])
    extra = THREE + "  addon_registries:\n    ingress:\n      KubeWebhookCertgenPatch: mirror.example\n"
    extra = extra.replace("KubeWebhookCertgenPatch: local/certgen:1", "KubeWebhookCertgenPatch: other/certgen:2")
    # ctl: on the node already; certgen (create): not in the user's Docker; patch: its registry pulls it
    session, _ = _loading_session(tmp_path, minikube, {"local/ctl:1", "other/certgen:2"}, extra)
    assert loop_cluster.enable_addons(session) == ["ingress"]
    assert minikube.loaded == []
