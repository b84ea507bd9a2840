"""A small pflag/cobra work-alike: the command-line grammar minikube accepts, and cobra's usage errors.

pflag rules: `--name=value`, `--name value`, `-x value`, `-xvalue`, `-x=value`; booleans take no separate
argument (`--force`, `--force=false`); `--` ends flags; flags may come before or after positional args.
Viper-bound flags also read `MINIKUBE_<FLAG>` (dashes -> underscores) when not given on the command line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field


class UsageError(Exception):
    """A cobra-level usage error: printed as `Error: ...` plus usage on stderr, exit 14."""


@dataclass(frozen=True)
class Flag:
    name: str
    kind: str = "string"  # string | bool | int | duration | slice
    default: object = ""
    short: str = ""
    help: str = ""
    env: bool = True  # viper-bound: MINIKUBE_<NAME> is read when the flag is absent
    no_opt: str | None = None  # value used when given without `=value` (pflag NoOptDefVal)


GLOBAL_FLAGS = (
    Flag(
        "profile",
        "string",
        "minikube",
        "p",
        "The name of the minikube VM being used. This can be set to allow having multiple instances of "
        "minikube independently.",
    ),
    Flag("bootstrapper", "string", "kubeadm", "b", "The name of the cluster bootstrapper."),
    Flag("user", "string", "", "", "Specifies the user executing the operation."),
    Flag("skip-audit", "bool", False, "", "Skip recording the current command in the audit logs."),
    Flag("rootless", "bool", False, "", "Force to use rootless driver (docker and podman driver only)"),
    Flag("alsologtostderr", "bool", False, "", "log to standard error as well as files", env=False),
    Flag("logtostderr", "bool", False, "", "log to standard error instead of files", env=False),
    Flag("v", "int", 0, "v", "number for the log level verbosity", env=False),
    Flag("log_dir", "string", "", "", "If non-empty, write log files in this directory", env=False),
    Flag("log_file", "string", "", "", "If non-empty, use this log file", env=False),
    Flag("add_dir_header", "bool", False, "", "If true, adds the file directory to the header", env=False),
)


@dataclass
class Parsed:
    values: dict[str, object] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)
    args: list[str] = field(default_factory=list)
    help: bool = False

    def get(self, name: str):
        return self.values[name]


def _convert(flag: Flag, raw: str, shown: str):
    if flag.kind == "bool":
        v = raw.strip().lower()
        if v in ("1", "t", "true", "y", "yes"):
            return True
        if v in ("0", "f", "false", "n", "no"):
            return False
        raise UsageError(
            f'invalid argument "{raw}" for "{shown}" flag: strconv.ParseBool: parsing "{raw}": invalid syntax'
        )
    if flag.kind == "int":
        try:
            return int(raw)
        except ValueError:
            raise UsageError(
                f'invalid argument "{raw}" for "{shown}" flag: strconv.ParseInt: parsing "{raw}": invalid syntax'
            ) from None
    if flag.kind == "duration":
        if parse_duration(raw) is None:
            raise UsageError(f'invalid argument "{raw}" for "{shown}" flag: time: invalid duration "{raw}"')
        return raw
    return raw


def parse_duration(raw: str) -> float | None:
    """Go time.ParseDuration for the forms people use (`6m`, `90s`, `1m30s`, `500ms`); seconds or None."""
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    s, total = raw.strip(), 0.0
    if s == "0":
        return 0.0
    if not s:
        return None
    i = 0
    while i < len(s):
        j = i
        while j < len(s) and (s[j].isdigit() or s[j] == "."):
            j += 1
        if j == i:
            return None
        k = j
        while k < len(s) and not (s[k].isdigit() or s[k] == "."):
            k += 1
        unit = s[j:k]
        if unit not in units:
            return None
        total += float(s[i:j]) * units[unit]
        i = k
    return total


def parse(argv: list[str], flags: tuple[Flag, ...]) -> Parsed:
    all_flags = flags + GLOBAL_FLAGS
    by_name = {f.name: f for f in all_flags}
    by_short = {f.short: f for f in all_flags if f.short}
    result = Parsed()

    def store(flag: Flag, raw: str, shown: str) -> None:
        value = _convert(flag, raw, shown)
        if flag.kind == "slice":
            prev = result.values.get(flag.name) if flag.name in result.changed else []
            value = list(prev) + [v for v in raw.split(",") if v]
        result.values[flag.name] = value
        result.changed.add(flag.name)

    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            result.args.extend(argv[i:])
            break
        if arg in ("-h", "--help"):
            result.help = True
            continue
        if arg.startswith("--") and len(arg) > 2:
            name, eq, raw = arg[2:].partition("=")
            flag = by_name.get(name) or by_name.get(name.replace("_", "-"))
            if flag is None:
                raise UsageError(f"unknown flag: --{name}")
            if eq:
                store(flag, raw, f"--{name}")
            elif flag.kind == "bool":
                store(flag, "true", f"--{name}")
            elif flag.no_opt is not None:
                store(flag, flag.no_opt, f"--{name}")
            elif i < len(argv):
                store(flag, argv[i], f"--{name}")
                i += 1
            else:
                raise UsageError(f"flag needs an argument: --{name}")
            continue
        if arg.startswith("-") and len(arg) > 1:
            shorts = arg[1:]
            while shorts:
                c, shorts = shorts[0], shorts[1:]
                flag = by_short.get(c)
                if c == "h" and flag is None:
                    result.help = True
                    continue
                if flag is None:
                    raise UsageError(f"unknown shorthand flag: '{c}' in {arg}")
                shown = f"-{c}, --{flag.name}"
                if flag.kind == "bool":
                    if shorts.startswith("="):
                        store(flag, shorts[1:], shown)
                        shorts = ""
                    else:
                        store(flag, "true", shown)
                    continue
                if shorts:
                    store(flag, shorts[1:] if shorts.startswith("=") else shorts, shown)
                elif flag.no_opt is not None:
                    store(flag, flag.no_opt, shown)
                elif i < len(argv):
                    store(flag, argv[i], shown)
                    i += 1
                else:
                    raise UsageError(f"flag needs an argument: '{c}' in -{c}")
                shorts = ""
            continue
        result.args.append(arg)

    for flag in all_flags:
        if flag.name in result.changed:
            continue
        env_value = os.environ.get("MINIKUBE_" + flag.name.upper().replace("-", "_")) if flag.env else None
        if env_value:
            result.values[flag.name] = _convert(flag, env_value, "MINIKUBE_" + flag.name.upper())
            if flag.kind == "slice":
                result.values[flag.name] = [v for v in env_value.split(",") if v]
        else:
            result.values[flag.name] = list(flag.default) if flag.kind == "slice" else flag.default
    return result


def usage(command_path: str, use_line: str, flags: tuple[Flag, ...]) -> str:
    def block(fs: tuple[Flag, ...]) -> str:
        rows = []
        for f in fs:
            left = (f"-{f.short}, " if f.short else "    ") + f"--{f.name}"
            if f.kind != "bool":
                left += f"={_show_default(f)}"
            rows.append((left, f.help))
        width = max(len(left) for left, _ in rows) + 2
        return "\n".join(f"  {left.ljust(width)}{text}" for left, text in rows)

    text = f"Usage:\n  {use_line}\n"
    if flags:
        text += "\nFlags:\n" + block(flags) + "\n"
    text += "\nGlobal Flags:\n" + block(GLOBAL_FLAGS) + "\n"
    return text


def _show_default(f: Flag) -> str:
    if f.kind == "slice":
        return "[" + ",".join(f.default or ()) + "]"
    if f.kind == "string":
        return f"'{f.default}'"
    return str(f.default)
