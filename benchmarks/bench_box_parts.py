"""What each part of an agent's box costs: bubblewrap with its arguments added one group
at a time, side by side with `/bin/true` unconfined, in the same run.

    python benchmarks/bench_box_parts.py [--runs 150] [--dir DIR]

The box is the one `sandbox.box_for_run` builds for a run in a linked worktree (the
agent's git store and this host's keys folder, hidden, included). Each row adds a group of
its arguments to the row above and runs `/bin/true` inside, ``--runs`` times, the rows
interleaved; medians of wall time, and each row's step over the one before. Also timed:
the daemon's own Python work for one box (building it, and taking the agent's branch back
after the run). Wall times follow the machine's load (a busy CPU runs bwrap's ~4-5 ms of
CPU work at its share); read the steps against the ``/bin/true`` row of the same run.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pygit2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _orgs import GIT_ENV, bench_parser, git  # noqa: E402

from aoi_git.domain.model import SandboxConfig  # noqa: E402
from aoi_git.runtime import agent_run, sandbox  # noqa: E402
from aoi_git.store import agent_git, signing  # noqa: E402


def box_repo(workdir: Path) -> tuple[Path, Path, str]:
    repo = workdir / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "f").write_text("x\n")
    git(repo, "add", "f")
    git(repo, "commit", "-q", "-m", "f")
    worktree = repo / ".aoi" / "worktrees" / "t-bench"
    git(repo, "worktree", "add", "-q", "-b", "aoi/t-bench", str(worktree))
    return repo, worktree, git(repo, "rev-parse", "HEAD").strip()


def groups(argv: list[str]) -> list[tuple[str, list[str]]]:
    """The box's arguments (before `--chdir`) in groups, in their order."""
    names = {"--unshare-pid": "pid namespace", "--unshare-ipc": "ipc namespace",
             "--die-with-parent": "--die-with-parent", "--dev": "--dev /dev",
             "--proc": "--proc /proc", "--tmpfs": "keys folder hidden (--tmpfs)",
             "--remount-ro": "keys folder hidden (--tmpfs)"}
    width = {"--unshare-pid": 1, "--unshare-ipc": 1, "--die-with-parent": 1, "--dev": 2,
             "--proc": 2, "--tmpfs": 2, "--remount-ro": 2, "--bind": 3, "--ro-bind": 3}
    out: list[tuple[str, list[str]]] = []
    i = 1
    while argv[i] != "--chdir":
        opt = argv[i]
        n = width[opt]
        if opt == "--bind":
            name = "read-write binds (worktree, run, agent git)"
        elif opt == "--ro-bind":
            name = "--ro-bind / /" if argv[i + 1] == "/" else "read-only file binds (agent git)"
        else:
            name = names[opt]
        if out and out[-1][0] == name:
            out[-1][1].extend(argv[i:i + n])
        else:
            out.append((name, argv[i:i + n]))
        i += n
    first = next(k for k, (name, _) in enumerate(out) if name == "--ro-bind / /")
    return [out[first], *out[:first], *out[first + 1:]]  # the root first: bwrap needs one


def timed(fn: Callable[[], object], count: int) -> float:
    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = bench_parser(__doc__, sizes=False)
    ap.add_argument("--runs", type=int, default=150, help="runs of each row")
    args = ap.parse_args()
    os.environ.update(GIT_ENV)
    bwrap = sandbox.require(SandboxConfig())
    if bwrap is None:
        sys.exit("bench_box_parts: bwrap is needed")
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="aoi-bench-box-", dir=args.dir) as tmp:
        workdir = Path(tmp)
        (workdir / "config").mkdir()
        os.environ["XDG_CONFIG_HOME"] = str(workdir / "config")
        signing.keys_dir().mkdir(parents=True)  # a keys folder to hide, as on a host
        repo, worktree, tip = box_repo(workdir)
        run_folder = repo / ".aoi" / "runs" / "t-bench"
        files = agent_run.prepare(run_folder, {"id": "t-bench"}, "", {})
        box = sandbox.box_for_run(bwrap, worktree, files.folder, (), tip)
        full = box.argv(["/bin/true"])
        tail = full[full.index("--chdir"):]
        rows: list[tuple[str, list[str]]] = [("/bin/true, unconfined", ["/bin/true"])]
        so_far = [bwrap]
        for name, part in groups(full):
            so_far = [*so_far, *part]
            rows.append((f"+ {name}", [*so_far, *tail]))
        times: dict[str, list[float]] = {name: [] for name, _ in rows}
        for _ in range(args.runs):
            for name, argv in rows:
                t0 = time.perf_counter()
                subprocess.run(argv, cwd=worktree, check=True)
                times[name].append((time.perf_counter() - t0) * 1000)
        pygit_repo = pygit2.Repository(str(repo))
        build_ms = timed(lambda: sandbox.box_for_run(bwrap, worktree, files.folder, (), tip),
                         args.runs)
        take_ms = timed(lambda: agent_git.take_commits(pygit_repo, worktree, files.folder),
                        args.runs)
    print(f"\n{args.runs} runs of each row, interleaved; {os.cpu_count()} CPUs, load average "
          f"{load_before:.1f} at start, {os.getloadavg()[0]:.1f} at end\n")
    print("| bwrap with | median ms | step ms |")
    print("|---|---|---|")
    prev = None
    for name, _ in rows:
        med = statistics.median(times[name])
        step = "" if prev is None else f"{med - prev:+.2f}"
        print(f"| {name} | {med:.2f} | {step} |")
        prev = med
    print(f"\nthe daemon's Python work per box: building it {build_ms:.3f} ms, taking the "
          f"branch back {take_ms:.3f} ms (medians of {args.runs})")


if __name__ == "__main__":
    main()
