"""What routing and bringing a branch to the base add to a dispatch.

    python benchmarks/bench_routing.py [--employees 10,100,1000] [--rounds 200]

Prints, side by side in one run (medians, microseconds):

- `routing.choose` for one unassigned task against orgs of N employees, next to a plain
  loop over the same employees (the scheduler's `role:` routing does about that);
- `branch_base.bring_to_base` for a first run (no branch: what every new task pays),
  next to the one branch lookup `Workspace.begin_create` already makes; for a retry
  whose branch has no work of its own (deleted, made afresh); and for one whose branch
  has one commit of its own replayed onto a moved base.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pygit2

from aoi_git.domain.model import Backend, Capacity, Employee, OrgConfig, Talent, Task
from aoi_git.org import routing
from aoi_git.org.create import init_org
from aoi_git.store.branch_base import bring_to_base
from aoi_git.store.org_store import Store
from aoi_git.store.worktrees import branch_name, open_workspace

ROLES = ["engineer", "marketing", "qa", "writer", "designer", "analyst", "devops", "pm"]


def median_us(fn: Callable[[], object], rounds: int,
              setup: Callable[[], object] | None = None) -> float:
    times = []
    for _ in range(rounds):
        if setup is not None:
            setup()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def time_choose(task: Task, employees: dict[str, Employee], talents: dict[str, Talent],
                load: dict[str, int], cfg: OrgConfig, router: Employee,
                rounds: int) -> tuple[float, float]:
    """`routing.choose`, and a plain least-loaded pick of one role, in microseconds."""
    def plain() -> Employee:
        return min((e for e in employees.values() if e.role == "marketing"),
                   key=lambda e: (load.get(e.id, 0), e.id))

    return (median_us(lambda: routing.choose(task, employees, talents, load, cfg, router),
                      rounds), median_us(plain, rounds))


def bench_choose(sizes: list[int], rounds: int) -> None:
    talents = {r: Talent(r, r, tags=(r, f"{r}-work", "launch" if r == "marketing" else "x"),
                         skills=(f"{r}-skill",)) for r in ROLES}
    task = Task("t-bench", "Write the launch post", labels=("launch",),
                description="600 words for the blog about the new release")
    print("routing.choose, one task (median us)")
    print(f"{'employees':>10} {'choose':>10} {'plain loop':>11}")
    for n in sizes:
        employees = {f"e{i}": Employee(f"e{i}", ROLES[i % len(ROLES)],
                                       talent=ROLES[i % len(ROLES)], backend=Backend(),
                                       capacity=Capacity(concurrency=2)) for i in range(n)}
        employees["ea"] = Employee("ea", "ea")
        load = {f"e{i}": i % 3 for i in range(n)}
        cfg = OrgConfig()
        router = employees["ea"]
        t_choose, t_loop = time_choose(task, employees, talents, load, cfg, router, rounds)
        print(f"{n:>10} {t_choose:>10.1f} {t_loop:>11.1f}")


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout


def bench_base(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "org"
        init_org(root)
        store = Store(root)
        org_cfg = OrgConfig()
        ws = open_workspace(store, org_cfg)
        repo = ws.repo
        base = repo.lookup_branch(ws.base)
        base_commit = repo.get(base.target).peel(pygit2.Commit)  # type: ignore[union-attr]
        sig = pygit2.Signature("bench", "bench@aoi.invalid")

        def commit_on(parent: pygit2.Commit, name: str, text: str) -> pygit2.Oid:
            blob = repo.create_blob(text.encode())
            tb = repo.TreeBuilder(parent.tree)
            tb.insert(name, blob, pygit2.enums.FileMode.BLOB)
            return repo.create_commit(None, sig, sig, f"add {name}", tb.write(), [parent.id])

        t_lookup = median_us(lambda: repo.lookup_branch(branch_name("t-none")), rounds)
        t_none = median_us(lambda: bring_to_base(ws, "t-none"), rounds)
        old = base_commit
        moved = repo.get(commit_on(base_commit, "upstream.txt", "u\n")).peel(pygit2.Commit)  # type: ignore[union-attr]
        repo.references.create(f"refs/heads/{ws.base}", moved.id, force=True)

        def stale_branch() -> None:
            repo.references.create(f"refs/heads/{branch_name('t-stale')}", old.id, force=True)

        t_stale = median_us(lambda: bring_to_base(ws, "t-stale"), rounds, stale_branch)
        own = commit_on(old, "mine.txt", "m\n")

        def kept_branch() -> None:
            repo.references.create(f"refs/heads/{branch_name('t-kept')}", own, force=True)

        t_kept = median_us(lambda: bring_to_base(ws, "t-kept"), rounds, kept_branch)
        print("\nbring_to_base before a dispatch (median us)")
        print(f"{'case':<44} {'us':>8}")
        print(f"{'baseline: one branch lookup (begin_create)':<44} {t_lookup:>8.1f}")
        print(f"{'first run: no branch':<44} {t_none:>8.1f}")
        print(f"{'retry, no work of its own: branch deleted':<44} {t_stale:>8.1f}")
        print(f"{'retry, one own commit: replayed on the base':<44} {t_kept:>8.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--employees", default="10,100,1000")
    ap.add_argument("--rounds", type=int, default=200)
    args = ap.parse_args()
    bench_choose([int(x) for x in args.employees.split(",")], args.rounds)
    bench_base(args.rounds)


if __name__ == "__main__":
    sys.exit(main())
