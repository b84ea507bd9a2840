"""`watch` follows its profile file: a valid edit is loaded, an invalid one is shown and ignored.

`ProfileReloader.check()` is cheap (one stat) and is called on every tick of watch's loop. When the
file changed it is loaded again: a profile that loads becomes current (`Reloaded`); one that does not
is reported once per distinct error (`Invalid`) while the last valid profile stays in use. A file
edited back to what is already running reloads nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from devloop.base.errors import ConfigError
from devloop.profile.lookup import Profile, load_profile_file


@dataclass(frozen=True)
class Reloaded:
    profile: Profile


@dataclass(frozen=True)
class Invalid:
    error: ConfigError


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class ProfileReloader:
    def __init__(self, profile: Profile) -> None:
        self.current = profile
        self.path = profile.source
        self._stamp = _stamp(self.path) if self.path else None
        self._error: str | None = None

    @property
    def broken(self) -> bool:
        """Whether the file on disk is invalid (the current profile is then the last valid one)."""
        return self._error is not None

    def check(self) -> Reloaded | Invalid | None:
        if self.path is None:
            return None
        stamp = _stamp(self.path)
        if stamp == self._stamp:
            return None
        self._stamp = stamp
        try:
            profile = load_profile_file(self.path)
        except ConfigError as exc:
            if exc.message == self._error:
                return None
            self._error = exc.message
            return Invalid(exc)
        self._error = None
        if profile == self.current:
            return None
        self.current = profile
        return Reloaded(profile)
