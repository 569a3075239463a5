"""Every git subprocess of the package starts here.

`git()` runs a command to completion, `git_stream()` reads a long output as it comes
(the history readers), `git_start()` runs one while the caller does other work and
`git_detached()` leaves one running in the background. A failure raises `GitError`, whose
message names the command, its exit status and the line of its stderr that says why."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from aoi_git.errors import AoiError

NOT_STARTED = 127  # the exit status a shell gives a command it cannot run
STREAM_CHUNK = 1 << 20


class GitError(AoiError):
    """A git command failed: `cmd`, `returncode`, `stdout` and `stderr` say how."""

    def __init__(self, cmd: Sequence[str], returncode: int, stdout: str, stderr: str) -> None:
        self.cmd, self.returncode, self.stdout, self.stderr = list(cmd), returncode, stdout, stderr
        super().__init__(f"`{' '.join(cmd)}` exited {returncode}"
                         + (f": {line}" if (line := telling_line(stderr or stdout)) else ""))


def telling_line(output: str) -> str:
    """The line of git's output that says what went wrong: its first `fatal:` or
    `error:` line (a usage text may follow it), else its last line."""
    lines = [ln.strip() for ln in output.strip().splitlines() if ln.strip()]
    return next((ln for ln in lines if ln.startswith(("fatal:", "error:"))),
                lines[-1] if lines else "")


def _not_started(cmd: list[str], exc: OSError | subprocess.SubprocessError) -> GitError:
    return GitError(cmd, NOT_STARTED, "", f"cannot run git: {exc}")


def git(
    *args: str,
    cwd: Path | str,
    check: bool = True,
    input: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
) -> str:
    """`git ARGS` in `cwd`, its stdout. Raises GitError on a non-zero exit when `check`,
    and always when git cannot be started or outlives `timeout` seconds."""
    cmd = ["git", *args]
    full_env = {**os.environ, **env} if env else None
    try:
        proc = subprocess.run(cmd, cwd=cwd, input=input, capture_output=True, text=True,
                              env=full_env, check=False, timeout=timeout)
    except (OSError, subprocess.SubprocessError) as exc:
        raise _not_started(cmd, exc) from exc
    if check and proc.returncode != 0:
        raise GitError(cmd, proc.returncode, proc.stdout, proc.stderr)
    return proc.stdout


def git_stream(*args: str, cwd: Path | str, separator: bytes = b"\x1e") -> Iterator[str]:
    """The items of `git ARGS`'s stdout between `separator`s, decoded (UTF-8, undecodable
    bytes replaced), as git writes them: one process, never the whole output in memory.

    A non-zero exit raises GitError once the output is read to its end; a reader that
    stops early ends git and raises nothing."""
    cmd = ["git", *args]
    import tempfile  # (here: the git hooks start quicker without it)

    with tempfile.TemporaryFile() as err:  # a file: a talkative git never blocks on it
        try:
            proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=err)
        except OSError as exc:
            raise _not_started(cmd, exc) from exc
        assert proc.stdout is not None
        read_all = False
        try:
            buf = b""
            while chunk := proc.stdout.read(STREAM_CHUNK):
                buf += chunk
                *items, buf = buf.split(separator)
                for item in items:
                    yield item.decode("utf-8", "replace")
            if buf.strip():
                yield buf.decode("utf-8", "replace")
            read_all = True
        finally:
            proc.stdout.close()
            returncode = proc.wait()
        if read_all and returncode != 0:
            err.seek(0)
            raise GitError(cmd, returncode, "", err.read().decode("utf-8", "replace"))


def has_commits(cwd: Path | str) -> bool:
    """Whether HEAD names a commit (not so in a repository without commits yet)."""
    return bool(git("rev-parse", "-q", "--verify", "HEAD^{commit}", cwd=cwd, check=False))


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
    try:
        proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    except OSError as exc:
        raise _not_started(cmd, exc) from exc
    return GitProcess(cmd, proc)


def git_detached(*args: str, cwd: Path | str) -> None:
    """`git ARGS` left running in its own session, its output discarded (nothing waits
    for its result); a thread reaps it, so a long-running caller collects no zombies."""
    cmd = ["git", *args]
    try:
        proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
    except OSError as exc:
        raise _not_started(cmd, exc) from exc
    threading.Thread(target=proc.wait, daemon=True, name=f"git-{args[0] if args else ''}").start()


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


class CatFile:
    """One `git cat-file --batch` process answering object requests one by one (`HEAD:path`,
    an object id): for a command that reads a few files of a commit, cheaper than importing
    pygit2. `close()` (or the end of a `with` block) ends it."""

    def __init__(self, cwd: Path | str) -> None:
        self.cmd = ["git", "cat-file", "--batch"]
        try:
            self.proc = subprocess.Popen(self.cmd, cwd=cwd, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as exc:
            raise _not_started(self.cmd, exc) from exc

    def get(self, spec: str) -> tuple[str, bytes] | None:
        """(type, content) of the object `spec` names, None when there is none."""
        if "\n" in spec:
            return None  # (one request per line)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(spec.encode() + b"\n")
            self.proc.stdin.flush()
            header = self.proc.stdout.readline()
        except OSError:
            header = b""
        if not header:
            self.close()
            raise GitError(self.cmd, self.proc.returncode or 1, "",
                           (self.proc.stderr.read() if self.proc.stderr else b"").decode(
                               "utf-8", "replace"))
        parts = header.split()
        if len(parts) != 3:  # `<spec> missing` / `ambiguous`
            return None
        size = int(parts[2])
        data = self.proc.stdout.read(size)
        self.proc.stdout.read(1)  # the newline after the content
        return parts[1].decode(), data

    def close(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> CatFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
