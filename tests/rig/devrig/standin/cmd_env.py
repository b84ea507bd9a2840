"""`minikube docker-env`: the shell script / KEY=VALUE / JSON that points docker at the profile's engine.

When stdout is not a TTY (eval/capture), minikube silences its stdout chatter and prints
`false exit code N` before any failing exit, so `eval $(minikube docker-env)` fails visibly.
"""

from __future__ import annotations

import json
import os
import sys
import time

from . import cluster, faults, home, mustload
from .flags import Flag
from .reasons import ENV_MULTINODE_CONFLICT, OUTPUT_USAGE, USAGE, Kind

FLAGS = (
    Flag(
        "shell",
        "string",
        "",
        "",
        "Force environment to be configured for a specified shell: [fish, cmd, "
        "powershell, tcsh, bash, zsh], default is auto-detect",
        env=False,
    ),
    Flag("output", "string", "", "o", "One of 'text', 'yaml' or 'json'.", env=False),
    Flag("unset", "bool", False, "u", "Unset variables instead of setting them", env=False),
    Flag("no-proxy", "bool", False, "", "Add machine IP to NO_PROXY environment variable", env=False),
    Flag("ssh-host", "bool", False, "", "Use SSH connection instead of HTTPS (port 2376)", env=False),
    Flag("ssh-add", "bool", False, "", "Add SSH identity key to SSH authentication agent", env=False),
)

# shell -> (prefix, delimiter, suffix, unset prefix, unset suffix, usage-hint template)
SHELLS = {
    "bash": ("export ", '="', '"\n', "unset ", ";\n", "\n# {plz}\n# eval $({cmd})\n"),
    "fish": ("set -gx ", ' "', '";\n', "set -e ", ";\n", "\n# {plz}\n# {cmd} | source\n"),
    "tcsh": ("setenv ", ' "', '";\n', "unsetenv ", ";\n", '\n: "{plz}"\n: eval `{cmd}`\n'),
    "powershell": (
        "$Env:",
        ' = "',
        '"\n',
        "Remove-Item Env:\\\\",
        "\n",
        "# {plz}\n# & {cmd} --shell powershell | Invoke-Expression\n",
    ),
    "cmd": (
        "SET ",
        "=",
        "\n",
        "SET ",
        "\n",
        "REM {plz}\nREM @FOR /f \"tokens=*\" %i IN ('{cmd} --shell cmd') DO @%i\n",
    ),
    "emacs": (
        '(setenv "',
        '" "',
        '")\n',
        '(setenv "',
        ")\n",
        ';; {plz}\n;; (with-temp-buffer (shell-command "{cmd}" (current-buffer)) (eval-buffer))\n',
    ),
    "none": ("", "=", "\n", "", "\n", ""),
}
UNSET_NAMES = (
    "DOCKER_TLS_VERIFY",
    "DOCKER_HOST",
    "DOCKER_CERT_PATH",
    "MINIKUBE_ACTIVE_DOCKERD",
    "SSH_AUTH_SOCK",
    "SSH_AGENT_PID",
)
PLZ = "To point your shell to minikube's docker-daemon, run:"


def _detect_shell() -> str:
    sh = os.environ.get("SHELL", "")
    if not sh:
        return "bash"
    name = os.path.basename(sh)
    return name if name in SHELLS else "bash"


