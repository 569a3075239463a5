"""The organisation's flow, as Txn builders: results, decomposition, questions, reviews,
escalation, budget requests. Each function changes tasks inside one commit; the caller
(daemon or CLI) commits it. All status changes go through `Txn.put` and so through the
transition table.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from aoi_git.domain import budget
from aoi_git.domain.bookkeeping import Bookkeeping
from aoi_git.domain.graph import find_cycle
from aoi_git.domain.lifecycle import ReviewRefused, review_authority, reviewer_of
from aoi_git.domain.model import Actor, ActorKind, Employee, Kind, OrgConfig, Status, Task
from aoi_git.domain.reporting import first_human_up
from aoi_git.domain.result import AgentResult, Failure, PlanChoice
from aoi_git.domain.task_rows import open_tasks
from aoi_git.errors import AoiError
from aoi_git.evolution.journal import append_journal, journal_entry
from aoi_git.org import branch_policy, plan_choice, replanning
from aoi_git.org.branch_policy import Refusal
from aoi_git.org.routing import reassign_candidates
from aoi_git.org.task_ops import cancel_cascade, new_task
from aoi_git.store.trailers import AUTHORITY, FAILURE
from aoi_git.store.txn import Txn, now_iso

S = Status


def fb(actor: Actor | str, kind: str, text: str, now: float | None = None) -> dict[str, Any]:
    return {"from": str(actor), "kind": kind, "text": text, "at": now_iso(now)}


def add_cost(task: Task, usage: Mapping[str, float], seconds: float) -> dict[str, float]:
    cost = dict(task.cost)
    for k in ("input_tokens", "output_tokens"):
        if usage.get(k):
            cost[k] = int(cost.get(k, 0)) + int(usage[k])
    if usage.get("usd"):
        cost["usd"] = round(float(cost.get("usd", 0.0)) + float(usage["usd"]), 6)
    cost["seconds"] = round(float(cost.get("seconds", 0.0)) + seconds, 3)
    return cost


def depth_of(task: Task, tasks: Mapping[str, Task]) -> int:
    depth, cur, seen = 0, task, set()
    while cur.parent and cur.parent in tasks and cur.id not in seen:
        seen.add(cur.id)
        depth += 1
        cur = tasks[cur.parent]
    return depth


def apply_result(
    txn: Txn,
    *,
    task_id: str,
    result: AgentResult,
    employee: Employee,
    tasks: Mapping[str, Task],
    employees: Mapping[str, Employee],
    config: OrgConfig,
    branch: str | None,
    commit: str | None,
    seconds: float,
    now: float,
) -> str:
    """Commit what a finished run reported. Returns the outcome that was applied."""
    agent = Actor(ActorKind.AGENT, employee.id)
    daemon = txn.actor
    task = txn.get(task_id)
    if task.status is not S.PROCESSING:
        raise AoiError(f"task {task_id} is {task.status.value}, not processing")
    cost = add_cost(task, result.usage, seconds)
    txn.add_cost({**result.usage, "seconds": round(seconds, 3)})
    txn.trailers.append(("Aoi-Employee", employee.id))
    _classify(result, task.with_changes(cost=cost), employee, tasks, config, employees)
    outcome = result.outcome
    choosing = task.kind is Kind.REVIEW and task.bookkeeping.choice_for is not None
    res_dict: dict[str, Any] = {"summary": result.summary or "", "outcome": outcome}
    if branch:
        res_dict["branch"] = branch
    if commit:
        res_dict["commit"] = commit
    if outcome == "failed":
        if result.summary.strip() or result.lessons:  # the agent's own words: its reflection
            append_journal(txn, employee.id, journal_entry(task, result, now))
        return _fail(txn, task, cost, result, daemon, now, employee=employee,
                     employees=employees, config=config, tasks=tasks)
    txn.actor = agent  # the commit is the agent's: its trailer says so
    if outcome == "blocked":
        human = _ask(txn, task, result, employee, employees, config, tasks)
        txn.put(task.with_changes(status=S.BLOCKED, cost=cost, result=res_dict,
                                  bookkeeping=replace(task.bookkeeping, waiting_on=human.id)))
    elif len(result.plans) > 1:
        _offer_plans(txn, task, result, cost, res_dict, tasks, employees, config)
    elif result.subtasks or result.plans or result.revises:
        items = result.subtasks or list(result.plans[0].subtasks if result.plans else ())
        _plan(txn, task, result, items, cost, res_dict, tasks)
    else:
        review = _decision(result)
        if choosing and result.choice is not None:
            plan_choice.apply_by_agent(txn, task, result.choice, agent, tasks)
        elif task.kind is Kind.REVIEW and review is not None and task.subject:
            res_dict["review"] = review
            try:
                _apply_review(txn, task.subject, review, agent, now, tasks=tasks,
                              employees=employees, config=config, via=task)
            except ReviewRefused as exc:  # a stale review task: its verdict decides nothing
                txn.body_lines.append(f"review of {task.subject} not applied: {exc}")
        txn.put(task.with_changes(status=S.COMPLETED, cost=cost, result=res_dict))
    if result.hire:  # a proposed hire: HR shortlists, the CEO decides (aoi_git.evolution.hiring)
        from aoi_git.evolution.hiring import propose_hire

        propose_hire(txn, proposer=employee, proposal=result.hire, about=task, tasks=tasks,
                     employees=employees, config=config, org_root=txn.view.workdir)
    if result.summary:
        txn.body_lines.insert(0, result.summary.strip()[:600])
    append_journal(txn, employee.id, journal_entry(task, result, now))
    return outcome


def _plan_problem(task: Task, result: AgentResult, tasks: Mapping[str, Task],
                  config: OrgConfig, employees: Mapping[str, Employee]) -> str | None:
    """Why the subtasks, alternative plans or revision of `result` are refused."""
    if result.plans and (result.subtasks or result.revises):
        return "give either alternative `plans` or `subtasks` (with keep/cancel), not both"
    for n, option in enumerate(result.plans, 1):
        if not option.subtasks:
            return f"plan {n} ({option.title!r}) has no subtasks"
        problem = _subtask_problem(task, AgentResult("completed", subtasks=list(
            option.subtasks)), tasks, config, employees)
        if problem:
            return f"plan {n} ({option.title!r}): {problem}"
    if result.subtasks:
        problem = _subtask_problem(task, result, tasks, config, employees)
        if problem:
            return problem
    if result.revises:
        return replanning.revision_problem(task, result.keep, result.cancel, tasks)
    return None


def _plan(txn: Txn, task: Task, result: AgentResult, items: Sequence[Mapping[str, Any]],
          cost: dict[str, float], res_dict: dict[str, Any], tasks: Mapping[str, Task]) -> None:
    """The task decomposed: a first plan, or a revision of the plan it has
    (`org.replanning`): it waits for its subtasks."""
    rev = replanning.revise(txn, task, items, tasks, keep=result.keep, cancel=result.cancel)
    for key in ("plans", "chosen"):  # a revision of a chosen plan keeps the record
        if key in (task.result or {}):
            res_dict.setdefault(key, (task.result or {})[key])
    txn.put(replanning.record(task, rev).with_changes(status=S.WAITING, cost=cost,
                                                      result=res_dict))
    if task.bookkeeping.subtasks:
        txn.body_lines.append(f"re-planned: {rev.describe()}")
    else:
        txn.body_lines.append(f"decomposed into {len(rev.created)} subtasks: "
                              + ", ".join(rev.created))


def _offer_plans(txn: Txn, task: Task, result: AgentResult, cost: dict[str, float],
                 res_dict: dict[str, Any], tasks: Mapping[str, Task],
                 employees: Mapping[str, Employee], config: OrgConfig) -> None:
    """Alternative plans (`org.plan_choice`): the task waits with no new subtask until
    one is chosen; with nobody to choose, the first is carried out at once."""
    res_dict["plans"] = [p.to_dict() for p in result.plans]
    waiting = task.with_changes(status=S.WAITING, cost=cost, result=res_dict)
    choice = plan_choice.offer(txn, task, result.plans, tasks, employees, config)
    txn.body_lines.append(f"offered {len(result.plans)} alternative plans: "
                          + "; ".join(f"{n}. {p.title}" for n, p in enumerate(result.plans, 1)))
    if choice is None:
        txn.put(waiting)
        plan_choice.apply(txn, task.id, PlanChoice(1, plan_choice.FIRST_PLAN), txn.actor, tasks)
        return
    txn.put(waiting.with_changes(bookkeeping=replace(task.bookkeeping, plan_choice=choice.id)))
    txn.body_lines.append(f"{choice.assignee} chooses one ({choice.id})")


def _decision(result: AgentResult) -> dict[str, Any] | None:
    r = result.review or {}
    d = str(r.get("decision", "")).lower()
    if d not in ("accept", "reject"):
        return None
    return {"decision": d, "feedback": str(r.get("feedback") or "")}


def _classify(result: AgentResult, task: Task, employee: Employee, tasks: Mapping[str, Task],
              config: OrgConfig, employees: Mapping[str, Employee]) -> None:
    """Judge what the run reported, `task` carrying its cost with this run's: a run past
    the task's budget, a refused plan or a review result without its decision (or a work
    result with one) fails `result`, of the kind (`Failure`) that says what happens next."""
    if result.outcome == "failed" and result.failure.escalates_at_once:
        return  # no budget could help: the backend or the result itself is broken
    past = budget.run_past_budget(task, employee)
    if past:
        said = f" (the run: {result.error[:300]})" if result.error else ""
        result.fail(Failure.BUDGET, past + said)
        return
    if result.outcome == "failed" and result.failure is Failure.BUDGET:
        return
    if result.outcome != "completed":
        return
    choosing = task.kind is Kind.REVIEW and task.bookkeeping.choice_for is not None
    if choosing:
        problem = plan_choice.choice_problem(
            result.choice, tasks.get(task.bookkeeping.choice_for or ""))
        if problem:
            result.fail(Failure.PERMANENT, f"malformed result: {problem}")
        return
    problem = _plan_problem(task, result, tasks, config, employees)
    if problem:
        result.fail(Failure.PERMANENT, f"the plan was refused: {problem}")
        return
    if task.kind is Kind.REVIEW and not _decision(result):
        result.fail(Failure.PERMANENT, "malformed result: a review must end with a decision: "
                    "accept or reject (submit_review)")
    elif task.kind is not Kind.REVIEW and _decision(result):
        result.fail(Failure.PERMANENT, f"malformed result: {task.id} is a {task.kind.value} "
                    "task: only a review task's result accepts or rejects; report the work "
                    "without a review decision")


def _fail(txn: Txn, task: Task, cost: dict[str, float], result: AgentResult, daemon: Actor,
          now: float, *, employee: Employee, employees: Mapping[str, Employee],
          config: OrgConfig, tasks: Mapping[str, Task]) -> str:
    """A failed run, by its kind: retried with backoff, escalated at once, or (its budget
    spent) held for a person to raise the budget. The commit's `Aoi-Failure` says which."""
    error = (result.error or "failed").strip()
    kind = result.failure
    txn.trailers.append((FAILURE, kind.value))
    if kind is Failure.BUDGET:  # not a failed attempt: the work stopped at its cap
        txn.put(task.with_changes(status=S.FAILED, cost=cost, retry_at=None, feedback=(
            *task.feedback, fb(daemon, "error", error[:2000], now))))
        txn.body_lines.append(error[:500])
        budget_request(txn, task.id, employee, error, employees, config, tasks, stopped=True)
        return "failed"
    attempts = task.attempts + 1
    lim = config.limits
    delay = min(lim.backoff_max_s, lim.backoff_base_s * (2 ** (attempts - 1)))
    retry_at = now_iso(now + delay) \
        if attempts < lim.max_attempts and not kind.escalates_at_once else None
    txn.put(task.with_changes(
        status=S.FAILED, attempts=attempts, cost=cost, retry_at=retry_at,
        feedback=(*task.feedback, fb(daemon, "error", f"attempt {attempts} failed: "
                                     f"{clip(error, 4000)}", now)),
    ))
    txn.body_lines.append(f"attempt {attempts} failed: {clip(error, 1000)}")
    if kind.escalates_at_once:
        escalate(txn, task.id, f"no retry can fix this: {clip(error, 300)}", employees,
                 config, tasks)
    return "failed"


