"""Whether a running agent may go on: the rule that stops runs the org no longer wants.

A run goes on only while its task is `processing` and assigned to the run's employee. A
person's cancel, pause or reassignment (with `aoi task ...` or by editing the file), a
cascade, or the scheduler's preemption changes the task; the daemon then stops the run
as a unit and settles it by how it was stopped (`Stop`).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum

from aoi_git.domain.model import Employee, Status, Task


class Stop(str, Enum):
    """How a stopped run is settled."""

    SUSPEND = "suspend"  # paused or preempted: worktree and branch kept, resumed later
    HANDOFF = "handoff"  # reassigned: its branch kept for the new assignee
    END = "end"  # cancelled (or moved on by someone else): its branch kept, nothing resumes


def runs_for(task: Task, employee: str, employees: Mapping[str, Employee]) -> bool:
    """True when `employee` is (still) who the task is assigned to."""
    who = task.assignee
    if who is None:
        return False
    if who.startswith("role:"):
        emp = employees.get(employee)
        return (task.bookkeeping.routed_to == employee and emp is not None
                and emp.role == who[5:])
    return who == employee


def stop_for(task: Task | None, employee: str,
             employees: Mapping[str, Employee]) -> tuple[Stop, str] | None:
    """Why the run of `employee` on `task` must stop, and how to settle it; None: it
    goes on."""
    if task is None:
        return Stop.END, "its task is gone"
    if task.status is Status.SUSPENDED:
        why = f"preempted by {task.bookkeeping.preempted_by}" if task.bookkeeping.preempted_by \
            else "paused"
        return Stop.SUSPEND, why
    if task.status is not Status.PROCESSING:
        return Stop.END, f"its task is {task.status.value}"
    if not runs_for(task, employee, employees):
        return Stop.HANDOFF, f"reassigned to {task.assignee or 'nobody'}"
    return None
