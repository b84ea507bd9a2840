"""minikube through its CLI and JSON outputs (see shared/research/minikube-cli.md).

The Minikube class only runs commands and maps exit codes to errors a user can act on; reading
what minikube prints is minikube_output.py's (its names are re-exported here).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from devloop.adapters import proc
from devloop.adapters.minikube_output import (  # noqa: F401 - the parsers are re-exported
    EXIT_REASONS,
    ClusterStatus,
    MinikubeError,
    MinikubeVersion,
    _ENV,
    _json_values,
    error_event,
    find_exit_reason,
    needs_force,
    parse_addons,
    parse_docker_env,
    parse_profile_list,
    parse_semver,
    parse_status,
    parse_version,
    primary_endpoint,
    reason_for_exit_code,
)
from devloop.errors import ClusterError



class Minikube:
    def __init__(self, profile: str, *, binary: str = "minikube", run: Callable[..., proc.Completed] = proc.run):
        self.profile_name = profile
        self.binary = binary
        self._run = run

    # -- plumbing

    def _argv(self, *args: str) -> list[str]:
        return [self.binary, *args]

    def _call(self, *args: str, timeout: float, on_line=None, ok_codes=None) -> proc.Completed:
        return self._run(
            self._argv(*args),
            env=_ENV,
            timeout=timeout,
            check=False,
            on_line=on_line,
            **({"ok_codes": ok_codes} if ok_codes is not None else {}),
        )

    def _fail(self, what: str, done: proc.Completed, *, hint: str | None = None) -> MinikubeError:
        events, _ = _json_values(done.stdout)
        reason, line = find_exit_reason(done.stderr + "\n" + done.stdout)
        if not line:
            event_reason, message = error_event(events)
            if event_reason or message:
                reason = event_reason
                line = f"Exiting due to {event_reason}: {message}" if event_reason else message
        return MinikubeError(
            what,
            argv=done.argv,
            exit_code=done.exit_code,
            reason=reason,
            reason_line=line,
            output_tail=done.output_tail,
            hint=hint,
        )

    # -- commands

    def version(self) -> MinikubeVersion:
        done = self._call("version", "-o", "json", timeout=30)
        if done.exit_code != 0:
            raise self._fail("could not read the minikube version", done)
        return parse_version(done.stdout)

    def status(self) -> ClusterStatus:
        done = self._call("status", "-p", self.profile_name, "-o", "json", timeout=60)
        return parse_status(done.stdout, done.exit_code)

    def start(
        self,
        *,
        driver: str,
        kubernetes_version: str | None,
        cpus: int | str | None,
        memory: str | None,
        force: bool = False,
        extra_args: Sequence[str] = (),
        timeout: float = 900,
        on_line=None,
    ) -> bool:
        """Start (or restart) the profile; True once it started (a dry-run double says False)."""
        args = self.start_args(driver=driver, kubernetes_version=kubernetes_version, cpus=cpus, memory=memory,
                               force=force, extra_args=extra_args)
        done = self._call(*args, timeout=timeout, on_line=on_line)
        if done.exit_code != 0:
            raise self._fail(f"minikube could not start profile {self.profile_name!r}", done)
        return True

    def start_args(
        self,
        *,
        driver: str | None,
        kubernetes_version: str | None,
        cpus: int | str | None,
        memory: str | None,
        force: bool = False,
        extra_args: Sequence[str] = (),
    ) -> list[str]:
        """The one builder of `minikube start`'s arguments (the real call and the dry run's line)."""
        args = ["start", "-p", self.profile_name]
        # Unset values are left to minikube's own defaults rather than passed as "None".
        for flag, value in (("driver", driver), ("kubernetes-version", kubernetes_version), ("cpus", cpus),
                            ("memory", memory)):
            if value is not None:
                args.append(f"--{flag}={value}")
        if force:
            args.append("--force")
        args.extend(extra_args)
        return args

    def delete(self, *, timeout: float = 300) -> None:
        # Exits 0 for a missing profile too, so delete is idempotent.
        done = self._call("delete", "-p", self.profile_name, timeout=timeout)
        if done.exit_code != 0:
            raise self._fail(f"minikube could not delete profile {self.profile_name!r}", done)

    def addons(self) -> dict[str, bool]:
        done = self._call("addons", "list", "-p", self.profile_name, "-o", "json", timeout=60)
        if done.exit_code != 0:
            raise self._fail("could not list minikube addons", done)
        return parse_addons(done.stdout)

    def enable_addon(self, name: str, *, timeout: float = 420, on_line=None) -> bool:
        """Enable the addon; True once enabled (a dry-run double says False)."""
        done = self._call("addons", "enable", name, "-p", self.profile_name, timeout=timeout, on_line=on_line)
        if done.exit_code != 0:
            raise self._fail(f"minikube could not enable the {name} addon", done)
        return True

    def docker_env(self) -> dict[str, str]:
        done = self._call("docker-env", "-p", self.profile_name, "--shell", "none", "-o", "json", timeout=60)
        code = done.exit_code
        why = {
            51: "the profile uses the none driver: there is no separate docker daemon to build into; "
            "use the docker driver",
            81: "the cluster has more than one node: minikube docker-env works only for single-node clusters",
            14: "docker-env needs the docker or containerd runtime (cri-o is not supported)",
            83: "the minikube host is not running",
            85: "the minikube profile does not exist",
        }
        if code != 0:
            raise self._fail(f"minikube docker-env failed for profile {self.profile_name!r}", done, hint=why.get(code))
        env = parse_docker_env(done.stdout)
        if "DOCKER_HOST" not in env:
            raise ClusterError(
                f"minikube docker-env printed no DOCKER_HOST for profile {self.profile_name!r}: "
                f"{done.stdout.strip()[:300]!r}"
            )
        return env

    def profiles(self) -> dict[str, list[dict]]:
        done = self._call("profile", "list", "-o", "json", timeout=60)
        if done.exit_code != 0:
            _, values = _json_values(done.stdout)
            error = next((v["error"] for v in values if isinstance(v, dict) and "error" in v), None)
            if error:
                raise ClusterError(f"minikube could not list profiles (exit {done.exit_code}): {error}")
            raise self._fail("minikube could not list profiles", done)
        return parse_profile_list(done.stdout)

    def profile(self) -> dict | None:
        for entry in self.profiles()["valid"]:
            if isinstance(entry, dict) and entry.get("Name") == self.profile_name:
                return entry
        return None

    def api_endpoint(self) -> tuple[str, int] | None:
        entry = self.profile()
        return primary_endpoint(entry) if entry else None


__all__ = [
    "ClusterStatus",
    "Minikube",
    "MinikubeError",
    "MinikubeVersion",
    "find_exit_reason",
    "needs_force",
    "parse_addons",
    "parse_docker_env",
    "parse_profile_list",
    "parse_status",
    "parse_version",
    "primary_endpoint",
    "reason_for_exit_code",
]
