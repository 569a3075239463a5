"""How a task moves on without an agent's result: the moves the daemon makes itself.

An accepted task is merged and finished, or sent back (its branch touches org files, or
it conflicts with the base); a plan's step is made (a parent completed from its
subtasks, a task failed for good); a run the daemon lost is put back in the queue.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aoi_git.domain.model import Actor, Employee, OrgConfig, Status, Task
from aoi_git.org import flow
from aoi_git.org.task_ops import cancel_cascade
from aoi_git.store.txn import Txn

S = Status
RECOVERED = "recovered after a daemon restart"


def conflict_feedback(branch: str, base: str, paths: list[str]) -> str:
    """What an agent is told when its branch does not merge into the base."""
    return (f"merging {branch} into {base} conflicts in: " + ", ".join(paths)
            + ". Rebase your work on the current base.")


def send_back_for_conflict(txn: Txn, task_id: str, text: str, actor: Actor,
                           now: float | None = None) -> None:
    """Back to pending with the conflict in its feedback (not a rejection)."""
    cur = txn.get(task_id)
    txn.put(cur.with_changes(status=S.PENDING,
                             feedback=(*cur.feedback, flow.fb(actor, "conflict", text, now))))


def finish(txn: Txn, task_id: str, merged: str | None, then: bool = False) -> Task:
    """Accepted -> finished; `merged`: the merge commit in the org, recorded in its result.
    `then`: the accept is in this commit too (see `Txn.put`)."""
    cur = txn.get(task_id)
    res = dict(cur.result or {})
    if merged:
        res["merged"] = merged
    return txn.put(cur.with_changes(status=S.FINISHED, result=res or None), then=then)


def advance(txn: Txn, task_id: str, to: Status, reason: str, tasks: Mapping[str, Task],
            employees: Mapping[str, Employee], config: OrgConfig) -> None:
    """The plan's move of `task_id` to `to`, with `reason` in the commit. A parent that
    waited on its subtasks completes with a summary of theirs as its result; an accept
    (a task with no reviewer) records the daemon's authority for it."""
    cur = txn.get(task_id)
    if to is S.CANCELLED:  # superseded by a re-plan: with its own subtasks and dependents
        cancel_cascade(txn, tasks, task_id, reason)
        txn.body_lines.append(reason)
        return
    changes: dict[str, Any] = {"status": to}
    if to is S.ACCEPTED:
        flow.record_authority(txn, txn.actor, cur, tasks=tasks, employees=employees,
                              config=config)
    if to is S.COMPLETED and cur.status is S.WAITING:
        kids = [tasks[k] for k in cur.bookkeeping.subtasks
                if k in tasks]
        summary = "\n".join(f"- {k.id} {k.title}: "
                            f"{((k.result or {}).get('summary') or '')[:300]}"
                            for k in kids)
        changes["result"] = {**(cur.result or {}), "summary":
                             f"All {len(kids)} subtasks finished.\n{summary}"}
    txn.put(cur.with_changes(**changes))
    txn.body_lines.append(reason)


def fail_for_good(txn: Txn, task_id: str, reason: str, employees: Mapping[str, Employee],
                  config: OrgConfig, tasks: Mapping[str, Task], was_waiting: bool) -> None:
    """A deadlock or a failed subtask: failed, and straight to a person; a parent that
    `was_waiting` on its subtasks takes over their open escalations."""
    h = flow.escalate(txn, task_id, reason, employees, config, tasks, fail=True)
    if was_waiting:
        flow.fold_child_escalations(txn, task_id, h.id, tasks)


def requeue(txn: Txn, task_id: str, actor: Actor,
            why: str = RECOVERED, now: float | None = None) -> None:
    """Back to pending to run again (the run was lost, not failed), saying why."""
    t = txn.get(task_id)
    txn.put(t.with_changes(status=S.PENDING, feedback=(
        *t.feedback, flow.fb(actor, "note", f"{why}: run again", now))))
