"""A person's plain `git commit`s while `aoi daemon` commits, next to the same without it.

    python benchmarks/bench_hand_commits.py [--commits 500] [--tasks 4000] [--pause 0.1]
                                            [--hook-runs 20] [--before-src DIR] [--keep]

Two orgs made the same way (``aoi_git.testing.hand_commits.prepare``: a script employee
whose agent only reports ``completed``, ``--tasks`` pending tasks for it, the person's own
files). In the first, the person makes ``--commits`` commits with no daemon running (the
baseline); in the second, the same while ``aoi daemon --max-agents 4`` works through the
tasks. The person saves a file and commits it, the three ways in turn (``git add f &&
git commit``, ``git commit -- f``, ``git commit -a``), ``--pause`` s apart, retrying a
failed commit as a person would. Printed for both: the share of commits that went through
the first time, what the others failed on, the time per commit (p50, p90, mean; and the
CPU time of the person's git and hooks per commit, which a loaded machine does not
stretch), lost edits and what ``git status`` shows afterwards; for the daemon run also its commits
meanwhile and the share of its run it held the person's ``index.lock`` (its log's last
``index:`` line).

**hook**: the wall and CPU time of the pre-commit hook alone (the installed ``.git/hooks/
pre-commit``, as ``git commit`` runs it), median of ``--hook-runs``, in three cases: only a
person's note staged; the same with 50 task entries that lag behind daemon commits (in its
journal, moved forward by the hook); a person's own task edit (validated). With
``--before-src DIR`` (a copy of an older aoi's source tree) the same cases also run with
that aoi's hook, side by side.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from aoi_git.domain.model import Actor, ActorKind
from aoi_git.org.create import init_org
from aoi_git.store import index_journal
from aoi_git.store.org_store import Change, Store
from aoi_git.testing.hand_commits import Tally, commit_many, leftovers, lost_edits, prepare

AOI_BIN = Path(sys.executable).parent / "aoi"
PERSON = Actor(ActorKind.HUMAN, "Bench Person")
GIT_ENV = {"GIT_AUTHOR_NAME": "Bench Person", "GIT_AUTHOR_EMAIL": "person@aoi.invalid",
           "GIT_COMMITTER_NAME": "Bench Person", "GIT_COMMITTER_EMAIL": "person@aoi.invalid"}


def git(root: Path, *args: str, input: str | None = None) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                          text=True, input=input).stdout


def make_org(root: Path, tasks: int) -> None:
    init_org(root)
    git(root, "config", "user.name", "Bench Person")
    git(root, "config", "user.email", "person@aoi.invalid")
    prepare(root, tasks, PERSON)


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def ms(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(name: str, tally: Tally, took: float, cpu: float, root: Path,
           extra: str = "") -> None:
    lost = lost_edits(root, tally)
    left = leftovers(root)
    rate = 100 * tally.first_try / max(1, tally.attempted)
    print(f"| {name} | {tally.attempted} | {rate:.1f}% | {tally.lock_retried} | "
          f"{tally.ref_retried} | {len(tally.other_retried)} | {len(tally.failures)} | "
          f"{ms(tally.seconds, 0.5):.0f} | {ms(tally.seconds, 0.9):.0f} | "
          f"{1000 * statistics.fmean(tally.seconds) if tally.seconds else float('nan'):.0f} | "
          f"{1000 * cpu:.0f} | {took:.0f} | {len(lost)} | {len(left.splitlines())} | {extra} |")
    for why in [*tally.failures, *tally.other_retried][:5]:
        print(f"    ({name}) {why}", file=sys.stderr)
    for line in (lost + left.splitlines())[:5]:
        print(f"    ({name}) left: {line}", file=sys.stderr)


def person_run(root: Path, args: argparse.Namespace) -> tuple[Tally, float, float]:
    """The person's commits; their wall time and the CPU seconds per commit of the
    person's git and hooks."""
    started, cpu0 = time.monotonic(), children_cpu()
    tally = commit_many(root, args.commits, args.max_seconds, args.pause)
    return tally, time.monotonic() - started, (children_cpu() - cpu0) / max(1, tally.attempted)


