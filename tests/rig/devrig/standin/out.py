"""minikube's console output rules (pkg/minikube/out): streams, low-fi prefixes, JSON events, fatal exits.

Steps and info go to stdout, warnings and errors to stderr.  Emoji prefixes only when colour is wanted
(MINIKUBE_IN_STYLE, or a colour TERM on a TTY); otherwise the low-fi prefixes (`* `, `! `, `X `, `  - `).
With `-o json` every message becomes one CloudEvents line on stdout, its message without a prefix.  In shell-eval mode (docker-env on a
non-TTY stdout) stdout chatter is silenced and every exit prints `false exit code N` first.
"""

from __future__ import annotations

import json
import os
import sys
import uuid

from .reasons import Kind

# style name -> (emoji prefix, low-fi prefix); low-fi default is "* " (pkg/minikube/style/style.go)
_STYLES: dict[str, tuple[str, str]] = {
    "happy": ("😄  ", "* "),
    "sparkle": ("✨  ", "* "),
    "notice": ("📌  ", "* "),
    "thumbs_up": ("👍  ", "* "),
    "pulling": ("🚜  ", "* "),
    "starting_vm": ("🔥  ", "* "),
    "restarting": ("🔄  ", "* "),
    "running": ("🏃  ", "* "),
    "docker": ("🐳  ", "* "),
    "sub_step": ("    ▪ ", "  - "),
    "option": ("    ▪ ", "  - "),
    "health_check": ("🔎  ", "* "),
    "addon_enable": ("🌟  ", "* "),
    "addon_disable": ("🌑  ", "* "),
    "ready": ("🏄  ", "* "),
    "deleting_host": ("🔥  ", "* "),
    "deleted": ("💀  ", "* "),
    "confused": ("🙄  ", "* "),
    "shrug": ("🤷  ", "* "),
    "workaround": ("👉  ", "  "),
    "url": ("👉  ", "  "),
    "tip": ("💡  ", "* "),
    "documentation": ("📘  ", "* "),
    "warning": ("❗  ", "! "),
    "failure": ("❌  ", "X "),
    "conflict": ("💢  ", "! "),
    "issues": ("🍿  ", "* "),
    "log_entry": ("    ", "  "),
    "sad": ("😿  ", "* "),
    "embarrassed": ("🤦  ", "* "),
    "verifying": ("🤔  ", "* "),
    "check": ("✅  ", "* "),
    "new": ("🆕  ", "* "),
    "meh": ("🙄  ", "* "),
    "kubectl": ("💗  ", "* "),
    "stopping": ("✋  ", "* "),
    "stopped": ("🛑  ", "* "),
    "empty": ("", ""),
}

# out/register/register.go: the step order of `start` (and of `delete`/`stop`); JSON step events carry the
# index of their step in its order as `currentstep` and the order's length - 1 as `totalsteps`
REGISTER_ORDERS = (
    (
        "Initial Minikube Setup",
        "Selecting Driver",
        "Downloading Artifacts",
        "Starting Node",
        "Updating Driver",
        "Pulling Base Image",
        "Running on Localhost",
        "Local OS Release",
        "Creating Container",
        "Creating VM",
        "Running Remotely",
        "Preparing Kubernetes",
        "Generating certificates",
        "Booting control plane",
        "Configuring RBAC rules",
        "Configuring CNI",
        "Configuring Localhost Environment",
        "Verifying Kubernetes",
        "Enabling Addons",
        "Done",
    ),
    ("Deleting", "Stopping", "Done", "Puring home dir"),
    ("Stopping", "PowerOff", "Done"),
)


def _truthy(value: str) -> bool | None:
    v = value.strip().lower()
    if v in ("1", "t", "true", "yes", "y", "on"):
        return True
    if v in ("0", "f", "false", "no", "n", "off"):
        return False
    return None


