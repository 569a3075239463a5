"""Re-planning keeps what was done: when a decomposed task runs again (its review
rejected it, or it failed because a subtask failed), its planner sees the plan it made
(`plan_section`, in its context) and returns a revision instead of a new plan.

How a planner's `subtasks` (with `keep` and `cancel`, docs/agents.md) revise the current
plan (`revise`):

- a finished subtask (accepted, its branch merged) always stays: accepted work is never
  planned or done again;
- a subtask named in `cancel` leaves the plan: it is marked superseded, and the daemon
  cancels it (once it is not running);
- a subtask named in `keep` stays; a failed one runs again (its attempts start over);
- an item of `subtasks` whose title is that of an open subtask of the plan *is* that
  subtask (kept, not created twice); the others are created;
- the other unfinished subtasks stay when the result names any `keep` or `cancel`, and
  are superseded otherwise (then `subtasks` is the whole new plan).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from aoi_git.domain.model import Status, Task
from aoi_git.org.decompose import create_subtasks, subtask_keys
from aoi_git.store.txn import Txn, now_iso

S = Status
SUMMARY_CHARS = 300
SUPERSEDED_SHOWN = 12


@dataclass(frozen=True)
class Revision:
    """What a revision did to a task's plan."""

    subtasks: tuple[str, ...]  # the plan now: the subtasks kept, then those created
    created: tuple[str, ...]
    kept: tuple[str, ...]
    superseded: tuple[str, ...]  # left the plan now (the daemon cancels the open ones)
    retried: tuple[str, ...]  # kept failed subtasks, to run again

    def describe(self) -> str:
        def n(ids: tuple[str, ...]) -> str:
            return f"{len(ids)} ({', '.join(ids)})" if ids else "0"

        parts = [f"kept {n(self.kept)}"]
        if self.retried:
            parts.append(f"retrying {', '.join(self.retried)}")
        parts.append(f"added {n(self.created)}")
        if self.superseded:
            parts.append(f"superseded {', '.join(self.superseded)}")
        return ", ".join(parts)


def _norm(title: str) -> str:
    return " ".join(title.lower().split())


def current_plan(task: Task, tasks: Mapping[str, Task]) -> list[Task]:
    """The subtasks of `task`'s current plan, as known in `tasks`."""
    return [tasks[i] for i in task.bookkeeping.subtasks if i in tasks]


def revision_problem(task: Task, keep: Sequence[str], cancel: Sequence[str],
                     tasks: Mapping[str, Task]) -> str | None:
    """Why `keep`/`cancel` cannot revise `task`'s plan, or None."""
    plan = {t.id: t for t in current_plan(task, tasks)}
    for tid in (*keep, *cancel):
        if tid not in plan:
            listed = ", ".join(plan) or "none"
            return (f"{tid!r} is not a subtask of {task.id}'s current plan "
                    f"(its subtasks: {listed})")
    both = sorted(set(keep) & set(cancel))
    if both:
        return f"subtask {both[0]} is both kept and cancelled"
    for tid in cancel:
        if plan[tid].status is S.FINISHED:
            return (f"subtask {tid} is finished: its accepted work is merged and stays in "
                    "the plan; do not cancel it")
    gone = set(cancel)
    for t in plan.values():
        if t.id not in gone and t.status is not S.FINISHED:
            lost = [d for d in t.depends_on if d in gone]
            if lost:
                return (f"subtask {t.id} stays but depends on {lost[0]}, which is cancelled: "
                        f"cancel {t.id} too, or keep {lost[0]}")
    return None


