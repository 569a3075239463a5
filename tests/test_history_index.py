"""The history index (`.aoi/cache/history.sqlite`) answers exactly what `git log` answers.

Real repositories: commits made by the store, a person's plain `git commit`, a merge of a
branch, history rewritten with `git reset --hard`, a second process indexing ahead."""

from __future__ import annotations

from pathlib import Path

from kit import git

from aoi_git.domain.model import Actor, ActorKind, Status
from aoi_git.org.organisation import load_org
from aoi_git.org.task_ops import new_task
from aoi_git.store import history
from aoi_git.store.history import Record
from aoi_git.store.org_store import Store
from aoi_git.store.txn import Txn, commit

PERSON = Actor(ActorKind.HUMAN, "Test Person")
DAEMON = Actor(ActorKind.DAEMON, "host")
AGENT = Actor(ActorKind.AGENT, "coo")


def _new(store: Store, tid: str, **fields: object) -> None:
    tasks = load_org(store).tasks
    commit(store, lambda txn: new_task(txn, tasks, f"Task {tid}", task_id=tid,
                                       assignee="coo", **fields), PERSON)


def _move(store: Store, tid: str, status: Status, cost: dict[str, float] | None = None,
          also: str | None = None) -> None:
    paths = load_org(store).index.paths  # person-chosen ids live at tasks/<id>.yaml

    def fn(txn: Txn) -> None:
        txn.move(tid, status)
        if also:
            txn.move(also, status)
        if cost:
            txn.add_cost(cost)
    commit(store, fn, AGENT if status is Status.COMPLETED else DAEMON, paths)


def _key(r: Record) -> tuple[object, ...]:
    return (r.commit, r.time, r.subject, r.body.rstrip("\n"), r.actor, r.transitions,
            r.cost)


def _from_git(root: Path, tasks: list[str]) -> list[tuple[object, ...]]:
    return [_key(r) for r in history.records(root, tasks=tasks)]


def _from_index(store: Store, tasks: list[str], rev: str = "HEAD") -> list[tuple[object, ...]]:
    found = store.history.records(rev, tasks)
    assert found is not None
    return [_key(r) for r in found]


def test_index_matches_git_log_as_history_grows(org_dir: Path) -> None:
    store = Store(org_dir)
    _new(store, "t-a")
    _new(store, "t-b", depends_on=["t-a"])
    assert _from_index(store, ["t-a"]) == _from_git(org_dir, ["t-a"])  # first build
    _move(store, "t-a", Status.PROCESSING)
    _move(store, "t-a", Status.COMPLETED, cost={"usd": 0.25, "input_tokens": 10})
    _move(store, "t-a", Status.ACCEPTED)
    # caught up from where it stopped: the new commits are found, in order
    for ids in (["t-a"], ["t-b"], ["t-a", "t-b"], ["t-nope"]):
        assert _from_index(store, ids) == _from_git(org_dir, ids)
    got = _from_index(store, ["t-a"])
    assert [r[5] for r in got] == [[("t-a", "new->pending")], [("t-a", "pending->processing")],
                                  [("t-a", "processing->completed")],
                                  [("t-a", "completed->accepted")]]
    assert got[2][6] == {"usd": 0.25, "input_tokens": 10.0}


def test_commit_naming_two_tasks_and_person_commits(org_dir: Path) -> None:
    store = Store(org_dir)
    _new(store, "t-a")
    _new(store, "t-b")
    _move(store, "t-a", Status.PROCESSING, also="t-b")  # one commit, two tasks
    (org_dir / "notes.md").write_text("a person's file\n")
    git(org_dir, "add", "notes.md")
    git(org_dir, "commit", "-q", "--no-verify", "-m", "notes (not an aoi commit)")
    ids = ["t-a", "t-b"]
    assert _from_index(store, ids) == _from_git(org_dir, ids)
    assert len(_from_index(store, ids)) == 3  # the shared commit once


