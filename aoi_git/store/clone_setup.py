"""Per-clone git setup a clone does not inherit: the task merge driver and the hooks."""

from __future__ import annotations

import os
import shlex
import stat
import sys
import tempfile
from pathlib import Path

import pygit2

from aoi_git.errors import AoiError
from aoi_git.store.git import git

__all__ = [
    "GITATTRIBUTES_LINE",
    "HOOK_MARKER",
    "MERGE_DRIVER_NAME",
    "install_hooks",
    "install_merge_driver",
    "missing_setup",
]

MERGE_DRIVER_NAME = "aoi-task"
GITATTRIBUTES_LINE = f"tasks/**/*.yaml merge={MERGE_DRIVER_NAME}"
HOOK_MARKER = "# aoi-hook"
CLIENT_HOOKS = ("pre-commit", "commit-msg", "post-commit")  # what a person's clone runs
SETUP_FIX = "run `aoi init` in this clone to install them (it changes nothing else)"

# The names git runs as hooks (githooks(5)); anything else in the source folder is ignored.
GIT_HOOK_NAMES = frozenset(
    {
        "applypatch-msg", "pre-applypatch", "post-applypatch", "pre-commit",
        "pre-merge-commit", "prepare-commit-msg", "commit-msg", "post-commit",
        "pre-rebase", "post-checkout", "post-merge", "pre-push", "pre-receive",
        "update", "proc-receive", "post-receive", "post-update", "reference-transaction",
        "push-to-checkout", "pre-auto-gc", "post-rewrite", "sendemail-validate",
        "fsmonitor-watchman", "p4-changelist", "p4-prepare-changelist",
        "p4-post-changelist", "p4-pre-submit", "post-index-change",
    }
)  # fmt: skip


def install_merge_driver(repo_dir: Path) -> bool:
    """Register the `aoi-task` merge driver in the clone's config and route task files
    to it in `.gitattributes`. Returns True if `.gitattributes` was changed.

    `git config --local` writes to the repository's common config, so a linked
    worktree and its main checkout share the driver.
    """
    repo_dir = Path(repo_dir)
    driver = f"{shlex.quote(sys.executable)} -m aoi_git.store.task_merge %O %A %B %P"
    git("config", "--local", f"merge.{MERGE_DRIVER_NAME}.name", "aoi task merge", cwd=repo_dir)
    git("config", "--local", f"merge.{MERGE_DRIVER_NAME}.driver", driver, cwd=repo_dir)
    return _ensure_gitattributes(repo_dir / ".gitattributes")


def _ensure_gitattributes(path: Path) -> bool:
    """Append GITATTRIBUTES_LINE unless present; every other byte stays as it was."""
    wanted = GITATTRIBUTES_LINE.split()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        path.write_bytes(f"{GITATTRIBUTES_LINE}\n".encode())
        return True
    for line in data.decode("utf-8", errors="replace").splitlines():
        if line.split() == wanted:
            return False
    newline = b"\r\n" if b"\r\n" in data else b"\n"
    separator = b"" if not data or data.endswith(b"\n") else newline
    path.write_bytes(data + separator + GITATTRIBUTES_LINE.encode() + newline)
    return True


def missing_setup(repo: pygit2.Repository) -> list[str]:
    """What of aoi's per-clone setup this clone lacks: the task merge driver, the hooks
    a person's commits run. Read with pygit2, no git process."""
    missing = []
    try:
        has_driver = bool(repo.config[f"merge.{MERGE_DRIVER_NAME}.driver"])
    except KeyError:
        has_driver = False
    if not has_driver:
        missing.append(f"the task merge driver (merge.{MERGE_DRIVER_NAME})")
    try:
        configured: str | None = repo.config["core.hooksPath"]
    except KeyError:
        configured = None
    hooks = Path(repo.path) / "hooks"
    if configured:
        hooks = Path(configured).expanduser()
        if not hooks.is_absolute():
            hooks = Path(repo.workdir or repo.path) / hooks
    for name in CLIENT_HOOKS:
        try:
            ours = _is_ours((hooks / name).read_bytes())
        except OSError:
            ours = False
        if not ours:
            missing.append(f"the {name} hook")
    return missing


def _hooks_dir(repo_dir: Path) -> Path:
    """Where git looks for hooks: honours core.hooksPath and linked worktrees."""
    hooks = Path(git("rev-parse", "--git-path", "hooks", cwd=repo_dir).rstrip("\n"))
    return hooks if hooks.is_absolute() else repo_dir / hooks


def _is_ours(content: bytes) -> bool:
    """Has the marker line (`# aoi-hook` alone, or `# aoi-hook: what it does`)."""
    marker = HOOK_MARKER.encode()
    return any(line.strip() == marker or line.startswith(marker + b":")
               for line in content.splitlines())


def _make_executable(path: Path) -> None:
    mode = path.stat().st_mode
    path.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def install_hooks(repo_dir: Path, hooks_src: Path) -> list[str]:
    """Copy the hook scripts in `hooks_src` into the clone's hooks folder, executable.

    A hook already there is replaced only if aoi installed it (it has the line
    `# aoi-hook`); another program's hook is left alone and reported. Returns the
    warnings, one string each (empty when every hook is in place).
    """
    repo_dir, hooks_src = Path(repo_dir), Path(hooks_src)
    if not hooks_src.is_dir():
        raise AoiError(f"hook folder {hooks_src} does not exist")
    dest_dir = _hooks_dir(repo_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    warnings: list[str] = []
    for src in sorted(hooks_src.iterdir()):
        if src.name not in GIT_HOOK_NAMES or not src.is_file():
            continue
        content = src.read_bytes()
        dest = dest_dir / src.name
        if dest.exists() or dest.is_symlink():
            try:
                existing = dest.read_bytes()
            except OSError as exc:
                warnings.append(f"{dest}: cannot read the existing hook ({exc}); left as is")
                continue
            if existing == content:
                _make_executable(dest)
                continue
            if not _is_ours(existing):
                warnings.append(
                    f"{dest}: a {src.name} hook not installed by aoi is already there and "
                    f"was left in place, so aoi's {src.name} checks do not run; "
                    f"call {src} from it to enable them"
                )
                continue
        fd, tmp_name = tempfile.mkstemp(prefix=f".{src.name}.", dir=dest_dir)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(content)
            tmp.chmod(0o755)
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return warnings
