"""The git store: one change = one commit with trailers, a clean checkout, a person's
edits left alone, a compare-and-swap that loses nothing, and the parsed-task cache."""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pygit2
import pytest
from kit import PERSON_NAME, git

from aoi_git.domain.ids import ID_RE, shard_path
from aoi_git.domain.model import Actor, ActorKind, Status
from aoi_git.errors import IllegalTransition
from aoi_git.org import task_ops
from aoi_git.org.organisation import load_org
from aoi_git.store import head_view as store_mod
from aoi_git.store.org_store import Store, host_actor
from aoi_git.store.txn import Txn, commit

HUMAN = Actor(ActorKind.HUMAN, PERSON_NAME)
DAEMON = Actor.parse(host_actor())
AGENT = Actor(ActorKind.AGENT, "coo")


def new_task(store: Store, title: str = "Build the login API", **fields: object) -> str:
    made: list[str] = []

    def build(txn: Txn) -> None:
        made[:] = [task_ops.new_task(txn, store.load_tasks().tasks, title, **fields).id]

    commit(store, build, HUMAN)
    return made[0]


def count(repo: Path) -> int:
    return int(git(repo, "rev-list", "--count", "HEAD"))


def trailers(repo: Path, key: str, rev: str = "HEAD") -> list[str]:
    out = git(repo, "log", "-1", f"--format=%(trailers:key={key},valueonly)", rev)
    return [ln for ln in out.splitlines() if ln]


def assert_clean(repo: Path) -> None:
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


