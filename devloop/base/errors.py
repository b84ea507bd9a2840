"""Errors a user can act on. The Reporter renders them (report.py; the text is views.error_lines)."""

from __future__ import annotations

from collections.abc import Sequence


class DevloopError(Exception):
    """A failure with a message that says what happened and, where we know, what to do."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class ConfigError(DevloopError):
    """A profile or option is wrong: names the file, the key path and what was expected."""

    exit_code = 2


class ToolMissing(DevloopError):
    """An external program devloop drives (minikube, make, docker) is not on PATH."""


class CommandFailed(DevloopError):
    """An external command exited non-zero; carries what a user needs to see to fix it."""

    def __init__(
        self,
        argv: Sequence[str],
        exit_code: int,
        output_tail: str,
        *,
        message: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.argv = list(argv)
        self.exit_code_of_command = exit_code
        self.output_tail = output_tail
        text = message or f"`{' '.join(self.argv)}` exited with code {exit_code}"
        if output_tail.strip():
            tail = "\n".join("  | " + line for line in output_tail.rstrip().splitlines())
            text = f"{text}\n{tail}"
        super().__init__(text, hint=hint)


class BuildFailed(CommandFailed):
    """A component's build command failed (watch retries one once: the engine may have died under it)."""


class ClusterError(DevloopError):
    """The cluster is absent, broken or in a state a step cannot work with."""


class UnsafeContext(DevloopError):
    """The kube context does not point at the minikube profile: refused before any API call."""


class WaitTimeout(DevloopError):
    """A wait ran out of time; the message names what it was waiting for and what it saw last."""
