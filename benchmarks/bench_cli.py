"""Benchmark of the one-shot commands a person types, beside `python -c pass` and `git status`.

    python benchmarks/bench_cli.py [--sizes 1000,100000] [--runs 11] [--baseline-src DIR]

For each size it builds an org (``aoi init`` + every task in one commit through
``git fast-import``, packed, checked out; see ``_orgs.build_org``) whose tasks are all
finished except ``--open`` pending ones (an org that has lived: the issue's 102k tasks of
which ~200 open), runs every command once to warm the caches a person's second command
would find (``.aoi/cache``), then ``--runs`` times each, and prints the wall-clock p50 and
p90 of each beside a bare ``python -c pass`` and ``git status`` run in the same org in the
same loop (the commands take turns, so a burst of load hits all of them), with ratios.
With ``--baseline-src DIR`` (a folder holding another version of the repository, e.g.
``git archive OLD | tar -x -C DIR``) every command first runs, in the same org, with the
``aoi_git`` found there, as the "before" rows, beside its own ``python -c pass`` and ``git
status`` runs (the versions do not take turns: their caches under ``.aoi`` may differ).

Then, in this process, it times the index update of a one-off commit (``flush_index`` after
a commit of one new task): the entries spliced into the index file (``index_patch``, what
a CLI commit does now) against libgit2 reading and writing the whole index (what it did,
and what the daemon's deferred flushes still do), taking turns.

Targets (issue 19): every aoi command p50 <= 100 ms at 1k tasks and <= 150 ms at 100k;
``aoi task show`` within 5x of ``python -c pass``; ``aoi status`` within 3x of ``git
status``; ``aoi --version`` <= 60 ms. Afterwards `git status --porcelain` must be empty
(the commits of ``aoi task new`` left the checkout clean).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aoi_git.domain.model import Status

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _orgs import GIT_ENV, bench_parser, build_org, percentile, status_clean  # noqa: E402

TARGET_MS = {1000: 100.0, 100000: 150.0}
BEFORE = " (before)"


def aoi_command() -> list[str]:
    """The installed `aoi` script beside this Python, else `python -m aoi_git`."""
    script = Path(sys.executable).with_name("aoi")
    return [str(script)] if script.exists() else [sys.executable, "-m", "aoi_git"]


Command = tuple[str, list[str], dict[str, str] | None]  # name, argv, environment


def commands(ids: list[str], env: dict[str, str] | None, tag: str) -> list[Command]:
    """The commands of one phase: the two baselines, then each aoi command."""
    aoi = aoi_command()
    one = ids[len(ids) // 2]
    cut = 6  # the shortest prefix of at least 6 characters that names `one` alone
    while sum(1 for i in ids if i.startswith(one[:cut])) > 1:
        cut += 1
    aoi_cmds = [
        ("aoi --version", [*aoi, "--version"]),
        ("aoi task show ID", [*aoi, "task", "show", one]),
        ("aoi task show PREFIX", [*aoi, "task", "show", one[:cut]]),
        ("aoi task new", [*aoi, "task", "new", "Benchmark task", "--assignee", "coo"]),
        ("aoi task list --status pending", [*aoi, "task", "list", "--status", "pending"]),
        ("aoi status", [*aoi, "status"]),
        ("aoi log ID", [*aoi, "log", one]),
    ]
    return [
        (f"python -c pass{tag}", [sys.executable, "-c", "pass"], None),
        (f"git status{tag}", ["git", "status"], None),
        *((f"{name}{tag}", argv, env) for name, argv in aoi_cmds),
    ]


def run_once(argv: list[str], root: Path, env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(argv, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          env=env)
    elapsed = (time.perf_counter() - t0) * 1000
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed in {root}: {done.stderr.decode()[-2000:]}")
    return elapsed


def bench_size(n: int, runs: int, open_count: int, workdir: Path,
               baseline_src: str | None, index_count: int) -> dict[str, list[float]]:
    root = workdir / f"org-{n}"
    print(f"size {n}: building", file=sys.stderr)
    ids = build_org(root, n, status=Status.FINISHED, open_count=min(open_count, n))
    subprocess.run(["git", "config", "user.name", "Bench Person"], cwd=root, check=True)
    subprocess.run(["git", "config", "user.email", "bench@aoi.invalid"], cwd=root, check=True)
    phases = [(commands(ids, None, ""), "this version")]
    if baseline_src:  # first, so this version's runs see the caches it writes itself
        before_env = {**os.environ, "PYTHONPATH": baseline_src}
        phases.insert(0, (commands(ids, before_env, BEFORE), f"the version in {baseline_src}"))
    times: dict[str, list[float]] = {}
    for cmds, what in phases:
        # warm: the caches a person's second command finds (each version its own: their
        # cache formats may differ, so the phases do not take turns)
        for _name, argv, env in cmds:
            run_once(argv, root, env)
        print(f"size {n}: {runs} runs of {len(cmds)} commands, {what}", file=sys.stderr)
        for name, _, _ in cmds:
            times[name] = []
        for _ in range(runs):
            for name, argv, env in cmds:
                times[name].append(run_once(argv, root, env))
    if index_count:
        print(f"size {n}: {index_count} index updates each way", file=sys.stderr)
        for mode, values in index_updates(root, index_count).items():
            times[f"index update of a one-off commit ({mode})"] = values
    if not status_clean(root):
        sys.exit(f"size {n}: the checkout is not clean after the runs")
    return times


def index_updates(root: Path, count: int) -> dict[str, list[float]]:
    """ms of `flush_index` after a one-off commit of a new task: patched vs libgit2."""
    from aoi_git.domain.model import Actor, ActorKind
    from aoi_git.org import task_ops
    from aoi_git.store.org_store import Store
    from aoi_git.store.txn import Txn, commit

    person = Actor(ActorKind.HUMAN, "Bench Person")
    out: dict[str, list[float]] = {"patched": [], "libgit2": []}
    for i in range(2 * count):
        mode = "patched" if i % 2 else "libgit2"
        store = Store(root)  # a fresh process's store: no settling entries
        store.defer_index = True  # the commit journals its move; the flush is timed

        def build(txn: Txn) -> None:
            task_ops.new_task(txn, {}, "Index benchmark", assignee="coo")

        commit(store, build, person, {})
        store.defer_index = mode == "libgit2"  # (deferred flushes go through libgit2)
        t0 = time.perf_counter()
        assert store.flush_index()
        out[mode].append((time.perf_counter() - t0) * 1000)
    return out


def compile_bytecode(baseline_src: str | None) -> None:
    """Byte-compile aoi_git (and the baseline's) as an install does: with
    PYTHONDONTWRITEBYTECODE set, every run would compile each module from source."""
    import aoi_git

    folders = [str(Path(aoi_git.__file__).parent)]
    if baseline_src:
        folders.append(str(Path(baseline_src) / "aoi_git"))
    subprocess.run([sys.executable, "-m", "compileall", "-q", *folders], check=True)


def main() -> None:
    ap = bench_parser(__doc__)
    ap.set_defaults(sizes="1000,100000")
    ap.add_argument("--runs", type=int, default=11, help="timed runs of each command")
    ap.add_argument("--baseline-src", metavar="DIR",
                    help="also run each aoi command with the aoi_git found in DIR (before)")
    ap.add_argument("--index-updates", type=int, default=20,
                    help="one-off commits timed for each way of updating the index")
    ap.add_argument("--open", type=int, default=200, dest="open_count",
                    help="pending tasks in each org (the others are finished)")
    args = ap.parse_args()
    os.environ.update(GIT_ENV)
    compile_bytecode(args.baseline_src)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    workdir = Path(tempfile.mkdtemp(prefix="aoi-bench-cli-", dir=args.dir))
    load_before = os.getloadavg()[0]
    results: list[tuple[int, dict[str, list[float]]]] = []
    try:
        for n in sizes:
            results.append((n, bench_size(n, args.runs, args.open_count, workdir,
                                           args.baseline_src, args.index_updates)))
            if not args.keep:
                shutil.rmtree(workdir / f"org-{n}", ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"orgs kept in {workdir}", file=sys.stderr)
    print(f"\n{args.runs} runs per command, wall clock; {args.open_count} pending tasks per org, "
          f"the rest finished; orgs in {workdir.parent}; {os.cpu_count()} CPUs, load average "
          f"{load_before:.1f} at start, {os.getloadavg()[0]:.1f} at end\n")
    print("| tasks | command | p50 ms | p90 ms | x python -c pass | x git status | target |")
    print("|---|---|---|---|---|---|---|")
    for n, times in results:
        for name, values in times.items():
            if name.startswith("index update"):
                print(f"| {n:,} | {name} | {statistics.median(values):.1f} "
                      f"| {percentile(values, 90):.1f} | | | |")
                continue
            tag = BEFORE if name.endswith(BEFORE) else ""
            py = statistics.median(times[f"python -c pass{tag}"])
            gs = statistics.median(times[f"git status{tag}"])
            p50 = statistics.median(values)
            print(f"| {n:,} | `{name.removesuffix(BEFORE)}`{tag} | {p50:.0f} "
                  f"| {percentile(values, 90):.0f} | {p50 / py:.1f} | {p50 / gs:.1f} "
                  f"| {'' if tag else target_text(name, n, p50, py, gs)} |")


def target_text(name: str, n: int, p50: float, py: float, gs: float) -> str:
    """Issue 19's targets for this command, met or not."""
    if name == "aoi --version":
        return "<= 60 ms " + ("met" if p50 <= 60 else "NOT met")
    if not name.startswith("aoi"):
        return ""
    limit = TARGET_MS.get(n)
    goals = [f"<= {limit:.0f} ms " + ("met" if p50 <= limit else "NOT met")] if limit else []
    if name.startswith("aoi task show"):
        goals.append(f"<= 5x python {'met' if p50 <= 5 * py else 'NOT met'}")
    if name == "aoi status":
        goals.append(f"<= 3x git status {'met' if p50 <= 3 * gs else 'NOT met'}")
    return "; ".join(goals)


if __name__ == "__main__":
    main()
