"""An `index.lock` left behind by an aoi process killed while writing the index.

Git (and libgit2) write the index by creating `index.lock`, writing the new index into it
and renaming it over `index`. A process killed between the two leaves the lock, and git
never removes one by itself: every later index write fails ("Another git process seems to
be running"), the daemon's work-tree updates wait forever and `git status` stays wrong.

So an aoi process writes the index inside `writing()`: it holds an flock on
`.aoi/locks/index-writer` and keeps "<pid> <start time>" in that file while it writes,
and empties it after. The kernel drops the flock when the process dies, and nobody else
can take `index.lock` while it exists, so a non-empty marker whose flock is free means
its writer died mid-write and an `index.lock` made in that write's time is its leftover:
`clear_if_stale` removes it. A lock made later (a person removed the stale one, and their
git holds a new one) is left alone, and so is any lock while no aoi write was cut short.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX: no marker, nothing cleared
    fcntl = None  # type: ignore[assignment]

WRITE_WINDOW_S = 60.0  # an index write cut short began at most this long before its lock


def _marker(aoi_dir: Path) -> Path:
    return aoi_dir / "locks" / "index-writer"


def _open(aoi_dir: Path) -> int:
    path = _marker(aoi_dir)
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)


@contextlib.contextmanager
def writing(aoi_dir: Path) -> Iterator[None]:
    """Mark an index write by this process (see the module docstring)."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    fd = _open(aoi_dir)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # another aoi process writes (its own checkout lock lets it)
            yield  # unmarked: git's lock decides which write happens
            return
        os.ftruncate(fd, 0)  # (what a killed writer left, if no lock of its was found)
        os.pwrite(fd, f"{os.getpid()} {time.time():.3f}\n".encode(), 0)
        try:
            yield
        finally:  # written, or failed (and git's lock cleaned up): only a kill skips this
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)


def clear_if_stale(git_dir: Path, aoi_dir: Path) -> str | None:
    """Remove `index.lock` when an aoi process died writing it; what was done, or None."""
    if fcntl is None or not _marker(aoi_dir).exists():  # pragma: no cover
        return None
    lock = git_dir / "index.lock"
    fd = _open(aoi_dir)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return None  # an aoi process is writing the index right now
        text = os.pread(fd, 100, 0).decode("ascii", "replace").split()
        if len(text) != 2:
            return None  # no aoi write was cut short
        pid, started = text[0], float(text[1])
        try:
            made = lock.stat().st_mtime
        except FileNotFoundError:
            os.ftruncate(fd, 0)
            return None
        if not started - 1.0 <= made <= started + WRITE_WINDOW_S:
            return None  # made by someone else, after that write
        lock.unlink(missing_ok=True)
        os.ftruncate(fd, 0)
        return f"removed the index.lock left by aoi process {pid}, killed while writing the index"
    except ValueError:
        return None
    finally:
        os.close(fd)
