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
    out: list[tuple[str, str | None]] = []
    _compare(repo, _subtree(repo, a), _subtree(repo, b), TASKS, out)
    return Changes(out, others)


def _compare(repo: pygit2.Repository, a: pygit2.Tree | None, b: pygit2.Tree | None,
             prefix: str, out: list[tuple[str, str | None]]) -> None:
    """Append the blobs that differ under two trees, descending only where ids differ."""
    if a is not None and b is not None and a.id == b.id:
        return
    old = {e.name: e for e in a or ()}
    new = {e.name: e for e in b or ()}
    for name in sorted(old.keys() | new.keys(), key=str):
        x, y = old.get(name), new.get(name)
        if x is not None and y is not None and x.id == y.id:
            continue
        path = f"{prefix}/{name}"
        xt = _as_tree(repo, x)
        yt = _as_tree(repo, y)
        if xt is not None or yt is not None:
            _compare(repo, xt, yt, path, out)
        if x is not None and xt is None and (y is None or yt is not None):
            out.append((path, None))  # a file removed (or replaced by a folder)
        if y is not None and yt is None:
            out.append((path, str(y.id)))


def _as_tree(repo: pygit2.Repository, entry: pygit2.Object | None) -> pygit2.Tree | None:
    if entry is None or entry.type_str != "tree":
        return None
    obj = repo[entry.id]
    return obj if isinstance(obj, pygit2.Tree) else None


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