def revise(txn: Txn, task: Task, items: Sequence[Mapping[str, Any]],
           tasks: Mapping[str, Task], *, keep: Collection[str] = (),
           cancel: Collection[str] = ()) -> Revision:
    """Apply a planner's `items` (`subtasks`), `keep` and `cancel` to `task`'s plan (the
    rules of the module doc; `revision_problem` found nothing). Creates the new subtasks
    and lets kept failed ones run again; the caller records the plan on `task`."""
    revising = bool(keep or cancel)
    plan = [txn.find(i) or tasks[i] for i in task.bookkeeping.subtasks if i in tasks]
    open_by_title = {_norm(t.title): t for t in plan
                     if t.status is not S.CANCELLED and t.id not in cancel}
    known: dict[str, str] = {}
    new_items: list[Mapping[str, Any]] = []
    reused: set[str] = set()
    for key, item in zip(subtask_keys(items), items, strict=True):
        same = open_by_title.get(_norm(str(item.get("title") or "")))
        if same is not None and same.id not in reused:
            known[key] = same.id
            reused.add(same.id)
        else:
            new_items.append(item)
    kept: list[str] = []
    superseded: list[str] = []
    for t in plan:
        stays = (t.id not in cancel and t.status is not S.CANCELLED and (
            t.status is S.FINISHED or t.id in keep or t.id in reused or revising))
        (kept if stays else superseded).append(t.id)
    created = create_subtasks(txn, task, new_items, tasks, known) if new_items else []
    retried = [tid for tid in kept if _run_again(txn, tid, task)]
    return Revision(subtasks=(*kept, *created), created=tuple(created), kept=tuple(kept),
                    superseded=tuple(superseded), retried=tuple(retried))


def _run_again(txn: Txn, tid: str, parent: Task) -> bool:
    """A kept failed subtask starts its attempts over (the daemon retries it), unless a
    person is deciding on it."""
    t = txn.get(tid)
    if t.status is not S.FAILED:
        return False
    hid = t.bookkeeping.escalation
    h = txn.find(hid) if hid is not None else None
    if h is not None and not h.is_terminal:
        return False
    note = {"from": str(txn.actor), "kind": "note", "at": now_iso(),
            "text": f"kept by the re-plan of {parent.id}: run it again"}
    txn.put(t.with_changes(attempts=0, retry_at=None, feedback=(*t.feedback, note),
                           bookkeeping=replace(t.bookkeeping, escalation=None,
                                               folded_into=None)))
    return True


def record(task: Task, rev: Revision) -> Task:
    """`task` with its plan after `rev`."""
    book = task.bookkeeping
    return task.with_changes(bookkeeping=replace(
        book, subtasks=rev.subtasks, superseded=(*book.superseded, *rev.superseded)))


def plan_section(task: Task, tasks: Mapping[str, Task]) -> str:
    """The context section that shows a planner the plan it made (empty for a task never
    decomposed)."""
    book = task.bookkeeping
    plan = current_plan(task, tasks)
    if not plan and not book.superseded:
        return ""
    lines = ["## Your plan so far (revise it; do not start over)", "",
             "You decomposed this task before. Finished subtasks were accepted and merged "
             "into the base: they stay, and their work must not be planned or done again. "
             "Answer with a revision: `keep` (ids of subtasks to keep; a failed one runs "
             "again), `cancel` (ids of unfinished subtasks to drop) and `subtasks` (only "
             "what to add; `depends_on` may name the ids below). With `keep` or `cancel`, "
             "subtasks you do not name stay as they are.", ""]
    chosen = (task.result or {}).get("chosen")
    if isinstance(chosen, Mapping):
        lines += [f"The plan chosen: {chosen.get('plan')}. {chosen.get('title', '')} "
                  f"(by {chosen.get('by', '?')}: {chosen.get('reason') or 'no reason given'})",
                  ""]
    for t in plan:
        state = t.status.value + (", merged" if t.status is S.FINISHED else "")
        who = f" @{t.assignee}" if t.assignee else ""
        summary = " ".join(str((t.result or {}).get("summary") or "").split())
        line = f"- {t.id} [{state}]{who} {t.title}"
        if summary:
            line += f": {summary[:SUMMARY_CHARS]}"
        lines.append(line)
        if t.status is not S.FINISHED and t.feedback_texts():
            last = " ".join(t.feedback_texts()[-1].split())
            lines.append(f"  last feedback: {last[:SUMMARY_CHARS]}")
    gone = [tasks[i] for i in book.superseded if i in tasks][-SUPERSEDED_SHOWN:]
    if gone:
        lines += ["", "Superseded by an earlier revision (no longer part of the plan):"]
        lines += [f"- {t.id} [{t.status.value}, superseded] {t.title}" for t in gone]
    return "\n".join(lines)
