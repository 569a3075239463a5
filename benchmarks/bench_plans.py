"""Benchmark of what plan history adds to a root planner's context.

    python benchmarks/bench_plans.py [--sizes 0,100,500] [--dir /tmp] [--keep]

For each size, builds an org (``aoi init``) with that many retrospectives, each with a
`plan:` record in its front matter (one commit), and times assembling the context of a
new root task (``org.context.assemble_from_view``, as the daemon does before starting
its agent) with the similar-past-plans lookup and, as the baseline in the same run, the
context of a subtask (no lookup), median of 30. The first lookup at a commit reads the
retrospectives (timed with the in-memory records dropped each time); later ones at the
same `retros/` tree reuse them. It also times ``aoi stats``' plan-shape comparison
(``plan_history.shapes`` over every record, read cold). The files are loose objects, as
right after they were committed; a packed repository reads them faster.
"""

from __future__ import annotations

import functools
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from aoi_git.domain.ids import sharded
from aoi_git.domain.model import Task
from aoi_git.evolution import plan_history
from aoi_git.org.context import assemble_from_view
from aoi_git.org.create import init_org
from aoi_git.org.organisation import load_org
from aoi_git.store.org_store import Store

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _orgs import WORDS, bench_parser  # noqa: E402


def build(root: Path, n: int, rng: random.Random) -> None:
    init_org(root, name=f"plans-{n}")
    for i in range(n):
        rid = f"t-{i:010d}"[:12]
        title = " ".join(rng.choice(WORDS) for _ in range(5)).capitalize()
        rec = plan_history.PlanRecord(
            root=rid, title=title, labels=("bench",), plan=rng.choice(("solo", "split")),
            alternatives=rng.choice((1, 2, 3)), chosen_by="agent:coo", reason="bench",
            subtasks=rng.randint(1, 8), superseded=rng.randint(0, 2), rounds=rng.randint(1, 3),
            rejections=rng.randint(0, 4), usd=rng.random(), lead_time_s=rng.randint(60, 9000),
            status="finished")
        path = root / sharded("retros", rid, ".md")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"---\nroot: {rid}\n{plan_history.front_matter_value(rec)}\n---\n\n"
                        f"# Retrospective: {title}\n\n" + "Signals.\n" * 40)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(root), "-c", "user.name=bench", "-c",
                    "user.email=bench@example.invalid", "commit", "-qm", "retros", "--allow-empty",
                    "--no-verify"], check=True)


def median_ms(fn: Callable[[], object], runs: int = 30) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def cold(fn: Callable[[], object]) -> Callable[[], object]:
    def run() -> object:
        plan_history.forget()
        return fn()
    return run


def measure(root: Path) -> tuple[float, float, float, float]:
    """(root context ms cold, warm, subtask context ms, plan shapes ms cold) at `root`."""
    store = Store(root)
    org = load_org(store)
    view = store.head()
    emp = org.employees["coo"]
    task = Task(id="t-newroot", title="Draft the billing report for customer",
                labels=("bench",), assignee="coo")
    kid = task.with_changes(id="t-newkid", parent="t-newroot")
    tasks = {**org.tasks, task.id: task, kid.id: kid}
    root_ctx = functools.partial(assemble_from_view, view, task, emp, tasks, [])
    first = median_ms(cold(root_ctx), runs=10)
    warm = median_ms(root_ctx)
    baseline = median_ms(functools.partial(assemble_from_view, view, kid, emp, tasks, []))
    shapes = median_ms(cold(lambda: plan_history.shapes(plan_history.read_records(view))),
                       runs=10)
    return first, warm, baseline, shapes


def main() -> None:
    ap = bench_parser(__doc__ or "")
    ap.set_defaults(sizes="0,100,500")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="aoi-bench-plans-", dir=args.dir))
    rng = random.Random(7)
    print(f"{'retros':>7} {'root ctx, first':>16} {'root ctx, again':>16} "
          f"{'subtask ctx (baseline)':>23} {'stats shapes':>13}")
    try:
        for n in (int(x) for x in args.sizes.split(",")):
            root = base / f"org-{n}"
            build(root, n, rng)
            first, warm, baseline, shapes = measure(root)
            print(f"{n:>7} {first:>13.2f} ms {warm:>13.2f} ms {baseline:>20.2f} ms "
                  f"{shapes:>10.2f} ms")
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
