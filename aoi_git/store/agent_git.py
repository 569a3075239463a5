"""The agent's own git inside the sandbox: `git add` and `git commit` on its branch only.

A worktree's `.git` file points into the repository's `<common>/worktrees/<name>/`. In
the sandbox the agent's git writes only into places of its own:

- objects go to the run's private object folder `<run>/git/objects` (GIT_OBJECT_DIRECTORY,
  with the repository's objects as a read-only alternate);
- `refs/heads/aoi/` and `logs/refs/heads/aoi/` of the common folder are covered by the
  run's `<run>/git/refs` and `<run>/git/logs`: copies of the tasks' branches as they
  were at its start, of which only its own is taken back;
- its worktree's admin folder is writable (index, ORIG_HEAD, logs/HEAD), except `HEAD`,
  `commondir` and `config.worktree`, and the worktree's `.git` file, which stay
  read-only: the daemon's own git commands in that worktree run outside the box and must
  not be pointed at another branch, repository or configuration. (Its sparse patterns in
  `info/` it can change: that only changes what its own branch holds.)

After the run the daemon takes the branch over (`take_commits`): every object the agent
wrote is re-hashed into the repository (one whose content does not match its name is
dropped), and the real branch is moved to the agent's tip when that is a commit there.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pygit2

from aoi_git.store.worktrees import update_ref

BRANCH_DIR = "aoi"  # branches are refs/heads/aoi/<task id>
# what the daemon's own git in the worktree (outside the box) reads to know its branch,
# its repository and its configuration: one bind each, ~0.2 ms each (bench_box_parts.py)
READ_ONLY_ADMIN = ("HEAD", "commondir", "config.worktree")


@dataclass(frozen=True)
class AgentGit:
    worktree: Path
    admin: Path  # <common>/worktrees/<name>
    common: Path
    branch_file: str  # the branch's name under refs/heads/aoi/
    store: Path  # <run>/git

    @property
    def objects(self) -> Path:
        return self.store / "objects"

    @property
    def refs(self) -> Path:
        return self.store / "refs"

    @property
    def logs(self) -> Path:
        return self.store / "logs"

    @property
    def ref_name(self) -> str:
        return f"refs/heads/{BRANCH_DIR}/{self.branch_file}"

    def env(self) -> dict[str, str]:
        return {"GIT_OBJECT_DIRECTORY": str(self.objects),
                "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(self.common / "objects")}

    def binds(self) -> tuple[tuple[Path, Path], ...]:
        return ((self.admin, self.admin),
                (self.refs, self.common / "refs" / "heads" / BRANCH_DIR),
                (self.logs, self.common / "logs" / "refs" / "heads" / BRANCH_DIR))

    def read_only(self) -> tuple[Path, ...]:
        return (self.worktree / ".git",
                *(self.admin / n for n in READ_ONLY_ADMIN if (self.admin / n).exists()))


def locate(worktree: Path, run_folder: Path) -> AgentGit | None:
    """The worktree's git layout, when it is a linked worktree on a branch `aoi/<name>`."""
    try:
        text = (worktree / ".git").read_text().strip()
        admin = Path(text.removeprefix("gitdir:").strip())
        common = _real(str(admin / (admin / "commondir").read_text().strip()))
        head = (admin / "HEAD").read_text().strip()
    except OSError:
        return None
    prefix = f"ref: refs/heads/{BRANCH_DIR}/"
    if not text.startswith("gitdir:") or not head.startswith(prefix):
        return None
    name = head.removeprefix(prefix)
    if not name or "/" in name:
        return None
    return AgentGit(worktree, admin, common, name, run_folder / "git")


@functools.lru_cache(maxsize=256)
def _real(path: str) -> Path:
    """`path` resolved, once per process: a repository's common folder (what `commondir`
    names, read-only to agents) does not move while the daemon runs."""
    return Path(path).resolve()


