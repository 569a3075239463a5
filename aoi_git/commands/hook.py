from __future__ import annotations

import os
import sys
from pathlib import Path

import click
import pygit2

from aoi_git.commitmsg import parse_trailers
from aoi_git.errors import ValidationFailed
from aoi_git.gitutil import git
from aoi_git.model import Actor, ActorKind
from aoi_git.org import load_org
from aoi_git.store import HeadView, Store
from aoi_git.validate import Validator, is_org_file

ZERO = "0" * 40


@click.group(hidden=True)
def hook() -> None:
    """Entry points for the git hooks aoi installs (not for direct use).

    \b
    Example:
      aoi hook pre-commit
    """


@hook.command("pre-commit")
def pre_commit() -> None:
    """Validate the staged org files; block the commit on any problem.

    \b
    Example (what .git/hooks/pre-commit runs):
      python -m aoi_git hook pre-commit
    """
    root = Path(git("rev-parse", "--show-toplevel", cwd=".").strip())
    store = Store(root)
    # The staged blob ids come from git itself: `git commit -a` / `git commit PATH` stage
    # into a temporary index (GIT_INDEX_FILE), which libgit2 would not read.
    raw = git("diff", "--cached", "--raw", "-z", "--no-renames", "--no-abbrev", cwd=root)
    items = raw.split("\0")
    files: dict[str, bytes | None] = {}
    for meta, p in zip(items[0::2], items[1::2], strict=False):
        if not p or not is_org_file(p):
            continue
        new_id = meta.split()[3]
        blob = None if new_id == ZERO else store.repo.get(new_id)
        files[p] = blob.data if isinstance(blob, pygit2.Blob) else None
    if not files:
        return
    name = git("config", "user.name", cwd=root, check=False).strip() or "unknown"
    org = load_org(store)
    store.save_cache()
    problems = Validator.for_org(org).check(files, Actor(ActorKind.HUMAN, name))
    if problems:
        raise ValidationFailed([*problems, "aoi: commit blocked; fix the files above"])


@hook.command("pre-receive")
def pre_receive() -> None:
    """Validate every pushed commit that changes org files (server side).

    \b
    Example (what hooks/pre-receive runs, old/new/ref lines on stdin):
      python -m aoi_git hook pre-receive
    """
    store = Store(Path(git("rev-parse", "--git-dir", cwd=".").strip()).resolve())
    # Pushed objects wait in a quarantine folder that git, but not libgit2, reads.
    for var in ("GIT_QUARANTINE_PATH", "GIT_OBJECT_DIRECTORY"):
        if os.environ.get(var):
            store.repo.odb.add_disk_alternate(os.environ[var])
    problems: list[str] = []
    for line in sys.stdin.read().splitlines():
        old, new, ref = line.split()
        if new == ZERO or not ref.startswith("refs/heads/"):
            continue
        rng = new if old == ZERO else f"{old}..{new}"
        revs = git("rev-list", "--reverse", "--first-parent", rng, cwd=store.root).split()
        for rev in revs:
            problems += _check_commit(store, rev)
    if problems:
        raise ValidationFailed([*problems, "aoi: push refused; fix the files above"])


def _check_commit(store: Store, rev: str) -> list[str]:
    commit = store.repo.revparse_single(rev)
    assert isinstance(commit, pygit2.Commit)
    parent = commit.parents[0] if commit.parents else None
    before = HeadView(store.repo, parent)
    after = HeadView(store.repo, commit)
    if parent is None:
        diff = commit.tree.diff_to_tree(swap=True)
    else:
        diff = store.repo.diff(parent, commit)
    files: dict[str, bytes | None] = {}
    for patch in diff.deltas:
        path = patch.new_file.path or patch.old_file.path
        if is_org_file(path):
            files[path] = after.read(path)
    if not files:
        return []
    trailers = dict(parse_trailers(commit.message))
    actor = Actor.parse(trailers["Aoi-Actor"]) if "Aoi-Actor" in trailers else Actor(
        ActorKind.HUMAN, commit.author.name)
    org = load_org(store, before)
    return [f"{rev[:10]} {p}" for p in Validator.for_org(org).check(files, actor)]
