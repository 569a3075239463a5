"""Task worktrees: one git worktree per task on branch `aoi/<id>`, merged on acceptance.

The worktree is a sparse checkout without `tasks/`, so a 100k-task org does not write
100k files per run, and an agent never sees (or edits) the task files themselves.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pygit2

from aoi_git.gitutil import GitError, git

ORG_STATE_PREFIXES = ("tasks/", "employees/", "talents/", "sops/", "retros/", "reviews/",
                      "schemas/")
ORG_STATE_FILES = ("aoi.yaml",)


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
        git("worktree", "prune", cwd=self.repo_dir, check=False)
        self.worktrees.mkdir(parents=True, exist_ok=True)
        repo = pygit2.Repository(str(self.repo_dir))
        exists = repo.lookup_branch(branch) is not None
        if exists:
            git("worktree", "add", "--no-checkout", str(path), branch, cwd=self.repo_dir)
        else:
            git("worktree", "add", "--no-checkout", "-b", branch, str(path), self.base,
                cwd=self.repo_dir)
        if self.is_org:
            git("sparse-checkout", "set", "--no-cone", "/*", "!/tasks/", cwd=path)
        git("checkout", "-q", branch, cwd=path)
        return path

    def commit_changes(self, task_id: str, message: str, author: str) -> str | None:
        """Commit what the agent changed in its worktree on its branch; the new tip or None."""
        path = self.path_for(task_id)
        if not path.exists():
            return None
        git("add", "-A", "--sparse", cwd=path, check=False)
        status = git("status", "--porcelain", "--untracked-files=no", cwd=path)
        if not status.strip():
            return None
        git("-c", f"user.name={author}", "-c", f"user.email={author}@aoi.invalid",
            "commit", "-q", "--no-verify", "-m", message, cwd=path)
        return git("rev-parse", "HEAD", cwd=path).strip()

    def remove(self, task_id: str) -> None:
        path = self.path_for(task_id)
        if path.exists():
            git("worktree", "remove", "--force", str(path), cwd=self.repo_dir, check=False)
            if path.exists():
                shutil.rmtree(path, ignore_errors=True)
        git("worktree", "prune", cwd=self.repo_dir, check=False)

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