def daemon_run(root: Path, args: argparse.Namespace) -> None:
    out = open(root.parent / "daemon.out", "wb")  # noqa: SIM115
    p = subprocess.Popen([str(AOI_BIN), "-C", str(root), "daemon", "--max-agents", "4"],
                         stdout=out, stderr=subprocess.STDOUT)
    out.close()
    try:
        head0 = git(root, "rev-parse", "HEAD").strip()
        deadline = time.monotonic() + 60
        while git(root, "rev-parse", "HEAD").strip() == head0:
            if p.poll() is not None or time.monotonic() > deadline:
                sys.exit("the daemon did not start: " + (root.parent / "daemon.out").read_text())
            time.sleep(0.05)
        tally, took, cpu = person_run(root, args)
        commits = int(git(root, "rev-list", "--count", f"{head0}..HEAD").strip())
        p.send_signal(signal.SIGTERM)
        p.wait(120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    log = (root / ".aoi" / "daemon.log").read_text()
    share = next((ln.split("index: ", 1)[1] for ln in reversed(log.splitlines())
                  if " index: " in ln), "?")
    report("daemon running", tally, took, cpu, root,
           f"{commits - tally.went_through} daemon commits; {share}")


# ----------------------------------------------------------------------------- hook

def hook_cases(root: Path) -> Iterator[str]:
    """Sets up each case in turn (the index to commit from, the daemon's journal) and
    yields its name; `time_hook` restores what the hook changed."""
    tasks = [p for p in git(root, "ls-files", "tasks").split() if p.endswith(".yaml")]
    store = Store(root)
    journal = index_journal.journal_path(root)
    journal.parent.mkdir(parents=True, exist_ok=True)
    journal.write_text("")
    (root / "notes" / "a.txt").write_text("a note of the person's\n")
    git(root, "add", "notes/a.txt")
    yield "a note staged"
    # 50 daemon commits whose index moves are still to make (journaled, as the daemon does)
    store.defer_index = True
    rows = []
    for path in tasks[:50]:
        old = store.head().blob_id(path)
        store.transact(lambda view, p=path: Change(  # type: ignore[misc]
            {p: (view.read(p) or b"") + b"# retouched\n"}, "daemon: retouch"))
        rows.append(f'["{path}", "{old}", "{store.head().blob_id(path)}", "{old}"]\n')
    journal.write_text("".join(rows))
    store.flush_index(with_index=False)  # the files, as the daemon does while a person works
    yield "+ 50 lagging task entries"
    journal.write_text("")
    store.flush_index()
    mine = tasks[60]
    text = (root / mine).read_text().replace("title: ", "title: Retitled ", 1)
    (root / mine).write_text(text)
    git(root, "add", mine)
    yield "a task edit of the person's"


def children_cpu() -> float:
    """CPU seconds (user + sys) of this process's ended children so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def time_hook(root: Path, runs: int, src: Path | None) -> tuple[float, float]:
    """Median wall time and CPU time (ms) of the pre-commit hook on the index as it is
    (restored after each run); `src`: an older aoi's source tree on PYTHONPATH (its own
    hook script too)."""
    hook = (src / "hooks" / "pre-commit") if src else root / ".git" / "hooks" / "pre-commit"
    env = {**os.environ, **GIT_ENV, **({"PYTHONPATH": str(src)} if src else {})}
    index = root / ".git" / "index"
    journal = index_journal.journal_path(root)
    saved_index, saved_journal = index.read_bytes(), journal.read_bytes()
    times, cpu = [], []
    for i in range(runs + 1):  # (the first one compiles the modules: not counted)
        index.write_bytes(saved_index)
        journal.write_bytes(saved_journal)
        started, cpu0 = time.perf_counter(), children_cpu()
        proc = subprocess.run(["sh", str(hook)], cwd=root, capture_output=True,
                              text=True, env={**env, "GIT_INDEX_FILE": str(index)})
        if i > 0:
            times.append(time.perf_counter() - started)
            cpu.append(children_cpu() - cpu0)
        if proc.returncode != 0:
            sys.exit(f"the hook failed: {proc.stderr}")
    index.write_bytes(saved_index)
    journal.write_bytes(saved_journal)
    return 1000 * statistics.median(times), 1000 * statistics.median(cpu)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--commits", type=int, default=500)
    ap.add_argument("--tasks", type=int, default=4000)
    ap.add_argument("--pause", type=float, default=0.1)
    ap.add_argument("--max-seconds", type=float, default=900.0)
    ap.add_argument("--hook-runs", type=int, default=20)
    ap.add_argument("--before-src", type=Path)
    ap.add_argument("--skip-commits", action="store_true", help="the hook timings only")
    ap.add_argument("--skip-hook", action="store_true", help="the commits only")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--dir", type=Path)
    args = ap.parse_args()
    for k, v in GIT_ENV.items():
        os.environ.setdefault(k, v)
    base = Path(tempfile.mkdtemp(prefix="bench-hand-", dir=args.dir))
    try:
        print(f"load average at start: {load()}")
        if not args.skip_hook:
            hook_org = base / "hook" / "org"
            make_org(hook_org, 500)
            print("\n| pre-commit hook, median ms: wall / CPU | this aoi |"
                  + (f" {args.before_src} |" if args.before_src else ""))
            print("|---|---|" + ("---|" if args.before_src else ""))
            for name in hook_cases(hook_org):
                wall, cpu = time_hook(hook_org, args.hook_runs, None)
                row = f"| {name} | {wall:.0f} / {cpu:.0f} |"
                if args.before_src:
                    wall, cpu = time_hook(hook_org, args.hook_runs, args.before_src)
                    row += f" {wall:.0f} / {cpu:.0f} |"
                print(row, flush=True)
        if not args.skip_commits:
            print(f"\n{args.commits} hand commits, {args.tasks} tasks, pause {args.pause} s")
            print("\n| run | commits | first try | index.lock retried | moved-branch "
                  "retried | other retried | failed | p50 ms | p90 ms | mean ms | CPU ms | s "
                  "| lost edits | git status lines | daemon |")
            print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
            alone = base / "alone" / "org"
            make_org(alone, args.tasks)
            tally, took, cpu = person_run(alone, args)
            report("no daemon (baseline)", tally, took, cpu, alone)
            busy = base / "busy" / "org"
            make_org(busy, args.tasks)
            daemon_run(busy, args)
        print(f"\nload average at end: {load()}")
    finally:
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
