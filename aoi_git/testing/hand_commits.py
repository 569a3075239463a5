"""A person committing with plain git while `aoi daemon` commits: the test's and the bench's.

`prepare` gives an org a script employee `bench` (concurrency 4) whose agent does nothing
but report `completed`, the person's own files (`notes/`, `src/`) and `tasks` pending
no-op tasks for it, so a daemon started on it commits several times a second.
`commit_as_person` saves one of the person's files and commits it in one of the three usual
ways (`git add f && git commit`, `git commit -- f`, `git commit -a`), retrying as a person
would, and counts how it went in a `Tally`; `lost_edits` and `leftovers` check afterwards
that every committed content is in history and that nothing is staged that nobody made.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from aoi_git.domain.ids import new_task_id, shard_path
from aoi_git.domain.model import Actor, Kind, Status, Task
from aoi_git.store.git import GitError, git
from aoi_git.store.org_store import Store
from aoi_git.store.txn import Txn, commit, now_iso

AGENT = "printf '{\"outcome\":\"completed\"}' > \"$AOI_RESULT_FILE\""
# (style, the file it commits): each style has a file of its own
STYLES = (("add", "notes/a.txt"), ("path", "src/x.py"), ("all", "notes/c.txt"))
RETRY_PAUSE_S = 0.05


def prepare(root: Path, tasks: int, creator: Actor) -> None:
    """The busy employee, the person's files and `tasks` pending tasks (see above)."""
    profile = {
        "id": "bench", "name": "Bench", "role": "engineer", "reports_to": "ceo",
        "status": "active",
        "backend": {"kind": "script", "command": ["/bin/sh", "-c", AGENT]},
        "capacity": {"concurrency": 4, "timeout_s": 60},
    }
    folder = root / "employees" / "bench"
    folder.mkdir(parents=True)
    (folder / "profile.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    for _style, name in STYLES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("start\n")
    git("add", "-A", cwd=root)
    git("commit", "-q", "--no-verify", "-m", "hire bench; the person's own files", cwd=root)

    def fn(txn: Txn) -> None:
        for i in range(tasks):
            tid = new_task_id()
            txn.put(Task(id=tid, title=f"No-op {i}", kind=Kind.WORK, status=Status.PENDING,
                         assignee="bench", reviewer="none", created=now_iso()),
                    new=True, path=shard_path(tid))

    store = Store(root)
    commit(store, fn, creator)
    store.flush_index()


@dataclass
class Tally:
    first_try: int = 0
    lock_retried: int = 0  # failed first on git's own index.lock, then went through
    ref_retried: int = 0  # failed first because the branch moved since git read it
    other_retried: list[str] = field(default_factory=list)  # failed first otherwise: why
    failures: list[str] = field(default_factory=list)
    committed: list[tuple[str, str]] = field(default_factory=list)  # (path, content)
    seconds: list[float] = field(default_factory=list)  # per commit, retries included
    moved_why: list[str] = field(default_factory=list)  # the moved-branch failures

    @property
    def attempted(self) -> int:
        return (self.first_try + self.lock_retried + self.ref_retried
                + len(self.other_retried) + len(self.failures))

    @property
    def went_through(self) -> int:
        return self.attempted - len(self.failures)

    def summary(self) -> str:
        return (f"{self.attempted} attempted, {self.first_try} first try "
                f"({100 * self.first_try / max(1, self.attempted):.1f}%), "
                f"{self.lock_retried} after an index.lock retry, {self.ref_retried} after a "
                f"moved-branch retry, {len(self.other_retried)} after another retry, "
                f"{len(self.failures)} failed")


def index_lock_only(err: str) -> bool:
    return "index.lock" in err and "File exists" in err


def branch_moved(err: str) -> bool:
    return "cannot lock ref 'HEAD'" in err and "but expected" in err


def _run(root: Path, cmd: list[str]) -> str:
    """`git CMD` as the person runs it; "" when it went through, else what it said."""
    try:
        git(*cmd, cwd=root)
    except GitError as exc:
        return f"git {' '.join(cmd)}: {(exc.stderr or exc.stdout).strip()}"
    return ""


def commit_as_person(root: Path, style: str, path: str, n: int, tally: Tally) -> None:
    """Save `path` with new content and commit it in `style`; count how it went. A first
    failure on a lock or a moved branch is retried (up to 5 times), any other failure
    once, as a person would: a second failure counts as failed."""
    content = f"edit {n} by the person ({style})\n"
    started = time.monotonic()
    (root / path).write_text(content)
    steps = {
        "add": [["add", path], ["commit", "-q", "-m", f"person {n}"]],
        "path": [["commit", "-q", "-m", f"person {n}", "--", path]],
        "all": [["commit", "-q", "-a", "-m", f"person {n}"]],
    }[style]
    first_failure = failed = ""
    for attempt in range(5):
        failed = next((f for f in (_run(root, cmd) for cmd in steps) if f), "")
        if not failed:
            if attempt == 0:
                tally.first_try += 1
            elif branch_moved(first_failure):
                tally.ref_retried += 1
                tally.moved_why.append(first_failure)
            elif index_lock_only(first_failure):
                tally.lock_retried += 1
            else:
                tally.other_retried.append(first_failure)
            tally.committed.append((path, content))
            tally.seconds.append(time.monotonic() - started)
            return
        first_failure = first_failure or failed
        if attempt > 0 and not (index_lock_only(failed) or branch_moved(failed)):
            tally.failures.append(failed)
            return
        time.sleep(RETRY_PAUSE_S)
    tally.failures.append(f"still locked after retries: {failed}")


def commit_many(root: Path, commits: int, seconds: float, pause_s: float) -> Tally:
    """Up to `commits` commits (the styles in turn) within `seconds`, `pause_s` apart."""
    tally = Tally()
    started = time.monotonic()
    n = 0
    while n < commits and time.monotonic() - started < seconds:
        style, path = STYLES[n % len(STYLES)]
        commit_as_person(root, style, path, n, tally)
        n += 1
        time.sleep(pause_s)
    return tally


def lost_edits(root: Path, tally: Tally) -> list[str]:
    """Each committed content that is not in history, and each of the person's files whose
    HEAD version is not what the work tree holds."""
    in_history = set(git("log", "--format=", "--raw", "--no-abbrev", "--",
                         *{p for _s, p in STYLES}, cwd=root).split())
    lost = []
    for path, content in tally.committed:
        blob = git("hash-object", "--stdin", input=content, cwd=root).strip()
        if blob not in in_history:
            lost.append(f"{path}: {content.strip()}")
    for _style, path in STYLES:
        if git("show", f"HEAD:{path}", cwd=root) != (root / path).read_text():
            lost.append(f"{path}: the work tree differs from HEAD")
    return lost


def leftovers(root: Path) -> str:
    """What `git status` shows for tracked files (empty: nothing nobody made)."""
    return git("status", "--porcelain", "--untracked-files=no", cwd=root)
