"""Locks in the git common dir, so every worktree and a second daemon see them.

Slot locks are `flock` locks on open file descriptions. The agent process inherits the
descriptor, so a slot stays taken while either the daemon or its agent lives, and the
kernel frees it when both are gone (a kill -9 never leaves a stuck lock behind).
The one-daemon-per-checkout lock uses `filelock.FileLock` (fcntl, released on death).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from filelock import FileLock, Timeout

from aoi_git.errors import AoiError


def lock_dir(common_dir: Path) -> Path:
    d = common_dir / "aoi" / "locks"
    d.mkdir(parents=True, exist_ok=True)
    return d


class DaemonLock:
    def __init__(self, common_dir: Path, worktree: Path) -> None:
        key = str(worktree.resolve()).replace("/", "_")[-120:]
        self.path = lock_dir(common_dir) / f"daemon{key}.lock"
        self.info = self.path.with_suffix(".pid")
        self._lock = FileLock(str(self.path))

    def acquire(self) -> None:
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            pid = self.info.read_text().strip() if self.info.exists() else "?"
            raise AoiError(
                f"another aoi daemon (pid {pid}) is already running on this checkout; "
                "stop it first (kill -TERM PID) or use a separate clone"
            ) from None
        self.info.write_text(str(os.getpid()))

    def release(self) -> None:
        self._lock.release()


class SlotLock:
    """One of an employee's `concurrency` slots, or a task's run lock."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd = fd

    @classmethod
    def try_take(cls, path: Path) -> SlotLock | None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return cls(path, fd)

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # the agent's inherited copy (if alive) still holds it
            self.fd = -1


def take_slot(common_dir: Path, employee: str, concurrency: int) -> SlotLock | None:
    d = lock_dir(common_dir)
    for n in range(max(1, concurrency)):
        lock = SlotLock.try_take(d / f"slot-{employee}-{n}.lock")
        if lock is not None:
            return lock
    return None


def take_task_lock(common_dir: Path, task_id: str) -> SlotLock | None:
    return SlotLock.try_take(lock_dir(common_dir) / f"task-{task_id}.lock")
