"""The e2e modules' cluster: a minikube profile that devloop itself starts (the module's PROFILE).

The fixture only hands out a RigCluster for kubectl/docker/minikube checks; `devloop up` creates
the profile. It is deleted when the module is done, whatever happened.
"""

from __future__ import annotations

import subprocess

import pytest


@pytest.fixture(scope="module")
def cluster(request, rig_env, rig_handle):
    profile = request.module.PROFILE
    yield rig_handle(profile)
    subprocess.run(["minikube", "delete", "-p", profile], env=rig_env.env, capture_output=True, timeout=180)
