"""The board's read model on a real org: brought along commit by commit, it equals the
model built from scratch at the same commit."""

from __future__ import annotations

from pathlib import Path

from kit import PERSON_EMAIL, git
from orgkit import PERSON, TmpOrg

from aoi_git.board import read
from aoi_git.board.read import BoardData, Filters
from aoi_git.board.state import BoardState
from aoi_git.domain.model import Actor, ActorKind, Status
from aoi_git.org.organisation import load_org
from aoi_git.org.task_ops import new_task
from aoi_git.store.org_store import Store
from aoi_git.store.txn import Txn, commit


def summary(d: BoardData) -> dict[str, object]:
    return {
        "commit": d.commit,
        "counts": d.counts,
        "project_of": dict(d.project_of),
        "progress": {k: (p.total, p.done, p.cancelled, round(p.usd, 6))
                     for k, p in d.progress.items()},
        "children": {k: set(v) for k, v in d.children.items() if v},
        "open": {k: set(v) for k, v in d.open_by_id.items() if v},
        "usd": {k: round(v, 6) for k, v in d.usd_by_employee.items() if round(v, 6)},
        "labels": d.labels,
        "columns": [(c.status, c.count, [t.id for t in c.tasks])
                    for c in d.columns(Filters(), 5)],
        "asks": [(a.kind, a.task.id) for a in read.asks(d)],
    }


def fresh(root: Path) -> dict[str, object]:
    return summary(read.build(load_org(Store(root))))


def test_the_model_brought_along_equals_the_model_built_again(tmp_path: Path) -> None:
    org = TmpOrg(tmp_path)
    org.new("t-p1", "Project one", labels=["alpha"])
    state = BoardState(org.root, PERSON, PERSON_EMAIL)
    seen = state.locked(summary)
    assert seen == fresh(org.root)
    store = Store(org.root)

    def change(build: object, actor: Actor = PERSON, *, reload: bool = False) -> None:
        now = load_org(store)
        loads = state.full_loads
        commit(store, lambda txn: build(txn, now.tasks), actor,  # type: ignore[operator]
               now.index.paths)
        got = state.locked(summary)
        assert got["commit"] != seen["commit"]
        assert got == fresh(org.root)
        assert state.full_loads == loads + reload  # brought along, unless tasks moved

    # a project decomposed in one commit (its tree lists the subtasks before the root)
    def decompose(txn: Txn, tasks: dict[str, object]) -> None:
        new_task(txn, {}, "Project two", task_id="t-p2", assignee="coo")
        new_task(txn, {}, "Child a", task_id="t-c1", parent="t-p2", assignee="hr",
                 labels=["beta"])
        new_task(txn, {}, "Child b", task_id="t-c2", parent="t-c1", assignee="coo")
    change(decompose)
    change(lambda txn, tasks: txn.put(txn.get("t-c1").with_changes(
        status=Status.PROCESSING)), Actor(ActorKind.DAEMON, "test"))
    change(lambda txn, tasks: txn.put(txn.get("t-c1").with_changes(
        status=Status.COMPLETED, cost={"usd": 0.25})), Actor(ActorKind.AGENT, "hr"))
    change(lambda txn, tasks: txn.put(txn.get("t-c2").with_changes(
        status=Status.CANCELLED)))
    change(lambda txn, tasks: txn.put(txn.get("t-c1").with_changes(parent="t-p1")),
           reload=True)
    change(lambda txn, tasks: new_task(txn, tasks, "Ask", kind="human", assignee="ceo",
                                       question="Which one?", task_id="t-q1"))
    # a person deletes a task file by hand; then edits aoi.yaml
    git(org.root, "rm", "-q", Store(org.root).load_tasks().paths["t-q1"])
    git(org.root, "commit", "-q", "--no-verify", "-m", "drop the question")
    loads = state.full_loads
    assert state.locked(summary) == fresh(org.root)
    assert state.full_loads == loads
    org.edit_config(lambda d: d.update(name="renamed"))
    org.commit("rename")
    assert state.locked(summary) == fresh(org.root)
    assert state.full_loads == loads + 1
    assert state.locked(lambda d: d.org.config.name) == "renamed"
