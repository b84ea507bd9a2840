"""`minikube delete`: idempotent; tears the machine down, removes the profile and its kubeconfig entries."""

from __future__ import annotations

import shutil

from . import admission_proc, cluster, faults, home, kubeconfig
from .flags import Flag
from .reasons import GUEST_DELETION, USAGE

FLAGS = (
    Flag("all", "bool", False, "", "Set flag to delete all profiles", env=False),
    Flag(
        "purge",
        "bool",
        False,
        "",
        "Set this flag to delete the '.minikube' folder from your user directory.",
        env=False,
    ),
    Flag("output", "string", "text", "o", "Format to print stdout in. Options include: [text,json]", env=False),
)


def run(console, opts) -> int:
    output = (opts.get("output") or "text").lower()
    if output not in ("text", "json"):
        raise console.fatal(USAGE, f"invalid output format: {output}. Valid values: 'text', 'json'")
    console.json = output == "json"
    if opts.args:
        raise console.fatal(USAGE, "Usage: minikube delete")
    valid, invalid = home.list_profiles()
    if opts.get("all"):
        for name in valid + invalid:
            _delete_one(console, name, home.load_config(name))
        console.step("deleting_host", "Successfully deleted all profiles")
    else:
        if opts.get("purge") and len(valid + invalid) > 1:
            console.err("notice", "Multiple minikube profiles were found - ")
            for name in valid + invalid:
                console.styled("notice", f"    - {name}")
            raise console.fatal(USAGE, "Usage: minikube delete --all --purge")
        profile = opts.get("profile")
        cfg = home.load_config(profile)
        if cfg is None:
            console.err("meh", f'"{profile}" profile does not exist, trying anyways.')
        _delete_one(console, profile, cfg)
    if opts.get("purge"):
        root = home.minikube_home()
        shutil.rmtree(root, ignore_errors=True)
        console.step("deleted", f"Successfully purged minikube directory located at - [{root}]")
    return 0


def _delete_one(console, profile: str, cfg: dict | None) -> None:
    from devrig import RigError

    if cfg is not None:
        console.styled("deleting_host", f'Deleting "{profile}" in {cfg.get("Driver", "docker")} ...')
    faults.disarm(profile)
    admission_proc.stop(profile)
    from . import apigate

    apigate.stop(profile, forget=True)
    machine = cluster.machine(profile)
    if machine.exists():
        console.step("deleting_host", f'Deleting container "{profile}" ...', name="Deleting")
        try:
            machine.destroy()
        except (RigError, OSError) as exc:
            raise console.fatal(GUEST_DELETION, f'Failed to delete profile(s): "{profile}": {exc}')
        console.styled("deleting_host", f"Removing {home.machine_dir(profile)} ...")
    shutil.rmtree(home.machine_dir(profile), ignore_errors=True)
    kubeconfig.remove_profile(profile)
    shutil.rmtree(home.profile_dir(profile), ignore_errors=True)
    console.styled("deleted", f'Removed all traces of the "{profile}" cluster.')
