"""A person's uncommitted edits to org files, and their problems against HEAD."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from aoi_git.commands.cli_context import App
from aoi_git.domain.org_paths import is_org_file
from aoi_git.errors import AoiError
from aoi_git.org.organisation import Org
from aoi_git.org.validate import Validator, one_line
from aoi_git.store import index_journal
from aoi_git.store.git import git, git_start
from aoi_git.store.objects import hash_blob

_STATUS_ARGS = ("status", "--porcelain=v1", "-z", "-uall", "--no-renames", "--",
                "tasks", "employees", "talents", "aoi.yaml")


def changed_org_files(root: Path) -> list[str]:
    """Org files that differ from HEAD in the work tree (modified, new or deleted)."""
    return _org_files_in(git(*_STATUS_ARGS, cwd=root))


def start_changed_org_files(root: Path) -> Callable[[], list[str]]:
    """`changed_org_files` with git started now: call the result for its answer (git
    stats every task file meanwhile, while this process does other work)."""
    proc = git_start(*_STATUS_ARGS, cwd=root)
    return lambda: _org_files_in(proc.wait())


def _org_files_in(out: str) -> list[str]:
    paths = []
    for item in out.split("\0"):
        if len(item) > 3:
            path = item[3:]
            if is_org_file(path):
                paths.append(path)
    return paths


def read_worktree(root: Path, paths: list[str]) -> dict[str, bytes | None]:
    files: dict[str, bytes | None] = {}
    for p in paths:
        full = root / p
        try:
            files[p] = full.read_bytes()
        except FileNotFoundError:
            files[p] = None
    return files


def to_repo_paths(app: App, paths: list[Path]) -> list[str]:
    out = []
    for p in paths:
        full = (app.cwd / p).resolve()
        try:
            rel = full.relative_to(app.root)
        except ValueError:
            raise AoiError(f"{p}: outside the org at {app.root}") from None
        if full.is_dir():
            out += [str(f.relative_to(app.root)) for f in full.rglob("*.y*ml")
                    if is_org_file(str(f.relative_to(app.root)))]
        elif not full.exists() and not (app.store.head().exists(str(rel))):
            raise AoiError(f"{p}: no such file")
        else:
            out.append(str(rel))
    return out


def pending_problems(app: App, paths: list[Path] | None, org: Org | None = None,
                     changed: Callable[[], list[str]] | None = None) -> list[str]:
    """Problems of the org files a person changed (`paths`, or every changed one: from
    `changed`, when given, as `start_changed_org_files` answers)."""
    org = org or app.org()
    if paths is None:
        rel = changed() if changed is not None else changed_org_files(app.root)
        problems = list(org.problems)
    else:
        rel = to_repo_paths(app, paths)
        shown = {one_line(p) for p in rel}
        problems = [p for p in org.problems if p.split(":", 1)[0] in shown]
    files = read_worktree(app.root, rel)
    moves = index_journal.read(index_journal.journal_path(app.root))
    if moves:  # a running daemon's committed update, not written to the work tree yet
        head = app.store.head()
        for path, data in list(files.items()):
            blob = hash_blob(data) if data is not None else None
            if index_journal.stale_file(moves, path, blob, head.blob_id(path)):
                del files[path]
    problems += Validator.for_org(org).check(files, app.person)
    return list(dict.fromkeys(problems))  # a file as committed is found at HEAD and on disk
