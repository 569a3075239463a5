"""Preemption: which running tasks to suspend so that tasks that outrank them can start.

Pure: the scheduler hands in the ready tasks that found no free slot (`Waiter`, in
dispatch order) and the running ones (`Holder`); `choose` returns the suspensions. The
policy is `scheduling.preempt.min_priority_gap` of aoi.yaml (None: off): a waiter may
take the slot of a running task whose priority is lower by at least the gap. So a task
suspended for another never outranks it by the gap in turn, and the two do not take
turns suspending each other.

- A waiter whose employees (its assignee, or those of its `role:`) have no free slot
  needs a slot of one of them; one that only lacks a slot of `limits.max_agents` can
  take any running task's.
- A run already being stopped (its task no longer `processing`) frees its slot soon: it
  serves the first waiter that could use it, so one shortage never suspends two tasks.
- Among the runs a waiter may take, the lowest priority goes first, then the youngest
  task (the least work set aside).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Waiter:
    task_id: str
    employees: frozenset[str]  # who it may run on (several for a `role:` assignee)
    priority: int
    employee_full: bool  # none of them has a free slot


@dataclass(frozen=True)
class Holder:
    task_id: str
    employee: str
    priority: int
    created: str
    leaving: bool = False  # being stopped already: its slot is about to be free


@dataclass(frozen=True)
class Preemption:
    victim: str
    for_task: str
    reason: str


def choose(waiters: Sequence[Waiter], holders: Sequence[Holder], gap: int | None,
           global_full: bool) -> list[Preemption]:
    """The running tasks to suspend for `waiters` (see the module doc)."""
    if gap is None or not holders:
        return []
    # youngest first, then (stably) lowest priority first: the order victims are taken in
    order = sorted(holders, key=lambda h: h.created, reverse=True)
    order.sort(key=lambda h: h.priority)
    taken: set[str] = set()
    out: list[Preemption] = []
    for w in waiters:
        if not (w.employee_full or global_full):
            continue  # it lacks no slot: something else holds it back
        usable = [h for h in order if h.task_id not in taken and h.task_id != w.task_id
                  and (not w.employee_full or h.employee in w.employees)]
        leaving = next((h for h in usable if h.leaving), None)
        if leaving is not None:
            taken.add(leaving.task_id)
            continue
        victim = next((h for h in usable if w.priority - h.priority >= gap), None)
        if victim is None:
            continue
        taken.add(victim.task_id)
        out.append(Preemption(victim.task_id, w.task_id,
                              f"preempted by {w.task_id} (priority {w.priority} over "
                              f"{victim.priority})"))
    return out
