"""Explore before executing: a planner may offer alternative plans (`plans` of its
result, docs/agents.md). The task then waits with no subtask while one is chosen:

- by the task's reviewer (`reviewer_of`), or the COO when it has none: an employee gets
  a choice task (`kind: review`, `extra.choice_for`) whose result names the plan
  (`choice: {plan, reason}`); a person gets a `human` task, answered with
  `aoi answer ID "2: why"` or decided with `aoi review TASK --choose 2 -m why`;
- with neither a reviewer nor a COO, the planner's first plan is taken at once.

The choice and its reason are committed with the chosen plan's subtasks (`Aoi-Plan`
trailer; `result.chosen` of the task); only then can any of them start. A cancelled
choice cancels the task; an answer that names no plan is asked again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from aoi_git.domain.bookkeeping import Bookkeeping
from aoi_git.domain.lifecycle import review_authority, reviewer_of
from aoi_git.domain.model import Actor, ActorKind, Employee, Kind, OrgConfig, Status, Task
from aoi_git.domain.result import PlanChoice, PlanOption
from aoi_git.errors import AoiError
from aoi_git.org import replanning
from aoi_git.org.task_ops import cancel_cascade, new_task
from aoi_git.store.trailers import AUTHORITY
from aoi_git.store.txn import Txn, now_iso

S = Status
PLAN_TRAILER = "Aoi-Plan"
FIRST_PLAN = "no reviewer and no COO to choose: the planner's first plan"


def plans_of(task: Task) -> list[Mapping[str, Any]]:
    """The alternatives recorded on `task` (`result.plans`)."""
    plans = (task.result or {}).get("plans")
    return [p for p in plans if isinstance(p, Mapping)] if isinstance(plans, list) else []


def chooser(task: Task, tasks: Mapping[str, Task], employees: Mapping[str, Employee],
            config: OrgConfig) -> str | None:
    """Who chooses among `task`'s plans: its reviewer, else an active COO, else nobody."""
    rv = reviewer_of(task, tasks, config)
    if rv != "none":
        return rv
    coo = sorted(e.id for e in employees.values() if e.role == "coo" and e.is_active)
    return coo[0] if coo else None


def describe(task: Task, plans: Sequence[PlanOption | Mapping[str, Any]]) -> str:
    lines = [f"{task.assignee or 'The planner'} offers {len(plans)} alternative plans for "
             f"task {task.id} \"{task.title}\". Choose one before any work starts.", "",
             "## The task", task.description.strip() or "(no description)", ""]
    for n, p in enumerate(plans, 1):
        d = p.to_dict() if isinstance(p, PlanOption) else p
        lines.append(f"## Plan {n}: {d.get('title')}")
        if d.get("summary"):
            lines += ["", str(d["summary"]).strip()]
        lines.append("")
        for s in d.get("subtasks") or []:
            who = f" @{s['assignee']}" if s.get("assignee") else ""
            after = f" (after {', '.join(map(str, s['depends_on']))})" \
                if s.get("depends_on") else ""
            lines.append(f"- {s.get('title')}{who}{after}")
        lines.append("")
    return "\n".join(lines).rstrip()


def offer(txn: Txn, task: Task, plans: Sequence[PlanOption], tasks: Mapping[str, Task],
          employees: Mapping[str, Employee], config: OrgConfig) -> Task | None:
    """The choice task for `task`'s `plans` (None: nobody chooses, take the first)."""
    who = chooser(task, tasks, employees, config)
    if who is None:
        return None
    text = describe(task, plans)
    book = Bookkeeping(about=task.id, choice_for=task.id)
    title = f"Choose a plan: {task.title}"[:200]
    if who in config.humans or (not who.startswith("role:") and who not in employees):
        person = who if who in config.humans else config.ceo
        return new_task(txn, tasks, title, kind="human", assignee=person,
                        description=text + "\n\nAnswer with the plan's number and why, e.g. "
                        f"`aoi answer <this id> \"2: fewer hand-offs\"`, or "
                        f"`aoi review {task.id} --choose 2 -m \"fewer hand-offs\"`.",
                        question=f"Which of the {len(plans)} plans for {task.id}?",
                        priority=task.priority + 1, bookkeeping=book)
    return new_task(txn, tasks, title, kind="review", assignee=who, reviewer="none",
                    description=text + "\n\nDecide with choose_plan: the plan's number "
                    "(from 1) and why (result field `choice: {plan, reason}`).",
                    priority=task.priority + 1, bookkeeping=book)


def choice_problem(choice: PlanChoice | None, parent: Task | None) -> str | None:
    """Why a choice task's result cannot decide (None when it can)."""
    n = len(plans_of(parent)) if parent is not None else 0
    if choice is None:
        return ("a choice task must end with a choice: `choice: {plan: N, reason}` "
                f"(choose_plan), N from 1 to {n}")
    if not 1 <= choice.plan <= n:
        return f"plan {choice.plan} does not exist: choose a plan from 1 to {n}"
    return None


