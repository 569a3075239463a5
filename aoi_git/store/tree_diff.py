"""What changed between two commits of the org: the task files, and whether anything else.

For a reader that follows the branch (the board): after a commit it re-reads the few task
files that changed instead of walking every task of the tree again. libgit2 skips equal
subtrees by id, so this costs the changed paths, not the size of the org."""

from __future__ import annotations

from dataclasses import dataclass, field

import pygit2

TASKS = "tasks"


@dataclass(frozen=True)
class Changes:
    tasks: list[tuple[str, str | None]] = field(default_factory=list)  # path, new blob | None
    others: bool = False  # a file outside tasks/ changed (config, profiles, talents, ...)


def between(repo: pygit2.Repository, old: str, new: str) -> Changes:
    """The changes from commit `old` to commit `new`."""
    a = repo[old].peel(pygit2.Commit).tree
    b = repo[new].peel(pygit2.Commit).tree
    names = {e.name for e in a} | {e.name for e in b}
    others = any(_entry_id(a, n) != _entry_id(b, n) for n in names if n != TASKS)
    ta, tb = _subtree(repo, a), _subtree(repo, b)
    if ta is None and tb is None or ta is not None and tb is not None and ta.id == tb.id:
        return Changes([], others)
    empty = repo[repo.TreeBuilder().write()].peel(pygit2.Tree)
    diff = (ta or empty).diff_to_tree(tb or empty)
    out: list[tuple[str, str | None]] = []
    for delta in diff.deltas:
        if delta.status == pygit2.enums.DeltaStatus.DELETED:
            out.append((f"{TASKS}/{delta.old_file.path}", None))
        else:
            out.append((f"{TASKS}/{delta.new_file.path}", str(delta.new_file.id)))
    return Changes(out, others)


def _entry_id(tree: pygit2.Tree, name: str | None) -> str | None:
    if name is None:
        return None
    try:
        return str(tree[name].id)
    except KeyError:
        return None


def _subtree(repo: pygit2.Repository, tree: pygit2.Tree) -> pygit2.Tree | None:
    try:
        entry = tree[TASKS]
    except KeyError:
        return None
    obj = repo[entry.id]
    return obj if isinstance(obj, pygit2.Tree) else None
