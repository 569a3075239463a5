"""A person's own work: a work task assigned to a person (an id of aoi.yaml's `humans`)
is finished by that person (`aoi task done`, or `status: completed` in its file), and
then goes through its review like an agent's work.

The move is the lifecycle's `pending -> completed` by a human (work tasks only), made
by the assigned person or the CEO (`aoi_git.domain.person_work.done_problem`).
"""

from __future__ import annotations

from aoi_git.domain.model import Kind, OrgConfig, Status, Task
from aoi_git.domain.person_work import done_problem
from aoi_git.errors import AoiError
from aoi_git.store.txn import Txn


def finish(txn: Txn, task_id: str, summary: str, *, branch: str | None,
           config: OrgConfig, email: str = "") -> Task:
    """`aoi task done`: the person's pending work task completed with their summary (and
    `branch`, when they left work on `aoi/<id>`), to be reviewed."""
    task = txn.get(task_id)
    if task.kind is not Kind.WORK:
        raise AoiError(f"task {task_id} is a {task.kind.value} task: `aoi answer` answers "
                       "a question; `aoi task done` finishes work")
    if task.status is not Status.PENDING:
        raise AoiError(f"task {task_id} is {task.status.value}; only pending work is "
                       "finished by hand")
    new = task.with_changes(status=Status.COMPLETED, result={
        "summary": summary or "done", "outcome": "completed",
        **({"branch": branch} if branch else {})})
    refused = done_problem(task, new, txn.actor, config, email)
    if refused:
        raise AoiError(refused)
    txn.body_lines.append(summary or "done")
    return txn.put(new)
