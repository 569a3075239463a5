"""Moving the org's branch by git's own lock protocol, its last step one `rename`.

A person's `git commit` reads HEAD as it starts and fails at its end if the branch moved
meanwhile. The daemon looks for such a commit just before it moves the branch
(`person_commit.Watch`); whatever it does between that last look and the moment the
branch really moves is a window in which a commit can start and read the old HEAD.
libgit2's `set_target` does its whole work there (lock, write, reflog, rename: 10-30 ms
on a loaded machine, measured), so the move is split as git itself does it:

1. create `<ref>.lock` (O_EXCL: git's lock; taken, the move is retried) and write the new
   id into it;
2. check that the ref still holds the commit the change was built on (loose, else in
   `packed-refs`): nobody can move it while the lock is ours;
3. `last_look()`: False (a person's commit started) drops the lock, nothing moved;
4. `rename` the lock over the ref, then append the reflog lines (the ref's and HEAD's).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path

# the messages `Store.transact` retries on (see its _RETRYABLE)
LOCKED = "failed to lock the branch"
MOVED = "current tip is not the first parent"


def _current(common_dir: Path, ref: str) -> str | None:
    try:
        return (common_dir / ref).read_text().strip() or None
    except FileNotFoundError:
        pass
    try:
        lines = (common_dir / "packed-refs").read_text().splitlines()
    except FileNotFoundError:
        return None
    for line in lines:
        if line.endswith(" " + ref) and not line.startswith(("#", "^")):
            return line.split(" ", 1)[0]
    return None


def move(git_dir: Path, common_dir: Path, ref: str, old: str, new: str, who: str,
         message: str, last_look: Callable[[], bool]) -> bool:
    """Move `ref` (e.g. refs/heads/main, which HEAD names) from `old` to `new`; False when
    `last_look` said not now. Raises ValueError(LOCKED or MOVED) when another writer holds
    the ref or moved it (`who`: "Name <email>" for the reflog)."""
    path = common_dir / ref
    lock = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except FileExistsError:
        raise ValueError(LOCKED) from None
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        raise ValueError(LOCKED) from None  # (retried: the folder is there now)
    renamed = False
    try:
        try:
            os.write(fd, (new + "\n").encode())
        finally:
            os.close(fd)
        if _current(common_dir, ref) != old:
            raise ValueError(MOVED)
        if not last_look():
            return False
        os.rename(lock, path)
        renamed = True
    finally:
        if not renamed:
            with contextlib.suppress(OSError):
                lock.unlink()
    line = f"{old} {new} {who} {int(time.time())} {time.strftime('%z')}\t{message}\n"
    for log in (common_dir / "logs" / ref, git_dir / "logs" / "HEAD"):
        with contextlib.suppress(OSError):
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "a") as f:
                f.write(line)
    return True
