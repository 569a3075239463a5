"""Every git subprocess goes through `git()`: its error names the command, status and output."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from aoi_git.errors import AoiError


class GitError(AoiError):
    def __init__(self, cmd: Sequence[str], returncode: int, stdout: str, stderr: str) -> None:
        self.cmd, self.returncode, self.stdout, self.stderr = list(cmd), returncode, stdout, stderr
        detail = (stderr.strip() or stdout.strip()).splitlines()
        super().__init__(
            f"`{' '.join(cmd)}` exited {returncode}" + (f": {detail[-1]}" if detail else "")
        )


def git(
    *args: str,
    cwd: Path | str,
    check: bool = True,
    input: str | None = None,
    env: dict[str, str] | None = None,
) -> str:
    cmd = ["git", *args]
    full_env = None
    if env:
        full_env = {**os.environ, **env}
    proc = subprocess.run(
        cmd, cwd=cwd, input=input, capture_output=True, text=True, env=full_env, check=False
    )
    if check and proc.returncode != 0:
        raise GitError(cmd, proc.returncode, proc.stdout, proc.stderr)
    return proc.stdout


class GitProcess:
    """A git command started with `git_start`, running while the caller does other work."""

    def __init__(self, cmd: list[str], proc: subprocess.Popen[str]) -> None:
        self.cmd, self.proc = cmd, proc

    def wait(self, check: bool = True) -> str:
        stdout, stderr = self.proc.communicate()
        if check and self.proc.returncode != 0:
            raise GitError(self.cmd, self.proc.returncode, stdout, stderr)
        return stdout


def git_start(*args: str, cwd: Path | str) -> GitProcess:
    """`git()` without waiting: `.wait()` returns its output or raises the same GitError."""
    cmd = ["git", *args]
    proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    return GitProcess(cmd, proc)


def find_org_root(start: Path) -> Path:
    """The top of the org checkout containing `start` (a folder with aoi.yaml at its top)."""
    start = start.resolve()
    for candidate in (start, *start.parents):
        if (candidate / "aoi.yaml").is_file() and (candidate / ".git").exists():
            return candidate
    raise AoiError(
        f"{start} is not inside an aoi organisation (no aoi.yaml at a git top level); "
        "run `aoi init DIR` or pass -C DIR"
    )
