"""A person's `git commit` under way in the checkout: aoi keeps the branch still meanwhile.

`git commit` reads HEAD when it starts and, at its end, moves the branch only if it still
points there ("cannot lock ref 'HEAD': is at X but expected Y" otherwise). A daemon that
commits every few milliseconds would make nearly every commit of a person fail, so:

* aoi's pre-commit hook writes the pid of the `git commit` running it into
  `<git dir>/aoi-person-commit` (in shell, before anything slow) and the post-commit hook
  removes it; a commit that stops earlier leaves a marker whose process is gone;
* that covers a commit from its hook on, not its first milliseconds (HEAD is read, then
  the index, before any hook runs). So where there is a `/proc`, a `Watch` also looks for
  a `git commit` process working in the checkout, reading only the processes it has not
  seen before (a few per call: listing `/proc` costs ~0.1 ms, reading all of it ~4 ms);
* `Watch.wait` makes an aoi writer wait before it moves the branch or writes the index
  while such a commit is under way (at most `WAIT_LIMIT_S`), and also while a young
  `index.lock` exists (some git is writing the index from the copy it read).
"""

from __future__ import annotations

import contextlib
import enum
import os
import time
from pathlib import Path

MARKER = "aoi-person-commit"
WAIT_LIMIT_S = 30.0  # then the branch moves anyway (e.g. an editor left open)
LOCK_YOUNG_S = 2.0  # an older index.lock is no commit starting (a crash left it)
LOCK_WAIT_S = 0.2  # how long a young index.lock alone holds a writer back
POLL_S = 0.01


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def committing_pid(git_dir: Path) -> int | None:
    """The pid of a person's `git commit` under way, or None (a dead one's marker goes)."""
    marker = git_dir / MARKER
    try:
        text = marker.read_text().strip()
        made = marker.stat().st_mtime
    except OSError:
        return None
    try:
        pid = int(text)
    except ValueError:
        pid = 0
    if pid > 0 and pid != os.getpid() and _alive(pid) and time.time() - made < WAIT_LIMIT_S:
        return pid
    with contextlib.suppress(OSError):
        if marker.read_text().strip() == text:
            marker.unlink()
    return None


def _mtimes(git_dir: Path) -> tuple[int, int]:
    """When the git folder (an entry made, renamed or removed) and its index last changed."""
    out = []
    for path in (git_dir, git_dir / "index"):
        try:
            out.append(path.stat().st_mtime_ns)
        except OSError:
            out.append(0)
    return out[0], out[1]


def _young_index_lock(git_dir: Path) -> bool:
    try:
        return time.time() - (git_dir / "index.lock").stat().st_mtime < LOCK_YOUNG_S
    except OSError:
        return False


# git commands that never write the index, so need not hold aoi's index write back: a
# background `git gc --auto` (a person's commit, or aoi's own, detaches one that repacks
# for seconds) and what it runs, a long-lived `git fsmonitor--daemon`, and readers
NO_INDEX_WRITE = frozenset({
    b"gc", b"maintenance", b"repack", b"pack-objects", b"prune", b"prune-packed",
    b"reflog", b"pack-refs", b"multi-pack-index", b"commit-graph", b"fsmonitor--daemon",
    b"cat-file", b"log", b"show", b"rev-list", b"rev-parse", b"for-each-ref", b"ls-tree",
    b"ls-files", b"fetch", b"push", b"send-pack", b"fetch-pack", b"index-pack",
    b"upload-pack", b"receive-pack", b"remote-http", b"remote-https", b"count-objects",
    b"config", b"credential", b"blame", b"grep", b"shortlog", b"whatchanged", b"fsck",
})
_VALUE_OPTIONS = frozenset({b"-c", b"-C", b"--git-dir", b"--work-tree", b"--namespace",
                            b"--exec-path", b"--config-env", b"--super-prefix"})


def _subcommand(argv: list[bytes]) -> bytes | None:
    """The git command of `git [options] COMMAND ...` (None: none found)."""
    args = iter(argv[1:])
    for arg in args:
        if arg in _VALUE_OPTIONS:
            next(args, None)
        elif not arg.startswith(b"-"):
            return arg
    return None


class GitKind(enum.Enum):
    COMMIT = "commit"
    OTHER = "other"


ACTIVE_S = 1.0  # a person's git seen this recently: the last look is made twice
SECOND_LOOK_S = 0.002  # the pause between them (a fork execs in well under 1 ms)

PROC = Path("/proc")
SETTLED_S = 0.2  # a process seen this long without being `git commit` is not read again


