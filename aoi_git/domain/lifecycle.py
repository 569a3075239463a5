"""The task lifecycle: one table of allowed transitions and who may make each.

Everything that changes a task's status calls `check_transition`; nothing else decides.
The table says which kind of actor may make a move; `review_authority` says which one
may decide a review (completed -> accepted, or rejected back to pending).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aoi_git.domain.model import Actor, ActorKind, Employee, Kind, OrgConfig, Status, Task
from aoi_git.domain.people import people_named
from aoi_git.domain.reporting import supervisor_chain
from aoi_git.errors import IllegalTransition

A, H, D = ActorKind.AGENT, ActorKind.HUMAN, ActorKind.DAEMON
S = Status


@dataclass(frozen=True)
class Rule:
    actors: frozenset[ActorKind]
    when: str
    kinds: frozenset[Kind] = frozenset(Kind)


def _r(when: str, *actors: ActorKind, kinds: tuple[Kind, ...] = tuple(Kind)) -> Rule:
    return Rule(frozenset(actors), when, frozenset(kinds))


_NON_TERMINAL = (S.PENDING, S.PROCESSING, S.SUSPENDED, S.WAITING, S.BLOCKED, S.COMPLETED,
                 S.ACCEPTED, S.FAILED)

TRANSITIONS: Mapping[tuple[Status, Status], Rule] = {
    (S.PENDING, S.PROCESSING): _r("claimed: dependencies finished, slot and budget free", D),
    (S.PROCESSING, S.COMPLETED): _r("the agent reported a result", A),
    (S.PROCESSING, S.WAITING): _r("the agent decomposed the task into subtasks", A),
    (S.PROCESSING, S.BLOCKED): _r("the agent asked a person a question", A),
    (S.PROCESSING, S.FAILED): _r("error, timeout, budget exceeded or crash", D),
    (S.PROCESSING, S.PENDING): _r("recovered: its agent died with a previous daemon, or its "
                                  "assignee changed while it ran (handed over)", D),
    # Suspension (aoi_git.domain.preemption): the run is stopped, its worktree and branch
    # kept; not a failed attempt.
    (S.PROCESSING, S.SUSPENDED): _r("paused by a person, or preempted by a task that "
                                    "outranks it", D, H),
    (S.SUSPENDED, S.PROCESSING): _r("resumed: a preempted task's slot is free again", D),
    (S.SUSPENDED, S.PENDING): _r("resumed or reassigned by a person", H),
    (S.WAITING, S.COMPLETED): _r("all subtasks finished", D),
    (S.WAITING, S.FAILED): _r("a subtask failed for good or was cancelled", D),
    (S.BLOCKED, S.PENDING): _r("the question was answered", D),
    (S.COMPLETED, S.ACCEPTED): _r("the reviewer accepted", A, H, D),
    (S.COMPLETED, S.PENDING): _r("the reviewer rejected", A, H, D),
    (S.ACCEPTED, S.FINISHED): _r("its branch was merged into the workspace base", D),
    (S.ACCEPTED, S.PENDING): _r("its branch did not merge cleanly", D),
    (S.FAILED, S.PENDING): _r("retried, or reassigned by a person's decision", D, H),
    (S.PENDING, S.FAILED): _r("deadlock: nothing can ever make it runnable", D),
    # A person answers a human task in an editor or with `aoi answer`.
    (S.PENDING, S.FINISHED): _r("a person answered", H, D, kinds=(Kind.HUMAN,)),
    # A person finishes work assigned to them (`aoi task done`); it is reviewed as usual.
    (S.PENDING, S.COMPLETED): _r("a person finished work assigned to them", H,
                                 kinds=(Kind.WORK,)),
    **{(s, S.CANCELLED): _r("cancelled (cascades to dependents and subtasks)", H, D)
       for s in _NON_TERMINAL},
}


def allowed(old: Status | None, new: Status, actor: ActorKind, kind: Kind = Kind.WORK) -> bool:
    if old is None:  # a new task: people and aoi create pending tasks
        return new is Status.PENDING
    if old is new:
        return True
    rule = TRANSITIONS.get((old, new))
    return rule is not None and actor in rule.actors and kind in rule.kinds


def check_transition(
    old: Status | None, new: Status, actor: ActorKind, kind: Kind = Kind.WORK
) -> None:
    """Raise `IllegalTransition` unless `actor` may move a task of `kind` from `old` to `new`."""
    if allowed(old, new, actor, kind):
        return
    if old is None:
        raise IllegalTransition(f"a new task must start as pending, not {new.value}")
    rule = TRANSITIONS.get((old, new))
    if rule is None or kind not in rule.kinds:
        legal = sorted(t.value for (f, t), r in TRANSITIONS.items() if f is old and kind in r.kinds)
        hint = ", ".join(legal) if legal else "nothing (terminal)"
        raise IllegalTransition(
            f"status {old.value} -> {new.value} is not a legal transition"
            f" (from {old.value} a {kind.value} task may go to: {hint})"
        )
    who = "/".join(sorted(a.value for a in rule.actors))
    raise IllegalTransition(
        f"status {old.value} -> {new.value} is made by the {who}, not by a {actor.value}"
    )


class ReviewRefused(IllegalTransition):
    """Someone without authority over a task's review tried to decide it."""


