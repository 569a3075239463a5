"""The commits a push brings, as a server's `pre-receive` hook sees them before its refs
move: walked in process (what `git rev-list --reverse --topo-order NEW --not --all`
lists), each with what the checks of `aoi_git.org.push_check` read."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pygit2

from aoi_git.store.head_view import HeadView


@dataclass(frozen=True)
class PushedCommit:
    id: str
    message: str
    author_name: str
    author_email: str
    signature: bytes | None  # the commit's `gpgsig`, None when unsigned
    payload: bytes  # what the signature signs (b"" when unsigned)
    paths: tuple[str, ...]  # the paths it changes against its first parent
    before: HeadView  # its first parent (an empty view for a root commit)
    after: HeadView
    is_root: bool
    on_line: bool  # on the first-parent line of the pushed ref


class PushedHistory:
    """The repository at `git_dir` with the push's quarantined objects readable."""

    def __init__(self, git_dir: Path, env: Mapping[str, str]) -> None:
        self.repo = pygit2.Repository(str(git_dir))
        # Pushed objects wait in a quarantine folder that git, but not libgit2, reads.
        for var in ("GIT_QUARANTINE_PATH", "GIT_OBJECT_DIRECTORY"):
            if env.get(var):
                self.repo.odb.add_disk_alternate(env[var])
        self.first_push = not any(True for _ in self.repo.references)
        self._hidden = [oid for ref in self.repo.references.iterator()
                        if (oid := _peel(ref)) is not None]

    def new_commits(self, new: str) -> Iterator[PushedCommit]:
        """The commits `new` brings that no ref has yet, parents first."""
        tip = pygit2.Oid(hex=new)
        line_of = set(self._first_parents(tip))
        sort = pygit2.enums.SortMode
        for commit in self._walker(tip, sort.TOPOLOGICAL | sort.REVERSE):
            yield self._pushed(commit, commit.id in line_of)

    def _pushed(self, commit: pygit2.Commit, on_line: bool) -> PushedCommit:
        parent = commit.parents[0] if commit.parents else None
        diff = commit.tree.diff_to_tree(swap=True) if parent is None \
            else self.repo.diff(parent, commit)
        paths = tuple(d.new_file.path or d.old_file.path for d in diff.deltas)
        signature, payload = commit.gpg_signature
        return PushedCommit(str(commit.id), commit.message, commit.author.name,
                            commit.author.email, signature, payload or b"", paths,
                            HeadView(self.repo, parent), HeadView(self.repo, commit),
                            parent is None, on_line)

    def _walker(self, new: pygit2.Oid, sort: pygit2.enums.SortMode) -> pygit2.Walker:
        walker = self.repo.walk(new, sort)
        for oid in self._hidden:
            walker.hide(oid)
        return walker

    def _first_parents(self, new: pygit2.Oid) -> Iterator[pygit2.Oid]:
        walker = self._walker(new, pygit2.enums.SortMode.NONE)
        walker.simplify_first_parent()
        for commit in walker:
            yield commit.id


def _peel(ref: pygit2.Reference) -> pygit2.Oid | None:
    try:
        return ref.peel(pygit2.Commit).id
    except (pygit2.GitError, ValueError, KeyError):
        return None  # (a ref to a tree or a blob: nothing it hides)
