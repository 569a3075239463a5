"""A one-off commit moves its own index entries in the index file, leaving the rest of
it as git wrote it: git reads the result as its own (status clean, the cache tree right
for `git write-tree`, a person's staged change and git's untracked cache kept), and an
index in a form the patch leaves alone (version 4) is written by libgit2 as before."""

from __future__ import annotations

from pathlib import Path

import pytest
from kit import PERSON_NAME, git

from aoi_git.domain.ids import shard_path
from aoi_git.domain.model import Actor, ActorKind, Status
from aoi_git.org import task_ops
from aoi_git.store.index_patch import IndexChanged, PatchedIndex
from aoi_git.store.org_store import Store
from aoi_git.store.txn import Txn, commit

HUMAN = Actor(ActorKind.HUMAN, PERSON_NAME)


def new_task(store: Store, title: str, task_id: str | None = None) -> str:
    made: list[str] = []

    def build(txn: Txn) -> None:
        made[:] = [task_ops.new_task(txn, store.load_tasks().tasks, title,
                                     task_id=task_id).id]

    commit(store, build, HUMAN)
    return made[0]


def assert_index_is_heads(root: Path) -> None:
    assert git(root, "status", "--porcelain", "--untracked-files=no") == ""
    assert git(root, "write-tree").strip() == git(root, "rev-parse", "HEAD^{tree}").strip()
    git(root, "fsck", "--no-progress")


def test_one_off_commits_patch_their_entries(org_dir: Path) -> None:
    store = Store(org_dir)
    first = new_task(store, "In a new shard folder")
    assert_index_is_heads(org_dir)
    # the untracked cache is git's alone (libgit2 drops it when it writes the index)
    git(org_dir, "config", "core.untrackedCache", "true")
    git(org_dir, "update-index", "--untracked-cache")
    git(org_dir, "status", "--porcelain")
    assert b"UNTR" in (org_dir / ".git" / "index").read_bytes()
    # a person's staged change, which no aoi commit may take or undo
    (org_dir / "notes.txt").write_text("mine\n")
    git(org_dir, "add", "notes.txt")
    ids = [first]
    for i in range(12):  # new entries among others of their folder, and in new folders
        ids.append(new_task(Store(org_dir), f"Task {i}"))
    ids.append(new_task(Store(org_dir), "Chosen id", task_id="a-chosen-one"))

    def finish(txn: Txn) -> None:  # an entry changed in place
        txn.update(first, status=Status.CANCELLED)

    commit(Store(org_dir), finish, HUMAN)
    index = (org_dir / ".git" / "index").read_bytes()
    assert b"UNTR" in index, "the index was rewritten whole, not patched"
    assert git(org_dir, "diff", "--cached", "--name-only").split() == ["notes.txt"]
    staged = git(org_dir, "status", "--porcelain", "--untracked-files=no")
    assert staged == "A  notes.txt\n"
    git(org_dir, "reset", "-q", "notes.txt")
    (org_dir / "notes.txt").unlink()
    assert_index_is_heads(org_dir)
    listed = set(git(org_dir, "ls-files", "tasks").split())
    assert {shard_path(t) for t in ids if t != "a-chosen-one"} | {"tasks/a-chosen-one.yaml"} \
        <= listed


def test_removed_entry_and_libgit2_fallback(org_dir: Path) -> None:
    store = Store(org_dir)
    tid = new_task(store, "To be removed by hand")
    path = shard_path(tid)
    index_file = org_dir / ".git" / "index"
    patched = PatchedIndex.load(index_file)
    assert patched is not None
    patched.remove(path)
    patched.write()
    assert path not in git(org_dir, "ls-files", "tasks").split()
    assert git(org_dir, "status", "--porcelain", "--", path).startswith("D ")
    git(org_dir, "reset", "-q", "--", path)
    assert_index_is_heads(org_dir)
    # version 4 (prefix-compressed paths): left to libgit2, which writes it as before
    git(org_dir, "update-index", "--index-version", "4")
    assert PatchedIndex.load(index_file) is None
    assert not (org_dir / ".git" / "index.lock").exists()
    new_task(Store(org_dir), "After version 4")
    assert_index_is_heads(org_dir)


def test_lock_held_by_git_is_respected(org_dir: Path) -> None:
    lock = org_dir / ".git" / "index.lock"
    lock.write_text("")
    try:
        with pytest.raises(OSError):
            PatchedIndex.load(org_dir / ".git" / "index")
        assert lock.exists()
    finally:
        lock.unlink()


def test_unlocked_load_writes_only_an_unchanged_index(org_dir: Path) -> None:
    """Read without `index.lock`, written under it only if no git wrote the index since:
    a `git add` that ends between aoi's read and its write is kept, not undone."""
    store = Store(org_dir)
    tid = new_task(store, "Entry to drop")
    path = shard_path(tid)
    index_file = org_dir / ".git" / "index"
    lock = org_dir / ".git" / "index.lock"

    patched = PatchedIndex.load(index_file, locked=False)
    assert patched is not None
    assert not lock.exists(), "an unlocked load took the lock"
    (org_dir / "notes.txt").write_text("a person's file\n")
    git(org_dir, "add", "notes.txt")  # a person's git writes the index meanwhile
    written_by_git = index_file.read_bytes()
    patched.remove(path)
    with pytest.raises(IndexChanged):
        patched.write()
    patched.close()
    assert not lock.exists(), "the lock was left behind"
    assert index_file.read_bytes() == written_by_git, "git's index was overwritten"
    assert git(org_dir, "status", "--porcelain", "--untracked-files=no") == "A  notes.txt\n"

    # a git holding the lock at the write: its lock is left alone, nothing written
    patched = PatchedIndex.load(index_file, locked=False)
    assert patched is not None
    patched.remove(path)
    lock.write_text("")
    try:
        with pytest.raises(FileExistsError):
            patched.write()
        assert lock.exists()
    finally:
        lock.unlink()
    patched.close()
    assert index_file.read_bytes() == written_by_git

    # unchanged since the read: written, and the lock released
    patched = PatchedIndex.load(index_file, locked=False)
    assert patched is not None
    patched.remove(path)
    patched.write()
    patched.close()
    assert not lock.exists()
    assert path not in git(org_dir, "ls-files", "tasks").split()
    assert "notes.txt" in git(org_dir, "ls-files").split()
    assert patched.locked_s > 0
