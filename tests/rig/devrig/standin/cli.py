"""Command dispatch: minikube's command tree, cobra's usage errors (exit 14), --help."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

from .flags import Flag, Parsed, UsageError, parse, usage
from .out import Console, Exit

HELP = """minikube provisions and manages local Kubernetes clusters optimized for development workflows.

THIS IS THE DEVLOOP TEST RIG'S MINIKUBE STAND-IN (tests/rig/bin/minikube), not minikube.  It honours
minikube's command line, output formats, streams and exit codes for the commands below, and runs a real
Kubernetes control plane, a real kubelet node and a Docker engine per profile on this machine's loopback
(see tests/rig/README.md).  Differences from minikube that a user can see:
  - `minikube ip` prints 127.0.0.1, not 192.168.49.2: there is no container network here; every part
    (API server, Docker engine, kubelet) listens on loopback ports, and the API server URL and DOCKER_HOST
    are https://127.0.0.1:PORT and tcp://127.0.0.1:PORT, as with minikube's docker driver on Docker Desktop.
  - Only the Kubernetes versions built by scripts/build-rig can start (v1.21.14).
  - Environment switches: DEVRIG_MINIKUBE_VERSION (play another release: v1.36.0, v1.37.0, v1.38.0, v1.38.1,
    v1.39.0), DEVRIG_ENGINE_MIN_API, DEVRIG_HOST_CPUS, DEVRIG_HOST_MEMORY_MB, DEVRIG_KUBEADM_INIT_TIMEOUT, DEVRIG_FAKE_NODES=N
    on start (add N kwok fake nodes), DEVRIG_FAIL_START=1, DEVRIG_KILL_APISERVER_AFTER=SECONDS,
    DEVRIG_KILL_DOCKERD_AFTER=SECONDS (fault injection for reliability tests).

Usage:
  minikube [command]

Available Commands:
  start          Starts a local Kubernetes cluster
  status         Gets the status of a local Kubernetes cluster
  stop           Stops a running local Kubernetes cluster
  delete         Deletes a local Kubernetes cluster
  docker-env     Provides instructions to point your terminal's docker-cli to the Docker Engine inside minikube.
  ip             Retrieves the IP address of the specified node
  addons         Enable or disable a minikube addon
  profile        Profile gets or sets the current minikube profile
  image          Manage images
  version        Print the version of minikube

Use "minikube [command] --help" for more information about a command.
"""


@dataclass(frozen=True)
class Command:
    path: str  # "addons enable"
    use: str
    flags: tuple[Flag, ...]
    run: Callable[[Console, Parsed], int | None]


def _commands() -> dict[str, Command]:
    from . import cmd_addons, cmd_delete, cmd_env, cmd_image, cmd_info, cmd_start, cmd_status

    table = [
        Command("start", "minikube start [flags]", cmd_start.FLAGS, cmd_start.run),
        Command("stop", "minikube stop [flags]", cmd_start.STOP_FLAGS, cmd_start.run_stop),
        Command("delete", "minikube delete [flags]", cmd_delete.FLAGS, cmd_delete.run),
        Command("status", "minikube status [flags]", cmd_status.FLAGS, cmd_status.run),
        Command("docker-env", "minikube docker-env [flags]", cmd_env.FLAGS, cmd_env.run),
        Command("ip", "minikube ip [flags]", cmd_info.IP_FLAGS, cmd_info.run_ip),
        Command("version", "minikube version [flags]", cmd_info.VERSION_FLAGS, cmd_info.run_version),
        Command(
            "profile list", "minikube profile list [flags]", cmd_info.PROFILE_LIST_FLAGS, cmd_info.run_profile_list
        ),
        Command(
            "addons enable", "minikube addons enable ADDON_NAME [flags]", cmd_addons.ENABLE_FLAGS, cmd_addons.run_enable
        ),
        Command(
            "addons disable",
            "minikube addons disable ADDON_NAME [flags]",
            cmd_addons.DISABLE_FLAGS,
            cmd_addons.run_disable,
        ),
        Command("addons list", "minikube addons list [flags]", cmd_addons.LIST_FLAGS, cmd_addons.run_list),
        Command(
            "image load", "minikube image load IMAGE | ARCHIVE | - [flags]", cmd_image.LOAD_FLAGS, cmd_image.run_load
        ),
        Command("image ls", "minikube image ls [flags]", cmd_image.LS_FLAGS, cmd_image.run_ls),
        Command("image list", "minikube image ls [flags]", cmd_image.LS_FLAGS, cmd_image.run_ls),
    ]
    return {c.path: c for c in table}


GROUPS = {"addons": ("enable", "disable", "list"), "profile": ("list",), "image": ("load", "ls", "list")}


VALUE_FLAGS = {
    "-p",
    "--profile",
    "-b",
    "--bootstrapper",
    "--user",
    "--log_dir",
    "--log_file",
    "-v",
    "--v",
    "-o",
    "--output",
}


def _find(argv: list[str], commands: dict[str, Command]) -> tuple[Command | None, list[str], str]:
    """Cobra-style lookup: the first non-flag words name the command; flags may come anywhere."""
    words = [(i, a) for i, a in enumerate(argv) if not a.startswith("-") and not (i > 0 and argv[i - 1] in VALUE_FLAGS)]
    if not words:
        return None, argv, ""
    i0, first = words[0]
    if first in GROUPS:
        after = words[1:]
        if after and after[0][1] in GROUPS[first]:
            i1, sub = after[0]
            remaining = [a for j, a in enumerate(argv) if j not in (i0, i1)]
            return commands[f"{first} {sub}"], remaining, ""
        if after:
            return None, argv, f'unknown command "{after[0][1]}" for "minikube {first}"'
        return None, argv, f"group:{first}"
    if first in commands:
        remaining = [a for j, a in enumerate(argv) if j != i0]
        return commands[first], remaining, ""
    return None, argv, f'unknown command "{first}" for "minikube"'


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = _commands()
    command, rest, problem = _find(argv, commands)
    if command is None:
        if problem.startswith("group:"):
            group = problem[6:]
            sys.stdout.write(
                f"Usage:\n  minikube {group} SUBCOMMAND [flags]\n\nAvailable Commands:\n"
                + "".join(f"  {s}\n" for s in GROUPS[group])
            )
            return 0
        if problem:
            sys.stderr.write(f"Error: {problem}\nRun 'minikube --help' for usage.\n")
            return 14
        sys.stdout.write(HELP)
        return 0
    try:
        parsed = parse(rest, command.flags)
    except UsageError as exc:
        sys.stderr.write(f"Error: {exc}\n" + usage(f"minikube {command.path}", command.use, command.flags))
        return 14
    if parsed.help:
        sys.stdout.write(usage(f"minikube {command.path}", command.use, command.flags))
        return 0
    console = Console(command.path.split()[0])
    try:
        return int(command.run(console, parsed) or 0)
    except Exit as exc:
        return exc.code