def run(console, opts) -> int:
    shell = opts.get("shell") or _detect_shell()
    if shell not in SHELLS:
        shell = "bash"  # getShell() falls back to the default shell for names it does not know
    output = opts.get("output")
    if opts.get("unset"):
        return _unset(console, shell, output)
    try:
        tty = sys.stdout.isatty()
    except ValueError:
        tty = False
    if not tty:
        console.silent = True
        console.shell = True
    profile = opts.get("profile")
    cfg = mustload.running(console, profile)
    if len(cfg.get("Nodes") or []) > 1:
        raise console.fatal(
            ENV_MULTINODE_CONFLICT,
            "The docker-env command is incompatible with multi-node "
            "clusters. Use the 'registry' add-on: https://minikube.sigs.k8s.io/docs/handbook/registry/",
        )
    runtime = (cfg.get("KubernetesConfig") or {}).get("ContainerRuntime") or "docker"
    driver = cfg.get("Driver") or "docker"
    # dockerEnvSupported (docker-env.go:672-682), refused with exit.Message(reason.Usage) (:313-315)
    if runtime not in ("docker", "containerd"):
        raise console.fatal(USAGE, "the docker-env command only supports the docker and containerd runtimes")
    if runtime == "containerd" and driver != "docker":
        raise console.fatal(USAGE, "the docker-env command only supports the containerd runtime with the docker driver")
    if runtime == "containerd":
        # minikube starts nerdctld and an ssh-agent in the node and forces --ssh-host (docker-env.go:317-340)
        console.warning(
            "Using the docker-env command with the containerd runtime is a highly experimental feature, "
            "please provide feedback or contribute to make it better"
        )
        env = {
            "DOCKER_HOST": f"ssh://docker@127.0.0.1:{_ssh_port(profile)}",
            "MINIKUBE_ACTIVE_DOCKERD": profile,
            "SSH_AUTH_SOCK": str(home.profile_dir(profile) / "ssh-agent.sock"),
            "SSH_AGENT_PID": "",
        }
    elif opts.get("ssh-host"):
        raise console.fatal(
            Kind("MK_USAGE", 14),
            "the minikube stand-in's node has no SSH server; use the TCP+TLS docker-env (without --ssh-host)",
        )
    else:
        _ensure_dockerd(profile, cfg)
        faults.during("docker-env", profile)
        info = cluster.machine(profile).info()
        env = {
            "DOCKER_TLS_VERIFY": "1",
            "DOCKER_HOST": info.docker_host,
            "DOCKER_CERT_PATH": str(info.docker_cert_path),
            "MINIKUBE_ACTIVE_DOCKERD": profile,
            "SSH_AUTH_SOCK": "",
            "SSH_AGENT_PID": "",
        }
    existing = {}
    if not os.environ.get("MINIKUBE_ACTIVE_DOCKERD"):
        for name in ("DOCKER_TLS_VERIFY", "DOCKER_HOST", "DOCKER_CERT_PATH"):
            if os.environ.get(name):
                existing["MINIKUBE_EXISTING_" + name] = os.environ[name]
    env.update(existing)
    if opts.get("no-proxy"):
        var = next((v for v in ("NO_PROXY", "no_proxy") if os.environ.get(v)), "NO_PROXY")
        current = [v for v in os.environ.get(var, "").split(",") if v]
        if "127.0.0.1" not in current:
            current.append("127.0.0.1")
        env[var] = ",".join(current)
    if shell == "none" and output:
        return _structured(console, env, output)
    prefix, delim, suffix, _, _, hint = SHELLS[shell]
    order = [
        "DOCKER_TLS_VERIFY",
        "DOCKER_HOST",
        "DOCKER_CERT_PATH",
        "MINIKUBE_EXISTING_DOCKER_TLS_VERIFY",
        "MINIKUBE_EXISTING_DOCKER_HOST",
        "MINIKUBE_EXISTING_DOCKER_CERT_PATH",
        "MINIKUBE_ACTIVE_DOCKERD",
        "NO_PROXY",
        "no_proxy",
        "SSH_AUTH_SOCK",
        "SSH_AGENT_PID",
    ]
    if shell == "none":
        # dockerSetScript: for --shell none minikube prints its whole map, empty values too (SSH_AUTH_SOCK=,
        # SSH_AGENT_PID=), in Go's map order (random: no caller may depend on it); seen on v1.36.0 and v1.38.1
        text = "".join(f"{k}={env[k]}\n" for k in order if k in env)
    else:
        text = "".join(f"{prefix}{k}{delim}{env[k]}{suffix}" for k in order if env.get(k))
    cmd = f"minikube -p {profile} docker-env"
    text += hint.format(plz=PLZ, cmd=cmd)
    console.raw(text)
    return 0


def _ensure_dockerd(profile: str, cfg: dict) -> None:
    """minikube's docker-env restarts a dead dockerd in the node (ensureDockerd -> mustRestartDockerd) and
    prints the environment whatever the outcome (failures go to its log only); so does the stand-in."""
    from devrig import RigError

    st = cluster.machine_state(profile)
    if st is None or st == "error" or st.processes.get("dockerd", True):
        return
    # a SIGKILLed dockerd can linger as a zombie for a moment, and a new dockerd refuses to start while its
    # old pidfile names a live PID: retry briefly before giving up (as minikube, silently)
    deadline = time.monotonic() + 30
    while True:
        try:
            cluster.machine(profile).boot(kubernetes_version=cfg["KubernetesConfig"]["KubernetesVersion"], timeout=120)
            return
        except RigError as exc:
            log = home.profile_dir(profile) / "logs" / "docker-env.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "a") as fh:
                fh.write(f"restarting dockerd of {profile!r} failed: {exc}\n")
            if time.monotonic() > deadline:
                return
            time.sleep(2)


def _structured(console, env: dict, output: str) -> int:
    if output == "json":
        console.raw(json.dumps(dict(sorted(env.items())), separators=(",", ":")) + "\n")
    elif output == "text":
        console.raw("".join(f"{k}={v}\n" for k, v in env.items()))
    elif output == "yaml":
        console.raw("".join(f"{k}: {json.dumps(v) if v == '' else v}\n" for k, v in sorted(env.items())))
    else:
        raise console.fatal(OUTPUT_USAGE, "error: --output must be 'text', 'yaml' or 'json'")
    return 0


def _unset(console, shell: str, output: str) -> int:
    if shell == "none" and output == "json":
        console.raw(json.dumps(list(UNSET_NAMES), separators=(",", ":")) + "\n")
        return 0
    if shell == "none" and output == "yaml":
        console.raw("".join(f"- {n}\n" for n in UNSET_NAMES))
        return 0
    prefix, delim, suffix, uprefix, usuffix, _ = SHELLS[shell]
    udelim = "=" if shell == "cmd" else ""
    sets, unsets, saved_names = [], [], []
    for name in UNSET_NAMES:
        saved = os.environ.get("MINIKUBE_EXISTING_" + name)
        if saved:
            sets.append(f"{prefix}{name}{delim}{saved}{suffix}")
            saved_names.append("MINIKUBE_EXISTING_" + name)
        else:
            unsets.append(name)
    text = "".join(sets) + "".join(f"{uprefix}{n}{udelim}{usuffix}" for n in unsets + saved_names)
    console.raw(text)
    return 0


def _ssh_port(profile: str) -> int:
    """The node's SSH port as the docker driver publishes it (127.0.0.1:<random>); chosen once per profile.
    The rig's node has no SSH server: nothing answers there (README, "Differences")."""
    rig = home.load_rig_state(profile)
    if not rig.get("ssh_port"):
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            rig["ssh_port"] = s.getsockname()[1]
        home.save_rig_state(profile, rig)
    return int(rig["ssh_port"])