def _wants_color(stream) -> bool:
    forced = os.environ.get("MINIKUBE_IN_STYLE")
    if forced is not None and _truthy(forced) is not None:
        return bool(_truthy(forced))
    term = os.environ.get("TERM", "")
    if term in ("", "dumb") and not os.environ.get("COLORTERM"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def klog_error(where: str, message: str) -> None:
    """A klog error line as minikube's binary writes it to stderr (klog's stderrthreshold is ERROR):
    `E1128 21:46:45.830132   18205 status.go:183] message`."""
    import time as _time

    now = _time.time()
    stamp = _time.strftime("%m%d %H:%M:%S", _time.localtime(now)) + f".{int(now % 1 * 1e6):06d}"
    sys.stderr.write(f"E{stamp} {os.getpid():7d} {where}] {message}\n")
    sys.stderr.flush()


class Exit(Exception):
    """Raised to end the command with minikube's exit code (after its output was written)."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


class Console:
    def __init__(self, command: str = "") -> None:
        self.command = command
        self.json = False
        self.silent = False
        self.shell = False
        self.color = _wants_color(sys.stdout)
        self._order: tuple[str, ...] = ()
        self._current = ""

    # ---- plumbing
    def _prefix(self, style: str) -> str:
        emoji, low = _STYLES.get(style, ("", "* "))
        return emoji if self.color else low

    def _stdout(self, text: str) -> None:
        if self.silent or self.json:
            return
        sys.stdout.write(text)
        sys.stdout.flush()

    def _stderr(self, text: str) -> None:
        sys.stderr.write(text)
        sys.stderr.flush()

    def raw(self, text: str) -> None:
        """Command output proper (status JSON, env script, ip): never silenced, no prefix."""
        sys.stdout.write(text)
        sys.stdout.flush()

    def event(self, kind: str, data: dict) -> None:
        ev = {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "https://minikube.sigs.k8s.io/",
            "type": f"io.k8s.sigs.minikube.{kind}",
            "datacontenttype": "application/json",
            "data": dict(sorted(data.items())),
        }
        sys.stdout.write(json.dumps(ev, ensure_ascii=False, separators=(",", ":")) + "\n")
        sys.stdout.flush()

    # ---- the out.* functions
    def step(self, style: str, message: str, *, name: str = "") -> None:
        """out.Step: stdout, or a `step` event in JSON mode."""
        if self.json:
            if name:
                if not self._order or name not in self._order:
                    self._order = next(
                        (o for o in REGISTER_ORDERS if o[0] == name),
                        next((o for o in REGISTER_ORDERS if name in o), ()),
                    )
                self._current = name
            order = self._order
            self.event(
                "step",
                {
                    "currentstep": str(order.index(self._current)) if self._current in order else "0",
                    "message": message.strip(),
                    "name": self._current,
                    "totalsteps": str(max(len(order) - 1, 0)),
                },
            )
            return
        self._stdout(self._prefix(style) + message + "\n")

    def styled(self, style: str, message: str) -> None:
        """out.Styled: stdout; in JSON mode an `info` event."""
        if self.json:
            self.event("info", {"message": message.strip()})
            return
        self._stdout(self._prefix(style) + message + "\n")

    def info(self, message: str) -> None:
        """out.Infof (style Option, `  - ` low-fi)."""
        self.styled("option", message)

    def ln(self, text: str = "") -> None:
        self._stdout(text + "\n")

    def warning(self, message: str) -> None:
        """out.WarningT: stderr `! msg`; `warning` event in JSON mode."""
        if self.json:
            self.event("warning", {"message": message.strip()})
            return
        self._stderr(self._prefix("warning") + message + "\n")

    def err(self, style: str, message: str) -> None:
        """out.ErrT: stderr; `error` event (no exit code) in JSON mode."""
        if self.json:
            self.event("error", {"message": message.strip()})
            return
        self._stderr(self._prefix(style) + message + "\n")

    def exit_code(self, code: int) -> Exit:
        """exit.Code: in shell mode, `false exit code N` on stdout first."""
        if self.shell:
            sys.stdout.write(f"false exit code {code}\n")
            sys.stdout.flush()
        return Exit(code)

    def fatal(self, kind: Kind, message: str, *, new_issue_link: bool = False) -> Exit:
        """exit.Message / exit.Error: the `Exiting due to` block; returns the Exit to raise."""
        self.reason_error(kind, message, new_issue_link=new_issue_link, exiting=True)
        return self.exit_code(kind.code)

    def reason_error(self, kind: Kind, message: str, *, new_issue_link: bool = False, exiting: bool = False) -> None:
        """out.Error (out_reason.go): the reason block without exiting -- what exitIfNotForced prints under
        --force: the bare message (no `Exiting due to`), in the reason's style (KnownIssue when it has none)."""
        if self.json:
            self.event(
                "error",
                {
                    "advice": kind.advice,
                    "exitcode": str(kind.code),
                    "issues": ",".join(kind.issues),
                    "message": message.strip(),
                    "name": kind.id,
                    "url": kind.url,
                },
            )
            return
        self.ln("")
        text = f"Exiting due to {kind.id}: {message}" if exiting else message
        self._stderr(self._prefix("failure") + text + "\n")
        if kind.advice:
            self._stderr(self._prefix("tip") + f"Suggestion: {kind.advice}\n")
        if kind.url:
            self._stderr(self._prefix("documentation") + f"Documentation: {kind.url}\n")
        for issue in kind.issues[:1]:
            self._stderr(self._prefix("issues") + f"Related issue: {issue}\n")
        if new_issue_link:
            self._stderr("\n")
            self._stderr(self._issue_box())
        self.ln("")

    def _issue_box(self) -> str:
        lines = [
            self._prefix("sad") + "If the above advice does not help, please let us know:",
            self._prefix("url") + "https://github.com/kubernetes/minikube/issues/new/choose",
            "",
            "Please run `minikube logs --file=logs.txt` and attach logs.txt to the GitHub issue.",
        ]
        if self.command != "start":
            lines += [
                "Please also attach the following file to the GitHub issue:",
                "- " + os.path.join(os.environ.get("TMPDIR", "/tmp"), f"minikube_{self.command}_0.log"),
            ]
        width = max(_width(line) for line in lines) + 8
        out = ["╭" + "─" * width + "╮", "│" + " " * width + "│"]
        for line in lines:
            out.append("│    " + line + " " * (width - 4 - _width(line)) + "│")
        out += ["│" + " " * width + "│", "╰" + "─" * width + "╯"]
        return "\n".join(out) + "\n"


def _width(text: str) -> int:
    # emoji occupy two cells; everything the stand-in prints is otherwise narrow
    return sum(2 if ord(ch) > 0x2000 and ch not in "▪─│╭╮╰╯" else 1 for ch in text)
