"""Index entries that only lag behind the daemon's commits, told without its journal.

The daemon moves a person's index entries along after its commits (see
`aoi_git.store.index_journal`); a person's git can write back an older copy of the index
over that move. Such an entry looks like a change the person staged, going backwards. It is
the daemon's lag, not the person's, when the work tree already holds HEAD's version of the
path (the daemon moved the file) and the staged version is absent or one the path had in a
recent commit: a person who stages an edit has it in the work tree too.
"""

from __future__ import annotations

from pathlib import Path

import pygit2

from aoi_git.store.org_store import Store

HISTORY_DEPTH = 500  # first-parent commits searched for the staged version


def work_tree_blob(root: Path, path: str) -> str | None:
    """The blob id of the work-tree file at `path` (None: no such file)."""
    try:
        return str(pygit2.hash((root / path).read_bytes()))
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def lagging_entry(store: Store, path: str, staged: str | None, head: str | None) -> bool:
    """True when the staged `staged` for `path` (None: a staged deletion) is only the
    daemon's update not made yet, against HEAD's `head` (see the module docstring)."""
    if staged == head or work_tree_blob(store.root, path) != head:
        return False
    if staged is None:
        return True  # HEAD and the work tree have the file, only the index lost it
    commit = store.head_commit()
    for _ in range(HISTORY_DEPTH):
        if commit is None or not commit.parents:
            return False
        commit = commit.parents[0]
        try:
            if str(commit.tree[path].id) == staged:
                return True
        except KeyError:
            continue
    return False
