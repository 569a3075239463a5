"""Task worktrees and their branches while another git process holds a ref's lock.

`git gc --auto` (which the store starts every few thousand commits) packs refs: it takes
each loose ref's lock for a moment. libgit2 fails at once on a taken lock; the daemon then
raised out of its loop (found in a 2,000-task run). Ref updates now wait for the lock."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pygit2
import pytest
from conftest import git

from aoi_git.workspace import REF_LOCK_WAIT_S, Workspace, branch_name


def _hold(lock: Path, seconds: float) -> threading.Thread:
    """Create `lock` now (as git does: O_EXCL) and remove it after `seconds`."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text("")

    def release() -> None:
        time.sleep(seconds)
        lock.unlink()

    thread = threading.Thread(target=release)
    thread.start()
    return thread


@pytest.fixture
def ws(org_dir: Path) -> Workspace:
    return Workspace(org_dir, "main", org_dir / ".aoi" / "worktrees")


def test_a_branch_is_made_and_deleted_once_a_held_ref_lock_is_released(ws: Workspace) -> None:
    refs = ws.repo_dir / ".git" / "refs" / "heads" / "aoi"
    holder = _hold(refs / "t-held.lock", 0.2)
    path = ws.begin_create("t-held").ready()
    holder.join()
    assert (path / ".git").exists()
    assert ws.branch_tip("t-held") == git(ws.repo_dir, "rev-parse", "main").strip()

    ws.remove("t-held")
    holder = _hold(refs / "t-held.lock", 0.2)
    ws.delete_branch("t-held")
    holder.join()
    assert pygit2.Repository(str(ws.repo_dir)).lookup_branch(branch_name("t-held")) is None


def test_a_lock_that_stays_taken_leaves_the_branch_and_does_not_raise(ws: Workspace) -> None:
    ws.create("t-stuck")
    ws.remove("t-stuck")
    lock = ws.repo_dir / ".git" / "refs" / "heads" / "aoi" / "t-stuck.lock"
    lock.write_text("")
    started = time.monotonic()
    ws.delete_branch("t-stuck")  # a stale branch is harmless; a daemon stopped by it is not
    assert time.monotonic() - started >= REF_LOCK_WAIT_S
    assert ws.branch_tip("t-stuck") is not None
    lock.unlink()
    ws.delete_branch("t-stuck")
    assert ws.branch_tip("t-stuck") is None
