"""Benchmark of one org on 1, 2 and 4 hosts sharing one local git server.

    python benchmarks/bench_hosts.py [--hosts 1,2,4] [--tasks 120] [--max-agents 8]
                                     [--no-hook] [--keep] [--dir DIR]

Each configuration is a fresh org with ``--tasks`` pending root tasks (``reviewer: none``)
and one script employee whose agent is a bash one-liner (it notes ``<task> <host>
$EPOCHREALTIME`` outside the org and reports ``completed``): no-op agents, unconfined
(``sandbox: {enabled: false}``: the coordination is measured, not bubblewrap). The server
is a real ``git daemon --enable=receive-pack`` on 127.0.0.1 with the org's pre-receive
hook (``--no-hook``: without it, to show what the hook costs); every host is a separate
clone running the real ``aoi daemon --remote ... --host-id hN`` as a subprocess, with its
own HOME. The run ends when every task is finished on the server; each daemon is then
stopped (SIGTERM) and writes its counters to ``.aoi/daemon/hosts.json``.

Measured, per number of hosts:

* **claims/s**: claims the server took, all hosts together, from the first to the last;
* **claim p50/p99**: from the moment a batch of claims was committed on its host to the
  moment the server took the push (the agents start right after);
* **rejected/s**: pushes refused because another host had moved the branch first;
* **tasks/s per host**: tasks each host ran (to their end), over the whole run;
* **double**: tasks whose agent started more than once (must be 0);
* **baseline**: the same org on one plain ``aoi daemon --until-idle`` with no remote, in
  the same run: claims/s of the local compare-and-swap alone.

Targets (2 cores): 4 hosts >= 50 claims/s together, claim p99 <= 500 ms, 0 double claims.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import hostkit  # noqa: E402  (the tests' git server, shared with them)
from kit import wait_for  # noqa: E402

import aoi_git  # noqa: E402

AGENT = ('echo "$AOI_TASK_ID ${{AOI_ORG_DIR%/org}} $EPOCHREALTIME" >> {starts}; '
         'echo \'{{"outcome":"completed","summary":"ok"}}\' > "$AOI_RESULT_FILE"')
CFG = {"lease_s": 30, "renew_s": 3, "poll_s": 0.2, "timeout_s": 60}


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def starts(path: Path) -> list[tuple[str, str, float]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3:
            out.append((parts[0], Path(parts[1]).name, float(parts[2])))
    return out


def org(base: Path, tasks: int, max_agents: int,
        hosts: dict[str, float] | None = None) -> tuple[Path, Path, Path]:
    starts_file = base / "starts"
    seed, shared = hostkit.make_org(
        base, tasks=tasks, concurrency=max_agents, max_agents=max_agents, sandbox=False,
        hosts_cfg=CFG if hosts is None else hosts,
        command=["/bin/bash", "-c", AGENT.format(starts=starts_file)])
    return seed, shared, starts_file


def run_hosts(base: Path, n: int, tasks: int, max_agents: int, hook: bool) -> dict[str, float]:
    seed, shared, starts_file = org(base, tasks, max_agents)
    cluster = hostkit.make_cluster(base, n, seed, shared)
    if not hook:
        (cluster.server.repo / "hooks" / "pre-receive").unlink()
    t0 = time.time()
    try:
        for h in cluster.hosts:
            h.start()

        def done() -> bool:
            st = hostkit.remote_tasks(cluster.server)
            return all(s == "finished" for t, s in st.items() if t.startswith("t-0"))

        wait_for(done, 900, 0.5, "every task finished")
        wall = time.time() - t0
        for h in cluster.hosts:
            h.stop(60)
    finally:
        cluster.close()
    claimed_at: list[float] = []
    claim_s: list[float] = []
    rejected = 0
    for h in cluster.hosts:
        data = json.loads((h.root / ".aoi" / "daemon" / "hosts.json").read_text())
        claimed_at += data["claimed_at"]
        claim_s += data["claim_s"]
        rejected += data["rejected"]
    runs = starts(starts_file)
    per_task: dict[str, int] = {}
    per_host: dict[str, int] = {}
    for task, host, _ in runs:
        per_task[task] = per_task.get(task, 0) + 1
        per_host[host] = per_host.get(host, 0) + 1
    span = (max(claimed_at) - min(claimed_at)) if len(claimed_at) > 1 else float("nan")
    return {
        "hosts": n, "wall": wall, "claims": len(claimed_at),
        "claims_s": len(claimed_at) / span if span and span == span else float("nan"),
        "p50_ms": pct(claim_s, 0.5) * 1000, "p99_ms": pct(claim_s, 0.99) * 1000,
        "rejected_s": rejected / wall,
        "tasks_s_host": statistics.mean(per_host.values()) / wall if per_host else 0.0,
        "double": sum(1 for c in per_task.values() if c > 1),
    }


def run_baseline(base: Path, tasks: int, max_agents: int) -> dict[str, float]:
    seed, _, starts_file = org(base, tasks, max_agents, hosts={})
    t0 = time.time()
    subprocess.run([str(hostkit.AOI_BIN), "-C", str(seed), "daemon", "--until-idle"],
                   check=True, capture_output=True, timeout=900)
    wall = time.time() - t0
    times = sorted(t for _, _, t in starts(starts_file))
    span = times[-1] - times[0] if len(times) > 1 else float("nan")
    return {"hosts": 0, "wall": wall, "claims": len(times),
            "claims_s": len(times) / span if span else float("nan"),
            "tasks_s_host": len(times) / wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hosts", default="1,2,4")
    ap.add_argument("--tasks", type=int, default=120)
    ap.add_argument("--max-agents", type=int, default=8)
    ap.add_argument("--no-hook", action="store_true")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--dir", type=Path)
    args = ap.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="aoi-bench-hosts-"))
    work.mkdir(parents=True, exist_ok=True)
    # as installed by pip, with bytecode: where PYTHONDONTWRITEBYTECODE is set, every
    # daemon and hook process would otherwise compile aoi from source at each start
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(aoi_git.__file__).parent)],
                   check=True, capture_output=True)
    # the org's founding key (and every host's, unless hostkit gives each its own) lives
    # in the run's folder, never in the real home
    os.environ["XDG_CONFIG_HOME"] = str(work / "config")
    rows = []
    try:
        base = run_baseline(work / "baseline", args.tasks, args.max_agents)
        for n in (int(x) for x in args.hosts.split(",")):
            rows.append(run_hosts(work / f"hosts-{n}", n, args.tasks, args.max_agents,
                                  not args.no_hook))
            print(f"  {n} host(s) done in {rows[-1]['wall']:.1f}s", file=sys.stderr)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()
    print(f"\n{args.tasks} no-op tasks, max_agents {args.max_agents} per host, "
          f"pre-receive hook {'off' if args.no_hook else 'on'}; {os.cpu_count()} CPUs, "
          f"load average {load[0]:.1f}")
    print(f"{'hosts':>7} {'claims/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'rejected/s':>11} "
          f"{'tasks/s/host':>13} {'double':>7} {'wall s':>7}")
    print(f"{'local':>7} {base['claims_s']:>9.1f} {'-':>8} {'-':>8} {'-':>11} "
          f"{base['tasks_s_host']:>13.1f} {'-':>7} {base['wall']:>7.1f}   (one daemon, no remote)")
    for r in rows:
        print(f"{int(r['hosts']):>7} {r['claims_s']:>9.1f} {r['p50_ms']:>8.0f} {r['p99_ms']:>8.0f} "
              f"{r['rejected_s']:>11.2f} {r['tasks_s_host']:>13.2f} {int(r['double']):>7} "
              f"{r['wall']:>7.1f}")


if __name__ == "__main__":
    main()
