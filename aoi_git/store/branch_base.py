"""Bringing a task's branch to the current base before a run starts on it.

A retried (or reworked) task keeps its branch `aoi/<id>` from its earlier runs; the
base may have moved since (a file the task needs committed meanwhile). Before its next
run:

- a branch with no work of its own (its tip is on the base) is deleted, so the run's
  branch is made afresh at the current base;
- a branch with work of its own is rebased onto the base, commit by commit, in memory
  (no worktree and no git process: pygit2's three-way tree merge);
- a rebase that conflicts leaves the base unchanged: the branch is moved aside as
  `aoi/<id>.conflict-N` (the work stays reachable), the run starts from the current
  base, and the conflict goes to the agent as feedback.

A task whose worktree still exists (a suspended run) is left as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pygit2

from aoi_git.store import signing
from aoi_git.store.branch_merge import archive_branch
from aoi_git.store.worktrees import Workspace, branch_name, update_ref


@dataclass
class BaseUpdate:
    """What `bring_to_base` did: `action` is `none` (no branch, or already on the base, or
    its worktree is kept), `recreated`, `rebased` or `conflict`."""

    action: str = "none"
    conflicts: list[str] = field(default_factory=list)
    archived: str | None = None  # on a conflict: where the earlier work is kept
    base: str = ""

    def feedback(self) -> str | None:
        """The note for the agent's context (a conflict), or None."""
        if self.action != "conflict":
            return None
        return (f"your earlier work on this task does not rebase onto the current {self.base}: "
                "it conflicts in " + ", ".join(self.conflicts[:20])
                + f". It is kept on branch {self.archived}; this run starts from the "
                f"current {self.base}: redo the work there (`git diff {self.base}..."
                f"{self.archived}` shows it).")


def bring_to_base(ws: Workspace, task_id: str) -> BaseUpdate:
    """Make `aoi/<task_id>` start from the current base (see the module's doc)."""
    out = BaseUpdate(base=ws.base)
    path = ws.path_for(task_id)
    if (path / ".git").exists():
        return out
    repo = ws.repo
    ref = repo.lookup_branch(branch_name(task_id))
    if ref is None:
        return out
    base_ref = repo.lookup_branch(ws.base)
    if base_ref is None:
        return out
    tip, base = pygit2.Oid(hex=str(ref.target)), pygit2.Oid(hex=str(base_ref.target))
    if tip == base or repo.descendant_of(tip, base):
        return out  # already on the current base
    if repo.descendant_of(base, tip):
        ws.delete_branch(task_id)  # nothing of its own: made afresh at the base
        out.action = "recreated" if repo.lookup_branch(branch_name(task_id)) is None \
            else "none"
        return out
    new_tip, conflicts = _replay(repo, tip, base)
    if conflicts:
        out.action, out.conflicts = "conflict", conflicts
        out.archived = archive_branch(ws, task_id)
        return out
    assert new_tip is not None
    update_ref(lambda: repo.references.create(f"refs/heads/{branch_name(task_id)}", new_tip,
                                              force=True))
    out.action = "rebased"
    return out


def _signed_by(commit: pygit2.Commit, host: signing.Signer | None) -> bool:
    if host is None:
        return False
    signature, payload = commit.gpg_signature
    return signing.signer_of(signature, payload,
                             [signing.listing(host)]).status is signing.SigStatus.GOOD


def _replay(repo: pygit2.Repository, tip: pygit2.Oid,
            base: pygit2.Oid) -> tuple[pygit2.Oid | None, list[str]]:
    """The commits of `tip` since its merge base with `base`, replayed onto `base` (a
    merge commit among them: the whole range as one commit); the new tip, or the paths
    of the first conflict."""
    fork = repo.merge_base(tip, base)
    if fork is None:
        return None, ["(no history in common with the base)"]
    walker = repo.walk(tip, pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.REVERSE)
    walker.hide(fork)
    commits = list(walker)
    if not commits:
        return base, []
    steps: list[tuple[pygit2.Tree, pygit2.Tree, pygit2.Commit]]
    if any(len(c.parents) != 1 for c in commits):
        last = commits[-1]
        steps = [(repo.get(fork).peel(pygit2.Tree), last.tree, last)]  # type: ignore[union-attr]
    else:
        steps = [(c.parents[0].tree, c.tree, c) for c in commits]
    parent = repo.get(base).peel(pygit2.Commit)  # type: ignore[union-attr]
    host = signing.host_signer()
    for ancestor, theirs, c in steps:
        index = repo.merge_trees(ancestor, parent.tree, theirs)
        if index.conflicts is not None:
            return None, sorted({e.path for cf in index.conflicts for e in cf if e is not None})
        tree = index.write_tree(repo)
        committer = pygit2.Signature(c.committer.name, c.committer.email)  # now, as a rebase
        # a commit this host signed (aoi's record of the agent's work) is signed again; an
        # agent's own commit stays unsigned, so the checks of its branch still see it as such
        oid = signing.create_commit(repo, c.author, committer, c.message, tree, [parent.id],
                                    host if _signed_by(c, host) else None)
        parent = repo.get(oid).peel(pygit2.Commit)  # type: ignore[union-attr]
    return parent.id, []
