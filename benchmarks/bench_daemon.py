"""Benchmark of `aoi daemon` on orgs that already hold 1k, 10k and 100k finished tasks.

    python benchmarks/bench_daemon.py [--sizes 1000,10000,100000] [--tasks 200] [--saves 50]
                                      [--repeat 3] [--subtasks] [--keep] [--dir DIR]
    python benchmarks/bench_daemon.py --only-start [--starts 200]

Each org is built fast with pygit2 (see ``_orgs.py``; not timed): its finished tasks form
projects of 1,000 (a root and its subtasks). It gets one script employee ``bench``
(concurrency 8) whose agent is a bash one-liner: it appends ``<task id> $EPOCHREALTIME``
to a file outside the org (a builtin: no extra process) and writes
``{"outcome":"completed"}`` to ``$AOI_RESULT_FILE``. Tasks have ``reviewer: none``, so a
run's whole lifecycle is pending -> processing -> completed -> accepted -> finished
(claim commit, worktree, agent, result commit, accept, finish, worktree removed). They are
root tasks (each finish also writes the project's retrospective, and every
``evolution.review_every`` roots a performance-review cycle runs), or with
``--subtasks`` subtasks of a finished project (neither). The daemon is always the real
``aoi daemon`` as a subprocess; one warm-up start (not timed) builds its task cache.

Measured, per org size:

* **save -> start**: with ``aoi daemon`` running (watcher on), a new task file is saved
  like an editor does (write a temp file, ``os.replace`` it into ``tasks/``); the time
  from just before the save to the agent's own start timestamp. One save at a time, each
  after the previous task finished; p50 and p99.
* **idle CPU**: the same daemon with nothing to do, CPU time (user+sys, psutil) used
  over 5 s.
* **end to end**: ``--tasks`` pending tasks created in one commit, then
  ``aoi daemon --until-idle --max-agents N`` for N = 1, 2, 8. tasks/s = tasks started
  per second from the first agent's start to the last one's (the daemon's rate once
  running); also shown: tasks / wall time of the whole command, start-up and exit
  included (a fixed cost, measured alone as "empty run"). Per task: at N = 1 tasks run
  one after another, so the mean time from one agent's start to the next one's is one
  task's whole lifecycle; overhead = that minus the runtime of a bare spawn of the same
  agent (measured here with ``subprocess.run``).
* Each end-to-end configuration runs ``--repeat`` times (3; fresh tasks each time, the org
  keeps growing) and the median run (by tasks/s) is reported, the others listed after
  the table: one 200-task run takes ~4 s, short enough for one stall to move it by 20%.
* **sandbox**: every run is confined by bubblewrap (see ``aoi_git/runtime/sandbox.py``);
  the runs at N = 1 alternate with runs whose ``aoi.yaml`` says ``sandbox: {enabled:
  false}`` (``--repeat`` each, same org, same run), and the difference of the median per
  task times is the sandbox's cost per agent start. That is the whole daemon's time, noisy
  on a busy machine; **start in box** isolates it: the no-op agent started by
  ``agent_run.spawn`` and waited for, in a linked worktree, alternately with and without
  its box (the box built for each start: private tmp, the agent's git store, its branch
  taken back afterwards), ``--starts`` times each (200), medians; ``--only-start``
  measures only this (no org is built). ``--no-sandbox`` runs everything unconfined (a
  machine without bwrap).
* **commits per task**: the commits the daemon made in an end-to-end run over its tasks
  (a no-op root task: claim, result, accept and finish, its retrospective and
  performance-review commits).
* **RSS**: peak resident memory of the daemon process over all runs (sampled every 20 ms).

Targets (2 cores): save->start p50 <= 50 ms; overhead <= 25 ms per task, flat from 1k to
100k; >= 50 tasks/s; idle CPU ~0; the sandbox adds <= 5 ms per agent start.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pygit2
import yaml

from aoi_git.domain.ids import new_task_id, shard_path
from aoi_git.domain.model import Actor, ActorKind, Kind, Status, Task
from aoi_git.org.organisation import load_org
from aoi_git.store.org_store import Store
from aoi_git.store.txn import Txn, commit, dump_task, now_iso

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _orgs import GIT_ENV, bench_parser, build_org, git, percentile, status_clean  # noqa: E402

PERSON = Actor(ActorKind.HUMAN, "bench")
PROJECT_SIZE = 1000  # the finished tasks form projects: a root and 999 subtasks
AOI = Path(sys.executable).parent / "aoi"
SANDBOX = [True]  # --no-sandbox: [False]
AGENT = ('echo "$AOI_TASK_ID $EPOCHREALTIME" >> {starts}; '
         "printf '{{\"outcome\":\"completed\"}}' > \"$AOI_RESULT_FILE\"")


def aoi_cmd(root: Path, *args: str) -> list[str]:
    if AOI.exists():
        return [str(AOI), "-C", str(root), *args]
    return [sys.executable, "-m", "aoi_git", "-C", str(root), *args]


class RssPeak:
    """Samples a process's RSS every 20 ms in a thread; keeps the peak."""

    def __init__(self) -> None:
        self.peak = 0

    def watch(self, pid: int) -> threading.Thread:
        def run() -> None:
            try:
                p = psutil.Process(pid)
                while p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    self.peak = max(self.peak, p.memory_info().rss)
                    time.sleep(0.02)
            except psutil.Error:
                pass

        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t