def apply(txn: Txn, parent_id: str, choice: PlanChoice, by: Actor,
          tasks: Mapping[str, Task]) -> Task:
    """Carry out plan `choice.plan` of `parent_id`: its subtasks are created (a revision
    of the current plan, `replanning.revise`), and the choice and reason recorded."""
    parent = txn.get(parent_id)
    plans = plans_of(parent)
    plan = plans[choice.plan - 1]
    items = [s for s in plan.get("subtasks") or [] if isinstance(s, Mapping)]
    rev = replanning.revise(txn, parent, items, tasks)
    chosen = {"plan": choice.plan, "title": str(plan.get("title") or ""),
              "reason": choice.reason, "by": str(by)}
    done = replanning.record(parent, rev)
    done = done.with_changes(result={**(parent.result or {}), "chosen": chosen},
                             bookkeeping=replace(done.bookkeeping, plan_choice=None))
    txn.put(done)
    txn.trailers.append((PLAN_TRAILER, f"{parent_id} {choice.plan}"))
    txn.body_lines.append(
        f"{by} chose plan {choice.plan} of {len(plans)} for {parent_id} "
        f"\"{chosen['title']}\": {choice.reason or 'no reason given'}")
    txn.body_lines.append(f"plan of {parent_id}: {rev.describe()}")
    return done


def apply_by_agent(txn: Txn, via: Task, choice: PlanChoice, agent: Actor,
                   tasks: Mapping[str, Task]) -> bool:
    """An employee's choice task decided: applied if it is still the open choice."""
    parent_id = via.bookkeeping.choice_for or ""
    parent = txn.find(parent_id)
    if parent is None or parent.status is not S.WAITING \
            or parent.bookkeeping.plan_choice != via.id:
        txn.body_lines.append(f"choice for {parent_id} not applied: it is no longer open")
        return False
    txn.trailers.append((AUTHORITY, "reviewer"))
    apply(txn, parent_id, choice, agent, tasks)
    return True


_NUMBER = re.compile(r"\s*(?:plan\s*)?#?(\d+)\b[\s:.,;)-]*(.*)", re.I | re.S)


def parse_answer(text: str, plans: Sequence[Mapping[str, Any]]) -> PlanChoice | None:
    """A person's answer naming a plan: its number (`2: why`, `plan 2 - why`) or its
    title; None when it names none."""
    m = _NUMBER.match(text or "")
    if m and 1 <= int(m.group(1)) <= len(plans):
        return PlanChoice(int(m.group(1)), m.group(2).strip())
    low = (text or "").strip().lower()
    for n, p in enumerate(plans, 1):
        title = str(p.get("title") or "").strip().lower()
        if title and low.startswith(title):
            return PlanChoice(n, text.strip()[len(title):].lstrip(" :.,;-"))
    return None


def apply_answer(txn: Txn, choice_id: str, parent_id: str, tasks: Mapping[str, Task]) -> str:
    """A finished or cancelled choice task (an answer by a person, or a cancel)."""
    h = txn.get(choice_id)
    parent = txn.get(parent_id)
    if parent.status is not S.WAITING or parent.bookkeeping.plan_choice != choice_id:
        return "stale"
    if h.kind is Kind.HUMAN:
        txn.actor = Actor(ActorKind.HUMAN, h.assignee or "unknown")  # a person's decision
    if h.status is S.CANCELLED:
        txn.put(parent.with_changes(bookkeeping=replace(parent.bookkeeping, plan_choice=None)))
        cancel_cascade(txn, tasks, parent_id, f"the choice among its plans ({choice_id}) "
                       "was cancelled")
        return "cancel"
    plans = plans_of(parent)
    choice = parse_answer(h.answer or "", plans)
    if choice is None:  # ask again, saying why
        again = new_task(txn, tasks, h.title, kind="human", assignee=h.assignee,
                         description=f"{h.description}\n\n(The answer {h.answer!r} names no "
                         f"plan: answer with a number from 1 to {len(plans)}.)",
                         question=h.question, priority=h.priority,
                         bookkeeping=Bookkeeping(about=parent_id, choice_for=parent_id))
        txn.put(parent.with_changes(bookkeeping=replace(parent.bookkeeping,
                                                        plan_choice=again.id)))
        return "asked again"
    apply(txn, parent_id, choice, txn.actor, tasks)
    return "chosen"


def choose_by_person(txn: Txn, parent_id: str, plan: int, reason: str, person: Actor, *,
                     tasks: Mapping[str, Task], employees: Mapping[str, Employee],
                     config: OrgConfig, email: str = "") -> None:
    """`aoi review ID --choose N -m reason`: a person with authority over the task's
    review (`review_authority`) chooses; the open choice task is closed."""
    parent = txn.get(parent_id)
    cid = parent.bookkeeping.plan_choice
    if parent.status is not S.WAITING or cid is None:
        raise AoiError(f"task {parent_id} has no open choice among plans")
    problem = choice_problem(PlanChoice(plan, reason), parent)
    if problem:
        raise AoiError(problem)
    who = chooser(parent, tasks, employees, config) or config.ceo
    authority = review_authority(person, parent, who, config=config, employees=employees,
                                 email=email)
    txn.trailers.append((AUTHORITY, authority))
    apply(txn, parent_id, PlanChoice(plan, reason), person, tasks)
    h = txn.find(cid)
    if h is None or h.is_terminal:
        return
    note = {"from": str(person), "kind": "note", "at": now_iso(),
            "text": f"decided by a person: plan {plan}"}
    if h.kind is Kind.HUMAN:
        txn.put(h.with_changes(status=S.FINISHED, answer=f"{plan}: {reason}".strip(": ")))
    else:
        txn.put(h.with_changes(status=S.CANCELLED, feedback=(*h.feedback, note)))