# what `review_authority` returns; the `Aoi-Authority` trailer of the deciding commit
REVIEWER = "reviewer"
CEO = "ceo"
NO_REVIEWER = "no-reviewer"
MANAGER_OF = "manager-of:"  # + the reviewer whose reports_to chain the person is on


def _managers(reviewer: str, employees: Mapping[str, Employee], config: OrgConfig) -> list[str]:
    """Everyone up the reviewer's reports_to chain (of each employee, for a `role:`)."""
    starts = [e.id for e in employees.values() if e.role == reviewer[5:]] \
        if reviewer.startswith("role:") else [reviewer]
    return [m for start in starts for m in supervisor_chain(start, employees, config)[1:]]


def review_authority(
    decider: Actor,
    subject: Task,
    reviewer: str,
    *,
    config: OrgConfig,
    employees: Mapping[str, Employee],
    email: str = "",
    via: Task | None = None,
) -> str:
    """Why `decider` may accept or reject the completed task `subject`, whose reviewer is
    `reviewer` (`none`, an employee, `role:<role>` or a person): `reviewer`, `ceo`,
    `manager-of:<reviewer>` or `no-reviewer`. Raises `ReviewRefused` (one line) otherwise.

    - an agent only through `via`, the review task of `subject` it was assigned;
    - a person (a git identity matched to aoi.yaml's `humans` by `people_named`) who is
      the reviewer, the CEO, or up the reviewer's `reports_to` chain;
    - the daemon only when the task has no reviewer.
    """
    if decider.kind is ActorKind.DAEMON:
        if reviewer == "none":
            return NO_REVIEWER
        raise ReviewRefused(f"{subject.id} is reviewed by {reviewer}; the daemon does not "
                            "decide reviews")
    if decider.kind is ActorKind.AGENT:
        assigned = via is not None and (via.assignee == decider.name or (
            via.assignee is not None and via.assignee.startswith("role:")
            and decider.name in employees
            and employees[decider.name].role == via.assignee[5:]))
        if (via is not None and assigned and via.kind is Kind.REVIEW
                and via.subject == subject.id and subject.bookkeeping.review_task == via.id):
            return REVIEWER
        raise ReviewRefused(f"agent {decider.name} may not decide the review of {subject.id}: "
                            "an agent decides a review only as the result of its review task")
    ids = people_named(decider.name, email, config.humans)
    if reviewer in ids:
        return REVIEWER
    if config.ceo in ids:
        return CEO
    for manager in _managers(reviewer, employees, config):
        if manager in ids:
            return MANAGER_OF + reviewer
    who = f"{decider.name} ({', '.join(ids)})" if ids else \
        f"{decider.name} (no person of aoi.yaml `humans` by id, name or email)"
    raise ReviewRefused(f"{who} may not decide the review of {subject.id}: its reviewer is "
                        f"{reviewer}; only the reviewer, someone up its reports_to chain or "
                        f"the CEO ({config.ceo}) may")


def reviewer_of(task: Task, tasks: Mapping[str, Task], config: OrgConfig) -> str:
    """The reviewer: explicit, else the parent's assignee, else the CEO (for roots).

    Review and human tasks are not reviewed again."""
    if task.kind is not Kind.WORK:
        return "none"
    if task.reviewer:
        return task.reviewer
    parent = tasks.get(task.parent) if task.parent else None
    if parent is not None and parent.assignee and not parent.assignee.startswith("role:"):
        return parent.assignee
    return config.ceo
