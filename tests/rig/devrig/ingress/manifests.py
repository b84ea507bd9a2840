"""The objects minikube v1.36's ingress addon deploys (deploy/addons/ingress/ingress-deploy.yaml.tmpl, for
the `networking.k8s.io/v1` Ingress API), with the rig's three differences:

- images are referenced by tag only (a locally built image has no registry digest);
- the controller's HTTP probes become exec probes on the pod's loopback (pod addresses are not routed
  here, so the kubelet could not reach them);
- the ValidatingWebhookConfiguration points at the rig's admission server by `url` + `caBundle`
  instead of at the in-cluster Service.
"""

from __future__ import annotations

import base64

from .images import CERTGEN_IMAGE, CONTROLLER_IMAGE

NAMESPACE = "ingress-nginx"
POD_LABEL = "app.kubernetes.io/name=ingress-nginx"
BASE = {"app.kubernetes.io/instance": "ingress-nginx", "app.kubernetes.io/name": "ingress-nginx"}
CONTROLLER = {"app.kubernetes.io/component": "controller", **BASE}
ADMISSION = {"app.kubernetes.io/component": "admission-webhook", **BASE}
NODE_SELECTOR = {"minikube.k8s.io/primary": "true", "kubernetes.io/os": "linux"}
SECRET = "ingress-nginx-admission"


def _meta(name: str, labels: dict, namespace: str | None = NAMESPACE, **extra) -> dict:
    meta = {"name": name, "labels": dict(labels), **extra}
    if namespace:
        meta["namespace"] = namespace
    return meta


def _rule(groups, resources, verbs, names=None) -> dict:
    rule = {"apiGroups": list(groups), "resources": list(resources), "verbs": list(verbs)}
    if names:
        rule["resourceNames"] = list(names)
    return rule


def _rbac() -> list[dict]:
    ing = ["networking.k8s.io"]
    role_rules = [
        _rule([""], ["namespaces"], ["get"]),
        _rule([""], ["configmaps", "pods", "secrets", "endpoints"], ["get", "list", "watch"]),
        _rule([""], ["services"], ["get", "list", "watch"]),
        _rule(ing, ["ingresses"], ["get", "list", "watch"]),
        _rule(ing, ["ingresses/status"], ["update"]),
        _rule(ing, ["ingressclasses"], ["get", "list", "watch"]),
        _rule([""], ["configmaps"], ["get", "update"], ["ingress-nginx-leader"]),
        _rule([""], ["configmaps"], ["create"]),
        _rule(["coordination.k8s.io"], ["leases"], ["get", "update"], ["ingress-nginx-leader"]),
        _rule(["coordination.k8s.io"], ["leases"], ["create"]),
        _rule([""], ["events"], ["create", "patch"]),
        _rule(["discovery.k8s.io"], ["endpointslices"], ["list", "watch", "get"]),
    ]
    cluster_rules = [
        _rule([""], ["configmaps", "endpoints", "nodes", "pods", "secrets", "namespaces"], ["list", "watch"]),
        _rule(["coordination.k8s.io"], ["leases"], ["list", "watch"]),
        _rule([""], ["nodes"], ["get"]),
        _rule([""], ["services"], ["get", "list", "watch"]),
        _rule(ing, ["ingresses"], ["get", "list", "watch"]),
        _rule([""], ["events"], ["create", "patch"]),
        _rule(ing, ["ingresses/status"], ["update"]),
        _rule(ing, ["ingressclasses"], ["get", "list", "watch"]),
        _rule(["discovery.k8s.io"], ["endpointslices"], ["list", "watch", "get"]),
    ]
    rbac = "rbac.authorization.k8s.io/v1"

    def binding(kind: str, name: str, labels: dict, namespaced: bool) -> dict:
        return {
            "apiVersion": rbac,
            "kind": kind + "Binding",
            "metadata": _meta(name, labels, NAMESPACE if namespaced else None),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}],
        }

    return [
        {"apiVersion": rbac, "kind": "Role", "metadata": _meta("ingress-nginx", CONTROLLER), "rules": role_rules},
        {
            "apiVersion": rbac,
            "kind": "Role",
            "metadata": _meta("ingress-nginx-admission", ADMISSION),
            "rules": [_rule([""], ["secrets"], ["get", "create"])],
        },
        {
            "apiVersion": rbac,
            "kind": "ClusterRole",
            "metadata": _meta("ingress-nginx", BASE, None),
            "rules": cluster_rules,
        },
        {
            "apiVersion": rbac,
            "kind": "ClusterRole",
            "metadata": _meta("ingress-nginx-admission", ADMISSION, None),
            "rules": [_rule(["admissionregistration.k8s.io"], ["validatingwebhookconfigurations"], ["get", "update"])],
        },
        binding("Role", "ingress-nginx", CONTROLLER, True),
        binding("Role", "ingress-nginx-admission", ADMISSION, True),
        binding("ClusterRole", "ingress-nginx", BASE, False),
        binding("ClusterRole", "ingress-nginx-admission", ADMISSION, False),
    ]


