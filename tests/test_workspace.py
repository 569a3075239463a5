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
from kit import git

from aoi_git.errors import AoiError
from aoi_git.store.worktrees import REF_LOCK_WAIT_S, Workspace, branch_name


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


@pytest.fixture
def pooled_ws(org_dir: Path) -> Workspace:
    return Workspace(org_dir, "main", org_dir / ".aoi" / "worktrees", pool_size=2)


def _worktree_admins(ws: Workspace) -> list[str]:
    admin_root = ws.repo_dir / ".git" / "worktrees"
    return sorted(p.name for p in admin_root.iterdir()) if admin_root.is_dir() else []


def test_a_finished_worktree_is_reused_for_the_next_task_with_nothing_of_the_last(
        pooled_ws: Workspace) -> None:
    ws = pooled_ws
    first = ws.create("t-first")
    snap = ws.snapshot("t-first")
    (first / "work.txt").write_text("the first task's work\n")
    (first / ".gitattributes").write_text("changed by the first task\n")
    (first / "build").mkdir()
    (first / "build" / "out.o").write_text("ignored build output\n")
    (first / ".gitignore").write_text("build/\n")
    assert ws.commit_changes("t-first", "work", "eng", since=snap) is not None
    (first / "scratch.txt").write_text("left after the commit\n")
    admins = _worktree_admins(ws)
    ws.remove("t-first")
    assert not first.exists()
    ws.delete_branch("t-first")  # the kept worktree no longer has it checked out

    second = ws.create("t-second")
    assert _worktree_admins(ws) == admins  # the same worktree, not a new one
    assert git(second, "symbolic-ref", "HEAD").strip() == "refs/heads/aoi/t-second"
    assert git(second, "rev-parse", "HEAD").strip() == \
        git(ws.repo_dir, "rev-parse", "main").strip()
    assert git(second, "status", "--porcelain", "--ignored").strip() == ""
    for left in ("work.txt", "scratch.txt", "build"):
        assert not (second / left).exists()
    assert (second / ".gitattributes").read_text() == git(
        ws.repo_dir, "show", "main:.gitattributes")
    assert not (second / "tasks").exists()  # still sparse: no org state
    assert "aoi/t-first" not in git(ws.repo_dir, "branch", "--list", "aoi/*")


def test_a_reused_worktree_checks_out_the_branch_a_task_already_has(
        pooled_ws: Workspace) -> None:
    ws = pooled_ws
    path = ws.create("t-rework")
    snap = ws.snapshot("t-rework")
    (path / "draft.txt").write_text("first attempt\n")
    tip = ws.commit_changes("t-rework", "draft", "eng", since=snap)
    ws.remove("t-rework")  # sent back after review: the branch stays
    ws.create("t-other")
    ws.remove("t-other")

    again = ws.create("t-rework")
    assert git(again, "rev-parse", "HEAD").strip() == tip
    assert (again / "draft.txt").read_text() == "first attempt\n"


def test_drop_pool_deletes_kept_worktrees_and_their_admin_folders(
        pooled_ws: Workspace) -> None:
    ws = pooled_ws
    for tid in ("t-a", "t-b", "t-c"):  # the third does not fit the pool: deleted at once
        ws.create(tid)
    for tid in ("t-a", "t-b", "t-c"):
        ws.remove(tid)
        ws.delete_branch(tid)
    assert len(list((ws.worktrees / ".pool").iterdir())) == 2
    assert len(_worktree_admins(ws)) == 2
    # a new process finds what a killed one kept
    Workspace(ws.repo_dir, "main", ws.worktrees, pool_size=2).drop_pool()
    assert list((ws.worktrees / ".pool").iterdir()) == []
    assert _worktree_admins(ws) == []
    assert git(ws.repo_dir, "worktree", "list").count("\n") == 1


def test_a_branch_a_person_has_checked_out_is_not_deleted(ws: Workspace, tmp_path: Path) -> None:
    ws.create("t-look")
    ws.remove("t-look")
    repo = pygit2.Repository(str(ws.repo_dir))
    reflog = ws.repo_dir / ".git" / "logs" / "refs" / "heads" / "aoi" / "t-look"
    # in the main checkout (a person looking at the agent's work)
    git(ws.repo_dir, "checkout", "-q", branch_name("t-look"))
    ws.delete_branch("t-look")
    assert repo.lookup_branch(branch_name("t-look")) is not None
    git(ws.repo_dir, "checkout", "-q", "main")
    # in a worktree of the person's own
    other = tmp_path / "elsewhere"
    git(ws.repo_dir, "worktree", "add", "-q", str(other), branch_name("t-look"))
    ws.delete_branch("t-look")
    assert repo.lookup_branch(branch_name("t-look")) is not None
    with pytest.raises(AoiError, match="already checked out at"):
        ws.create("t-look")
    git(ws.repo_dir, "worktree", "remove", str(other))
    assert reflog.exists()
    ws.delete_branch("t-look")  # checked out nowhere now: deleted, with its reflog
    assert repo.lookup_branch(branch_name("t-look")) is None and not reflog.exists()
    assert git(ws.repo_dir, "status", "--porcelain") == ""