def test_one_change_is_one_commit_with_message_and_trailers(org_dir: Path) -> None:
    store = Store(org_dir)
    before = count(org_dir)
    tid = new_task(store, "Build the login API")
    assert count(org_dir) == before + 1
    subject = git(org_dir, "log", "-1", "--format=%s")
    assert subject == f"aoi: {tid} new -> pending: Build the login API\n"
    assert trailers(org_dir, "Aoi-Task") == [tid]
    assert trailers(org_dir, "Aoi-Transition") == ["new->pending"]
    assert trailers(org_dir, "Aoi-Actor") == [f"human:{PERSON_NAME}"]
    assert git(org_dir, "log", "-1", "--format=%an <%ae>|%cn <%ce>") == (
        "Test Person <test@example.com>|Test Person <test@example.com>\n")

    commit(store, lambda txn: txn.update(tid, status=Status.PROCESSING), DAEMON)
    assert count(org_dir) == before + 2
    subject = git(org_dir, "log", "-1", "--format=%s")
    assert subject.startswith(f"aoi: {tid} pending -> processing: ")
    assert trailers(org_dir, "Aoi-Transition") == ["pending->processing"]
    assert trailers(org_dir, "Aoi-Actor") == [f"daemon:{socket.gethostname()}"]
    assert not trailers(org_dir, "Aoi-Cost-Usd")

    def report(txn: Txn) -> None:
        txn.update(tid, status=Status.COMPLETED, cost={"usd": 0.25, "input_tokens": 1200})
        txn.add_cost({"usd": 0.25, "input_tokens": 1200, "output_tokens": 300, "seconds": 4.5})

    commit(store, report, AGENT)
    assert count(org_dir) == before + 3
    assert trailers(org_dir, "Aoi-Transition") == ["processing->completed"]
    assert trailers(org_dir, "Aoi-Actor") == ["agent:coo"]
    assert trailers(org_dir, "Aoi-Cost-Usd") == ["0.25"]
    assert trailers(org_dir, "Aoi-Cost-Input-Tokens") == ["1200"]
    assert trailers(org_dir, "Aoi-Cost-Output-Tokens") == ["300"]
    assert trailers(org_dir, "Aoi-Cost-Seconds") == ["4.5"]
    # the committed file is the new state
    task = load_org(Store(org_dir)).tasks[tid]
    assert task.status is Status.COMPLETED and task.cost["usd"] == 0.25
    assert_clean(org_dir)
    fsck = subprocess.run(["git", "fsck", "--full", "--strict"], cwd=org_dir,
                          capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stderr
    assert "error" not in fsck.stderr.lower() and "warning" not in fsck.stderr.lower()


def test_several_tasks_in_one_commit_get_a_trailer_pair_each(org_dir: Path) -> None:
    store = Store(org_dir)
    root = new_task(store, "root")
    kid = new_task(store, "kid", parent=root)
    dep = new_task(store, "after", depends_on=[kid])
    before = count(org_dir)
    commit(store, lambda txn: task_ops.cancel_cascade(txn, store.load_tasks().tasks, root, "no"),
           HUMAN)
    assert count(org_dir) == before + 1
    assert trailers(org_dir, "Aoi-Task") == [root, kid, dep]
    assert trailers(org_dir, "Aoi-Transition") == ["pending->cancelled"] * 3
    assert "(+2 more)" in git(org_dir, "log", "-1", "--format=%s")
    assert_clean(org_dir)


def test_new_task_goes_into_a_two_level_shard(org_dir: Path) -> None:
    store = Store(org_dir)
    tid = new_task(store)
    assert ID_RE.match(tid)
    path = shard_path(tid)
    assert path == f"tasks/{tid[2]}/{tid[3]}/{tid}.yaml"
    listed = git(org_dir, "ls-tree", "-r", "--name-only", "HEAD", "tasks/").splitlines()
    assert listed.count(path) == 1
    assert (org_dir / path).read_bytes() == git(org_dir, "show", f"HEAD:{path}").encode()
    assert_clean(org_dir)


def test_a_persons_uncommitted_edits_stay_uncommitted(org_dir: Path) -> None:
    store = Store(org_dir)
    tid = new_task(store)
    path = shard_path(tid)
    task_file, other = org_dir / path, org_dir / "aoi.yaml"
    mine = task_file.read_text() + "# my note, not saved yet\n"
    task_file.write_text(mine)
    other_text = other.read_text() + "# also mine\n"
    other.write_text(other_text)
    untracked = org_dir / "tasks" / "draft.yaml"
    untracked.write_text("title: a draft\n")

    commit(store, lambda txn: txn.update(tid, status=Status.PROCESSING), DAEMON)

    committed = git(org_dir, "show", f"HEAD:{path}")
    assert "status: processing" in committed and "my note" not in committed
    assert "also mine" not in git(org_dir, "show", "HEAD:aoi.yaml")
    assert git(org_dir, "show", "--name-only", "--format=", "HEAD").split() == [path]
    # the person's files are exactly as they left them
    assert task_file.read_text() == mine
    assert other.read_text() == other_text
    assert untracked.read_text() == "title: a draft\n"
    status = git(org_dir, "status", "--porcelain", "--untracked-files=all").splitlines()
    assert sorted(status) == sorted([f" M {path}", " M aoi.yaml", "?? tasks/draft.yaml"])


def test_a_persons_staged_change_stays_staged(org_dir: Path) -> None:
    store = Store(org_dir)
    tid = new_task(store)
    other_tid = new_task(store, "another")
    sop = org_dir / "sops" / "definition-of-done.md"
    sop.write_text(sop.read_text() + "\nStaged by a person.\n")
    git(org_dir, "add", "sops/definition-of-done.md")
    staged_task = org_dir / shard_path(other_tid)
    staged_task.write_text(staged_task.read_text() + "labels: [mine]\n")
    git(org_dir, "add", shard_path(other_tid))

    commit(store, lambda txn: txn.update(tid, status=Status.PROCESSING), DAEMON)
    commit(store, lambda txn: txn.update(other_tid, priority=3), DAEMON)

    assert sorted(git(org_dir, "diff", "--cached", "--name-only").split()) == sorted(
        ["sops/definition-of-done.md", shard_path(other_tid)])
    assert "Staged by a person." not in git(org_dir, "show", "HEAD:sops/definition-of-done.md")
    assert "mine" not in git(org_dir, "show", f"HEAD:{shard_path(other_tid)}")
    assert "Staged by a person." in git(org_dir, "show", ":sops/definition-of-done.md")
    assert "labels:\n- mine" in git(org_dir, "show", f":{shard_path(other_tid)}") or \
        "labels: [mine]" in git(org_dir, "show", f":{shard_path(other_tid)}")
    # the file aoi moved and the person did not touch is clean
    assert shard_path(tid) not in git(org_dir, "status", "--porcelain")


def test_deleting_a_task_file_through_the_store_prunes_the_shard(org_dir: Path) -> None:
    store = Store(org_dir)
    tid = new_task(store)
    path = shard_path(tid)
    commit(store, lambda txn: txn.put_file(path, None), HUMAN)
    assert not (org_dir / path).exists()
    assert not (org_dir / path).parent.exists()
    assert_clean(org_dir)


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from aoi_git.domain.model import Actor, ActorKind
    from aoi_git.store.org_store import Store
    from aoi_git.store.txn import commit

    root, tid, path, tag, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
    store = Store(Path(root))
    actor = Actor(ActorKind.AGENT, tag)
    for i in range(n):
        def add(txn, i=i):
            t = txn.get(tid)
            txn.update(tid, labels=(*t.labels, f"{tag}-{i}"))
        commit(store, add, actor, {tid: path})
    """
)


@pytest.mark.slow
def test_compare_and_swap_loses_no_update_between_two_processes(org_dir: Path) -> None:
    store = Store(org_dir)
    tid = new_task(store, "contended")
    before = count(org_dir)
    n = 200
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(org_dir), tid, shard_path(tid), tag,
                          str(n)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for tag in ("p1", "p2")
    ]
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
    labels = load_org(Store(org_dir)).tasks[tid].labels
    expected = {f"{tag}-{i}" for tag in ("p1", "p2") for i in range(n)}
    assert set(labels) == expected and len(labels) == 2 * n
    # each writer's own updates are in its order
    for tag in ("p1", "p2"):
        mine = [lb for lb in labels if lb.startswith(tag)]
        assert mine == [f"{tag}-{i}" for i in range(n)]
    assert count(org_dir) == before + 2 * n
    assert git(org_dir, "rev-list", "--min-parents=2", "HEAD") == ""  # linear history
    assert git(org_dir, "fsck", "--full") is not None
    # the work tree and index followed the branch
    assert_clean(org_dir)


CLAIMER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from aoi_git.domain.model import Actor, Status
    from aoi_git.store.org_store import Store, host_actor
    from aoi_git.store.txn import commit

    root, tid, status = sys.argv[1], sys.argv[2], sys.argv[3]
    store = Store(Path(root))
    commit(store, lambda txn: txn.update(tid, status=Status(status)), Actor.parse(sys.argv[4]))
    """
)