def _controller(image: str) -> dict:
    probe = {
        "exec": {"command": ["/bin/busybox", "wget", "-q", "-O", "-", "http://127.0.0.1:10254/healthz"]},
        "failureThreshold": 3,
        "periodSeconds": 10,
        "successThreshold": 1,
        "timeoutSeconds": 1,
    }
    container = {
        "name": "controller",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": [
            "/nginx-ingress-controller",
            "--election-id=ingress-nginx-leader",
            "--controller-class=k8s.io/ingress-nginx",
            "--watch-ingress-without-class=true",
            "--configmap=$(POD_NAMESPACE)/ingress-nginx-controller",
            "--tcp-services-configmap=$(POD_NAMESPACE)/tcp-services",
            "--udp-services-configmap=$(POD_NAMESPACE)/udp-services",
            "--validating-webhook=:8443",
            "--validating-webhook-certificate=/usr/local/certificates/cert",
            "--validating-webhook-key=/usr/local/certificates/key",
        ],
        "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        ],
        "lifecycle": {"preStop": {"exec": {"command": ["/wait-shutdown"]}}},
        "livenessProbe": {**probe, "failureThreshold": 5, "initialDelaySeconds": 10},
        "readinessProbe": {**probe, "initialDelaySeconds": 1},
        "ports": [
            {"containerPort": 80, "hostPort": 80, "name": "http", "protocol": "TCP"},
            {"containerPort": 443, "hostPort": 443, "name": "https", "protocol": "TCP"},
            {"containerPort": 8443, "name": "webhook", "protocol": "TCP"},
        ],
        "resources": {"requests": {"cpu": "100m", "memory": "90Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": True,
            "runAsUser": 101,
            "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
        },
        "volumeMounts": [{"mountPath": "/usr/local/certificates/", "name": "webhook-cert", "readOnly": True}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta("ingress-nginx-controller", CONTROLLER),
        "spec": {
            "minReadySeconds": 0,
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": dict(CONTROLLER)},
            "strategy": {"rollingUpdate": {"maxUnavailable": 1}, "type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": {**CONTROLLER, "gcp-auth-skip-secret": "true"}},
                "spec": {
                    "containers": [container],
                    "dnsPolicy": "ClusterFirst",
                    "nodeSelector": dict(NODE_SELECTOR),
                    "serviceAccountName": "ingress-nginx",
                    "terminationGracePeriodSeconds": 0,
                    "tolerations": [
                        {"effect": "NoSchedule", "key": "node-role.kubernetes.io/master", "operator": "Equal"}
                    ],
                    "volumes": [{"name": "webhook-cert", "secret": {"secretName": SECRET}}],
                },
            },
        },
    }