def set_sandbox(root: Path, enabled: bool, writable: Path) -> None:
    """aoi.yaml's `sandbox:` (the agent writes its start times to `writable`), committed."""
    path = root / "aoi.yaml"
    data = yaml.safe_load(path.read_text())
    want = {"enabled": enabled, "writable": [str(writable)]}
    if data.get("sandbox") == want:
        return
    data["sandbox"] = want
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    git(root, "add", "aoi.yaml")
    subprocess.run(["git", "commit", "-q", "--no-verify", "-m", f"bench: sandbox {enabled}"],
                   cwd=root, check=True, env={**os.environ, "AOI_SKIP_HOOK": "1"})


def setup_org(root: Path, n: int, starts: Path) -> list[str]:
    ids = build_org(root, n, status=Status.FINISHED, project_size=PROJECT_SIZE)
    set_sandbox(root, SANDBOX[0], starts.parent)
    git(root, "config", "user.name", "bench")
    git(root, "config", "user.email", "bench@aoi.invalid")
    folder = root / "employees" / "bench"
    folder.mkdir(parents=True)
    profile = {
        "id": "bench", "name": "Bench", "role": "engineer", "reports_to": "ceo",
        "status": "active",
        "backend": {"kind": "script",
                    "command": ["/bin/bash", "-c", AGENT.format(starts=starts)]},
        "capacity": {"concurrency": 8, "timeout_s": 60},
    }
    (folder / "profile.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    git(root, "add", "employees/bench/profile.yaml")
    subprocess.run(["git", "commit", "-q", "--no-verify", "-m", "bench: hire bench"],
                   cwd=root, check=True, env={**os.environ, "AOI_SKIP_HOOK": "1"})
    problems = load_org(Store(root)).problems
    assert not problems, problems[:5]
    return ids


def new_pending(tid: str, title: str, parent: str | None) -> Task:
    return Task(id=tid, title=title, kind=Kind.WORK, status=Status.PENDING, assignee="bench",
                reviewer="none", created=now_iso(), parent=parent)


def create_tasks(root: Path, count: int, parent: str | None) -> list[str]:
    """`count` pending tasks for `bench`, in one commit through the real API."""
    ids = [new_task_id() for _ in range(count)]

    def fn(txn: Txn) -> None:
        for i, tid in enumerate(ids):
            txn.put(new_pending(tid, f"Bench task {i}", parent), new=True,
                    path=shard_path(tid))

    store = Store(root)
    commit(store, fn, PERSON)
    store.flush_index()
    return ids


def run_until_idle(root: Path, rss: RssPeak, *args: str) -> float:
    t0 = time.perf_counter()
    p = subprocess.Popen(aoi_cmd(root, "daemon", "--until-idle", *args),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    rss.watch(p.pid)
    out, _ = p.communicate(timeout=3600)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"aoi daemon failed ({p.returncode}):\n{out.decode(errors='replace')[-3000:]}")
    return wall


def commit_count(root: Path) -> int:
    """Commits on the org's branch (first-parent and merged alike)."""
    return int(subprocess.run(["git", "rev-list", "--count", "HEAD"], cwd=root, check=True,
                              capture_output=True, text=True).stdout)


def head_status(repo: pygit2.Repository, path: str) -> str | None:
    ref = repo.references.get("refs/heads/main")
    if ref is None:
        return None
    try:
        data = repo[repo[ref.target].tree[path].id].data  # type: ignore[attr-defined]
    except KeyError:
        return None
    for line in data.decode().splitlines():
        if line.startswith("status:"):
            return line.split(":", 1)[1].strip()
    return None


def read_starts(starts: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    if starts.exists():
        for line in starts.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2:
                out[parts[0]] = float(parts[1])
    return out


def wait_for(cond, timeout: float, what: str, interval: float = 0.001):  # noqa: ANN001, ANN201
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def live_daemon(root: Path, starts: Path, saves: int, rss: RssPeak,
                parent: str | None) -> dict[str, float]:
    """Idle CPU, then save -> agent start latency, with `aoi daemon` (watcher on)."""
    log = root / ".aoi" / "daemon.log"
    p = subprocess.Popen(aoi_cmd(root, "daemon"), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    rss.watch(p.pid)
    res: dict[str, float] = {}
    try:
        wait_for(lambda: log.exists() and f"(pid {p.pid})" in log.read_text(), 120,
                 "the daemon to start", 0.05)
        proc = psutil.Process(p.pid)
        time.sleep(1.5)  # start-up done: recovery, watcher, first tick
        c0 = proc.cpu_times()
        time.sleep(5.0)
        c1 = proc.cpu_times()
        res["idle_cpu_ms"] = ((c1.user + c1.system) - (c0.user + c0.system)) * 1000

        repo = pygit2.Repository(str(root))
        lat: list[float] = []
        for i in range(saves):
            tid = new_task_id()
            path = shard_path(tid)
            full = root / path
            full.parent.mkdir(parents=True, exist_ok=True)
            tmp = full.parent / f".{full.name}.swp"
            tmp.write_bytes(dump_task(new_pending(tid, f"Saved task {i}", parent)))
            t0 = time.time()
            os.replace(tmp, full)
            started = wait_for(lambda tid=tid: read_starts(starts).get(tid), 30,
                               f"the agent of {tid} to start")
            lat.append((started - t0) * 1000)
            wait_for(lambda path=path: head_status(repo, path) == "finished", 30,
                     f"{tid} to finish", 0.002)
            time.sleep(0.05)  # let the daemon settle (index flush, status file)
        res["lat_p50"] = statistics.median(lat)
        res["lat_p99"] = percentile(lat, 99)
        res["lat_max"] = max(lat)
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return res


def bare_agent_ms(workdir: Path, starts: Path, count: int = 50) -> float:
    """Runtime of the agent alone: `subprocess.run` of the same command."""
    cmd = ["/bin/bash", "-c", AGENT.format(starts=workdir / "bare-starts")]
    env = {**os.environ, "AOI_TASK_ID": "bare", "AOI_RESULT_FILE": str(workdir / "bare.json")}
    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, check=True)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def start_in_box_ms(workdir: Path, count: int = 200) -> tuple[float, float]:
    """Median ms of one start-and-exit of the no-op agent without and with its box."""
    from aoi_git.domain.model import SandboxConfig
    from aoi_git.runtime import agent_run, sandbox
    from aoi_git.store import agent_git

    repo = workdir / "box-repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "f").write_text("x\n")
    git(repo, "add", "f")
    git(repo, "-c", "user.name=b", "-c", "user.email=b@x", "commit", "-q", "-m", "f")
    worktree = repo / ".aoi" / "worktrees" / "t-bench"
    git(repo, "worktree", "add", "-q", "-b", "aoi/t-bench", str(worktree))
    tip = git(repo, "rev-parse", "HEAD").strip()
    bwrap = sandbox.require(SandboxConfig())
    assert bwrap is not None
    pygit_repo = pygit2.Repository(str(repo))
    cmd = ["/bin/bash", "-c", AGENT.format(starts=workdir / "box-starts")]
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(count):
        for boxed in (False, True):
            files = agent_run.prepare(repo / ".aoi" / "runs" / "t-bench", {"id": "t-bench"}, "",
                                      {})
            env = {**os.environ, "AOI_TASK_ID": "t-bench", "AOI_RESULT_FILE": str(files.result)}
            t0 = time.perf_counter()
            box = sandbox.box_for_run(bwrap, worktree, files.folder, (), tip) if boxed else None
            proc = agent_run.spawn(cmd, files=files, cwd=worktree, env=env, memory_mb=None,
                                   box=box)
            proc.wait()
            if boxed:
                agent_git.take_commits(pygit_repo, worktree, files.folder)
            times[boxed].append((time.perf_counter() - t0) * 1000)
    return statistics.median(times[False]), statistics.median(times[True])


def bench_size(n: int, tasks: int, saves: int, workdir: Path, bare_ms: float,
               subtasks: bool, repeat: int) -> dict[str, Any]:
    root = workdir / f"org-{n}"
    starts = workdir / f"starts-{n}.txt"
    print(f"size {n}: building", file=sys.stderr)
    prebuilt = setup_org(root, n, starts)
    parent = prebuilt[0] if subtasks else None
    rss = RssPeak()
    res: dict[str, Any] = {"size": n}
    t0 = time.perf_counter()
    run_until_idle(root, rss)  # first start: builds the .aoi cache of parsed tasks
    res["cold_start_s"] = time.perf_counter() - t0
    res["empty_s"] = min(run_until_idle(root, rss) for _ in range(2))

    print(f"size {n}: live daemon (idle CPU, save -> start)", file=sys.stderr)
    res.update(live_daemon(root, starts, saves, rss, parent))

    unconfined: list[float] = []  # per task ms at N = 1 without the sandbox
    for m in (1, 2, 8):
        runs = []
        for r in range(repeat):
            print(f"size {n}: {tasks} tasks at --max-agents {m} ({r + 1}/{repeat})",
                  file=sys.stderr)
            if m == 1 and SANDBOX[0]:  # the same run without the sandbox, side by side
                unconfined.append(one_at_a_time_ms(root, starts, rss, tasks, parent))
            ids = create_tasks(root, tasks, parent)
            before = commit_count(root)
            wall = run_until_idle(root, rss, "--max-agents", str(m))
            res[f"commits_per_task_{m}"] = (commit_count(root) - before) / tasks
            org = load_org(Store(root))
            done = sum(1 for t in ids if org.tasks[t].status is Status.FINISHED)
            assert done == tasks, f"only {done} of {tasks} finished"
            ran = read_starts(starts)
            assert all(t in ran for t in ids)
            times = sorted(ran[t] for t in ids)
            runs.append(((len(times) - 1) / (times[-1] - times[0]), tasks / wall,
                         (times[-1] - times[0]) / (len(times) - 1) * 1000))
        runs.sort()
        mid = runs[len(runs) // 2]  # the median run (by tasks/s)
        res[f"tps_{m}"], res[f"tps_wall_{m}"] = mid[0], mid[1]
        res[f"tps_{m}_runs"] = [round(x[0], 1) for x in runs]
        if m == 1:  # one at a time: start to start is one task's whole lifecycle
            res["per_task_ms"] = mid[2]
            res["overhead_ms"] = res["per_task_ms"] - bare_ms
            runs_ms = sorted(x[2] for x in runs)
            res["per_task_ms_runs"] = [round(x, 2) for x in runs_ms]
            res["unconfined_ms_runs"] = [round(x, 2) for x in sorted(unconfined)]
            if unconfined:
                res["sandbox_ms"] = statistics.median(runs_ms) - statistics.median(unconfined)
    res["rss_mb"] = rss.peak / 2**20
    res["status_clean"] = status_clean(root, "--untracked-files=no")
    print(f"size {n}: {json.dumps(res)}", file=sys.stderr)
    return res


def one_at_a_time_ms(root: Path, starts: Path, rss: RssPeak, tasks: int,
                     parent: str | None) -> float:
    """Mean start-to-start ms of `tasks` tasks at --max-agents 1, the sandbox off."""
    set_sandbox(root, False, starts.parent)
    try:
        ids = create_tasks(root, tasks, parent)
        run_until_idle(root, rss, "--max-agents", "1")
    finally:
        set_sandbox(root, True, starts.parent)
    ran = read_starts(starts)
    times = sorted(ran[t] for t in ids)
    return (times[-1] - times[0]) / (len(times) - 1) * 1000


def main() -> None:
    ap = bench_parser(__doc__)
    ap.add_argument("--tasks", type=int, default=200, help="tasks per end-to-end run")
    ap.add_argument("--saves", type=int, default=50, help="saves for the latency")
    ap.add_argument("--repeat", type=int, default=3,
                    help="end-to-end runs per max_agents; the median run is reported")
    ap.add_argument("--subtasks", action="store_true",
                    help="make the tasks subtasks of a finished project: no retrospective "
                    "and no performance-review cycle per task (those come with each root)")
    ap.add_argument("--no-sandbox", action="store_true",
                    help="run the agents unconfined (sandbox: {enabled: false})")
    ap.add_argument("--only-start", action="store_true",
                    help="measure only the start in box (no org is built)")
    ap.add_argument("--starts", type=int, default=200,
                    help="starts of each kind for the start in box")
    args = ap.parse_args()
    if args.only_start and args.no_sandbox:
        sys.exit("bench_daemon: --only-start measures the sandbox: not with --no-sandbox")
    SANDBOX[0] = not args.no_sandbox
    os.environ.update(GIT_ENV)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    workdir = Path(tempfile.mkdtemp(prefix="aoi-bench-daemon-", dir=args.dir))
    load_before = os.getloadavg()[0]
    rows = []
    try:
        bare_ms = bare_agent_ms(workdir, workdir / "bare-starts")
        box_ms = start_in_box_ms(workdir, args.starts) if SANDBOX[0] else None
        for n in ([] if args.only_start else sizes):
            rows.append(bench_size(n, args.tasks, args.saves, workdir, bare_ms,
                                   args.subtasks, args.repeat))
            if not args.keep:
                shutil.rmtree(workdir / f"org-{n}", ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"orgs kept in {workdir}", file=sys.stderr)
    if args.only_start:
        assert box_ms is not None
        print(f"start in box: {box_ms[0]:.2f} ms unconfined, {box_ms[1]:.2f} ms in the box "
              f"(+{box_ms[1] - box_ms[0]:.2f} ms per agent start; medians of {args.starts} "
              f"each); {os.cpu_count()} CPUs, load average {load_before:.1f} at start, "
              f"{os.getloadavg()[0]:.1f} at end")
        return
    kind = "subtasks of a finished project" if args.subtasks else "root tasks"
    print(f"\n{args.tasks} tasks ({kind}) per end-to-end run, {args.saves} saves; no-op agent "
          f"(bash one-liner) runs {bare_ms:.1f} ms alone; {os.cpu_count()} CPUs, load average "
          f"{load_before:.1f} at start, {os.getloadavg()[0]:.1f} at end\n")
    print("| finished tasks in org | save→start p50 ms | p99 ms | per task ms (max_agents 1) "
          "| overhead ms/task | tasks/s @1 | @2 | @8 | tasks/s with start+exit @1 | @2 | @8 "
          "| empty run s (start+exit) | peak RSS MB | idle CPU ms / 5 s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['size']:,} | {r['lat_p50']:.1f} | {r['lat_p99']:.1f} "
              f"| {r['per_task_ms']:.1f} | {r['overhead_ms']:.1f} | {r['tps_1']:.1f} "
              f"| {r['tps_2']:.1f} | {r['tps_8']:.1f} | {r['tps_wall_1']:.1f} "
              f"| {r['tps_wall_2']:.1f} | {r['tps_wall_8']:.1f} | {r['empty_s']:.2f} "
              f"| {r['rss_mb']:.0f} | {r['idle_cpu_ms']:.0f} |")
    print()
    for r in rows:
        print(f"{r['size']:,}: commits per task (the daemon's, of the last run) "
              f"@1 {r['commits_per_task_1']:.2f}, @2 {r['commits_per_task_2']:.2f}, "
              f"@8 {r['commits_per_task_8']:.2f}")
        print(f"{r['size']:,}: tasks/s of each run @1 {r['tps_1_runs']}, @2 {r['tps_2_runs']}, "
              f"@8 {r['tps_8_runs']} (the table shows the median run)")
    if box_ms is not None:
        print(f"start in box: {box_ms[0]:.2f} ms unconfined, {box_ms[1]:.2f} ms in the box "
              f"(+{box_ms[1] - box_ms[0]:.2f} ms per agent start; medians of {args.starts} "
              "each)")
    for r in rows:
        if "sandbox_ms" in r:
            print(f"{r['size']:,}: sandbox per agent start {r['sandbox_ms']:+.2f} ms (median "
                  f"per task ms @1, sandbox on {r['per_task_ms_runs']} vs off "
                  f"{r['unconfined_ms_runs']})")
        elif not SANDBOX[0]:
            print(f"{r['size']:,}: agents ran unconfined (--no-sandbox)")
    for r in rows:
        print(f"{r['size']:,}: git status clean afterwards: "
              f"{'yes' if r['status_clean'] else 'NO'}")
    if not all(r["status_clean"] for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