def test_merged_branch_commits_are_found_like_git_log(org_dir: Path) -> None:
    store = Store(org_dir)
    _new(store, "t-a")
    _move(store, "t-a", Status.PROCESSING)
    git(org_dir, "checkout", "-q", "-b", "aoi/t-a")  # the agent's branch, from the claim
    (org_dir / "work.txt").write_text("done\n")
    git(org_dir, "add", "work.txt")
    git(org_dir, "commit", "-q", "--no-verify", "-m",
        "agent work\n\nAoi-Task: t-a\nAoi-Actor: agent:coo")
    git(org_dir, "checkout", "-q", "main")
    _move(store, "t-a", Status.COMPLETED)
    git(org_dir, "merge", "-q", "--no-ff", "--no-verify", "-m",
        "aoi: merge aoi/t-a\n\nAoi-Task: t-a\nAoi-Actor: daemon:host", "aoi/t-a")
    got = _from_index(store, ["t-a"])
    # the branch's commit and the completion are not ordered by the graph: compare as sets,
    # then check the index's order is a topological one
    assert sorted(got) == sorted(_from_git(org_dir, ["t-a"])) and len(got) == 5
    seen: set[str] = set()
    for sha in (str(r[0]) for r in got):
        parents = git(org_dir, "rev-parse", f"{sha}^@").split()
        assert all(p in seen for p in parents if p in {str(r[0]) for r in got})
        seen.add(sha)


def test_rewritten_history_is_indexed_again(org_dir: Path) -> None:
    store = Store(org_dir)
    _new(store, "t-a")
    base = git(org_dir, "rev-parse", "HEAD").strip()
    _move(store, "t-a", Status.PROCESSING)
    assert len(_from_index(store, ["t-a"])) == 2
    git(org_dir, "reset", "-q", "--hard", base)
    _move(store, "t-a", Status.CANCELLED)  # another line: the indexed head is not on it
    assert _from_index(store, ["t-a"]) == _from_git(org_dir, ["t-a"])
    assert [r[5] for r in _from_index(store, ["t-a"])][-1] == [("t-a", "pending->cancelled")]


def test_an_older_rev_than_the_index_is_not_answered(org_dir: Path) -> None:
    store = Store(org_dir)
    _new(store, "t-a")
    old = git(org_dir, "rev-parse", "HEAD").strip()
    _move(store, "t-a", Status.PROCESSING)
    other = Store(org_dir)  # another process indexes the newer head first
    assert other.history.records("HEAD", ["t-a"]) is not None
    assert store.history.records(old, ["t-a"]) is None  # the caller asks git instead
    assert _from_index(store, ["t-a"]) == _from_git(org_dir, ["t-a"])


def test_a_corrupt_index_file_is_rebuilt(org_dir: Path) -> None:
    store = Store(org_dir)
    _new(store, "t-a")
    assert _from_index(store, ["t-a"]) == _from_git(org_dir, ["t-a"])
    store.history.close()
    path = org_dir / ".aoi" / "cache" / "history.sqlite"
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    path.write_bytes(b"this is not a database" * 100)
    fresh = Store(org_dir)
    assert fresh.history.records("HEAD", ["t-a"]) is None  # this lookup fails, and resets
    assert _from_index(fresh, ["t-a"]) == _from_git(org_dir, ["t-a"])


def test_a_shallow_clone_is_indexed_like_git_log_sees_it(org_dir: Path, tmp_path: Path) -> None:
    store = Store(org_dir)
    _new(store, "t-a")
    for status in (Status.PROCESSING, Status.COMPLETED, Status.ACCEPTED):
        _move(store, "t-a", status)
    clone = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "2", f"file://{org_dir}", str(clone))
    shallow = Store(clone)
    assert len(_from_index(shallow, ["t-a"])) == 2  # only what the clone has
    assert _from_index(shallow, ["t-a"]) == _from_git(clone, ["t-a"])
    _move(shallow, "t-a", Status.FINISHED)  # and it catches up from there
    assert _from_index(shallow, ["t-a"]) == _from_git(clone, ["t-a"])
    assert len(_from_index(shallow, ["t-a"])) == 3