def _other_writer(org_dir: Path, tid: str, status: str, actor: str) -> None:
    proc = subprocess.run([sys.executable, "-c", CLAIMER, str(org_dir), tid, status, actor],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_a_second_claim_on_a_moved_head_is_refused_and_commits_nothing(org_dir: Path) -> None:
    store = Store(org_dir)
    tid = new_task(store)
    calls: list[str] = []

    def claim(txn: Txn) -> None:
        calls.append(txn.view.oid or "")
        if len(calls) == 1:  # another host claims it while we are building our commit
            _other_writer(org_dir, tid, "processing", host_actor())
        txn.move(tid, Status.PROCESSING)

    head_before = git(org_dir, "rev-parse", "HEAD").strip()
    with pytest.raises(IllegalTransition, match="already processing"):
        commit(store, claim, DAEMON)
    assert len(calls) == 2 and calls[0] == head_before and calls[1] != head_before
    assert count(org_dir) == 3  # found, created, the other host's claim; nothing of ours
    assert git(org_dir, "log", "-1", "--format=%s").startswith(f"aoi: {tid} pending -> processing")
    assert_clean(org_dir)


def test_a_rebuilt_transition_is_checked_against_the_moved_head(org_dir: Path) -> None:
    store = Store(org_dir)
    tid = new_task(store)
    calls = 0

    def claim(txn: Txn) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:  # a person cancels it meanwhile
            _other_writer(org_dir, tid, "cancelled", f"human:{PERSON_NAME}")
        txn.update(tid, status=Status.PROCESSING)

    before = count(org_dir)
    with pytest.raises(IllegalTransition, match="cancelled -> processing"):
        commit(store, claim, DAEMON)
    assert calls == 2
    assert count(org_dir) == before + 1
    assert load_org(Store(org_dir)).tasks[tid].status is Status.CANCELLED


def test_parsed_tasks_are_cached_under_dot_aoi(org_dir: Path) -> None:
    store = Store(org_dir)
    ids = [new_task(store, f"task {i}") for i in range(5)]
    first = Store(org_dir)
    index = first.load_tasks()
    assert set(index.tasks) == set(ids)
    first.save_cache()
    cache = org_dir / ".aoi" / "cache" / "tasks.pickle"
    assert cache.is_file()
    assert "?? .aoi" not in git(org_dir, "status", "--porcelain", "--ignored=no")

    second = Store(org_dir)
    again = second.load_tasks()
    assert again.tasks == index.tasks
    # nothing parsed
    assert second.task_cache.parsed_blobs == 0 and not second.task_cache.dirty

    # one task changes through another store with its own index (whose cache its owner
    # saves): a fresh store parses that one blob only
    other = Store(org_dir)
    other.load_tasks()
    commit(other, lambda txn: txn.update(ids[0], priority=7), HUMAN)
    third = Store(org_dir)
    changed = third.load_tasks()
    assert changed.tasks[ids[0]].priority == 7
    assert changed.rows[ids[0]].priority == 7
    assert changed.rows[ids[0]].path == shard_path(ids[0])
    assert third.task_cache.parsed_blobs == 1
    third.save_cache()
    # ... and through a store that read no index (a one-off command): the cache follows
    commit(Store(org_dir), lambda txn: txn.update(ids[1], priority=5), HUMAN)
    fourth = Store(org_dir)
    assert fourth.load_tasks().rows[ids[1]].priority == 5
    assert fourth.task_cache.parsed_blobs == 0


@pytest.mark.parametrize("garbage", [
    b"\x00\xffnot a pickle at all",
    b"",
    pickle.dumps({"version": -1}),
    pickle.dumps(["a", "list"]),
    pickle.dumps({"version": 3}),  # the right version, nothing else
])
def test_a_corrupt_cache_is_ignored_and_rebuilt(org_dir: Path, garbage: bytes) -> None:
    store = Store(org_dir)
    ids = {new_task(store, f"task {i}") for i in range(3)}
    cache = org_dir / ".aoi" / "cache" / "tasks.pickle"
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(garbage)
    fresh = Store(org_dir)
    index = fresh.load_tasks()
    assert set(index.tasks) == ids
    fresh.save_cache()
    assert cache.read_bytes() != garbage  # rebuilt
    warm = Store(org_dir)
    assert set(warm.load_tasks().tasks) == ids
    assert warm.task_cache.parsed_blobs == 0  # and usable again


def test_a_cache_from_before_a_plain_git_commit_is_not_trusted(org_dir: Path) -> None:
    store = Store(org_dir)
    tid = new_task(store)
    warm = Store(org_dir)
    warm.load_tasks()
    warm.save_cache()
    path = org_dir / shard_path(tid)
    path.write_text(path.read_text().replace("Build the login API", "Renamed by hand"))
    git(org_dir, "commit", "-qam", "rename by hand")
    assert Store(org_dir).load_tasks().tasks[tid].title == "Renamed by hand"


def test_cache_and_runtime_files_never_enter_history(org_dir: Path) -> None:
    store = Store(org_dir)
    new_task(store)
    s = Store(org_dir)
    s.load_tasks()
    s.save_cache()
    assert (org_dir / ".aoi").is_dir()
    commit(s, lambda txn: txn.put_file("notes.md", b"hello\n"), HUMAN)
    assert not [p for p in git(org_dir, "ls-tree", "-r", "--name-only", "HEAD").split()
                if p.startswith(".aoi")]
    assert_clean(org_dir)


def test_commit_time_is_now_and_author_is_the_actor_for_machines(org_dir: Path) -> None:
    store = Store(org_dir)
    tid = new_task(store)
    commit(store, lambda txn: txn.update(tid, status=Status.PROCESSING), DAEMON)
    host = f"{socket.gethostname()} (daemon)|{socket.gethostname()}@aoi.invalid"
    assert git(org_dir, "log", "-1", "--format=%an|%ae").strip() == host
    # committed by the daemon's host, not under the person's name from the environment
    assert git(org_dir, "log", "-1", "--format=%cn|%ce").strip() == host
    assert os.environ["GIT_COMMITTER_NAME"] not in git(org_dir, "log", "-1", "--format=%cn")
    commit(store, lambda txn: txn.update(tid, title="Renamed"), HUMAN)
    assert git(org_dir, "log", "-1", "--format=%cn").strip() == os.environ["GIT_COMMITTER_NAME"]


def test_big_blobs_are_read_from_memory_and_stay_exact(org_dir: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # an employee's journal only grows and is read several times per task: its bytes are
    # kept by blob id (what was just written, what was read), never stale, and bounded
    store = Store(org_dir)
    path = "employees/coo/journal.md"
    big = b"## 2026-01-01 00:00 t-x: entry\n\n" + b"x" * (store_mod.BIG_BLOB + 10)
    oid, _ = commit(store, lambda txn: txn.put_file(path, big), HUMAN)
    assert oid is not None
    blob = store.head().blob_id(path)
    assert blob is not None and bytes.fromhex(blob) in store_mod._BIG_BLOBS  # kept on write
    assert store.head().read(path) == big
    bigger = big + b"more\n"
    commit(store, lambda txn: txn.put_file(path, bigger), HUMAN)
    assert store.head().read(path) == bigger  # a new version is a new id: never stale
    assert store.view(oid).read(path) == big
    # another repository with the same content gets the same bytes (content-addressed)
    other = tmp_path / "other"
    git(tmp_path, "init", "-q", str(other))
    (other / "j.md").write_bytes(big)
    git(other, "add", "j.md")
    git(other, "commit", "-q", "-m", "j")
    assert Store(other).head().read("j.md") == big
    # bounded: past the byte cap the oldest go first, and reads still work from git
    monkeypatch.setattr(store_mod, "_BIG_BLOBS_MAX_BYTES", len(bigger) + 1)
    store_mod.remember_blob(pygit2.Oid(raw=b"\x01" * 20), b"y" * store_mod.BIG_BLOB)
    assert store_mod._big_blobs_bytes <= len(bigger) + 1
    assert store.head().read(path) == bigger and store.view(oid).read(path) == big
