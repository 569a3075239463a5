"""What a `git commit` is about to commit, read from git, and moving entries to HEAD's.

The hooks read the staged changes with `git diff --cached` (git's own view: `git commit
-a` and `git commit PATH` stage into a temporary index named by GIT_INDEX_FILE, which
libgit2 would not read). An entry that only lags behind the daemon's commits is put back
at HEAD's version with one `git update-index` for all of them.

Light imports only: this runs in every `git commit` of a person.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from aoi_git.store.git import git

ZERO = "0" * 40


@dataclass(frozen=True)
class Staged:
    """One path the commit changes: HEAD's mode and blob, the staged blob (None: absent)."""

    path: str
    head_mode: str
    head: str | None
    staged: str | None


def staged_changes(root: Path) -> list[Staged]:
    """The paths the index (GIT_INDEX_FILE's, as git reads it) changes against HEAD."""
    raw = git("diff", "--cached", "--raw", "-z", "--no-renames", "--no-abbrev", cwd=root)
    items = raw.split("\0")
    out = []
    for meta, path in zip(items[0::2], items[1::2], strict=False):
        if not path:
            continue
        head_mode, _mode, head, staged = meta.lstrip(":").split()[:4]
        out.append(Staged(path, head_mode, None if head == ZERO else head,
                          None if staged == ZERO else staged))
    return out


def stage_head_versions(root: Path, entries: Iterable[Staged]) -> None:
    """Put each entry at HEAD's version (its absence: removed) in the index this commit
    is made from, in one `git update-index` (git reads the index again after the
    pre-commit hook, so the commit takes them)."""
    lines = []
    for e in entries:
        if e.head is None:
            lines.append(f"0 {ZERO}\t{e.path}")  # mode 0: remove the entry
        else:
            lines.append(f"{e.head_mode} {e.head}\t{e.path}")
    if lines:
        git("update-index", "-z", "--index-info", cwd=root, input="\0".join(lines) + "\0")