def prepare(worktree: Path, run_folder: Path, tip: str | None) -> AgentGit | None:
    """The run's private store, holding the branch at `tip` (its commit before the run)."""
    ag = locate(worktree, run_folder)
    if ag is None:
        return None
    for folder in (ag.objects, ag.logs):
        empty_folder(folder)
    ag.refs.mkdir(parents=True, exist_ok=True)
    for _, dst in ag.binds()[1:]:  # bwrap binds onto existing folders only
        dst.mkdir(parents=True, exist_ok=True)
    # present (and so bound read-only) even where git does not use them yet: an agent
    # must not create a config.worktree that the daemon's git would read
    if not (ag.admin / "config.worktree").exists():
        (ag.admin / "config.worktree").touch()
    # the other tasks' branches as they are now (a reviewer reads its subject's branch);
    # copies: what the agent does to them stays in its box
    refs: dict[str, bytes] = {}
    with os.scandir(ag.common / "refs" / "heads" / BRANCH_DIR) as entries:
        for entry in entries:
            if entry.is_file(follow_symlinks=False) and not entry.name.endswith(".lock"):
                with contextlib.suppress(OSError):
                    refs[entry.name] = Path(entry.path).read_bytes()
    if tip:
        refs[ag.branch_file] = f"{tip}\n".encode()
    with os.scandir(ag.refs) as entries:  # what the last run left
        for entry in entries:
            if entry.name not in refs or not entry.is_file(follow_symlinks=False):
                _remove(Path(entry.path))
    for name, data in refs.items():
        _write_if_changed(ag.refs / name, data)
    return ag


def _write_if_changed(path: Path, data: bytes) -> None:
    """Write `data` unless `path` holds it already (a rewrite truncates, and truncating
    a file costs a forced block allocation on ext4, for every run)."""
    try:
        if path.read_bytes() == data:
            return
    except OSError:
        pass
    path.write_bytes(data)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def take_commits(repo: pygit2.Repository, worktree: Path, run_folder: Path) -> str | None:
    """Bring what the agent's git wrote into `repo` (see the module doc); the branch's new
    tip when the agent moved it, else None. Call once its processes are gone."""
    ag = locate(worktree, run_folder)
    if ag is None or not ag.objects.is_dir():
        return None
    try:
        return _take(repo, ag)
    finally:
        empty_folder(ag.objects)  # taken (after a crash before this line: again)


def _take(repo: pygit2.Repository, ag: AgentGit) -> str | None:
    _import_objects(repo, ag.objects)
    try:
        tip = (ag.refs / ag.branch_file).read_text().strip()
        oid = pygit2.Oid(hex=tip)
    except (OSError, ValueError):
        return None
    ref = repo.references.get(ag.ref_name)
    if ref is not None and str(ref.target) == tip:
        return None
    if not isinstance(repo.get(oid), pygit2.Commit):
        return None
    update_ref(lambda: repo.references.create(ag.ref_name, oid, force=True))
    return tip


def _import_objects(repo: pygit2.Repository, folder: Path) -> int:
    """Copy the objects in `folder` (loose and packed, not its alternates) into `repo`,
    re-hashed; the number copied."""
    alternates = folder / "info" / "alternates"
    alternates.unlink(missing_ok=True)  # the agent's own: never followed
    backends: list[pygit2.OdbBackend] = []
    if any(p.is_dir() and len(p.name) == 2 for p in folder.iterdir()):
        backends.append(pygit2.OdbBackendLoose(str(folder), 0, False))
    if (folder / "pack").is_dir() and any((folder / "pack").iterdir()):
        backends.append(pygit2.OdbBackendPack(str(folder)))
    copied = 0
    odb = repo.odb
    for backend in backends:
        for oid in backend:
            if oid in odb:
                continue
            try:
                kind, data = backend.read(oid)
            except (pygit2.GitError, KeyError, ValueError):
                continue
            if odb.write(kind, data) != oid:  # not what its name says: left out
                continue
            copied += 1
    return copied



def empty_folder(path: Path) -> None:
    """`path` as an empty folder; one that is empty already is left as it is (files
    created and deleted for every run cost more than the run on some file systems)."""
    try:
        with os.scandir(path) as entries:
            if next(entries, None) is None:
                return
    except FileNotFoundError:
        path.mkdir(parents=True)
        return
    shutil.rmtree(path)
    path.mkdir()
