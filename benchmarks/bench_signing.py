"""What signing every commit costs: signed vs unsigned transition commits, in one run.

    python benchmarks/bench_signing.py [--sizes 1000] [--commits 600]

Builds an org (``_orgs.build_org``; a host key in a temporary ``XDG_CONFIG_HOME``, so the
real home is not touched), then makes ``--commits`` pending -> processing transitions
through the real API as the daemon (index deferred and flushed every 100 commits, as the
daemon does), alternating batches of 100 unsigned (``Store.sign_commits = False``) and
signed, so both see the same machine load and the same growing repository. Also times,
per signature: the in-process ed25519 SSHSIG signature, its in-process verification as
the pre-receive hook does it (``store.signing.commit_signer``), and for comparison what a
subprocess per commit would cost: ``ssh-keygen -Y sign`` (what ``git commit -S`` runs
with ``gpg.format ssh``) and ``git verify-commit``.

Prints a Markdown table. Target: signing adds <= 0.5 ms to a commit.
"""

from __future__ import annotations

import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aoi_git.domain.model import Actor, ActorKind, Status
from aoi_git.store import signing
from aoi_git.store.org_store import Store
from aoi_git.store.txn import commit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _orgs import bench_parser, build_org, percentile  # noqa: E402

BATCH = 100
ACTOR = Actor(ActorKind.DAEMON, "bench")


def claims(store: Store, pool: list[str], count: int) -> list[float]:
    """ms per commit (the index flush spread over its batch) for `count` claims."""
    times: list[float] = []
    gc.collect()
    for _ in range(count):
        task_id = pool.pop()
        t0 = time.perf_counter()
        commit(store, lambda txn, t=task_id: txn.update(t, status=Status.PROCESSING), ACTOR)
        times.append((time.perf_counter() - t0) * 1000)
    t0 = time.perf_counter()
    store.flush_index()
    share = (time.perf_counter() - t0) * 1000 / max(count, 1)
    return [t + share for t in times]


def per_call_us(fn, n: int) -> float:  # noqa: ANN001
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) * 1e6 / n


def run(root: Path, n: int, commits: int) -> dict[str, float]:
    pool = build_org(root, n)
    store = Store(root)
    store.defer_index = True
    unsigned: list[float] = []
    signed: list[float] = []
    signed_ids: list[str] = []
    rounds = max(1, commits // (2 * BATCH))
    for _ in range(rounds):
        store.sign_commits = False
        unsigned += claims(store, pool, BATCH)
        store.sign_commits = True
        signed += claims(store, pool, BATCH)
        head = store.head_commit()
        assert head is not None
        signed_ids.append(str(head.id))
    assert signing.commit_signer(store.repo, signed_ids[-1], []).status is not (
        signing.SigStatus.UNSIGNED), "the signed batch was not signed"
    signer = signing.host_signer()
    assert signer is not None
    payload = store.repo.get(signed_ids[-1]).gpg_signature[1]  # type: ignore[union-attr]
    allowed = signing.allowed_signers(store.head())
    # the commit object alone (same tree, parent and message), signed and not, interleaved
    head = store.head_commit()
    assert head is not None
    author, committer = store.signature(str(ACTOR))
    objects: dict[bool, list[float]] = {False: [], True: []}
    for i in range(4000):
        store.sign_commits = bool(i % 2)
        t0 = time.perf_counter()
        store.create_commit(author, committer, f"bench {i}\n", head.tree.id, [head.id],
                            str(ACTOR))
        objects[bool(i % 2)].append((time.perf_counter() - t0) * 1e6)
    sign_us = per_call_us(lambda: signer.sign(payload), 2000)
    verify_us = per_call_us(lambda: signing.commit_signer(store.repo, signed_ids[-1],
                                                          allowed), 2000)
    data = root / ".aoi" / "payload"
    data.write_bytes(payload)
    t0 = time.perf_counter()
    for _ in range(20):
        subprocess.run(["ssh-keygen", "-q", "-Y", "sign", "-f", str(signer.path), "-n", "git",
                        str(data)], check=True, capture_output=True)
        (root / ".aoi" / "payload.sig").unlink()
    keygen_ms = (time.perf_counter() - t0) * 1000 / 20
    shas = (signed_ids * 20)[:20]
    t0 = time.perf_counter()
    for sha in shas:
        subprocess.run(["git", "verify-commit", sha], cwd=root, check=True,
                       capture_output=True)
    verify_git_ms = (time.perf_counter() - t0) * 1000 / len(shas)
    return {
        "tasks": n, "commits": len(signed),
        "unsigned_p50": percentile(unsigned, 50), "signed_p50": percentile(signed, 50),
        "unsigned_mean": statistics.fmean(unsigned), "signed_mean": statistics.fmean(signed),
        "unsigned_p99": percentile(unsigned, 99), "signed_p99": percentile(signed, 99),
        "object_unsigned_us": statistics.median(objects[False]),
        "object_signed_us": statistics.median(objects[True]),
        "sign_us": sign_us, "verify_us": verify_us, "keygen_ms": keygen_ms,
        "verify_git_ms": verify_git_ms,
    }


def main() -> None:
    ap = bench_parser(__doc__)
    ap.set_defaults(sizes="1000")
    ap.add_argument("--commits", type=int, default=600,
                    help="transition commits, half of them signed")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="aoi-bench-sign-", dir=args.dir))
    os.environ["XDG_CONFIG_HOME"] = str(base / "config")  # the host key: not the real home's
    rows = [run(base / f"org-{n}", int(n), args.commits) for n in args.sizes.split(",")]
    print("| tasks | commits each | ms/commit unsigned p50 / mean / p99 "
          "| ms/commit signed p50 / mean / p99 | signing adds (mean) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['tasks']} | {r['commits']} "
              f"| {r['unsigned_p50']:.2f} / {r['unsigned_mean']:.2f} / {r['unsigned_p99']:.2f} "
              f"| {r['signed_p50']:.2f} / {r['signed_mean']:.2f} / {r['signed_p99']:.2f} "
              f"| {r['signed_mean'] - r['unsigned_mean']:+.2f} ms |")
    print()
    print("| commit object alone (median) | unsigned | signed | signing adds |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['tasks']} tasks | {r['object_unsigned_us']:.0f} µs "
              f"| {r['object_signed_us']:.0f} µs "
              f"| {r['object_signed_us'] - r['object_unsigned_us']:+.0f} µs |")
    print()
    print("| per signature | in process | a subprocess per commit |")
    print("|---|---|---|")
    for r in rows:
        print(f"| sign ({r['tasks']} tasks) | {r['sign_us']:.0f} µs "
              f"| {r['keygen_ms']:.1f} ms (`ssh-keygen -Y sign`) |")
        print(f"| verify ({r['tasks']} tasks) | {r['verify_us']:.0f} µs "
              f"| {r['verify_git_ms']:.1f} ms (`git verify-commit`) |")
    if not args.keep:
        import shutil
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
