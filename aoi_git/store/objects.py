"""Git objects by id, for the layers above the store: blobs, a folder's entries, a commit's
change. Ids are hex strings; what is missing, or of another type, reads as None or empty."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pygit2

from aoi_git.store.head_view import HeadView
from aoi_git.store.org_store import Store


@dataclass(frozen=True)
class TreeEntry:
    name: str
    id: str
    kind: str  # "blob", "tree" or "commit" (a submodule)


@dataclass(frozen=True)
class CommitChange:
    """One commit against its first parent (none for a root commit)."""

    sha: str
    before: HeadView
    after: HeadView
    paths: list[str]  # every path it adds, changes or deletes
    message: str
    author_name: str
    author_email: str = ""


def hash_blob(data: bytes) -> str:
    """The id git gives a blob of `data` (nothing is written)."""
    return str(pygit2.hash(data))


def read_blob(store: Store, blob_id: str) -> bytes | None:
    """The content of the blob `blob_id`, None if there is no such blob."""
    try:
        obj = store.repo.get(blob_id)
    except ValueError:  # not an object id
        return None
    return obj.data if isinstance(obj, pygit2.Blob) else None


def tree_entries(store: Store, tree_id: str) -> list[TreeEntry]:
    """The entries of the tree `tree_id` in git's order (empty if it is not a tree)."""
    try:
        tree = store.repo.get(tree_id)
    except ValueError:
        return []
    if not isinstance(tree, pygit2.Tree):
        return []
    return [TreeEntry(e.name, str(e.id), e.type_str) for e in tree if e.name]


def commit_change(store: Store, rev: str) -> CommitChange:
    """The commit `rev` names, the views before and after it and the paths it changes."""
    commit = store.repo.revparse_single(rev).peel(pygit2.Commit)
    parent = commit.parents[0] if commit.parents else None
    if parent is None:
        diff = commit.tree.diff_to_tree(swap=True)
    else:
        diff = store.repo.diff(parent, commit)
    paths = [d.new_file.path or d.old_file.path for d in diff.deltas]
    return CommitChange(str(commit.id), HeadView(store.repo, parent),
                        HeadView(store.repo, commit), paths, commit.message,
                        commit.author.name, commit.author.email)


def add_object_dir(store: Store, path: Path | str) -> None:
    """Read objects from `path` too (e.g. git's quarantine of objects being pushed)."""
    store.repo.odb.add_disk_alternate(str(path))
