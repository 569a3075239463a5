"""What the server's pre-receive hook costs a push, by the number of commits pushed.

    python benchmarks/bench_pre_receive.py [--tasks 40] [--sizes 1,10,50,all] [--repeat 3]
                                           [--profile]

A fresh org with ``--tasks`` pending root tasks runs them on one plain ``aoi daemon
--until-idle`` (no-op agents), so its history holds the signed commits a daemon makes:
claims, results, acceptances, finishes. Each push then sends the first N of those
commits to a bare repository that holds the founding commit, once with the shipped
``hooks/pre-receive`` installed and once without (the baseline: what git alone costs),
best of ``--repeat``. ``--profile`` runs the hook once more in process under cProfile
on the largest push and prints its 25 most expensive calls.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import hostkit  # noqa: E402  (the tests' org maker, shared with them)

import aoi_git  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
AGENT = "echo '{\"outcome\":\"completed\",\"summary\":\"ok\"}' > \"$AOI_RESULT_FILE\""


def history(base: Path, tasks: int) -> tuple[Path, list[str]]:
    """The org after its daemon ran every task; its founding commit (with the tasks) and
    the daemon's commits after it, oldest first."""
    seed, _ = hostkit.make_org(base, tasks=tasks, concurrency=8, max_agents=8,
                               sandbox=False, command=["/bin/bash", "-c", AGENT])
    root = hostkit.git(seed, "rev-parse", "HEAD").strip()  # what the server holds
    subprocess.run([str(hostkit.AOI_BIN), "-C", str(seed), "daemon", "--until-idle"],
                   check=True, capture_output=True, timeout=900)
    revs = hostkit.git(seed, "rev-list", "--reverse", "--first-parent", f"{root}..HEAD")
    return seed, [root, *revs.split()]


def server(base: Path, seed: Path, root: str, hook: bool) -> Path:
    bare = base / f"srv-{time.time_ns()}.git"
    hostkit.git(base, "clone", "-q", "--bare", str(seed), str(bare))
    hostkit.git(bare, "update-ref", "refs/heads/main", root)
    for ref in hostkit.git(bare, "for-each-ref", "--format=%(refname)").split():
        if ref != "refs/heads/main":
            hostkit.git(bare, "update-ref", "-d", ref)
    hostkit.git(bare, "reflog", "expire", "--expire=now", "--all")
    hostkit.git(bare, "gc", "-q", "--prune=now")
    hostkit.git(bare, "config", "aoi.python", sys.executable)
    if hook:
        dst = bare / "hooks" / "pre-receive"
        shutil.copy(REPO / "hooks" / "pre-receive", dst)
        dst.chmod(0o755)
    return bare


def timed_push(base: Path, seed: Path, revs: list[str], n: int, hook: bool) -> float:
    bare = server(base, seed, revs[0], hook)
    t0 = time.perf_counter()
    proc = subprocess.run(["git", "push", "-q", str(bare), f"{revs[n]}:refs/heads/main"],
                          cwd=seed, capture_output=True, text=True, timeout=900)
    took = time.perf_counter() - t0
    shutil.rmtree(bare)
    if proc.returncode != 0:
        raise SystemExit(f"push of {n} commits refused: {proc.stderr.strip()[-2000:]}")
    return took


def profile(base: Path, seed: Path, revs: list[str], n: int) -> str:
    """The hook in process on a push of `n` commits: the objects are in the repository
    but no ref names them, as in git's quarantine."""
    bare = server(base, seed, revs[0], hook=False)
    hostkit.git(seed, "push", "-q", str(bare), f"{revs[n]}:refs/tmp/pushed")
    hostkit.git(bare, "update-ref", "-d", "refs/tmp/pushed")
    from click.testing import CliRunner

    from aoi_git.cli import main as cli

    old = os.getcwd()
    os.chdir(bare)
    prof = cProfile.Profile()
    try:
        prof.enable()
        result = CliRunner().invoke(cli, ["hook", "pre-receive"],
                                    input=f"{revs[0]} {revs[n]} refs/heads/main\n")
        prof.disable()
    finally:
        os.chdir(old)
    if result.exit_code != 0:
        raise SystemExit(f"the hook refused: {result.output[-2000:]}")
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(25)
    return out.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=40)
    ap.add_argument("--sizes", default="1,10,50,all")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="aoi-bench-pre-receive-"))
    # as installed by pip, with bytecode: where PYTHONDONTWRITEBYTECODE is set, every
    # daemon and hook process would otherwise compile aoi from source at each start
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(aoi_git.__file__).parent)],
                   check=True, capture_output=True)
    os.environ["XDG_CONFIG_HOME"] = str(work / "config")  # the org's key: not the real home
    try:
        seed, revs = history(work / "org", args.tasks)
        most = len(revs) - 1
        sizes = [most if s == "all" else min(int(s), most) for s in args.sizes.split(",")]
        rows = []
        for n in sizes:
            off = min(timed_push(work, seed, revs, n, False) for _ in range(args.repeat))
            on = min(timed_push(work, seed, revs, n, True) for _ in range(args.repeat))
            rows.append((n, off, on))
        if args.profile:
            print(profile(work, seed, revs, max(sizes)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()
    print(f"\npushes of N commits a daemon made ({args.tasks} tasks), best of {args.repeat}; "
          f"{os.cpu_count()} CPUs, load average {load[0]:.1f}")
    print(f"{'commits':>8} {'no hook ms':>11} {'hook ms':>9} {'hook - git ms':>14} "
          f"{'ms/commit':>10}")
    for n, off, on in rows:
        print(f"{n:>8} {off * 1000:>11.0f} {on * 1000:>9.0f} {(on - off) * 1000:>14.0f} "
              f"{(on - off) * 1000 / n:>10.1f}")


if __name__ == "__main__":
    main()