def _job(name: str, image: str, args: list[str]) -> dict:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _meta(f"ingress-nginx-admission-{name}", ADMISSION),
        "spec": {
            "template": {
                "metadata": {"labels": dict(ADMISSION), "name": f"ingress-nginx-admission-{name}"},
                "spec": {
                    "containers": [
                        {
                            "name": name,
                            "image": image,
                            "imagePullPolicy": "IfNotPresent",
                            "args": args,
                            "env": [
                                {
                                    "name": "POD_NAMESPACE",
                                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
                                }
                            ],
                            "securityContext": {"allowPrivilegeEscalation": False},
                        }
                    ],
                    "nodeSelector": dict(NODE_SELECTOR),
                    "restartPolicy": "OnFailure",
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 2000},
                    "serviceAccountName": "ingress-nginx-admission",
                },
            }
        },
    }


def objects(
    *,
    webhook_url: str,
    ca_pem: bytes,
    cert_pem: bytes,
    key_pem: bytes,
    controller_image: str = CONTROLLER_IMAGE,
    certgen_image: str = CERTGEN_IMAGE,
) -> list[dict]:
    """Everything the addon applies, in apply order."""
    b64 = lambda data: base64.b64encode(data).decode()  # noqa: E731
    svc_ports = [
        {"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http", "appProtocol": "http"},
        {"name": "https", "port": 443, "protocol": "TCP", "targetPort": "https", "appProtocol": "https"},
    ]
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(NAMESPACE, BASE, None)},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "automountServiceAccountToken": True,
            "metadata": _meta("ingress-nginx", CONTROLLER),
        },
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta("ingress-nginx-admission", ADMISSION)},
        *_rbac(),
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "data": {"hsts": "false"},
            "metadata": _meta("ingress-nginx-controller", CONTROLLER),
        },
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta("tcp-services", CONTROLLER)},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta("udp-services", CONTROLLER)},
        # what kube-webhook-certgen's `create` would have stored; the controller pod mounts it
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": _meta(SECRET, ADMISSION),
            "data": {"ca": b64(ca_pem), "cert": b64(cert_pem), "key": b64(key_pem)},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta("ingress-nginx-controller", CONTROLLER),
            "spec": {
                "ipFamilies": ["IPv4"],
                "ipFamilyPolicy": "SingleStack",
                "ports": svc_ports,
                "selector": dict(CONTROLLER),
                "type": "NodePort",
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta("ingress-nginx-controller-admission", CONTROLLER),
            "spec": {
                "ports": [{"name": "https-webhook", "port": 443, "targetPort": "webhook", "appProtocol": "https"}],
                "selector": dict(CONTROLLER),
                "type": "ClusterIP",
            },
        },
        _controller(controller_image),
        _job(
            "create",
            certgen_image,
            [
                "create",
                "--host=ingress-nginx-controller-admission,ingress-nginx-controller-admission.$(POD_NAMESPACE).svc",
                "--namespace=$(POD_NAMESPACE)",
                f"--secret-name={SECRET}",
            ],
        ),
        _job(
            "patch",
            certgen_image,
            [
                "patch",
                "--webhook-name=ingress-nginx-admission",
                "--namespace=$(POD_NAMESPACE)",
                "--patch-mutating=false",
                f"--secret-name={SECRET}",
                "--patch-failure-policy=Fail",
            ],
        ),
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "IngressClass",
            "metadata": _meta(
                "nginx", CONTROLLER, None, annotations={"ingressclass.kubernetes.io/is-default-class": "true"}
            ),
            "spec": {"controller": "k8s.io/ingress-nginx"},
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": _meta("ingress-nginx-admission", ADMISSION, None),
            "webhooks": [
                {
                    "name": "validate.nginx.ingress.kubernetes.io",
                    "admissionReviewVersions": ["v1"],
                    "clientConfig": {"url": webhook_url, "caBundle": b64(ca_pem)},
                    "failurePolicy": "Fail",
                    "matchPolicy": "Equivalent",
                    "sideEffects": "None",
                    "rules": [
                        {
                            "apiGroups": ["networking.k8s.io"],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE", "UPDATE"],
                            "resources": ["ingresses"],
                        }
                    ],
                }
            ],
        },
    ]
