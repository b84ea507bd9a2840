"""minikube through its CLI and JSON outputs (minikube's cmd/minikube/cmd/*.go: flags, outputs, exit codes).

The Minikube class only runs commands and maps exit codes to errors a user can act on; reading
what minikube prints is output.py's, judging versions versions.py's (their names are re-exported here).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from devloop.adapters import proc
from devloop.adapters.minikube.image_cache import image_cache_paths, missing_parts, parse_node_images, remove_created
from devloop.adapters.minikube.output import (  # noqa: F401 - the parsers are re-exported
    _ENV,
    EXIT_REASONS,
    ClusterStatus,
    LastStep,
    MinikubeError,
    _json_values,
    error_event,
    find_exit_reason,
    parse_addons,
    parse_docker_env,
    parse_profile_list,
    parse_status,
    parse_version,
    primary_endpoint,
    reason_for_exit_code,
    with_replaced_addons,
)
from devloop.adapters.minikube.versions import (  # noqa: F401 - re-exported with the parsers
    MINIMUM_MINIKUBE,
    MinikubeVersion,
    needs_force,
    parse_semver,
    require_supported,
)
from devloop.base.errors import ClusterError, WaitTimeout

if TYPE_CHECKING:
    from devloop.adapters.minikube.home import ProfileConfig

# minikube's own give-up times, which devloop's deadlines exceed so minikube prints its reason first: a start
# downloads, then runs up to two kubeadm inits of 4m0s each (bootstrapper/kubeadm/kubeadm.go:441); `addons enable
# ingress` retries the apply for 2 min, then waits 6 min for the pods (pkg/addons/addons.go:484, 511).
MINIKUBE_START_GIVES_UP = 900.0
MINIKUBE_ADDON_GIVES_UP = 540.0


def feature_gates_arg(gates: Mapping[str, bool]) -> str:
    """`A=false,B=true`, sorted: the same map always gives the same text (minikube compares its kubeadm
    config as text to decide whether a running cluster must be reconfigured)."""
    return ",".join(f"{name}={'true' if on else 'false'}" for name, on in sorted(gates.items()))


def addon_override_args(images: Mapping[str, str] | None, registries: Mapping[str, str] | None) -> list[str]:
    """`--images=A=img,B=img` and `--registries=A=reg,B=` for `addons enable`, sorted. minikube splits each on
    `,` then `=` (assets/addons.go parseMapString); an empty registry is its default for that image again."""
    args = []
    for flag, values in (("images", images), ("registries", registries)):
        if values:
            args.append(f"--{flag}=" + ",".join(f"{name}={value}" for name, value in sorted(values.items())))
    return args


class Minikube:
    def __init__(
        self,
        profile: str,
        *,
        binary: str = "minikube",
        run: Callable[..., proc.Completed] = proc.run,
        kubeconfig: str | None = None,
    ):
        self.profile_name = profile
        self.binary = binary
        self._run = run
        # minikube writes the first entry of $KUBECONFIG, else ~/.kube/config (kubeconfig.go:266-279), and
        # `status` checks that file: it gets the whole value devloop reads, so both mean the same file.
        self.env = {**_ENV, **({"KUBECONFIG": kubeconfig} if kubeconfig else {})}

    # -- plumbing

    def _argv(self, *args: str) -> list[str]:
        return [self.binary, *args]

    def _call(
        self,
        *args: str,
        timeout: float,
        on_line: Callable[[str], None] | None = None,
        ok_codes: Collection[int] | None = None,
    ) -> proc.Completed:
        # proc.run's own default unless the caller names the codes
        codes: dict[str, Any] = {"ok_codes": ok_codes} if ok_codes is not None else {}
        return self._run(
            self._argv(*args),
            env=self.env,
            timeout=timeout,
            check=False,
            on_line=on_line,
            **codes,
        )

    def _call_long(
        self, what: str, *args: str, timeout: float, on_line: Callable[[str], None] | None = None
    ) -> proc.Completed:
        """A long minikube command; a deadline that passes says what minikube was waiting for (F8).

        - minikube had already given up by itself (a host start or kubeadm init it retries, or its final
          `Exiting due to`): minikube's error, its reason and hint, not a devloop timeout;
        - minikube was still downloading: it sets no time limit on downloads, so devloop's deadline (counted
          from the start, downloads included) was the only one; the hint downloads first with no deadline;
        - otherwise the step minikube was in, which it had not given up on yet."""
        seen = LastStep()

        def take(line: str) -> None:
            seen.take(line)
            if on_line is not None:
                on_line(line)

        try:
            return self._call(*args, timeout=timeout, on_line=take)
        except WaitTimeout:
            command = " ".join(self._argv(*args))
            if seen.gave_up:
                reason, line = find_exit_reason(seen.gave_up)
                raise MinikubeError(
                    what,
                    argv=self._argv(*args),
                    exit_code=-9,
                    reason=reason,
                    reason_line=line or seen.gave_up,
                    output_tail="",
                    message=f"{what}: minikube gave up by itself: {seen.gave_up!r}; devloop stopped `{command}` "
                    f"{timeout:g}s after it began, while minikube was at: {seen.describe()}",
                    hint=None
                    if reason
                    else f"`minikube logs -p {self.profile_name}` shows why minikube gave up; "
                    "rerun `devloop up`, and if it fails the same way, `devloop reset` recreates the profile",
                ) from None
            if seen.downloading:
                raise WaitTimeout(
                    f"{what}: minikube was still downloading ({seen.step!r}) when devloop stopped `{command}` after "
                    f"{timeout:g}s; minikube sets no time limit on its downloads, so the deadline (counted from the "
                    "start, downloads included) was devloop's alone",
                    hint=f"on a slow network, let minikube download first with no deadline: `{command} --download-only`"
                    ", then `devloop up` again; or raise the profile's `timeouts.cluster_start`",
                ) from None
            raise WaitTimeout(
                f"{what}: `{command}` was stopped after {timeout:g}s; minikube was still at: {seen.describe()}, and "
                "had not given up by itself",
                hint=f"`minikube logs -p {self.profile_name}` shows what it waited for; if it is only slow, raise "
                "the profile's `timeouts`",
            ) from None

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
        """minikube's version; ClusterError for one older than MINIMUM_MINIKUBE (every run reads this first)."""
        done = self._call("version", "-o", "json", timeout=30)
        if done.exit_code != 0:
            raise self._fail("could not read the minikube version", done)
        return require_supported(parse_version(done.stdout))

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
        container_runtime: str | None = None,
        force: bool = False,
        docker_env: Sequence[str] = (),
        feature_gates: Mapping[str, bool] | None = None,
        extra_args: Sequence[str] = (),
        timeout: float = MINIKUBE_START_GIVES_UP,
        on_line: Callable[[str], None] | None = None,
    ) -> bool:
        """Start (or restart) the profile; True once it started (a dry-run double says False)."""
        args = self.start_args(
            driver=driver,
            kubernetes_version=kubernetes_version,
            cpus=cpus,
            memory=memory,
            container_runtime=container_runtime,
            force=force,
            docker_env=docker_env,
            feature_gates=feature_gates,
            extra_args=extra_args,
        )
        done = self._call_long(
            f"minikube start of profile {self.profile_name!r} did not finish", *args, timeout=timeout, on_line=on_line
        )
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
        container_runtime: str | None = None,
        force: bool = False,
        docker_env: Sequence[str] = (),
        feature_gates: Mapping[str, bool] | None = None,
        extra_args: Sequence[str] = (),
    ) -> list[str]:
        """The one builder of `minikube start`'s arguments (the real call and the dry run's line).

        The runtime is always pinned by the profile: left out, minikube takes `minikube config` or
        MINIKUBE_CONTAINER_RUNTIME, and its default becomes containerd in v1.39 (start.go:349-352).
        `feature_gates`: None leaves the flag out (minikube keeps what the profile saved); a mapping, even an
        empty one, is passed whole, since minikube replaces its saved FeatureGates with the flag's text."""
        args = ["start", "-p", self.profile_name]
        # Unset values are left to minikube's own defaults rather than passed as "None".
        for flag, value in (
            ("driver", driver),
            ("kubernetes-version", kubernetes_version),
            ("cpus", cpus),
            ("memory", memory),
            ("container-runtime", container_runtime),
        ):
            if value is not None:
                args.append(f"--{flag}={value}")
        # Variables for the node's dockerd (saved in the profile as DockerEnv; applied when the node is made).
        for assignment in docker_env:
            args += ["--docker-env", assignment]
        if feature_gates is not None:
            args.append(f"--feature-gates={feature_gates_arg(feature_gates)}")
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
        """Addon name -> enabled; a replaced name (heapster) says whether its replacement is enabled."""
        config = self.profile_config()
        if config is not None:
            # `addons list` answers from this same map of config.json (addons_list.go:129, assets/addons.go:88)
            return with_replaced_addons(config.addons)
        done = self._call("addons", "list", "-p", self.profile_name, "-o", "json", timeout=60)
        if done.exit_code != 0:
            raise self._fail("could not list minikube addons", done)
        return with_replaced_addons(parse_addons(done.stdout))

    def enable_addon(
        self,
        name: str,
        *,
        images: Mapping[str, str] | None = None,
        registries: Mapping[str, str] | None = None,
        timeout: float = MINIKUBE_ADDON_GIVES_UP,
        on_line: Callable[[str], None] | None = None,
    ) -> bool:
        """Enable the addon, with its images and registries overridden by minikube's name (`--images`,
        `--registries`; minikube saves them in the profile); True once enabled (a dry-run double says False)."""
        done = self._call_long(
            f"minikube addons enable {name} did not finish",
            "addons",
            "enable",
            name,
            "-p",
            self.profile_name,
            *addon_override_args(images, registries),
            timeout=timeout,
            on_line=on_line,
        )
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
            # docker-env.go:672-682: cri-o at all, or containerd on a driver other than docker.
            14: "minikube docker-env refuses this profile's runtime and driver: it supports the docker runtime, "
            "and containerd only with the docker driver; set `cluster.image_transfer: load` (build with your own "
            "Docker, then `minikube image load`) or `cluster.container_runtime: docker`",
            83: "the minikube host is not running: `devloop up` starts it",
            # mustload.go running(): the profile is missing, or it is there but its control-plane node's host
            # (the container or VM) is gone (state None), both GUEST_NOT_FOUND
            85: "the minikube profile does not exist, or its control-plane host (the node's container or VM) is "
            "gone: `devloop up` creates it again (`devloop reset` recreates the whole profile)",
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

    def images(self) -> list[str]:
        """`minikube image ls`: the images the cluster's runtime holds, one fully qualified name each."""
        done = self._call("image", "ls", "-p", self.profile_name, "--format", "short", timeout=120)
        if done.exit_code != 0:
            raise self._fail(f"minikube could not list the images of profile {self.profile_name!r}", done)
        return [line.strip() for line in done.stdout.splitlines() if line.strip()]

    def image_load(
        self,
        ref: str,
        *,
        env: dict[str, str] | None = None,
        timeout: float,
        on_line: Callable[[str], None] | None = None,
    ) -> None:
        """`minikube image load -p P --daemon REF`: minikube takes REF from the Docker engine the DOCKER_*
        variables in `env` name (image.go:79-153). Exit 0 is no proof (a missing image only warns): check
        images() (or node_images() per node).

        --daemon: without it (and without --remote) minikube turns on both, HEADs the registry for a short name
        and, when the local engine lacks the image, silently pulls the registry's instead (image/image.go
        retrieveImage). minikube also saves every loaded image as a tarball in MINIKUBE_HOME/cache/images/<arch>
        (machine/cache_images.go CacheAndLoadImages -> image.SaveToDir), kept forever; devloop's tags are new on
        every build, so the tarball this load created (and only that one) is removed afterwards."""
        created = [missing_parts(path) for path in image_cache_paths(ref)]
        try:
            done = self._run(
                self._argv("image", "load", "-p", self.profile_name, "--daemon", ref),
                env={**self.env, **(env or {})},
                timeout=timeout,
                check=False,
                on_line=on_line,
            )
        finally:
            for parts in created:
                remove_created(parts)
        if done.exit_code != 0:
            raise self._fail(f"minikube could not load {ref} into profile {self.profile_name!r}", done)

    def node_images(self, node: str, runtime: str) -> list[str]:
        """The images one node's runtime holds, fully qualified: what `image ls` would list for that node alone.

        `image ls` merges the lists of all running nodes (machine/cache_images.go ListImages) and `image load`
        logs a node's failure and exits 0 (DoLoadImages), so a multi-node proof asks each node. minikube has no
        per-node `image ls`; `minikube ssh -n NODE` (node.Retrieve takes config.json's node name; "" is the
        primary) runs the very command minikube's own listing runs (cruntime ListImages), over the local SSH
        port: offline, like `image ls`."""
        if runtime == "docker":
            command = "docker images --no-trunc --format '{{.Repository}}:{{.Tag}}'"
        else:  # containerd, cri-o: cruntime/cri.go listCRIImages
            command = "sudo crictl images --output json"
        where = ["-n", node] if node else []
        done = self._call("ssh", "-p", self.profile_name, *where, "--", command, timeout=120)
        if done.exit_code != 0:
            label = node or "the primary node"
            raise self._fail(f"minikube could not list the images of {label} in profile {self.profile_name!r}", done)
        return parse_node_images(done.stdout, runtime)

    def profile_config(self) -> ProfileConfig | None:
        """The profile's config.json as minikube saved it (read from disk, minikube is not run), or None."""
        from devloop.adapters.minikube.home import read_profile_config

        return read_profile_config(self.profile_name)

    def profiles(self) -> dict[str, list[dict]]:
        # -l (--light): without it minikube asks every profile's status, and one broken profile ends the
        # whole command (profile_list.go:99-121); devloop only needs the configs.
        done = self._call("profile", "list", "-o", "json", "-l", timeout=60)
        if done.exit_code != 0:
            _, values = _json_values(done.stdout)
            if any(isinstance(v, dict) and "error" in v for v in values):
                # {"error":{}} and exit 80 (profile_list.go:242-245): the Go error marshals to an empty
                # object, so the reason is only in minikube's log.
                error = next(v["error"] for v in values if isinstance(v, dict) and "error" in v)
                detail = f": {error}" if error else ' (it printed {"error":{}}: the reason is only in its log)'
                raise ClusterError(
                    f"minikube could not list profiles (exit {done.exit_code}){detail}",
                    # -l reads only the profiles' config files, never the kubeconfig (profile.go:237-254).
                    hint="`minikube profile list --alsologtostderr` shows why; a profile config minikube cannot "
                    "read ($MINIKUBE_HOME/profiles/*/config.json, MINIKUBE_HOME defaults to ~/.minikube) is a "
                    "common cause",
                )
            raise self._fail("minikube could not list profiles", done)
        return parse_profile_list(done.stdout)

    def profile(self) -> dict | None:
        for entry in self.profiles()["valid"]:
            if isinstance(entry, dict) and entry.get("Name") == self.profile_name:
                return entry
        return None

    def api_endpoint(self) -> tuple[str, int] | None:
        config = self.profile_config()
        if config is not None:
            # `profile list -l` prints this file's Nodes: the same answer without running minikube
            return config.endpoint
        entry = self.profile()
        return primary_endpoint(entry) if entry else None


__all__ = [
    "ClusterStatus",
    "Minikube",
    "MinikubeError",
    "addon_override_args",
    "MINIMUM_MINIKUBE",
    "MinikubeVersion",
    "feature_gates_arg",
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
