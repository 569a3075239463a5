"""Benchmark of the git store at 1k, 10k and 100k tasks.

    python benchmarks/bench_store.py [--sizes 1000,10000,100000] [--commits 300]

For each size it builds an org (``aoi init`` + every task blob and sharded tree written
with pygit2 in one commit, packed like ``git gc`` would leave it, checked out with
``git reset --hard``; none of that is timed), then measures:

* ms per transition commit through the real API (``aoi_git.store.txn.commit`` moving one random
  pending task to processing as the daemon), with the index update deferred and flushed
  every 100 commits (the daemon's mode; the flush is spread over its 100 commits) and with
  the index updated after every commit (the CLI's mode);
* transitions/s sustained by that one writer: the deferred-mode commits over the time they
  took, their index flushes included;
* KB of new objects per commit (growth of ``.git/objects`` / commits);
* load time of every task: cold (no ``.aoi`` cache, in a fresh process, whose peak RSS is
  reported), warm (a new Store after ``save_cache()``: a restart) and warm after one task
  changed in another process;
* that ``git status --porcelain`` is empty and ``git fsck`` is clean afterwards.

Prints a Markdown table. Targets (2 cores): <= 3 ms per commit, flat from 1k to 100k;
warm load of 100k <= 1 s; cold <= 10 s.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aoi_git.domain.model import Actor, ActorKind, Status
from aoi_git.org.organisation import load_org
from aoi_git.store.org_store import Store
from aoi_git.store.txn import commit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _orgs import GIT_ENV, bench_parser, build_org, percentile, status_clean  # noqa: E402

FLUSH_EVERY = 100
ACTOR = Actor(ActorKind.DAEMON, "bench")


def objects_bytes(root: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(root / ".git" / "objects"):
        for f in files:
            total += os.path.getsize(os.path.join(dirpath, f))
    return total


def run_commits(root: Path, pool: list[str], count: int, deferred: bool) -> list[float]:
    """ms per commit for `count` pending -> processing transitions."""
    store = Store(root)
    store.defer_index = deferred

    def claim(task_id: str):  # noqa: ANN202
        def fn(txn):  # noqa: ANN001, ANN202
            txn.update(task_id, status=Status.PROCESSING)
        return fn

    times: list[float] = []
    batch: list[float] = []
    gc.collect()
    for i in range(count):
        task_id = pool.pop()
        t0 = time.perf_counter()
        commit(store, claim(task_id), ACTOR)
        batch.append((time.perf_counter() - t0) * 1000)
        if deferred and ((i + 1) % FLUSH_EVERY == 0 or i + 1 == count):
            t0 = time.perf_counter()
            store.flush_index()
            share = (time.perf_counter() - t0) * 1000 / len(batch)
            batch = [b + share for b in batch]
        if not deferred or len(batch) == FLUSH_EVERY or i + 1 == count:
            times += batch
            batch = []
    return times


def child_cold_load(root: str) -> None:
    """Run in a fresh process: cold load of the whole org, print time and peak RSS."""
    t0 = time.perf_counter()
    org = load_org(Store(Path(root)))
    elapsed = time.perf_counter() - t0
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": elapsed, "rss_mb": rss_kb / 1024, "tasks": len(org.tasks),
                      "problems": len(org.problems)}))


def timed_load(root: Path) -> tuple[float, Store, int]:
    gc.collect()
    store = Store(root)
    t0 = time.perf_counter()
    org = load_org(store)
    return time.perf_counter() - t0, store, len(org.tasks)


def bench_size(n: int, commits: int, workdir: Path) -> dict[str, float]:
    root = workdir / f"org-{n}"
    print(f"size {n}: building", file=sys.stderr)
    ids = build_org(root, n)
    rng = random.Random(n)
    pool = ids[:]
    rng.shuffle(pool)
    res: dict[str, float] = {"size": n}

    # cold load in a clean process (no .aoi cache): time and peak RSS
    shutil.rmtree(root / ".aoi", ignore_errors=True)
    out = subprocess.run(
        [sys.executable, __file__, "--child-cold-load", str(root)],
        check=True, capture_output=True, text=True,
    ).stdout
    child = json.loads(out.strip().splitlines()[-1])
    assert child["tasks"] == n and child["problems"] == 0, child
    res["cold_s"], res["rss_mb"] = child["seconds"], child["rss_mb"]

    # cold in this process too, to write the cache; then warm (a restart)
    _, store, _ = timed_load(root)
    store.save_cache()
    del store
    warm = []
    for _ in range(3):
        t, store, count = timed_load(root)
        assert count == n
        warm.append(t)
    res["warm_s"] = min(warm)

    print(f"size {n}: commits", file=sys.stderr)
    before = objects_bytes(root)
    deferred = run_commits(root, pool, commits, deferred=True)
    res["kb_per_commit"] = (objects_bytes(root) - before) / commits / 1024
    res["def_p50"] = statistics.median(deferred)
    res["def_p99"] = percentile(deferred, 99)
    res["def_mean"] = statistics.fmean(deferred)
    res["tps"] = len(deferred) / (sum(deferred) / 1000)  # one writer, flushes included
    immediate = run_commits(root, pool, commits, deferred=False)
    res["imm_p50"] = statistics.median(immediate)
    res["imm_p99"] = percentile(immediate, 99)

    # warm after one change: the cache was saved, then another Store committed once
    _, store, _ = timed_load(root)
    store.save_cache()
    del store
    run_commits(root, pool, 1, deferred=False)
    t, store, count = timed_load(root)
    assert count == n
    res["warm1_s"] = t
    tasks = load_org(store).tasks
    processing = sum(1 for t in tasks.values() if t.status is Status.PROCESSING)
    assert processing == 2 * commits + 1, processing

    res["status_clean"] = status_clean(root)
    fsck = subprocess.run(["git", "fsck", "--no-progress"], cwd=root, capture_output=True,
                          text=True)
    res["fsck_clean"] = fsck.returncode == 0 and not fsck.stdout.strip()
    if not res["fsck_clean"]:
        print(f"  git fsck:\n{fsck.stdout[:2000]}{fsck.stderr[:2000]}", file=sys.stderr)
    print(f"size {n}: {json.dumps(res)}", file=sys.stderr)
    return res


def main() -> None:
    ap = bench_parser(__doc__)
    ap.add_argument("--commits", type=int, default=300)
    ap.add_argument("--child-cold-load", metavar="ROOT", help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.update(GIT_ENV)
    if args.child_cold_load:
        child_cold_load(args.child_cold_load)
        return
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    workdir = Path(tempfile.mkdtemp(prefix="aoi-bench-", dir=args.dir))
    load_before = os.getloadavg()[0]
    rows = []
    try:
        for n in sizes:
            if 2 * args.commits + 1 > n:
                sys.exit(f"--commits {args.commits} needs at least {2 * args.commits + 1} tasks")
            rows.append(bench_size(n, args.commits, workdir))
            if not args.keep:
                shutil.rmtree(workdir / f"org-{n}", ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"orgs kept in {workdir}", file=sys.stderr)
    print(f"\n{args.commits} commits per mode; deferred index flushed every {FLUSH_EVERY} "
          f"commits (flush time spread over them); orgs in {workdir.parent}; "
          f"{os.cpu_count()} CPUs, load average {load_before:.1f} at start, "
          f"{os.getloadavg()[0]:.1f} at end\n")
    print("| size | commit p50 ms (deferred index) | p99 | transitions/s (one writer) "
          "| commit p50 ms (immediate index) "
          "| KB/commit | cold load s | warm load s | warm+1 change s | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['size']:,} | {r['def_p50']:.2f} | {r['def_p99']:.2f} | {r['tps']:.0f} "
              f"| {r['imm_p50']:.2f} "
              f"| {r['kb_per_commit']:.1f} | {r['cold_s']:.2f} | {r['warm_s']:.3f} "
              f"| {r['warm1_s']:.3f} | {r['rss_mb']:.0f} |")
    print()
    for r in rows:
        print(f"{r['size']:,}: git status --porcelain empty: "
              f"{'yes' if r['status_clean'] else 'NO'}; git fsck clean: "
              f"{'yes' if r['fsck_clean'] else 'NO'}")
    if not all(r["status_clean"] and r["fsck_clean"] for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
