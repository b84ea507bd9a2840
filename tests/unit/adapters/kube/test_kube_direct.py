"""The client-certificate fast path (no `kubernetes` import) and discovery by group-version."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from devloop.adapters.kube.apis import GroupVersions, group_version_path
from devloop.adapters.kube.direct import client_cert_pool
from devloop.adapters.kube.kubeconfig import Kubeconfig


def config(cluster: dict, user: dict) -> Kubeconfig:
    return Kubeconfig(
        paths=(Path("/x"),), contexts={"p": {"cluster": "c", "user": "u"}}, clusters={"c": cluster}, users={"u": user}
    )


FILES = {"client-certificate": "/h/client.crt", "client-key": "/h/client.key"}
CLUSTER = {
    "server": "https://127.0.0.1:8443",
    "certificate-authority": "/h/ca.crt",
    "extensions": [{"name": "cluster_info", "extension": {"provider": "minikube.sigs.k8s.io"}}],
}


def test_minikubes_client_certificate_context_gets_a_direct_pool():
    pool = client_cert_pool(config(CLUSTER, FILES), "p", maxsize=4)
    assert pool is not None and pool.host == "https://127.0.0.1:8443" and pool.tmpdir is None
    kw = pool.pool.connection_pool_kw
    assert (kw["ca_certs"], kw["cert_file"], kw["key_file"]) == ("/h/ca.crt", "/h/client.crt", "/h/client.key")
    assert kw["cert_reqs"] == "CERT_REQUIRED"
    pool.close()


def test_embedded_certificates_go_to_private_files_removed_on_close():
    b64 = lambda text: base64.b64encode(text.encode()).decode()  # noqa: E731
    cluster = {"server": "https://127.0.0.1:8443", "certificate-authority-data": b64("CA")}
    user = {"client-certificate-data": b64("CERT"), "client-key-data": b64("KEY")}
    pool = client_cert_pool(config(cluster, user), "p", maxsize=4)
    kw = pool.pool.connection_pool_kw
    assert Path(kw["key_file"]).read_text() == "KEY" and Path(kw["ca_certs"]).read_text() == "CA"
    assert stat.S_IMODE(os.stat(kw["key_file"]).st_mode) == 0o600
    pool.close()
    assert not Path(kw["key_file"]).exists()


@pytest.mark.parametrize(
    ("cluster", "user"),
    [
        (CLUSTER, {"token": "abc"}),
        (CLUSTER, {"exec": {"command": "aws"}}),
        (CLUSTER, {**FILES, "auth-provider": {"name": "oidc"}}),
        ({**CLUSTER, "insecure-skip-tls-verify": True}, FILES),
        ({**CLUSTER, "proxy-url": "http://proxy:3128"}, FILES),
        ({"server": "http://127.0.0.1:8080"}, FILES),
        ({"server": "https://127.0.0.1:8443"}, FILES),  # no CA
        (CLUSTER, {"client-certificate": "/h/client.crt"}),  # no key
    ],
)
def test_anything_else_goes_through_the_official_client(cluster, user):
    assert client_cert_pool(config(cluster, user), "p", maxsize=4) is None


class FakeTransport:
    def __init__(self, lists: dict[str, list[dict]]):
        self.lists = lists
        self.asked: list[str] = []

    def get(self, path):
        self.asked.append(path)
        found = self.lists.get(path)
        return None if found is None else {"resources": found}


def test_group_versions_answer_from_one_request_each():
    t = FakeTransport(
        {
            "/apis/apps/v1": [
                {"name": "deployments", "kind": "Deployment", "namespaced": True},
                {"name": "deployments/status", "kind": "Deployment", "namespaced": True},
            ],
            "/api/v1": [{"name": "namespaces", "kind": "Namespace", "namespaced": False}],
        }
    )
    gv = GroupVersions(t)
    assert gv.lookup("apps/v1", "Deployment") == ("deployments", True)
    assert gv.lookup("apps/v1", "Deployment") == ("deployments", True)
    assert gv.lookup("v1", "Namespace") == ("namespaces", False)
    assert t.asked == ["/apis/apps/v1", "/api/v1"]
    assert group_version_path("kubeless.io/v1beta1") == "/apis/kubeless.io/v1beta1"


def test_a_kind_missing_from_a_cached_list_is_asked_again_once():
    t = FakeTransport({"/apis/kubeless.io/v1beta1": []})
    gv = GroupVersions(t)
    assert gv.lookup("kubeless.io/v1beta1", "Function") is None
    assert t.asked == ["/apis/kubeless.io/v1beta1"]  # just asked: no second request
    t.lists["/apis/kubeless.io/v1beta1"] = [{"name": "functions", "kind": "Function", "namespaced": True}]
    assert gv.lookup("kubeless.io/v1beta1", "Function") == ("functions", True)  # a CRD since: asked again
    assert gv.lookup("nope/v1", "X") is None
