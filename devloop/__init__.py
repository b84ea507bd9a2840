"""devloop: the whole Kubernetes developer loop on minikube in one command."""

__version__ = "0.1.0"
