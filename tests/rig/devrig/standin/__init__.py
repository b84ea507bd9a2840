"""The minikube stand-in: minikube's command line, outputs and exit codes over the rig's real parts.

Run as `python -m devrig.standin ARGS` (tests/rig/bin/minikube does).  See cli.HELP for what differs from
minikube and the environment switches.
"""
