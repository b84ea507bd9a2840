"""Content fingerprints of a component's inputs: they decide whether a build is needed.

digest = sha256 over
  - a format version, the component's build command and its whole profile entry (JSON), and
  - for each input file not ignored, sorted by path: the path relative to the component's
    directory, its kind (file, executable file, symlink) and the sha256 of its content (a
    symlink's target text; symlinks are not followed inside inputs), and
  - each listed input that does not exist (so adding it later changes the digest).

Which files are inputs (ignore rules, .dockerignore, build contexts): devloop.sources.inputs.

Stat cache: file digests are cached per component directory in `cache_dir`, keyed by
(relative path, size, mtime_ns, inode), so an unchanged tree costs a walk of stats, not reads.
Entries for files modified within RACY_SECONDS of hashing are not stored (a later write in the
same timestamp tick would keep size and mtime), so those files are re-read next time. The cache
is written atomically; a corrupt or unreadable cache is ignored and rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from devloop.base.errors import ConfigError
from devloop.base.paths import default_cache_dir
from devloop.profile.schema import Component, Profile
from devloop.sources.inputs import IgnoreRules, ignore_rules, norm_rel

FORMAT = "devloop-fingerprint-v1"
CACHE_FORMAT = 1
RACY_SECONDS = 2.0
TAG_PREFIX = "dev-"


@dataclass(frozen=True)
class Fingerprint:
    digest: str  # hex sha256
    files: int  # input files that went into the digest
    hashed: int = 0  # of those, how many were read (stat-cache misses)
    missing: tuple[str, ...] = ()  # listed inputs that do not exist
    seconds: float = 0.0

    @property
    def short(self) -> str:
        return self.digest[:12]


def tag_for(component: Component, digest: str) -> str:
    """The immutable tag a component's build gets: `image:dev-<first 12 hex of the digest>`."""
    return f"{component.image}:{TAG_PREFIX}{digest[:12]}"


# --------------------------------------------------------------------------- fingerprinting


@dataclass
class _Cache:
    path: Path
    base: str  # the component directory it belongs to (two directories never share a file)
    entries: dict[str, list]  # rel path -> [size, mtime_ns, inode, hex digest]
    loaded_mtime_ns: int | None = None
    dirty: bool = False
    seen: set[str] = field(default_factory=set)


