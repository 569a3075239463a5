"""Benchmark of `aoi stats` over 100k transition commits.

    python benchmarks/bench_stats.py [--commits 100000] [--dir /tmp] [--keep]

Builds an org (``aoi init``) and appends ``--commits`` transition commits with
``git fast-import`` (not timed as part of the result; a few seconds): projects of one root
decomposed into 3-6 subtasks, each subtask claimed, completed with cost trailers, sent to
review (a review task claimed and completed by a reviewer, sometimes rejecting: the subtask
runs again), sometimes failed and retried, accepted and finished; then the root completes,
is accepted and finishes. Messages and trailers are exactly what the daemon writes
(`aoi_git.store.trailers.Message`); each commit touches one small task file.

Then it times ``aoi stats`` and ``aoi stats --json`` as the real console script (process
start included), best of 3. Target: <= 2 s at 100k transitions.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from aoi_git.domain.ids import new_task_id, shard_path
from aoi_git.org.create import init_org
from aoi_git.store.trailers import Message, Transition

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _orgs import WORDS, bench_parser  # noqa: E402

AOI = Path(sys.executable).parent / "aoi"
ENGINEERS = [f"eng-{i}" for i in range(1, 9)]
REVIEWERS = ["coo", "rev-1", "rev-2"]


def _title(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(5)).capitalize()


class History:
    """Generates (time, message, path, content) for the commits of many projects."""

    def __init__(self, seed: int = 7, start: int = 1_735_689_600) -> None:
        self.rng = random.Random(seed)
        self.t = start
        self.count = 0  # transitions

    def _commit(self, trans: list[Transition], actor: str, *, body: str = "",
                cost: dict[str, float] | None = None, employee: str | None = None,
                edits: tuple[str, ...] = ()) -> tuple[int, str, str, bytes]:
        self.t += self.rng.randint(5, 90)
        extra = [("Aoi-Employee", employee)] if employee else []
        msg = Message(trans, actor, body, cost or {}, extra).render()
        if edits:  # a pure edit names the task without a transition (request_review)
            lines = msg.splitlines()
            at = next(i for i, ln in enumerate(lines) if ln.startswith("Aoi-Actor:"))
            lines[at:at] = [f"Aoi-Task: {e}" for e in edits]
            msg = "\n".join(lines) + "\n"
        self.count += sum(1 for t in trans if t.old != t.new)
        tid = trans[0].task_id
        content = f"id: {tid}\ntitle: {trans[0].title}\nstatus: {trans[0].new}\n".encode()
        return self.t, msg, shard_path(tid), content

    def project(self) -> Iterator[tuple[int, str, str, bytes]]:
        rng = self.rng
        root, rtitle = new_task_id(), _title(rng)
        host = "daemon:bench-host"
        coo = "coo"
        yield self._commit([Transition(root, None, "pending", rtitle)], "human:ceo")
        yield self._commit([Transition(root, "pending", "processing", rtitle)], host,
                           employee=coo)
        kids = [(new_task_id(), _title(rng)) for _ in range(rng.randint(3, 6))]
        yield self._commit(
            [*(Transition(k, None, "pending", t) for k, t in kids),
             Transition(root, "processing", "waiting", rtitle)],
            f"agent:{coo}", body=f"decomposed into {len(kids)} subtasks: "
            + ", ".join(k for k, _ in kids),
            cost=self._cost(), employee=coo)
        for kid, title in kids:
            eng = rng.choice(ENGINEERS)
            rounds = 0
            while True:
                yield self._commit([Transition(kid, "pending", "processing", title)], host,
                                   employee=eng)
                if rng.random() < 0.1:  # a failed run, then a retry
                    yield self._commit([Transition(kid, "processing", "failed", title)], host,
                                       body="attempt 1 failed: exit status 1",
                                       cost=self._cost(), employee=eng)
                    yield self._commit([Transition(kid, "failed", "pending", title)], host,
                                       body="retry")
                    continue
                yield self._commit([Transition(kid, "processing", "completed", title)],
                                   f"agent:{eng}", body=f"wrote {title.lower()}",
                                   cost=self._cost(), employee=eng)
                rev, rtitle2 = new_task_id(), f"Review: {title}"
                reviewer = rng.choice(REVIEWERS)
                yield self._commit([Transition(rev, None, "pending", rtitle2)], host,
                                   edits=(kid,))
                yield self._commit([Transition(rev, "pending", "processing", rtitle2)], host,
                                   employee=reviewer)
                reject = rounds < 2 and rng.random() < 0.25
                if reject:
                    rounds += 1
                    yield self._commit(
                        [Transition(rev, "processing", "completed", rtitle2),
                         Transition(kid, "completed", "pending", title)],
                        f"agent:{reviewer}",
                        body=f"agent:{reviewer} rejected {kid}: add tests for the error path",
                        cost=self._cost(), employee=reviewer)
                else:
                    yield self._commit(
                        [Transition(rev, "processing", "completed", rtitle2),
                         Transition(kid, "completed", "accepted", title)],
                        f"agent:{reviewer}", body=f"agent:{reviewer} accepted {kid}",
                        cost=self._cost(), employee=reviewer)
                yield self._commit([Transition(rev, "completed", "accepted", rtitle2)], host,
                                   body="no reviewer: accepted at once")
                yield self._commit([Transition(rev, "accepted", "finished", rtitle2)], host,
                                   body="merge its branch")
                if not reject:
                    break
            yield self._commit([Transition(kid, "accepted", "finished", title)], host,
                               body="merge its branch")
        yield self._commit([Transition(root, "waiting", "completed", rtitle)], host,
                           body="all subtasks finished")
        yield self._commit([Transition(root, "completed", "accepted", rtitle)], "human:ceo")
        yield self._commit([Transition(root, "accepted", "finished", rtitle)], host)

    def _cost(self) -> dict[str, float]:
        rng = self.rng
        return {"input_tokens": rng.randint(500, 40_000), "output_tokens": rng.randint(50, 4000),
                "usd": round(rng.uniform(0.001, 0.6), 6), "seconds": round(rng.uniform(1, 300), 3)}


def build(root: Path, commits: int, seed: int = 7) -> int:
    """An org with at least `commits` transitions on top of `aoi init`; returns the count."""
    init_org(root)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, check=True,
                          capture_output=True, text=True).stdout.strip()
    hist = History(seed)
    proc = subprocess.Popen(["git", "fast-import", "--quiet", "--done"], cwd=root,
                            stdin=subprocess.PIPE)
    assert proc.stdin is not None
    out = proc.stdin
    first = True
    n = 0
    while hist.count < commits:
        for t, msg, path, content in hist.project():
            data = msg.encode()
            out.write(b"commit refs/heads/main\n")
            out.write(b"committer aoi <aoi@aoi.invalid> %d +0000\n" % t)
            out.write(b"data %d\n%s\n" % (len(data), data))
            if first:
                out.write(f"from {head}\n".encode())
                first = False
            out.write(f"M 100644 inline {path}\n".encode())
            out.write(b"data %d\n%s\n" % (len(content), content))
            n += 1
    out.write(b"done\n")
    out.close()
    if proc.wait() != 0:
        raise SystemExit("git fast-import failed")
    subprocess.run(["git", "reset", "-q", "--hard"], cwd=root, check=True)
    return hist.count


def timed(args: list[str], runs: int = 3) -> tuple[float, str]:
    best, out = float("inf"), ""
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run(args, capture_output=True, text=True, check=False)
        dt = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed:\n{proc.stderr}")
        best, out = min(best, dt), proc.stdout
    return best, out


def main() -> None:
    ap = bench_parser(__doc__, sizes=False)
    ap.add_argument("--commits", type=int, default=100_000, help="transitions to write")
    a = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="aoi-bench-stats-", dir=a.dir))
    root = base / "org"
    env_keys = ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL")
    for k in env_keys:
        os.environ.setdefault(k, "bench")
    try:
        t0 = time.perf_counter()
        transitions = build(root, a.commits)
        ncommits = int(subprocess.run(["git", "rev-list", "--count", "HEAD"], cwd=root,
                                      check=True, capture_output=True, text=True).stdout)
        print(f"built {transitions:,} transitions in {ncommits:,} commits "
              f"in {time.perf_counter() - t0:.1f} s ({root})")
        t_text, text = timed([str(AOI), "-C", str(root), "stats"])
        t_json, _ = timed([str(AOI), "-C", str(root), "stats", "--json"])
        t_emp, _ = timed([str(AOI), "-C", str(root), "stats", "--employee", "eng-3"])
        print(text.strip().splitlines()[0] if text.strip() else "")
        print(f"aoi stats:                  {t_text:.2f} s")
        print(f"aoi stats --json:           {t_json:.2f} s")
        print(f"aoi stats --employee eng-3: {t_emp:.2f} s")
        verdict = "OK" if max(t_text, t_json) <= 2.0 else "OVER"
        print(f"target <= 2 s over {transitions:,} transitions: {verdict}")
    finally:
        if a.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
