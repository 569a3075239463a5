"""Merging a task branch into the workspace base, and moving a conflicting one aside."""

from __future__ import annotations

from dataclasses import dataclass, field

import pygit2

from aoi_git.store.head_view import HeadView
from aoi_git.store.org_store import Change, Store
from aoi_git.store.worktrees import Workspace, branch_name, update_ref


@dataclass
class MergeOutcome:
    """What `merge_branch` did: conflicting paths (nothing committed), or the merge commit
    (None: nothing to commit) and the paths it changed."""

    conflicts: list[str] = field(default_factory=list)
    commit: str | None = None
    changed: list[str] = field(default_factory=list)


def merge_branch(store: Store, tip: str, message: str, actor: str) -> MergeOutcome:
    """Merge commit `tip` into `store`'s branch as one commit with `message`; the work tree
    and index of `store`'s checkout are brought along for the paths the merge changed."""
    repo = store.repo
    out = MergeOutcome()

    def build(view: HeadView) -> Change | None:
        head = view.commit
        assert head is not None
        idx = repo.merge_commits(head.id, pygit2.Oid(hex=tip))
        if idx.conflicts is not None:
            out.conflicts = sorted({e.path for c in idx.conflicts for e in c if e is not None})
            return None
        tree = idx.write_tree(repo)
        diff = head.tree.diff_to_tree(repo.get(tree))  # type: ignore[arg-type]
        out.changed = [d.new_file.path for d in diff.deltas]
        return Change({}, message, extra_parents=(tip,), base_tree=str(tree))

    old = store.head()
    out.commit = store.transact(build, actor=actor)
    if out.conflicts:
        out.changed = []
    elif out.commit is not None:
        store.sync_paths(old, store.head(), out.changed)
    return out


def archive_branch(workspace: Workspace, task_id: str) -> str | None:
    """Move `aoi/<id>` aside as `aoi/<id>.conflict-N` (the first N free): the task's
    rework starts from the current base, and the earlier work stays reachable. Returns
    the new name (None: there was no branch)."""
    repo = workspace.repo
    br = repo.lookup_branch(branch_name(task_id))
    if br is None:
        return None
    if br is not None:
        n = 1
        while repo.lookup_branch(f"{branch_name(task_id)}.conflict-{n}") is not None:
            n += 1
        tip = repo.get(br.target)
        update_ref(lambda: repo.create_branch(f"{branch_name(task_id)}.conflict-{n}",
                                              tip))  # type: ignore[arg-type]
        try:
            update_ref(br.delete)
        except (pygit2.GitError, OSError):
            pass
    return f"{branch_name(task_id)}.conflict-{n}"
