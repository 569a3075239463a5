"""Shared helpers of the benchmarks: build a large org fast, straight into a pack.

``build_org(root, n)`` runs ``aoi init`` and then writes every task file in one commit
with ``git fast-import`` (no loose objects), packs the repository like ``git gc`` would
leave it and checks it out with ``git reset --hard``. A 100k-task org takes ~30 s this
way instead of hours through the transition API.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
from pathlib import Path

from aoi_git.domain.ids import new_task_id, shard_path
from aoi_git.domain.model import Kind, Status, Task
from aoi_git.org.create import init_org
from aoi_git.store.txn import dump_task

GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@aoi.invalid",
    "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@aoi.invalid",
}

WORDS = ("draft", "review", "migrate", "the", "billing", "report", "for", "customer",
         "onboarding", "flow", "and", "update", "docs", "pipeline", "quarterly", "fix")


def make_task(task_id: str, rng: random.Random, n: int,
              status: Status = Status.PENDING, parent: str | None = None) -> Task:
    """A realistic ~300-byte task (pending unless told otherwise)."""
    title = " ".join(rng.choice(WORDS) for _ in range(6)).capitalize()
    description = " ".join(rng.choice(WORDS) for _ in range(14)) + "."
    return Task(
        id=task_id, title=title, description=description, kind=Kind.WORK,
        status=status, assignee=rng.choice(("coo", "hr", "ea", "cso")),
        reviewer="ceo", priority=rng.randint(0, 3), labels=("bench", f"batch-{n % 7}"),
        budget={"usd": 2.0}, created="2025-01-01T00:00:00Z", parent=parent,
    )


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                          text=True).stdout


def build_org(root: Path, n: int, seed: int = 1, status: Status = Status.PENDING,
              project_size: int | None = None, open_count: int = 0) -> list[str]:
    """An org with `n` tasks (in `status`) at their `shard_path`, in one commit.

    With `project_size`, tasks form projects of that many: a root and its subtasks. With
    `open_count`, that many tasks (spread over the ids) are pending whatever `status` is."""
    init_org(root)
    rng = random.Random(seed)
    ids: set[str] = set()
    while len(ids) < n:
        ids.add(new_task_id())
    ordered = sorted(ids)
    stream = bytearray()
    sizes = 0
    step = max(1, n // open_count) if open_count else 1
    for i, tid in enumerate(ordered):
        parent = None
        if project_size and i % project_size:
            parent = ordered[i - i % project_size]
        pending = open_count and i % step == 0 and i // step < open_count
        data = dump_task(make_task(tid, rng, i, Status.PENDING if pending else status, parent))
        sizes += len(data)
        stream += b"blob\nmark :%d\ndata %d\n%s\n" % (i + 1, len(data), data)
    message = f"bench: {n} tasks".encode()
    head = git(root, "rev-parse", "HEAD").strip()
    stream += (b"commit refs/heads/main\ncommitter bench <bench@aoi.invalid> 1735689600 +0000\n"
               b"data %d\n%s\nfrom %s\n" % (len(message), message, head.encode()))
    for i, tid in enumerate(ordered):
        stream += b"M 100644 :%d %s\n" % (i + 1, shard_path(tid).encode())
    # Straight into a pack: writing n loose objects and packing them would delete n files,
    # and on ext4 without a journal (this VM) every file created in the next 1-6 minutes
    # then scans past those recently freed inodes (`recently_deleted` in the kernel's
    # inode allocator), which would be charged to the daemon being measured.
    subprocess.run(["git", "fast-import", "--quiet", "--done"], cwd=root, check=True,
                   input=bytes(stream) + b"done\n")
    # A long-lived org is packed (the store runs `git gc --auto`); then check it out.
    git(root, "repack", "-adq")
    git(root, "prune-packed")
    git(root, "reset", "-q", "--hard")
    print(f"  built {n} {status.value} tasks, mean {sizes / max(n, 1):.0f} bytes each",
          file=sys.stderr)
    return ordered


def percentile(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s)) - 1))]


def bench_parser(doc: str, *, sizes: bool = True) -> argparse.ArgumentParser:
    """The options every benchmark shares: `--sizes` (orgs to build), `--dir`, `--keep`."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    if sizes:
        ap.add_argument("--sizes", default="1000,10000,100000",
                        help="comma-separated numbers of tasks in the orgs built")
    ap.add_argument("--dir", help="where to build the orgs (default: the system temp dir; "
                    "on a disk, give a fresh top-level folder)")
    ap.add_argument("--keep", action="store_true", help="keep the orgs afterwards")
    return ap


def status_clean(root: Path, *args: str) -> bool:
    """`git status --porcelain ARGS` is empty (what is not, is printed to stderr)."""
    status = git(root, "status", "--porcelain", *args)
    if status:
        print(f"  git status not clean:\n{status[:2000]}", file=sys.stderr)
    return status == ""
