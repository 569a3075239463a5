"""Did anything in a folder change since a moment? Stat data, like git's index, without git.

A snapshot records `(mode, size, mtime, ctime, inode)` of every path under the folder.
Any later write, rename, chmod or delete changes one of them, with one exception git knows
as "racy": a file written in the same tick of the kernel's coarse clock as the snapshot can
be changed again in that tick and keep all of its stat data. Those files (the ones whose
ctime is not older than the clock reading taken before the walk) also get a content hash.

Used on a task's worktree around its agent's run, so a run that changed nothing costs a
walk of a few entries instead of a `git status` process. Folders too big to snapshot
cheaply (`LIMIT` entries, `RACY_BYTES` of racy content) get None: ask git.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

LIMIT = 2000
RACY_BYTES = 4 << 20
# the clock file timestamps are taken from (ktime_get_coarse_real_ts64 on Linux)
_COARSE = getattr(time, "CLOCK_REALTIME_COARSE", 5 if os.uname().sysname == "Linux" else None)

StatKey = tuple[int, int, int, int, int]


@dataclass(frozen=True)
class Snapshot:
    entries: dict[str, StatKey]
    racy: dict[str, str]  # path -> content digest, for entries written in the snapshot's tick


def _now_ns() -> int:
    if _COARSE is not None:
        try:
            return time.clock_gettime_ns(_COARSE)
        except OSError:
            pass
    return time.time_ns() - 20_000_000  # no coarse clock: treat the last 20 ms as racy


def _key(st: os.stat_result) -> StatKey:
    return (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _entries(root: Path, skip: frozenset[str], extra: tuple[Path, ...]
             ) -> dict[str, StatKey] | None:
    """Stat data of everything under `root` (but `skip`) and of the `extra` files that
    exist; None when there are too many entries."""
    entries = _walk(root, skip)
    if entries is None:
        return None
    for path in extra:
        try:
            entries[str(path)] = _key(path.lstat())
        except OSError:
            continue
    return entries


def _walk(root: Path, skip: frozenset[str]) -> dict[str, StatKey] | None:
    entries: dict[str, StatKey] = {}
    stack: list[tuple[str, str]] = [("", str(root))]
    while stack:
        prefix, folder = stack.pop()
        try:
            it = os.scandir(folder)
        except OSError:
            return None
        with it:
            for e in it:
                key = prefix + e.name
                if key in skip:
                    continue
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    return None
                entries[key] = _key(st)
                if len(entries) > LIMIT:
                    return None
                if stat.S_ISDIR(st.st_mode):
                    stack.append((key + "/", e.path))
    return entries


def _digest(path: Path, mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "link:" + os.readlink(path)
    if not stat.S_ISREG(mode):
        return "other"
    return hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()


def take(root: Path, *, skip: frozenset[str] = frozenset(), extra: tuple[Path, ...] = ()
         ) -> Snapshot | None:
    """A snapshot of `root` (minus the top-level names in `skip`) and of the `extra` files;
    None when the folder is too big for this to be cheaper than asking git."""
    tick = _now_ns()
    entries = _entries(root, skip, extra)
    if entries is None:
        return None
    racy: dict[str, str] = {}
    racy_bytes = 0
    for key, (mode, size, _mtime, ctime, _ino) in entries.items():
        if ctime < tick or stat.S_ISDIR(mode):
            continue  # a later change would move its ctime past `tick`
        racy_bytes += size
        if racy_bytes > RACY_BYTES:
            return None
        try:
            racy[key] = _digest(root / key, mode)
        except OSError:
            return None
    return Snapshot(entries, racy)


def unchanged(root: Path, before: Snapshot, *, skip: frozenset[str] = frozenset(),
              extra: tuple[Path, ...] = ()) -> bool:
    """True when nothing under `root` (and in `extra`) changed since `before` was taken."""
    after = _entries(root, skip, extra)
    if after is None or after != before.entries:
        return False
    for key, digest in before.racy.items():
        try:
            if _digest(root / key, after[key][0]) != digest:
                return False
        except OSError:
            return False
    return True
