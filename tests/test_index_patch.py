"""A one-off commit moves its own index entries in the index file, leaving the rest of
it as git wrote it: git reads the result as its own (status clean, the cache tree right
for `git write-tree`, a person's staged change and git's untracked cache kept), and an
index in a form the patch leaves alone (version 4) is written by libgit2 as before."""

from __future__ import annotations

import subprocess
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


def _walked_end(index: bytes) -> int:
    """Where the entries end, by walking every one of them (what `_entries_end` avoids)."""
    import struct

    version, count = struct.unpack(">II", index[4:12])
    pos = 12
    for _ in range(count):
        (flags,) = struct.unpack_from(">H", index, pos + 60)
        extra = 2 if version >= 3 and flags & 0x4000 else 0
        length = flags & 0x0FFF
        if length == 0x0FFF:
            length = index.index(b"\0", pos + 62 + extra) - pos - 62 - extra
        pos += (62 + extra + length + 8) & ~7
    return pos


def test_the_entries_end_is_found_from_the_tail_as_a_walk_finds_it(tmp_path: Path) -> None:
    """Indexes git writes: a cache tree bigger than the first window looked at, v3 entries
    with extended flags, the end-of-entries and offset-table extensions, an untracked
    cache, no extension at all, and a path longer than the flags can say."""
    from aoi_git.store.index_patch import _entries_end

    repo = tmp_path / "r"
    git(tmp_path, "init", "-q", str(repo))
    (repo / "x.txt").write_text("x\n")
    blob = git(repo, "hash-object", "-w", "x.txt").strip()
    index_file = repo / ".git" / "index"

    def end_is_walked() -> None:
        body = index_file.read_bytes()[:-20]
        assert _entries_end(body) == _walked_end(body)

    git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},only.txt")
    end_is_walked()  # no extension
    lines = "".join(f"100644 {blob}\tfolder-{i:05d}/file.txt\n" for i in range(3000))
    subprocess.run(["git", "update-index", "--index-info"], cwd=repo, input=lines, text=True,
                   check=True)
    git(repo, "write-tree")  # a cache tree of 3,000 folders (~100 KB)
    assert b"TREE" in index_file.read_bytes()
    end_is_walked()
    git(repo, "update-index", "--skip-worktree", "folder-00007/file.txt")  # version 3
    assert index_file.read_bytes()[4:8] == b"\0\0\0\3"
    end_is_walked()
    long_path = "deep/" + "d" * 4200 + ".txt"
    git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},{long_path}")
    git(repo, "write-tree")
    end_is_walked()
    git(repo, "-c", "index.recordEndOfIndexEntries=true", "-c", "index.recordOffsetTable=true",
        "-c", "index.threads=2", "update-index", "--force-write-index")
    assert b"EOIE" in index_file.read_bytes()
    end_is_walked()
    git(repo, "config", "core.untrackedCache", "true")
    git(repo, "update-index", "--untracked-cache")
    git(repo, "status", "--porcelain")
    end_is_walked()
