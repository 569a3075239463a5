"""What a task branch changes against its base: every path, with its modes, no renames.

A rename is listed as what it is to git's trees: the old path deleted and the new path
added, so a check of the list sees both sides. The diff is libgit2's tree-to-tree diff
(recursive, no similarity detection, no config of the repository applies), taken from the
merge base of the base branch and the branch tip, as `git diff base...tip` would.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pygit2

MODE_NONE = 0  # the side where the path does not exist (added: old side; deleted: new side)
MODE_SYMLINK = 0o120000
MODE_GITLINK = 0o160000
MODE_TREE = 0o040000


@dataclass(frozen=True, slots=True)
class PathChange:
    """One path the branch adds, changes or deletes; a side that is absent is None/0."""

    old_path: str | None
    new_path: str | None
    old_mode: int = MODE_NONE
    new_mode: int = MODE_NONE

    @property
    def paths(self) -> tuple[str, ...]:
        """Both sides' paths, each once."""
        both = (self.old_path, self.new_path)
        return tuple(dict.fromkeys(p for p in both if p is not None))


def _path(raw: bytes) -> str:
    return os.fsdecode(raw) if raw else ""


def branch_changes(repo: pygit2.Repository, base: str, tip: str) -> list[PathChange]:
    """The changes of commit `tip` against its merge base with branch (or commit) `base`.

    Unrelated histories are compared with the empty tree: every path of the tip is added.
    Raises `KeyError` when `base` or `tip` names nothing."""
    tip_commit = repo.revparse_single(tip).peel(pygit2.Commit)
    base_commit = repo.revparse_single(base).peel(pygit2.Commit)
    merge_base = repo.merge_base(base_commit.id, tip_commit.id)
    new_tree = tip_commit.tree
    if merge_base is None:
        diff = new_tree.diff_to_tree(swap=True)  # the empty tree -> the tip
    else:
        diff = repo[merge_base].peel(pygit2.Commit).tree.diff_to_tree(new_tree)
    out: list[PathChange] = []
    for delta in diff.deltas:
        added = delta.status == pygit2.enums.DeltaStatus.ADDED
        deleted = delta.status == pygit2.enums.DeltaStatus.DELETED
        out.append(PathChange(
            old_path=None if added else _path(delta.old_file.raw_path),
            new_path=None if deleted else _path(delta.new_file.raw_path),
            old_mode=MODE_NONE if added else int(delta.old_file.mode),
            new_mode=MODE_NONE if deleted else int(delta.new_file.mode),
        ))
    return out


@dataclass(frozen=True, slots=True)
class BranchCommit:
    """A commit of the branch since its merge base: its id, message and signature."""

    sha: str
    message: str
    signature: bytes | None  # the armored `gpgsig` (None: unsigned)
    payload: bytes  # what the signature signs


def branch_commits(repo: pygit2.Repository, base: str, tip: str,
                   limit: int = 1000) -> list[BranchCommit]:
    """The commits reachable from `tip` and not from branch (or commit) `base`, newest
    first, at most `limit`. Raises `KeyError` when `base` or `tip` names nothing."""
    tip_commit = repo.revparse_single(tip).peel(pygit2.Commit)
    base_commit = repo.revparse_single(base).peel(pygit2.Commit)
    walker = repo.walk(tip_commit.id, pygit2.enums.SortMode.TOPOLOGICAL)
    walker.hide(base_commit.id)
    out: list[BranchCommit] = []
    for commit in walker:
        signature, payload = commit.gpg_signature
        out.append(BranchCommit(str(commit.id), commit.message, signature or None,
                                payload or b""))
        if len(out) >= limit:
            break
    return out