class Fingerprinter:
    def __init__(self, cache_dir: Path | None = None) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self._caches: dict[str, _Cache] = {}

    # The one place file contents are read; tests count calls to it.
    def _hash_file(self, path: str) -> str:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()

    def fingerprint(self, profile: Profile, component: Component, workspace: Path) -> Fingerprint:
        started = time.monotonic()
        base = os.path.abspath(component.path(Path(workspace)))
        if not os.path.isdir(base):
            where = f"{profile.source}: " if profile.source else ""
            raise ConfigError(
                f"{where}components[{component.name}].dir: directory {base} does not exist",
                hint=f"--workspace must be the directory holding the checkouts ({component.dir}/ of profile "
                f"{profile.name!r} is looked up there)",
            )
        rules = ignore_rules(profile, component, Path(workspace))
        files, missing = self._collect(base, [norm_rel(i) for i in component.inputs], rules)
        cache = self._cache_for(base)
        racy_after = time.time_ns() - int(RACY_SECONDS * 1e9)
        h = hashlib.sha256()
        # live_update is how devloop updates running containers, not what the image holds: turning it on or
        # off must not change the tag (nor rebuild every image of a profile that predates the field)
        profile_entry = component.model_dump_json(exclude={"live_update"})
        h.update(f"{FORMAT}\nbuild:{component.build}\nentry:{profile_entry}\n".encode())
        hashed = 0
        entries = cache.entries
        parts: list[str] = []
        # The hot loop of a warm run (one iteration per input file): kept free of calls.
        for rel in sorted(files):
            full, st = files[rel]
            mode = st.st_mode
            if stat.S_ISLNK(mode):
                kind, digest = "l", hashlib.sha256(os.readlink(full).encode()).hexdigest()
            else:
                kind = "x" if mode & 0o111 else "f"
                entry = entries.get(rel)
                if (
                    entry is not None
                    and entry[0] == st.st_size
                    and entry[1] == st.st_mtime_ns
                    and entry[2] == st.st_ino
                ):
                    digest = entry[3]
                else:
                    try:
                        digest = self._hash_file(full)
                    except FileNotFoundError:
                        continue  # deleted between the walk and the read: it is not an input now
                    hashed += 1
                    if st.st_mtime_ns < racy_after:
                        entries[rel] = [st.st_size, st.st_mtime_ns, st.st_ino, digest]
                        cache.dirty = True
                    elif entry is not None:
                        del entries[rel]
                        cache.dirty = True
            parts.append(f"{rel}\0{kind}\0{digest}\n")
        h.update("".join(parts).encode())
        for rel in missing:
            h.update(f"missing:{rel}\n".encode())
        self._forget_unseen(cache, files, [norm_rel(i) for i in component.inputs])
        self._save(cache)
        return Fingerprint(h.hexdigest(), len(files), hashed, tuple(missing), time.monotonic() - started)

    def _collect(
        self, base: str, inputs: list[str], rules: IgnoreRules
    ) -> tuple[dict[str, tuple[str, os.stat_result]], list[str]]:
        files: dict[str, tuple[str, os.stat_result]] = {}
        missing: list[str] = []
        for rel in inputs:
            full = os.path.join(base, rel) if rel else base
            try:
                st = os.stat(full)  # follows a symlink named explicitly as an input
            except FileNotFoundError:
                missing.append(rel or ".")
                continue
            if stat.S_ISDIR(st.st_mode):
                if rel and rules.prune(rel):
                    continue
                self._walk(full, f"{rel}/" if rel else "", rules, files)
            elif stat.S_ISREG(st.st_mode) and not rules.ignored(rel):
                files[rel] = (full, st)
        return files, missing

    @staticmethod
    def _walk(top: str, prefix: str, rules: IgnoreRules, files: dict[str, tuple[str, os.stat_result]]) -> None:
        ignored, prune = rules.ignored, rules.prune
        S_ISREG, S_ISLNK = stat.S_ISREG, stat.S_ISLNK
        stack = [(top, prefix)]
        while stack:
            directory, pre = stack.pop()
            try:
                it = os.scandir(directory)
            except (FileNotFoundError, NotADirectoryError):
                continue  # vanished mid-walk (an editor's rename dance)
            with it:
                for entry in it:
                    rel = pre + entry.name
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            if not prune(rel):
                                stack.append((entry.path, rel + "/"))
                            continue
                        if ignored(rel):
                            continue
                        st = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    if S_ISREG(st.st_mode) or S_ISLNK(st.st_mode):
                        files[rel] = (entry.path, st)

    # ------------------------------------------------------------------ cache

    def _cache_file(self, base: str) -> Path:
        key = hashlib.sha256(base.encode()).hexdigest()[:20]
        return self.cache_dir / f"stat-{key}.json"

    def _cache_for(self, base: str) -> _Cache:
        path = self._cache_file(base)
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            mtime = None
        cached = self._caches.get(base)
        if cached is not None and cached.loaded_mtime_ns == mtime:
            return cached
        entries: dict[str, list] = {}
        if mtime is not None:
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
                if raw.get("format") == CACHE_FORMAT and raw.get("base") == base:
                    entries = {
                        k: v
                        for k, v in raw["entries"].items()
                        if isinstance(v, list) and len(v) == 4 and isinstance(v[3], str)
                    }
            except (OSError, ValueError, AttributeError, KeyError, TypeError):
                entries = {}  # corrupt or foreign: rebuilt from the files on this run
        cache = _Cache(path, base, entries, mtime)
        self._caches[base] = cache
        return cache

    @staticmethod
    def _forget_unseen(cache: _Cache, files: dict, inputs: Iterable[str]) -> None:
        """Drop entries under this component's inputs whose file is gone, so the cache does not
        grow forever. Entries the walk skipped but that exist stay: another component sharing
        the directory (with other ignore rules) may use them."""
        roots = list(inputs)
        stale = [
            rel
            for rel in cache.entries
            if rel not in files
            and any(r == "" or rel == r or rel.startswith(r + "/") for r in roots)
            and not os.path.lexists(os.path.join(cache.base, rel))
        ]
        for rel in stale:
            del cache.entries[rel]
        if stale:
            cache.dirty = True

    def _save(self, cache: _Cache) -> None:
        if not cache.dirty:
            return
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.cache_dir, prefix=".stat-", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump(
                        {"format": CACHE_FORMAT, "base": cache.base, "entries": cache.entries}, f, separators=(",", ":")
                    )
                os.replace(tmp, cache.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            cache.loaded_mtime_ns = cache.path.stat().st_mtime_ns
            cache.dirty = False
        except OSError:
            # A cache we cannot write only costs speed next time; the fingerprint is still right.
            pass