class Watch:
    """Tells whether a person's `git commit` is under way in one checkout."""

    def __init__(self, root: Path, git_dir: Path) -> None:
        self.root = root
        self.git_dir = git_dir
        self._proc = PROC.is_dir()
        self._settled: set[str] = set()  # pids known not to be a commit here
        self._first_seen: dict[str, float] = {}
        self._listed: set[str] = set()  # the pids of the last full look
        self._git_here: set[str] = set()  # a person's git (not a commit) running here
        self.git_seen: float | None = None  # (monotonic) a person's git last seen at work
        self._written_seen: tuple[int, int] | None = None  # `_mtimes` at the last look
        self.own_write: tuple[int, int] | None = None  # `_mtimes` after this process wrote

    def git_commit_pid(self) -> str | None:
        """The pid of a `git commit` (not this process's child) working in the checkout."""
        if not self._proc:
            return None
        now = time.monotonic()
        try:
            pids = {n for n in os.listdir(PROC) if n.isdigit()}
        except OSError:
            return None
        found = self._look(pids - self._settled, pids, now)
        self._listed = pids
        return found

    def _look(self, candidates: set[str], listed: set[str], now: float) -> str | None:
        self._settled &= listed  # (a pid that is gone may come back as another process)
        self._git_here &= listed
        for pid in set(self._first_seen) - listed:
            del self._first_seen[pid]
        found = None
        for pid in candidates - self._git_here:
            first = self._first_seen.setdefault(pid, now)
            kind = self._git_kind(pid)
            if kind is GitKind.COMMIT:
                found = pid
            elif kind is GitKind.OTHER:
                self._git_here.add(pid)  # watched while it runs, not read again
                del self._first_seen[pid]
            elif now - first >= SETTLED_S:
                self._settled.add(pid)
                del self._first_seen[pid]
        if found is not None or self._git_here:
            self.git_seen = now
        return found

    def started_since(self) -> str | None:
        """Like `git_commit_pid`, for the processes started since its last call only (a
        listing of `/proc`, ~0.1 ms: the last look before moving the branch)."""
        if not self._proc:
            return None
        try:
            pids = {n for n in os.listdir(PROC) if n.isdigit()}
        except OSError:
            return None
        # (and those seen before as something else: a fork that has exec'd git since)
        young = {pid for pid in self._first_seen if pid in pids}
        return self._look((pids - self._listed) | young, pids, time.monotonic())

    def _git_kind(self, pid: str) -> GitKind | None:
        """What process `pid` is: a `git commit` or another git working in the checkout
        (not this process's child, not in an agent's worktree), or None."""
        base = PROC / pid
        try:
            if (base / "comm").read_bytes() != b"git\n":
                return None
            argv = (base / "cmdline").read_bytes().split(b"\0")
            if len(argv) < 2:  # mid-exec: comm is git's, its arguments not yet in place
                return None
            if (base / "stat").read_bytes().rsplit(b")", 1)[1].split()[1] == str(
                    os.getpid()).encode():
                return None  # aoi's own git (e.g. a merge in a task's worktree)
            cwd = Path(os.readlink(base / "cwd"))
        except (OSError, IndexError):
            return None
        if self.root / ".aoi" in (cwd, *cwd.parents):
            return None  # an agent's worktree, not the person's checkout
        if not (cwd == self.root or self.root in cwd.parents):
            return None
        if b"commit" in argv:
            return GitKind.COMMIT
        return None if _subcommand(argv) in NO_INDEX_WRITE else GitKind.OTHER

    def active_lately(self) -> bool:
        """A person's git was seen at work in the last `ACTIVE_S` (by the looks made)."""
        return self.git_seen is not None and time.monotonic() - self.git_seen < ACTIVE_S

    def quiet_for(self) -> float:
        """Seconds since a person's git was last seen at work in the checkout (a process
        in `/proc`, a commit's marker, the index written by someone else); inf: never."""
        now = time.monotonic()
        self.git_commit_pid()  # (updates `git_seen`)
        if committing_pid(self.git_dir) is not None or _young_index_lock(self.git_dir):
            self.git_seen = now
        # a git that took index.lock since the last look changed the git folder (the lock
        # made and renamed over `index`), also one too quick to be seen in /proc
        written = _mtimes(self.git_dir)
        if written != self._written_seen:
            if self._written_seen is not None and written != self.own_write:
                self.git_seen = now  # (when we noticed, not when it was written)
            self._written_seen = written
        return now - self.git_seen if self.git_seen is not None else float("inf")

    def wrote_index(self) -> None:
        """This process has just written the index: not a person's git at work."""
        self.own_write = self._written_seen = _mtimes(self.git_dir)

    def under_way(self) -> bool:
        """A person's commit is under way, some git holds the index lock right now, or a
        person's git is running in the checkout (a `git add` may take the lock next)."""
        return (committing_pid(self.git_dir) is not None or _young_index_lock(self.git_dir)
                or self.git_commit_pid() is not None or bool(self._git_here))

    def wait(self) -> float:
        """Wait while a person's commit is under way (see the module docstring); the
        seconds waited."""
        start = time.monotonic()
        while True:
            waited = time.monotonic() - start
            if (committing_pid(self.git_dir) is None and self.git_commit_pid() is None
                    and (waited >= LOCK_WAIT_S or not _young_index_lock(self.git_dir))
                    and self.started_since() is None):  # (one started during that look)
                return waited
            if waited >= WAIT_LIMIT_S:
                return waited
            time.sleep(POLL_S)
