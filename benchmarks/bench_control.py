"""How fast the daemon acts on control over running work: a cancel, a pause, a
preemption, against the baseline of a run that ends by itself, in the same run.

A real `aoi daemon` (sandboxed script agents, `max_agents: 1`) runs an agent that notes
when it starts and then waits; the benchmark cancels, pauses or outranks it and measures,
from the moment the person's command starts (its own start-up and commit included,
also shown alone) or the agent's own last act (the baseline), until its process is gone
and until the next agent starts in the freed slot. Each figure is the median of --repeat rounds.

    python benchmarks/bench_control.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import yaml

from aoi_git.org.create import init_org

AOI = str(Path(sys.executable).parent / "aoi")
AGENT = """
import json, os, pathlib, time
shared = pathlib.Path({shared!r})
tid = os.environ["AOI_TASK_ID"]
with open(shared / "starts", "a") as fh:
    fh.write(f"{{tid}} {{time.time()}}\\n")
task = json.loads(pathlib.Path(os.environ["AOI_TASK_FILE"]).read_text())
if task.get("description") == "hold":  # until shared/go-<id>, or the run is stopped
    end = time.time() + 120
    while not (shared / f"go-{{tid}}").exists() and time.time() < end:
        time.sleep(0.002)
pathlib.Path(f"out-{{tid}}.txt").write_text("done\\n")
json.dump({{"outcome": "completed", "summary": "done"}}, open(os.environ["AOI_RESULT_FILE"], "w"))
with open(shared / "ends", "a") as fh:
    fh.write(f"{{tid}} {{time.time()}}\\n")
"""


def aoi(root: Path, *args: str) -> None:
    subprocess.run([AOI, "-C", str(root), *args], check=True, capture_output=True, text=True)


def stamps(shared: Path, name: str) -> dict[str, float]:
    path = shared / name
    if not path.exists():
        return {}
    return {ln.split()[0]: float(ln.split()[1]) for ln in path.read_text().splitlines()
            if ln.strip()}


def alive(root: Path, tid: str) -> bool:
    for p in psutil.process_iter():
        try:
            env = p.environ()
            if env.get("AOI_ORG_DIR") == str(root) and env.get("AOI_TASK_ID") == tid \
                    and p.status() != psutil.STATUS_ZOMBIE:
                return True
        except psutil.Error:
            continue
    return False


def wait(cond: Callable[[], object], what: str, timeout: float = 60.0) -> float:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.002)
    return time.time()


def make_org(workdir: Path) -> tuple[Path, Path]:
    root, shared = workdir / "org", workdir / "shared"
    init_org(root)
    shared.mkdir()
    (root / "agents").mkdir()
    (root / "agents" / "hold.py").write_text(AGENT.format(shared=str(shared)))
    cfg = yaml.safe_load((root / "aoi.yaml").read_text())
    cfg["limits"]["max_agents"] = 1
    cfg.setdefault("sandbox", {})["writable"] = [str(shared)]
    cfg["scheduling"] = {"preempt": {"min_priority_gap": 50}}
    (root / "aoi.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    folder = root / "employees" / "eng-1"
    folder.mkdir(parents=True)
    (folder / "profile.yaml").write_text(yaml.safe_dump({
        "id": "eng-1", "name": "Eng", "role": "engineer", "reports_to": "ceo",
        "status": "active", "capacity": {"concurrency": 1, "timeout_s": 300},
        "backend": {"kind": "script", "command": [sys.executable, "agents/hold.py"]}}))
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@aoi.invalid",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@aoi.invalid"}
    subprocess.run(["git", "add", "-A"], cwd=root, check=True, env=env)
    subprocess.run(["git", "commit", "-qm", "bench set-up", "--no-verify"], cwd=root,
                   check=True, env=env)
    return root, shared


def new(root: Path, tid: str, *, hold: bool, priority: int = 0) -> None:
    aoi(root, "task", "new", f"Task {tid}", "--id", tid, "--assignee", "eng-1",
        "--reviewer", "none", "--priority", str(priority),
        *(["--description", "hold"] if hold else []))


def one_round(root: Path, shared: Path, i: int) -> dict[str, float]:
    """One of each: a run that ends by itself, a cancel, a pause (and resume), a
    preemption; milliseconds from the trigger to the agent gone and to the next start."""
    out: dict[str, float] = {}
    # baseline: a run that ends by itself, then the next task starts
    new(root, f"self-{i}", hold=True, priority=10)
    wait(lambda: f"self-{i}" in stamps(shared, "starts"), "the baseline to start")
    new(root, f"after-self-{i}", hold=False, priority=9)
    (shared / f"go-self-{i}").write_text("go")
    wait(lambda: f"after-self-{i}" in stamps(shared, "starts"), "the baseline's next start")
    ended = stamps(shared, "ends")[f"self-{i}"]
    out["baseline: agent's last act -> next start"] = \
        stamps(shared, "starts")[f"after-self-{i}"] - ended
    for how in ("cancel", "pause"):
        tid = f"{how}-{i}"
        new(root, tid, hold=True, priority=10)
        wait(lambda tid=tid: tid in stamps(shared, "starts"), f"{tid} to start")
        new(root, f"after-{tid}", hold=False, priority=0)
        t0 = time.time()  # (the command's own start-up and commit included)
        aoi(root, "task", how, tid)
        out[f"{how}: the aoi command alone"] = time.time() - t0
        gone = wait(lambda tid=tid: not alive(root, tid), f"{tid} to stop")
        wait(lambda tid=tid: f"after-{tid}" in stamps(shared, "starts"), "the next start")
        out[f"{how}: command -> agent gone"] = gone - t0
        out[f"{how}: command -> next start"] = stamps(shared, "starts")[f"after-{tid}"] - t0
    aoi(root, "task", "cancel", f"pause-{i}")  # (it would resume: not measured)
    low = f"low-{i}"
    new(root, low, hold=True, priority=0)
    wait(lambda: low in stamps(shared, "starts"), f"{low} to start")
    t0 = time.time()
    new(root, f"urgent-{i}", hold=False, priority=100)
    gone = wait(lambda: not alive(root, low), f"{low} to be preempted")
    wait(lambda: f"urgent-{i}" in stamps(shared, "starts"), "the urgent start")
    out["preempt: task new -> agent gone"] = gone - t0
    out["preempt: task new -> urgent start"] = stamps(shared, "starts")[f"urgent-{i}"] - t0
    wait(lambda: stamps(shared, "starts").get(low, 0) and sum(
        1 for ln in (shared / "starts").read_text().splitlines() if ln.split()[0] == low) == 2,
        f"{low} to resume")
    aoi(root, "task", "cancel", low)
    wait(lambda: not alive(root, low), f"{low} to stop")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aoi-bench-control-") as tmp:
        root, shared = make_org(Path(tmp))
        log = open(Path(tmp) / "daemon.out", "wb")  # noqa: SIM115
        daemon = subprocess.Popen([AOI, "-C", str(root), "daemon"], stdout=log,
                                  stderr=subprocess.STDOUT)
        try:
            rounds = []
            for i in range(args.repeat):
                rounds.append(one_round(root, shared, i))
                print(f"round {i + 1}: {json.dumps(rounds[-1])}", file=sys.stderr)
        finally:
            daemon.terminate()
            daemon.wait(60)
            log.close()
    print(f"\nmedian of {args.repeat} rounds, max_agents 1, sandboxed script agents\n")
    print("| what | ms |")
    print("|---|---|")
    for key in rounds[0]:
        print(f"| {key} | {statistics.median(r[key] for r in rounds) * 1000:.0f} |")


if __name__ == "__main__":
    main()
