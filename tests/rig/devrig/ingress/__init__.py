"""The stand-in's `ingress` addon: what minikube's addon deploys, with locally built images, and an HTTPS
admission server on loopback answering the ingress-nginx ValidatingWebhookConfiguration.

The real controller's webhook runs inside the controller pod (a Service of the cluster); the rig's pods
get addresses nothing routes to, so the API server could not reach it.  The webhook is therefore
registered by `clientConfig.url` (https://127.0.0.1:PORT/networking/v1/ingresses) with its `caBundle`,
and answered by :mod:`devrig.ingress.admission`, started detached by the stand-in.
"""
