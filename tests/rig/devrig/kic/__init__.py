"""The real minikube's docker driver on this machine ("kic": minikube's name for a Kubernetes node in a container).

The real minikube binary (built by tests/rig/build-minikube) creates its node container in a Docker engine of
the rig's own, which runs in a network and mount namespace of its own (host.py), so the node's bridge network,
its iptables rules and its privileged container never touch the host's. The host reaches that engine and every
port it publishes through loopback forwarders (portmirror.py): minikube sees DOCKER_HOST=tcp://127.0.0.1:<port>,
an engine it treats as remote, and so lays the cluster out as on Docker Desktop, macOS or WSL: the node's
address (192.168.49.2) unreachable from the host, the API server and the node's dockerd reached at forwarded
127.0.0.1 ports written only into the kubeconfig and docker-env.

What a registry would have served is built offline: the kicbase image (kicbase.py), the Kubernetes images and
binaries minikube caches (seed.py), and the ingress addon's images (ingress.py).
"""
