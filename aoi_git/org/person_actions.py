"""A person's decisions as commits: a review's accept or reject, an answer to a question.

`aoi review`, `aoi answer` and the board's buttons all call these, so a decision made in
the browser is the same commit, with the same trailers, as one made on the command line.
"""

from __future__ import annotations

from aoi_git.domain.model import Actor
from aoi_git.errors import AoiError
from aoi_git.org import flow
from aoi_git.org.organisation import Org
from aoi_git.store.org_store import Store
from aoi_git.store.txn import Txn, commit


def review(store: Store, org: Org, task_id: str, accept: bool, message: str, person: Actor,
           email: str = "") -> str:
    """Accept or reject the completed task `task_id` (an id or a unique prefix) as `person`;
    returns its full id. A rejection needs feedback."""
    tid = org.resolve_id(task_id)
    if not accept and not message.strip():
        raise AoiError("a rejection needs feedback: --reject -m \"what to change\"")

    def build(txn: Txn) -> None:
        flow.review_by_person(txn, tid, accept, message, person, tasks=org.tasks,
                              employees=org.employees, config=org.config, email=email)

    commit(store, build, person, org.index.paths)
    return tid


def answer(store: Store, org: Org, task_id: str, text: str, person: Actor) -> str:
    """Answer the question (a `human` task) or escalation `task_id` as `person`; returns
    its full id."""
    tid = org.resolve_id(task_id)

    def build(txn: Txn) -> None:
        flow.answer_human_task(txn, tid, text)

    commit(store, build, person, org.index.paths)
    return tid
