"""Control over running work, as Txn builders: pause, resume, reassign, preempt, and the
settling of a run that was stopped (`aoi_git.domain.control`).

A person pauses (`processing -> suspended`), resumes (`suspended -> pending`) or
reassigns a task; the daemon suspends one for a task that outranks it. None of these
stops an agent by itself: the daemon sees that the run is no longer wanted, stops it as a
unit, commits what it had written on its branch as the agent's work and then settles the
task here (`settle_stopped`): what the run spent is added to its cost, a suspended task
is marked to resume in the same worktree (and backend session), a reassigned one goes
back to pending with a handoff note for its new assignee. No attempt is counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from aoi_git.domain.control import Stop
from aoi_git.domain.model import Employee, OrgConfig, Status, Task
from aoi_git.errors import AoiError
from aoi_git.org.flow import add_cost, fb
from aoi_git.store.txn import Txn

S = Status
REASSIGNABLE = (S.PENDING, S.PROCESSING, S.SUSPENDED)


def pause(txn: Txn, task_id: str, why: str) -> Task:
    """A person's pause: the run stops, the task waits for `resume`."""
    t = txn.get(task_id)
    if t.status is not S.PROCESSING:
        raise AoiError(f"task {task_id} is {t.status.value}: only a running (processing) "
                       "task can be paused")
    txn.body_lines.append(f"paused: {why}")
    return txn.put(t.with_changes(status=S.SUSPENDED, bookkeeping=replace(
        t.bookkeeping, preempted_by=None)))


def preempt(txn: Txn, task_id: str, for_task: str, reason: str) -> Task:
    """The daemon suspends `task_id` for `for_task`, which outranks it; it resumes when a
    slot is free again."""
    t = txn.get(task_id)
    txn.body_lines.append(reason)
    return txn.put(t.with_changes(status=S.SUSPENDED, bookkeeping=replace(
        t.bookkeeping, preempted_by=for_task)))


def resume(txn: Txn, task_id: str) -> Task:
    """A person resumes a suspended task: back in the queue, to go on where it was."""
    t = txn.get(task_id)
    if t.status is not S.SUSPENDED:
        raise AoiError(f"task {task_id} is {t.status.value}: only a suspended task can be "
                       "resumed")
    txn.body_lines.append("resumed: it goes on where it was")
    return txn.put(t.with_changes(status=S.PENDING, bookkeeping=replace(
        t.bookkeeping, preempted_by=None, resuming=True)))


def ran_by(task: Task) -> str | None:
    """The employee its last run was (or is) by."""
    who = task.bookkeeping.routed_to or task.assignee
    return None if who is None or who.startswith("role:") else who


def handoff_note(task: Task, old: str, new: str) -> str:
    return (f"handed over from {old} to {new}: {old}'s work so far is on the branch "
            f"aoi/{task.id}, which your worktree starts from. Read it, keep what is good "
            "and finish the task.")


def reassign(txn: Txn, task_id: str, assignee: str, employees: Mapping[str, Employee],
             config: OrgConfig, why: str = "") -> Task:
    """A person gives a pending, running or suspended task to `assignee`. A running one
    is stopped by the daemon and handed over (`settle_stopped`); a suspended or pending
    one is handed over here."""
    t = txn.get(task_id)
    if t.status not in REASSIGNABLE:
        raise AoiError(f"task {task_id} is {t.status.value}: only pending, processing or "
                       "suspended tasks can be reassigned (a failed one: answer its "
                       "escalation with `reassign to ...`)")
    if assignee.startswith("role:"):
        if not any(e.role == assignee[5:] and e.is_active for e in employees.values()):
            raise AoiError(f"no active employee has role {assignee[5:]!r}")
    elif assignee in config.humans:
        raise AoiError(f"{assignee} is a person: reassign to an employee or role:<role>")
    elif assignee not in employees or not employees[assignee].is_active:
        raise AoiError(f"no active employee {assignee!r} (see `aoi status`)")
    if assignee == t.assignee:
        raise AoiError(f"task {task_id} is already assigned to {assignee}")
    txn.body_lines.append(f"reassigned from {t.assignee or 'nobody'} to {assignee}"
                          + (f": {why}" if why else ""))
    if t.status is S.PROCESSING:  # the daemon stops the run and hands it over
        notes = (fb(txn.actor, "handoff", f"reassigned to {assignee}: {why}"),) if why else ()
        return txn.put(t.with_changes(assignee=assignee, feedback=(*t.feedback, *notes)))
    old = ran_by(t) or t.assignee or "nobody"
    book = replace(t.bookkeeping, preempted_by=None, session=None, routed_to=None)
    if not (t.status is S.SUSPENDED or t.cost.get("seconds")):  # it never ran: no handover
        return txn.put(t.with_changes(assignee=assignee, bookkeeping=book))
    note = handoff_note(t, old, assignee) + (f" ({why})" if why else "")
    book = replace(book, handoff_from=old if old in employees else None)
    return txn.put(t.with_changes(status=S.PENDING, assignee=assignee, bookkeeping=book,
                                  feedback=(*t.feedback, fb(txn.actor, "handoff", note))))


def settle_stopped(txn: Txn, task_id: str, *, employee: str, stop: Stop, why: str,
                   usage: Mapping[str, float], seconds: float, session: str | None,
                   now: float) -> Task:
    """Record a run the daemon stopped: its cost, and what comes next by `stop`."""
    t = txn.get(task_id)
    cost = add_cost(t, usage, seconds)
    txn.add_cost({**usage, "seconds": round(seconds, 3)})
    txn.trailers.append(("Aoi-Employee", employee))
    book = t.bookkeeping
    if stop is Stop.SUSPEND and not t.is_terminal:
        txn.body_lines.append(f"the run of {employee} was stopped ({why}); its worktree and "
                              "branch are kept for it to resume")
        return txn.put(t.with_changes(cost=cost, bookkeeping=replace(
            book, resuming=True, session=session or book.session)))
    if stop is Stop.HANDOFF and t.status in (S.PROCESSING, S.PENDING):
        new = t.assignee or "nobody"
        txn.body_lines.append(f"the run of {employee} was stopped ({why}); handed over")
        return txn.put(t.with_changes(
            status=S.PENDING, cost=cost,
            bookkeeping=replace(book, routed_to=None, handoff_from=employee, resuming=None,
                                session=None, preempted_by=None),
            feedback=(*t.feedback, fb(txn.actor, "handoff", handoff_note(t, employee, new),
                                      now))))
    txn.body_lines.append(f"the run of {employee} was stopped ({why}); its work is kept on "
                          f"aoi/{task_id}")
    return txn.put(t.with_changes(cost=cost))


def clear_continuation(txn: Txn, task_id: str) -> None:
    """A run ended on its own: the marks of a stopped run it continued are spent."""
    t = txn.find(task_id)
    book = t.bookkeeping if t is not None else None
    if t is None or book is None or not (book.resuming or book.session or book.handoff_from):
        return
    txn.put(t.with_changes(bookkeeping=replace(book, resuming=None, session=None,
                                               handoff_from=None)))
