"""Shared helpers of the benchmarks: build a large org fast, straight with pygit2.

``build_org(root, n)`` runs ``aoi init`` and then writes every task blob and sharded tree
with pygit2 in one commit, packs the repository like ``git gc`` would leave it and checks
it out with ``git reset --hard``. A 100k-task org takes ~30 s this way instead of hours
through the transition API.
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pygit2

from aoi_git.ids import new_task_id, shard_path
from aoi_git.model import Kind, Status, Task
from aoi_git.orginit import init_org
from aoi_git.store import FILEMODE_BLOB, FILEMODE_TREE
from aoi_git.txn import dump_task

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
              project_size: int | None = None) -> list[str]:
    """An org with `n` tasks (in `status`) at their `shard_path`, in one commit.

    With `project_size`, tasks form projects of that many: a root and its subtasks."""
    init_org(root)
    repo = pygit2.Repository(str(root))
    rng = random.Random(seed)
    ids: set[str] = set()
    while len(ids) < n:
        ids.add(new_task_id())
    tree: dict[str, object] = {}  # nested folders under tasks/ -> blob ids
    sizes = 0
    ordered = sorted(ids)
    for i, tid in enumerate(ordered):
        parent = None
        if project_size and i % project_size:
            parent = ordered[i - i % project_size]
        data = dump_task(make_task(tid, rng, i, status, parent))
        sizes += len(data)
        *folders, name = shard_path(tid).split("/")[1:]
        node = tree
        for f in folders:
            node = node.setdefault(f, {})  # type: ignore[assignment]
        node[name] = repo.create_blob(data)
    head = repo.head.peel(pygit2.Commit)

    def write(base: pygit2.Tree | None, nested: dict[str, object]) -> pygit2.Oid:
        tb = repo.TreeBuilder(base) if base is not None else repo.TreeBuilder()
        for name, value in nested.items():
            if isinstance(value, dict):
                tb.insert(name, write(None, value), FILEMODE_TREE)
            else:
                tb.insert(name, value, FILEMODE_BLOB)
        return tb.write()

    tasks_id = write(repo[head.tree["tasks"].id], tree)  # type: ignore[arg-type]
    root_tb = repo.TreeBuilder(head.tree)
    root_tb.insert("tasks", tasks_id, FILEMODE_TREE)
    sig = pygit2.Signature("bench", "bench@aoi.invalid")
    repo.create_commit("refs/heads/main", sig, sig, f"bench: {n} tasks", root_tb.write(),
                       [head.id])
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