def clip(text: str, limit: int) -> str:
    """`text` stripped, whole when it fits in `limit` characters, else cut at a word
    boundary and saying how much was left out (never mid-word)."""
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    head = text[:cut if cut > limit // 2 else limit].rstrip()
    return f"{head} [... {len(text) - len(head)} more characters]"


def _who_problem(who: str, employees: Mapping[str, Employee], config: OrgConfig) -> bool:
    """True if `who` names no one: not a person, not an active employee or role."""
    if who in config.humans:
        return False
    if who.startswith("role:"):
        return not any(e.role == who[5:] and e.is_active for e in employees.values())
    emp = employees.get(who)
    return emp is None or not emp.is_active


def _subtask_problem(task: Task, result: AgentResult, tasks: Mapping[str, Task],
                     config: OrgConfig,
                     employees: Mapping[str, Employee] | None = None) -> str | None:
    lim = config.limits
    if len(result.subtasks) > lim.max_fanout:
        return (f"{len(result.subtasks)} subtasks exceed limits.max_fanout={lim.max_fanout}; "
                "group the work into fewer, larger subtasks")
    if depth_of(task, tasks) + 1 > lim.max_depth:
        return f"decomposing would exceed limits.max_depth={lim.max_depth}; do the work instead"
    keys = [str(s.get("key") or i) for i, s in enumerate(result.subtasks)]
    if len(set(keys)) != len(keys):
        return "subtask keys must be unique"
    if employees is not None:
        for key, s in zip(keys, result.subtasks, strict=True):
            for field_name in ("assignee", "reviewer"):
                who = str(s.get(field_name) or "")
                if field_name == "assignee" and who in config.humans:
                    return (f"subtask {key!r}: assignee {who!r} is a person; an agent does not "
                            "give people work: ask a question or let the task escalate")
                if who and who != "none" and _who_problem(who, employees, config):
                    return (f"subtask {key!r}: {field_name} {who!r} is no active employee, "
                            "role:<role> with one, or person of aoi.yaml")
    edges: dict[str, tuple[str, ...]] = {}
    for key, s in zip(keys, result.subtasks, strict=True):
        deps = []
        for d in s.get("depends_on") or []:
            d = str(d)
            if d in keys:
                deps.append(d)
            elif d not in tasks:
                return (f"subtask {key!r} depends on {d!r}, which is neither a sibling key "
                        "nor a task")
        edges[key] = tuple(deps)
    cycle = find_cycle(edges)
    if cycle:
        return f"subtask dependencies form a cycle: {' -> '.join(cycle)}"
    return None


def _ask(txn: Txn, task: Task, result: AgentResult, employee: Employee,
         employees: Mapping[str, Employee], config: OrgConfig,
         tasks: Mapping[str, Task]) -> Task:
    question = result.question or "(no question given)"
    so_far = result.summary or "(nothing reported yet)"
    description = (
        f"{employee.id} is blocked on task {task.id} \"{task.title}\" and asks:\n\n"
        f"> {question}\n\nThe task:\n{task.description.strip() or '(no description)'}\n\n"
        f"What was done so far:\n{so_far}\n\n"
        f"Answer with `aoi answer <this id> \"...\"`, or edit `answer:` and set "
        f"`status: finished` in this file."
    )
    if config.question_role and any(e.role == config.question_role for e in employees.values()):
        return new_task(txn, tasks, f"Question from {employee.id}: {task.title}"[:120],
                        assignee=f"role:{config.question_role}", description=description,
                        question=question, reviewer="none",
                        bookkeeping=Bookkeeping(about=task.id, answers=task.id))
    human = first_human_up(employee.id, employees, config)
    return new_task(txn, tasks, f"Question from {employee.id}: {task.title}"[:120],
                    kind="human", assignee=human, description=description, question=question,
                    bookkeeping=Bookkeeping(about=task.id))


def record_authority(txn: Txn, decider: Actor, subject: Task, *, tasks: Mapping[str, Task],
                     employees: Mapping[str, Employee], config: OrgConfig, email: str = "",
                     via: Task | None = None) -> str:
    """The authority `decider` decides `subject`'s review on (`review_authority`: raises
    `ReviewRefused` without one), recorded as the commit's `Aoi-Authority` trailer."""
    authority = review_authority(decider, subject, reviewer_of(subject, tasks, config),
                                 config=config, employees=employees, email=email, via=via)
    txn.trailers.append((AUTHORITY, authority))
    return authority


def _apply_review(txn: Txn, subject_id: str, review: Mapping[str, Any], reviewer: Actor,
                  now: float | None, *, tasks: Mapping[str, Task],
                  employees: Mapping[str, Employee], config: OrgConfig, email: str = "",
                  via: Task | None = None) -> None:
    """`reviewer`'s decision on `subject_id`, if `review_authority` grants it (else
    `ReviewRefused`); the commit's `Aoi-Authority` trailer says on what authority."""
    subject = txn.get(subject_id)
    if subject.status is not S.COMPLETED:
        txn.body_lines.append(f"review of {subject_id} ignored: it is {subject.status.value}")
        return
    record_authority(txn, reviewer, subject, tasks=tasks, employees=employees,
                     config=config, email=email, via=via)
    if review["decision"] == "accept":
        txn.put(subject.with_changes(status=S.ACCEPTED))
        comment = str(review.get("feedback") or "").strip()  # kept: the reviewer's words
        txn.body_lines.append(f"{reviewer} accepted {subject_id}"
                              + (f": {comment}" if comment else ""))
    else:
        text = review.get("feedback") or "rejected without feedback"
        txn.put(subject.with_changes(
            status=S.PENDING, review_rounds=subject.review_rounds + 1,
            feedback=(*subject.feedback, fb(reviewer, "review", text, now)),
            bookkeeping=replace(subject.bookkeeping, review_task=None),
        ))
        txn.body_lines.append(f"{reviewer} rejected {subject_id}: {text}")


def review_by_person(txn: Txn, task_id: str, accept: bool, text: str, person: Actor, *,
                     tasks: Mapping[str, Task], employees: Mapping[str, Employee],
                     config: OrgConfig, email: str = "") -> None:
    """`aoi review ID --accept/--reject`: a person's decision on a completed task; refused
    (`ReviewRefused`) unless the person has authority over its review."""
    task = txn.get(task_id)
    if task.status is not S.COMPLETED:
        raise AoiError(f"task {task_id} is {task.status.value}; only completed tasks are reviewed")
    _apply_review(txn, task_id, {"decision": "accept" if accept else "reject",
                                 "feedback": text}, person, None, tasks=tasks,
                  employees=employees, config=config, email=email)
    rid = task.bookkeeping.review_task
    if rid is not None:  # a person decided instead of the reviewing agent
        review_task = txn.find(rid)
        if review_task is not None and not review_task.is_terminal:
            txn.put(review_task.with_changes(status=S.CANCELLED, feedback=(
                *review_task.feedback, fb(person, "note", "decided by a person"))))


def refuse_branch(txn: Txn, task_id: str, refused: Sequence[Refusal],
                  now: float | None = None) -> None:
    """Send a completed task back to its assignee because its branch changes `refused`
    paths (`org.branch_policy`): a rejection (it counts towards max_review_rounds, so a
    stubborn agent escalates) whose feedback names every path."""
    task = txn.get(task_id)
    txn.put(task.with_changes(
        status=S.PENDING, review_rounds=task.review_rounds + 1,
        feedback=(*task.feedback, fb(txn.actor, "review", branch_policy.feedback(refused), now))))
    txn.body_lines.append(f"branch of {task_id} refused before review: "
                          + ", ".join(r.path for r in refused[:10]))


def request_review(txn: Txn, task_id: str, reviewer: str, tasks: Mapping[str, Task],
                   diff: str, refused: Sequence[Refusal] = ()) -> None:
    """A review task for `reviewer`; a branch with `refused` paths (`org.branch_policy`)
    goes back to its assignee instead, as a rejection that names them."""
    if refused:
        refuse_branch(txn, task_id, refused)
        return
    task = txn.get(task_id)
    summary = (task.result or {}).get("summary") or "(no summary)"
    description = (
        f"Review task {task.id} \"{task.title}\" by {task.assignee}.\n\n"
        f"## What was asked\n{task.description.strip() or '(no description)'}\n\n"
        f"## Their summary\n{summary}\n\n"
        f"## The diff of {(task.result or {}).get('branch') or 'its branch'}\n"
        f"```diff\n{diff.strip() or '(no file changes)'}\n```\n\n"
        "Decide with submit_review (accept, or reject with concrete feedback)."
    )
    review = new_task(txn, tasks, f"Review: {task.title}"[:200], kind="review",
                      assignee=reviewer, subject=task.id, reviewer="none",
                      description=description, priority=task.priority + 1,
                      bookkeeping=Bookkeeping(about=task.id))
    # the subject stays completed; we remember its open review
    txn.put(task.with_changes(bookkeeping=replace(task.bookkeeping, review_task=review.id)))


def escalate(txn: Txn, task_id: str, reason: str, employees: Mapping[str, Employee],
             config: OrgConfig, tasks: Mapping[str, Task], *, fail: bool = False) -> Task:
    """A human task for the supervisor: retry, reassign to EMPLOYEE, or cancel."""
    task = txn.get(task_id)
    human = first_human_up(task.assignee, employees, config)
    last = task.feedback_texts()[-3:]
    names = reassign_candidates(task, employees)
    description = (
        f"Task {task.id} \"{task.title}\" (assignee {task.assignee or 'none'}) needs a "
        f"decision: {reason}.\n\nRecent feedback:\n"
        + "\n".join(f"- {x[:500]}" for x in last)
        + "\n\nAnswer with one of:\n- `retry`\n- `reassign to EMPLOYEE`\n- `cancel`\n"
        + (f"e.g. `aoi answer <this id> \"reassign to {names[0]}\"` (employees: "
           f"{', '.join(names[:8])}{', ...' if len(names) > 8 else ''})" if names else
           "(there is no active employee to reassign it to: hire one with `aoi hire`)")
    )
    h = new_task(txn, tasks, f"Decide: {task.title}"[:200], kind="human", assignee=human,
                 description=description, question=f"{reason}: retry, reassign or cancel?",
                 bookkeeping=Bookkeeping(about=task.id, decision_for=task.id),
                 priority=task.priority + 1)
    changes: dict[str, Any] = {"bookkeeping": replace(task.bookkeeping, escalation=h.id)}
    if fail:
        changes["status"] = S.FAILED
        changes["feedback"] = (*task.feedback, fb(txn.actor, "escalation", reason))
    txn.put(task.with_changes(**changes))
    txn.body_lines.append(f"escalated to {human}: {reason}")
    return h


_REASSIGN = re.compile(r"reassign(?:\s+to)?\s+([a-z0-9:][a-z0-9:_-]*)", re.I)


def apply_decision(txn: Txn, human_id: str, subject_id: str, tasks: Mapping[str, Task],
                   employees: Mapping[str, Employee]) -> str:
    """Apply a person's answer to an escalation or a budget request."""
    h = txn.get(human_id)
    subject = txn.get(subject_id)
    if subject.bookkeeping.plan_choice == human_id:  # a choice among alternative plans
        return plan_choice.apply_answer(txn, human_id, subject_id, tasks)
    answer = (h.answer or "").strip()
    person = Actor(ActorKind.HUMAN, h.assignee or "unknown")
    daemon = txn.actor
    txn.actor = person  # applying a person's decision: the commit is theirs
    if subject.bookkeeping.budget_request == human_id:
        book = replace(subject.bookkeeping, budget_request=None)
        if not h.is_terminal:  # the budget was raised in the task's file: withdraw the ask
            txn.actor = person = daemon
            txn.put(h.with_changes(status=S.CANCELLED, feedback=(*h.feedback, fb(
                daemon, "note", f"the budget of {subject_id} was raised in its file"))))
            answer = f"raised in the task file to {dict(subject.budget)}"
        m = re.search(r"\d+(?:\.\d+)?", answer) if h.is_terminal else None
        budget = dict(subject.budget)
        if m and h.status is S.FINISHED and h.bookkeeping.daily:
            _raise_daily_cap(txn, str(h.bookkeeping.budget_for), float(m.group(0)))
        elif m and h.status is S.FINISHED:
            budget["usd"] = float(m.group(0))
        if h.status is S.CANCELLED or answer.lower().startswith("cancel"):
            cancel_cascade(txn, tasks, subject_id, f"budget refused: {answer}")
            return "cancel"
        changes: dict[str, Any] = {}
        if subject.status is S.FAILED:  # stopped at its budget: it runs again
            changes = {"status": S.PENDING, "retry_at": None}
        txn.put(subject.with_changes(budget=budget, bookkeeping=book, feedback=(
            *subject.feedback, fb(person, "answer", f"budget: {answer}")), **changes))
        return "budget"
    book = replace(subject.bookkeeping, escalation=None)
    if h.status is S.CANCELLED or answer.lower().startswith("cancel"):
        txn.put(subject.with_changes(bookkeeping=book))
        cancel_cascade(txn, tasks, subject_id, f"decided by {person}: {answer or 'cancel'}")
        return "cancel"
    m = _REASSIGN.search(answer)
    assignee = subject.assignee
    if m:
        assignee = m.group(1)
        if assignee not in employees and not assignee.startswith("role:"):
            raise AoiError(f"cannot reassign {subject_id} to {assignee!r}: no such employee")
    txn.put(subject.with_changes(
        status=S.PENDING, assignee=assignee, attempts=0, review_rounds=0, retry_at=None,
        bookkeeping=book,
        feedback=(*subject.feedback, fb(person, "answer", answer or "retry"))))
    return "reassign" if m else "retry"


def unblock(txn: Txn, task_id: str, tasks: Mapping[str, Task]) -> None:
    task = txn.get(task_id)
    hid = task.bookkeeping.waiting_on
    h = txn.find(hid) if hid is not None else None
    if h is None:
        answer, who = "(the question task is gone)", "daemon"
    elif h.kind is Kind.HUMAN:
        answer, who = (h.answer or "(no answer given)"), f"human:{h.assignee}"
        if h.status is S.CANCELLED:
            answer = "(the question was cancelled without an answer; use your judgment)"
    else:
        answer, who = ((h.result or {}).get("summary") or "(no answer)"), f"agent:{h.assignee}"
    txn.put(task.with_changes(status=S.PENDING,
                              bookkeeping=replace(task.bookkeeping, waiting_on=None),
                              feedback=(*task.feedback, fb(who, "answer", answer))))


def answer_human_task(txn: Txn, task_id: str, text: str) -> None:
    t = txn.get(task_id)
    if t.kind is not Kind.HUMAN:
        raise AoiError(f"task {task_id} is a {t.kind.value} task, not a question for a person"
                       + (f" (work assigned to you is finished with `aoi task done {task_id}`)"
                          if t.kind is Kind.WORK else ""))
    if t.status is not S.PENDING:
        raise AoiError(f"task {task_id} is {t.status.value}: it was answered already")
    txn.put(t.with_changes(status=S.FINISHED, answer=text))


def budget_request(txn: Txn, task_id: str, employee: Employee, reason: str,
                   employees: Mapping[str, Employee], config: OrgConfig,
                   tasks: Mapping[str, Task], *, stopped: bool = False) -> Task:
    """A human task asking for more budget for `task_id`: before it starts, or (`stopped`)
    after its run went past the budget. The task runs again once it is raised."""
    task = txn.get(task_id)
    human = first_human_up(employee.id, employees, config)
    day = dt.date.today().isoformat()
    what = "was stopped on" if stopped else "cannot start"
    description = (
        f"{employee.id} {what} task {task.id} \"{task.title}\": {reason}.\n\n"
        "Answer with a new budget in USD for this task (e.g. `aoi answer <this id> 5`), "
        "or `cancel`; or raise `budget` in the task's file (`aoi task edit "
        f"{task.id}`). For a daily cap, raise `capacity.usd_per_day` in "
        f"employees/{employee.id}/profile.yaml."
    )
    h = new_task(txn, tasks, f"Budget for {employee.id}: {task.title}"[:200], kind="human",
                 assignee=human, description=description, question=reason,
                 bookkeeping=Bookkeeping(about=task.id, budget_for=employee.id, day=day,
                                         daily=reason.startswith("daily")))
    txn.put(task.with_changes(bookkeeping=replace(task.bookkeeping, budget_request=h.id)))
    return h


def _raise_daily_cap(txn: Txn, employee: str, usd: float) -> None:
    """Set `capacity.usd_per_day` in a profile, keeping the person's comments and order."""
    import io

    from ruamel.yaml import YAML

    path = f"employees/{employee}/profile.yaml"
    data = txn.view.read(path)
    if data is None:
        return
    rt = YAML()
    doc = rt.load(data.decode("utf-8"))
    doc.setdefault("capacity", {})["usd_per_day"] = usd
    out = io.StringIO()
    rt.dump(doc, out)
    txn.put_file(path, out.getvalue().encode())


def fold_child_escalations(txn: Txn, parent_id: str, parent_question: str,
                           tasks: Mapping[str, Task]) -> None:
    """A person decides once, at the parent: open escalations of its failed subtasks are
    withdrawn, and those subtasks stay failed, decided (`folded_into`); a retry of
    the parent plans anew."""
    for child in open_tasks(tasks):
        if child.parent != parent_id or child.status is not S.FAILED:
            continue
        hid = child.bookkeeping.escalation
        h = txn.find(hid) if hid is not None else None
        if h is None or h.is_terminal:
            continue
        txn.put(h.with_changes(status=S.CANCELLED, feedback=(*h.feedback, fb(
            txn.actor, "note", f"folded into the decision on the parent: {parent_question}"))))
        txn.put(child.with_changes(bookkeeping=replace(
            child.bookkeeping, escalation=None, folded_into=parent_question)))
