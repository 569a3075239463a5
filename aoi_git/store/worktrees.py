"""Task worktrees: one git worktree per task on branch `aoi/<id>`, merged on acceptance.

The worktree is a sparse checkout without the org's own state (`tasks/`, `employees/`,
`talents/`, `sops/`, `schemas/`, `retros/`, `reviews/`): a 100k-task org does not write
100k files per run, an agent never sees (or edits) the task files or other employees'
journals (what it needs of them comes in its context file), and a run's checkout writes only
the work product. It is a cone-mode sparse checkout with a sparse index: each left-out
folder is one index entry, so creating, checking and committing a worktree costs the same
at 1k and at 100k tasks.

Creating and removing a worktree are on every task's path, so they avoid git processes:
the branch is made with pygit2, the worktree's administrative files (the `.git` file and
`$GIT_COMMON_DIR/worktrees/<name>/{gitdir,commondir,HEAD}`, the layout `git worktree add`
writes) and its sparse-checkout settings are written directly, and one `git checkout`
fills it. A finished worktree is kept for the next task (up to `pool_size`, in
`.aoi/worktrees/.pool/`) and reused with one `git checkout -f -B`; otherwise removal moves
the folder and its administrative folder (what `git worktree remove` + `prune` delete)
into `.aoi/trash/` with two renames and deletes them on a background thread, off the
daemon's loop. A run that changed nothing is recognised from a stat snapshot of the
worktree (`aoi_git.store.tree_snapshot`), without a git process.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pygit2

from aoi_git.domain.model import OrgConfig
from aoi_git.errors import AoiError
from aoi_git.store import signing, tree_snapshot
from aoi_git.store.branch_changes import BranchCommit, PathChange, branch_changes, branch_commits
from aoi_git.store.git import GitProcess, git, git_start
from aoi_git.store.identity import actor_ident, host_ident
from aoi_git.store.org_store import Store
from aoi_git.store.trash import Trash

SPARSE_OUT = ("tasks", "employees", "talents", "sops", "schemas", "retros", "reviews")
_CONE_SAFE = re.compile(r"^[A-Za-z0-9._+-]+$")  # folder names a cone pattern needs no escape for


REF_LOCK_WAIT_S = 2.0  # how long a ref update waits for another process's lock on it
T = TypeVar("T")


def branch_name(task_id: str) -> str:
    return f"aoi/{task_id}"


def update_ref(op: Callable[[], T], wait_s: float = REF_LOCK_WAIT_S) -> T:
    """Run a libgit2 ref update, again while another process holds the ref's lock (`git gc
    --auto` packing refs, a person's git): libgit2 fails at once, with an OSError or a
    GitError, where waiting a few milliseconds would do."""
    deadline = time.monotonic() + wait_s
    delay = 0.001
    while True:
        try:
            return op()
        except (pygit2.GitError, OSError) as exc:
            if "lock" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


@dataclass
class NewWorktree:
    """A worktree being made: `ready()` waits for its checkout and returns its folder."""

    path: Path
    fresh_tip: str | None  # the branch was made for it at this base commit (None: reused)
    checkout: GitProcess | None
    then: tuple[str, ...] = ()  # a git command to run once the checkout is done

    def ready(self) -> Path:
        if self.checkout is not None:
            proc, self.checkout = self.checkout, None
            proc.wait()
            if self.then:
                git(*self.then, cwd=self.path)
        return self.path


@dataclass
class Pooled:
    """A finished task's worktree kept for the next task: its folder and admin folder."""

    folder: Path
    admin: Path
    clean: bool  # its run changed nothing: no `git clean` needed before reuse


@dataclass
class Workspace:
    repo_dir: Path  # the workspace repository (default: the org checkout)
    base: str  # the branch tasks start from and merge into
    worktrees: Path  # .aoi/worktrees of the org
    is_org: bool = True
    trash: Trash | None = None  # where removed worktrees go; None: deleted in place
    _repo: pygit2.Repository | None = field(default=None, repr=False, compare=False)
    pool_size: int = 0  # finished worktrees kept for reuse (the daemon: POOL_SIZE)
    _pool: list[Pooled] = field(default_factory=list, repr=False, compare=False)
    _unchanged: set[str] = field(default_factory=set, repr=False, compare=False)

    @property
    def repo(self) -> pygit2.Repository:
        if self._repo is None:
            self._repo = pygit2.Repository(str(self.repo_dir))
        return self._repo

    def path_for(self, task_id: str) -> Path:
        return self.worktrees / task_id

    def create(self, task_id: str) -> Path:
        """A fresh worktree for the task at the current base (reused if it exists)."""
        return self.begin_create(task_id).ready()

    def begin_create(self, task_id: str) -> NewWorktree:
        """`create`, with its one `git checkout` still running when this returns, so the
        caller can do other work (the claim commit) meanwhile; `.ready()` waits for it."""
        path = self.path_for(task_id)
        branch = branch_name(task_id)
        if path.exists() and (path / ".git").exists():
            return NewWorktree(path, None, None)
        if path.exists():
            shutil.rmtree(path)
        self.worktrees.mkdir(parents=True, exist_ok=True)
        repo = self.repo
        ref = repo.lookup_branch(branch)
        base = repo.revparse_single(self.base).peel(pygit2.Commit)
        if ref is not None:
            self._refuse_if_checked_out(repo, ref.name)
        reused = self._reuse(path, base.tree)
        if reused is not None:
            # `checkout -B` makes the branch; a run that changed files may have left ignored
            # ones (build output): `git clean` then, so no task sees another one's files
            fresh = None if ref is not None else str(base.id)
            args = ("checkout", "-q", "-f", branch) if ref is not None else \
                ("checkout", "-q", "-f", "--no-track", "-B", branch, str(base.id))
            then = () if reused.clean else ("clean", "-q", "-ffdx")
            return NewWorktree(path, fresh, git_start(*args, cwd=path), then)
        fresh = None
        if ref is None:  # `git worktree add -b <branch> <path> <base>`
            ref = update_ref(lambda: repo.create_branch(branch, base))
            fresh = str(base.id)
        admin = self._add_admin(repo, path, task_id, ref.name)
        if self.is_org:
            self._sparse(repo, admin, base.tree)
        return NewWorktree(path, fresh, git_start("checkout", "-q", branch, cwd=path))

    # A pool of finished worktrees: on this VM's ext4 (no journal) each file created while
    # many were deleted in the last minute scans past those inodes, and a fresh worktree per
    # task created and deleted ~40 files (its admin folder, the checkout, the trash). A
    # reused one is two renames and a `git checkout -f -B` that rewrites what differs.
    def _reuse(self, path: Path, base_tree: pygit2.Tree) -> Pooled | None:
        while self._pool:
            pooled = self._pool.pop()
            try:
                if self.is_org and (pooled.admin / "info" / "sparse-checkout").read_text() \
                        != self._sparse_patterns(base_tree)[0]:
                    raise OSError("the org's top-level folders changed")
                os.rename(pooled.folder, path)
                (pooled.admin / "gitdir").write_text(f"{path.resolve() / '.git'}\n")
            except OSError:
                self._discard(pooled)
                continue
            return pooled
        return None

    def _discard(self, pooled: Pooled) -> None:
        self._delete(pooled.folder)
        self._delete(pooled.admin)

    def drop_pool(self) -> None:
        """Delete the kept worktrees (also those a killed process left in `.pool/`)."""
        while self._pool:
            self._discard(self._pool.pop())
        pool_dir = self.worktrees / ".pool"
        if pool_dir.is_dir():
            for folder in pool_dir.iterdir():
                admin = self._admin_of(folder)
                self._delete(folder)
                if admin is not None and admin.parent.name == "worktrees":
                    self._delete(admin)

    def _keep(self, path: Path, admin: Path, task_id: str) -> bool:
        """Move a finished task's worktree into the pool (False: the pool is full, or the
        worktree is not in a state to keep)."""
        if len(self._pool) >= self.pool_size or not (path / ".git").is_file():
            return False
        try:
            head = (admin / "HEAD").read_text().strip()
            if head.startswith("ref: "):  # detach it: its branch may be deleted now
                ref = self.repo.references.get(head.removeprefix("ref: "))
                if ref is None:
                    return False
                (admin / "HEAD").write_text(f"{ref.target}\n")
            pool_dir = self.worktrees / ".pool"
            pool_dir.mkdir(exist_ok=True)
            folder = pool_dir / uuid.uuid4().hex[:12]
            os.rename(path, folder)
        except OSError:
            return False
        self._pool.append(Pooled(folder, admin, task_id in self._unchanged))
        return True

    @staticmethod
    def _admin_of(path: Path) -> Path | None:
        """The worktree's administrative folder in the repository (from its `.git` file)."""
        try:
            text = (path / ".git").read_text().strip()
        except OSError:
            return None
        return Path(text.removeprefix("gitdir:").strip()) if text.startswith("gitdir:") else None

    def _tracked(self, task_id: str) -> tuple[Path, tuple[Path, ...]]:
        path = self.path_for(task_id)
        admin = self._admin_of(path)
        return path, ((admin / "index", admin / "HEAD") if admin is not None else ())

    def snapshot(self, task_id: str) -> tree_snapshot.Snapshot | None:
        """The worktree's stat data (and its index and HEAD), for `commit_changes`."""
        path, extra = self._tracked(task_id)
        return tree_snapshot.take(path, skip=frozenset({".git"}), extra=extra)

    @staticmethod
    @functools.cache
    def _common_dir_of(git_dir: str) -> Path:
        gitdir = Path(git_dir).resolve()
        try:  # repo_dir may itself be a linked worktree: its entries live in the common dir
            return (gitdir / (gitdir / "commondir").read_text().strip()).resolve()
        except OSError:
            return gitdir

    @classmethod
    def _common_dir(cls, repo: pygit2.Repository) -> Path:
        return cls._common_dir_of(repo.path)

    def _refuse_if_checked_out(self, repo: pygit2.Repository, ref_name: str) -> None:
        where = self._checked_out_at(repo, ref_name)
        if where is not None:
            raise AoiError(f"{ref_name} is already checked out at {where}")

    def _checked_out_at(self, repo: pygit2.Repository, ref_name: str) -> Path | None:
        """The checkout (the main one or a linked worktree) whose HEAD is `ref_name`.

        What libgit2's branch deletion checks, but from the HEAD files alone: libgit2
        opens every worktree as a repository for it, ~1 ms per delete with a full pool."""
        want = f"ref: {ref_name}"
        common = self._common_dir(repo)
        for gitdir in dict.fromkeys((common, Path(repo.path).resolve())):
            try:
                if (gitdir / "HEAD").read_text().strip() == want:
                    return gitdir.parent if gitdir.name == ".git" else gitdir
            except OSError:
                continue
        try:
            admins = list((common / "worktrees").iterdir())
        except OSError:
            return None
        for admin in admins:
            try:
                head = (admin / "HEAD").read_text().strip()
                dot_git = Path((admin / "gitdir").read_text().strip())
            except OSError:
                continue
            if head == want and dot_git.exists():
                return dot_git.parent
        return None

    def _add_admin(self, repo: pygit2.Repository, path: Path, name: str, ref_name: str) -> Path:
        """What `git worktree add --no-checkout` writes: the link between folder and repo."""
        admin_root = self._common_dir(repo) / "worktrees"
        dot_git = path.resolve() / ".git"
        admin, n = admin_root / name, 0
        while admin.exists():
            try:
                stale = Path((admin / "gitdir").read_text().strip()) == dot_git
            except OSError:
                stale = True
            if stale:  # left by an earlier run of this task: `git worktree prune` would drop it
                shutil.rmtree(admin)
                break
            n += 1
            admin = admin_root / f"{name}{n}"
        admin.mkdir(parents=True)
        (admin / "commondir").write_text("../..\n")
        (admin / "HEAD").write_text(f"ref: {ref_name}\n")
        (admin / "gitdir").write_text(f"{dot_git}\n")
        path.mkdir(parents=True, exist_ok=True)
        dot_git.write_text(f"gitdir: {admin}\n")
        return admin

    @classmethod
    def _sparse(cls, repo: pygit2.Repository, admin: Path, tree: pygit2.Tree) -> None:
        """Everything but the `SPARSE_OUT` folders (`git sparse-checkout set --no-cone '/*'
        '!/tasks/' ...`), as a cone (with a sparse index) when the folder names allow it."""
        key = "extensions.worktreeConfig"  # per-worktree config.worktree, as git sets it
        if key not in repo.config or not repo.config.get_bool(key):
            repo.config[key] = True
        (admin / "info").mkdir(exist_ok=True)
        patterns, config = cls._sparse_patterns(tree)
        (admin / "info" / "sparse-checkout").write_text(patterns)
        (admin / "config.worktree").write_text(config)

    @staticmethod
    def _sparse_patterns(tree: pygit2.Tree) -> tuple[str, str]:
        """The sparse-checkout patterns and config.worktree for a worktree of `tree`."""
        folders = [e.name or "" for e in tree if e.type_str == "tree"
                   and e.name not in SPARSE_OUT]
        if all(_CONE_SAFE.match(f) for f in folders):
            return ("/*\n!/*/\n" + "".join(f"/{f}/\n" for f in folders),
                    "[core]\n\tsparseCheckout = true\n\tsparseCheckoutCone = true\n"
                    "[index]\n\tsparse = true\n")
        return ("/*\n" + "".join(f"!/{f}/\n" for f in SPARSE_OUT),
                "[core]\n\tsparseCheckout = true\n\tsparseCheckoutCone = false\n")

    def commit_changes(self, task_id: str, message: str, author: str,
                       since: tree_snapshot.Snapshot | None = None) -> str | None:
        """Commit what the agent changed in its worktree on its branch; the new tip or None.

        `since`: the worktree's snapshot from before the run; when nothing changed since
        (the common case for a review or a plan) no git process runs at all."""
        path, extra = self._tracked(task_id)
        if not path.exists():
            return None
        if since is not None:
            if tree_snapshot.unchanged(path, since, skip=frozenset({".git"}), extra=extra):
                self._unchanged.add(task_id)
                return None
        elif not git("status", "--porcelain", "--untracked-files=all", cwd=path).strip():
            return None  # nothing changed (a commit the agent made itself is the branch tip)
        git("add", "-A", "--sparse", cwd=path, check=False)
        status = git("status", "--porcelain", "--untracked-files=no", cwd=path)
        if not status.strip():
            return None
        a_name, a_email = actor_ident("agent", author)
        c_name, c_email = host_ident()  # authored by the employee, committed by the host
        return signing.commit_index(path, message, pygit2.Signature(a_name, a_email),
                                    pygit2.Signature(c_name, c_email), signing.host_signer())

    def remove(self, task_id: str) -> None:
        """Delete the task's worktree and its administrative folder in the repository."""
        path = self.path_for(task_id)
        admin = self._admin_of(path)
        if admin is None:  # the folder is gone or broken: find its entry by name
            admin = self._common_dir(self.repo) / "worktrees" / task_id
        try:
            ours = Path((admin / "gitdir").read_text().strip()) == path.resolve() / ".git"
        except OSError:
            ours = False
        ours = ours and admin.parent.name == "worktrees"
        kept = ours and self._keep(path, admin, task_id)
        self._unchanged.discard(task_id)
        if kept:
            return
        self._delete(path)
        if ours:
            self._delete(admin)

    def _delete(self, path: Path) -> None:
        if self.trash is not None:
            self.trash.put(path)
        elif path.exists():
            shutil.rmtree(path, ignore_errors=True)

    def delete_branch(self, task_id: str) -> None:
        """Delete `aoi/<id>` and its reflog; left in place while some checkout has it (a
        person looking at it) or its lock stays taken: a stale branch is harmless, a
        daemon stopped by it is not."""
        name = f"refs/heads/{branch_name(task_id)}"
        ref = self.repo.references.get(name)
        if ref is None or self._checked_out_at(self.repo, name) is not None:
            return
        try:
            update_ref(ref.delete)
        except (pygit2.GitError, OSError):
            pass

    def branch_tip(self, task_id: str) -> str | None:
        br = self.repo.lookup_branch(branch_name(task_id))
        return str(br.target) if br is not None else None

    def changes(self, task_id: str) -> list[PathChange]:
        """Every path the task branch changes against its merge base with the base branch,
        both sides of a rename, with modes (`aoi_git.store.branch_changes`)."""
        tip = self.branch_tip(task_id)
        if tip is None:
            return []
        try:
            return branch_changes(self.repo, self.base, tip)
        except (KeyError, pygit2.GitError) as exc:
            raise AoiError(f"cannot compare {branch_name(task_id)} with {self.base}: {exc}") \
                from exc

    def commits(self, task_id: str) -> list[BranchCommit]:
        """The task branch's commits since it left the base branch (newest first)."""
        tip = self.branch_tip(task_id)
        if tip is None:
            return []
        try:
            return branch_commits(self.repo, self.base, tip)
        except (KeyError, pygit2.GitError) as exc:
            raise AoiError(f"cannot compare {branch_name(task_id)} with {self.base}: {exc}") \
                from exc

    def diff(self, task_id: str, max_bytes: int = 200_000) -> str:
        tip = self.branch_tip(task_id)
        if tip is None:
            return ""
        out = git("diff", "--stat", "--patch", f"{self.base}...{tip}", cwd=self.repo_dir,
                  check=False)
        return out if len(out) <= max_bytes else out[:max_bytes] + "\n[diff truncated]\n"

    def is_merged(self, task_id: str) -> bool:
        tip = self.branch_tip(task_id)
        if tip is None:
            return True
        repo = self.repo
        base = repo.lookup_branch(self.base)
        if base is None:
            return False
        return tip == str(base.target) or repo.descendant_of(base.target, pygit2.Oid(hex=tip))


def open_workspace(store: Store, config: OrgConfig, *, trash: Trash | None = None,
                   pool_size: int = 0) -> Workspace:
    """The workspace of aoi.yaml's `workspace:` for the org in `store`: `repo` (default the
    org checkout; relative to its top), `base` (default the org's branch there, else the
    repository's current branch). Worktrees go to the org's `.aoi/worktrees`."""
    setting = Path(config.workspace_repo)
    repo_dir = setting if setting.is_absolute() else (store.root / setting).resolve()
    is_org = repo_dir == store.root
    try:
        repo = store.repo if is_org else pygit2.Repository(str(repo_dir))
    except pygit2.GitError:
        raise AoiError(f"aoi.yaml: workspace repo {config.workspace_repo!r} ({repo_dir}) "
                       "is not a git repository; create it or fix `workspace: repo:`") from None
    base = config.workspace_base or (store.branch if is_org else repo.head.shorthand)
    return Workspace(repo_dir, base, store.aoi_dir / "worktrees", is_org=is_org, trash=trash,
                     _repo=repo, pool_size=pool_size)
