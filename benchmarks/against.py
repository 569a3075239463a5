"""Run one benchmark against a baseline commit and this checkout, in one run.

    python benchmarks/against.py REV benchmarks/bench_store.py --sizes 100000 --dir /dev/shm

The tree of REV (`git archive` into a temp folder, its `aoi_git` package) is put first on
PYTHONPATH for the baseline run, this checkout (the one holding this script) for the other;
the benchmark script itself is this checkout's, so both runs measure the same things. The
runs alternate, baseline first (`--rounds`, 1), each prints its own table under a heading;
compare ratios, not absolute figures: the machine's load moves both.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rev", help="the baseline commit (e.g. main)")
    ap.add_argument("--rounds", type=int, default=1, help="baseline/this pairs to run")
    ap.add_argument("bench", help="the benchmark script")
    ap.add_argument("args", nargs=argparse.REMAINDER, help="its arguments")
    a = ap.parse_args()
    sha = subprocess.run(["git", "rev-parse", "--short", a.rev], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.strip()
    here = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()
    tree = Path(tempfile.mkdtemp(prefix="aoi-baseline-"))
    try:
        archive = subprocess.run(["git", "archive", sha], cwd=ROOT, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        for r in range(a.rounds):
            for label, path in ((f"baseline {sha}", tree), (f"this checkout {here}", ROOT)):
                env = dict(os.environ)
                env["PYTHONPATH"] = os.pathsep.join(
                    p for p in (str(path), env.get("PYTHONPATH")) if p)
                print(f"\n## {label} (round {r + 1}, load average {os.getloadavg()[0]:.1f})",
                      flush=True)
                done = subprocess.run([sys.executable, a.bench, *a.args], env=env,
                                      check=False)
                if done.returncode != 0:
                    print(f"({label}: exit status {done.returncode})", flush=True)
    finally:
        shutil.rmtree(tree, ignore_errors=True)


if __name__ == "__main__":
    main()
