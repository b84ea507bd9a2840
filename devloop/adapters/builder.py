"""Image builds: a component's own build command, run with minikube's docker-env, into the daemon
of the cluster. The Session hands this out (a dry run gets the double in adapters/dry.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devloop.adapters import proc
from devloop.errors import ClusterError, CommandFailed

if TYPE_CHECKING:
    from devloop.adapters.docker_engine import DockerEngine
    from devloop.report import Reporter


class Builder:
    def __init__(self, *, context: str, docker: Callable[[], DockerEngine], docker_env: Callable[[], dict[str, str]],
                 reporter: Reporter, timeout: float) -> None:
        self.context = context
        self._docker = docker
        self._docker_env = docker_env
        self.reporter = reporter
        self.timeout = timeout

    def prepare(self) -> None:
        """Step 3 (docker-env): builds must land in this profile's daemon, and minikube names its
        daemon after the profile; anything else would build images the cluster never sees."""
        with self.reporter.step("docker-env", f"docker-env of {self.context}") as step:
            name = self._docker().daemon_name()
            if name != self.context:
                raise ClusterError(
                    f"docker-env of minikube profile {self.context!r} leads to a daemon named {name!r}",
                    hint="the build would not be visible to the cluster; run `devloop reset`",
                )
            step.done(self._docker_env().get("DOCKER_HOST", ""))

    def connect(self) -> None:
        """Read the docker-env and make the client; raises DevloopError when there is none."""
        self._docker()

    def image_exists(self, tag: str) -> bool:
        return self._docker().image_exists(tag)

    def missing(self, tags: Iterable[str]) -> list[str]:
        return [tag for tag in tags if not self.image_exists(tag)]

    def build(self, component: Any, tag: str, *, cwd: Path, on_line: Callable[[str], None] | None = None) -> None:
        """Run the component's build command for `tag`; fail unless the image is then in the daemon."""
        command = component.build_command(tag)
        env = {**self._docker_env(), **dict(component.env)}
        try:
            proc.run_shell(command, env=env, cwd=cwd, timeout=self.timeout, on_line=on_line)
        except CommandFailed as exc:
            raise CommandFailed(
                exc.argv, exc.exit_code_of_command, exc.output_tail,
                message=f"build of {component.name} failed: `{command}` exited with code {exc.exit_code_of_command} (in {cwd})",
            ) from None
        if not self.image_exists(tag):
            raise ClusterError(
                f"build of {component.name} succeeded but {tag} is not in minikube's daemon",
                hint="the build command must tag its image with {image} and build with the docker-env it is given",
            )
