"""Task worktrees: one git worktree per task on branch `aoi/<id>`, merged on acceptance.

The worktree is a sparse checkout without `tasks/` (nor `retros/` and `reviews/`, which
also grow with every finished project), so a 100k-task org does not write 100k files per
run, and an agent never sees (or edits) the task files themselves. It is a cone-mode
sparse checkout with a sparse index: each left-out folder is one index entry, so creating,
checking and committing a worktree costs the same at 1k and at 100k tasks.

Creating and removing a worktree are on every task's path, so they avoid git processes:
the branch is made with pygit2, the worktree's administrative files (the `.git` file and
`$GIT_COMMON_DIR/worktrees/<name>/{gitdir,commondir,HEAD}`, the layout `git worktree add`
writes) and its sparse-checkout settings are written directly, and one `git checkout`
fills it. Removal deletes the folder and its administrative folder (what `git worktree
remove` + `prune` do). A run that changed nothing costs one `git status`.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pygit2

from aoi_git.errors import AoiError
from aoi_git.gitutil import GitError, git

ORG_STATE_PREFIXES = ("tasks/", "employees/", "talents/", "sops/", "retros/", "reviews/",
                      "schemas/")
ORG_STATE_FILES = ("aoi.yaml",)
SPARSE_OUT = ("tasks", "retros", "reviews")  # org state that grows with the work done
_CONE_SAFE = re.compile(r"^[A-Za-z0-9._+-]+$")  # folder names a cone pattern needs no escape for


def branch_name(task_id: str) -> str:
    return f"aoi/{task_id}"


@dataclass
class Workspace:
    repo_dir: Path  # the workspace repository (default: the org checkout)
    base: str  # the branch tasks start from and merge into
    worktrees: Path  # .aoi/worktrees of the org
    is_org: bool = True

    def path_for(self, task_id: str) -> Path:
        return self.worktrees / task_id

    def create(self, task_id: str) -> Path:
        """A fresh worktree for the task at the current base (reused if it exists)."""
        path = self.path_for(task_id)
        branch = branch_name(task_id)
        if path.exists() and (path / ".git").exists():
            return path
        if path.exists():
            shutil.rmtree(path)
        self.worktrees.mkdir(parents=True, exist_ok=True)
        repo = pygit2.Repository(str(self.repo_dir))
        ref = repo.lookup_branch(branch)
        if ref is None:  # `git worktree add -b <branch> <path> <base>`
            base = repo.revparse_single(self.base).peel(pygit2.Commit)
            ref = repo.create_branch(branch, base)
        else:
            self._refuse_if_checked_out(repo, ref.name)
        admin = self._add_admin(repo, path, task_id, ref.name)
        if self.is_org:
            self._sparse(repo, admin, ref.peel(pygit2.Commit).tree)
        git("checkout", "-q", branch, cwd=path)
        return path

    @staticmethod
    def _common_dir(repo: pygit2.Repository) -> Path:
        gitdir = Path(repo.path).resolve()
        try:  # repo_dir may itself be a linked worktree: its entries live in the common dir
            return (gitdir / (gitdir / "commondir").read_text().strip()).resolve()
        except OSError:
            return gitdir

    def _refuse_if_checked_out(self, repo: pygit2.Repository, ref_name: str) -> None:
        admin_root = self._common_dir(repo) / "worktrees"
        if not admin_root.is_dir():
            return
        for admin in admin_root.iterdir():
            try:
                head = (admin / "HEAD").read_text().strip()
                gitdir = Path((admin / "gitdir").read_text().strip())
            except OSError:
                continue
            if head == f"ref: {ref_name}" and gitdir.exists():
                raise AoiError(f"{ref_name} is already checked out at {gitdir.parent}")

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

    @staticmethod
    def _sparse(repo: pygit2.Repository, admin: Path, tree: pygit2.Tree) -> None:
        """Everything but the `SPARSE_OUT` folders (`git sparse-checkout set --no-cone '/*'
        '!/tasks/' ...`), as a cone (with a sparse index) when the folder names allow it."""
        key = "extensions.worktreeConfig"  # per-worktree config.worktree, as git sets it
        if key not in repo.config or not repo.config.get_bool(key):
            repo.config[key] = True
        folders = [e.name or "" for e in tree if e.type_str == "tree"
                   and e.name not in SPARSE_OUT]
        (admin / "info").mkdir(exist_ok=True)
        if all(_CONE_SAFE.match(f) for f in folders):
            patterns = "/*\n!/*/\n" + "".join(f"/{f}/\n" for f in folders)
            config = "[core]\n\tsparseCheckout = true\n\tsparseCheckoutCone = true\n" \
                     "[index]\n\tsparse = true\n"
        else:
            patterns = "/*\n" + "".join(f"!/{f}/\n" for f in SPARSE_OUT)
            config = "[core]\n\tsparseCheckout = true\n\tsparseCheckoutCone = false\n"
        (admin / "info" / "sparse-checkout").write_text(patterns)
        (admin / "config.worktree").write_text(config)

    def commit_changes(self, task_id: str, message: str, author: str) -> str | None:
        """Commit what the agent changed in its worktree on its branch; the new tip or None."""
        path = self.path_for(task_id)
        if not path.exists():
            return None
        if not git("status", "--porcelain", "--untracked-files=all", cwd=path).strip():
            return None  # nothing changed (a commit the agent made itself is the branch tip)
        git("add", "-A", "--sparse", cwd=path, check=False)
        status = git("status", "--porcelain", "--untracked-files=no", cwd=path)
        if not status.strip():
            return None
        git("-c", f"user.name={author}", "-c", f"user.email={author}@aoi.invalid",
            "commit", "-q", "--no-verify", "-m", message, cwd=path)
        return git("rev-parse", "HEAD", cwd=path).strip()

    def remove(self, task_id: str) -> None:
        """Delete the task's worktree and its administrative folder in the repository."""
        path = self.path_for(task_id)
        admin: Path | None = None
        try:
            text = (path / ".git").read_text().strip()
            if text.startswith("gitdir:"):
                admin = Path(text.removeprefix("gitdir:").strip())
        except OSError:
            pass
        if admin is None:  # the folder is gone or broken: find its entry by name
            admin = self._common_dir(pygit2.Repository(str(self.repo_dir))) / "worktrees" / task_id
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)
        try:
            ours = Path((admin / "gitdir").read_text().strip()) == path.resolve() / ".git"
        except OSError:
            ours = False
        if ours and admin.parent.name == "worktrees":
            shutil.rmtree(admin, ignore_errors=True)

    def delete_branch(self, task_id: str) -> None:
        repo = pygit2.Repository(str(self.repo_dir))
        br = repo.lookup_branch(branch_name(task_id))
        if br is not None:
            try:
                br.delete()
            except pygit2.GitError:
                pass

    def branch_tip(self, task_id: str) -> str | None:
        repo = pygit2.Repository(str(self.repo_dir))
        br = repo.lookup_branch(branch_name(task_id))
        return str(br.target) if br is not None else None

    def changed_paths(self, task_id: str) -> list[str]:
        """Paths the task branch changes relative to its merge base with the base branch."""
        tip = self.branch_tip(task_id)
        if tip is None:
            return []
        try:
            out = git("diff", "--name-only", f"{self.base}...{tip}", cwd=self.repo_dir)
        except GitError:
            return []
        return [p for p in out.splitlines() if p]

    def org_state_violations(self, task_id: str) -> list[str]:
        if not self.is_org:
            return []
        return [p for p in self.changed_paths(task_id)
                if p.startswith(ORG_STATE_PREFIXES) or p in ORG_STATE_FILES]

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
        repo = pygit2.Repository(str(self.repo_dir))
        base = repo.lookup_branch(self.base)
        if base is None:
            return False
        return tip == str(base.target) or repo.descendant_of(base.target, pygit2.Oid(hex=tip))
