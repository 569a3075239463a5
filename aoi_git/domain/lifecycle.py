"""The task lifecycle: one table of allowed transitions and who may make each.

Everything that changes a task's status calls `check_transition`; nothing else decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aoi_git.domain.model import ActorKind, Kind, Status
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


_NON_TERMINAL = (S.PENDING, S.PROCESSING, S.WAITING, S.BLOCKED, S.COMPLETED, S.ACCEPTED, S.FAILED)

TRANSITIONS: Mapping[tuple[Status, Status], Rule] = {
    (S.PENDING, S.PROCESSING): _r("claimed: dependencies finished, slot and budget free", D),
    (S.PROCESSING, S.COMPLETED): _r("the agent reported a result", A),
    (S.PROCESSING, S.WAITING): _r("the agent decomposed the task into subtasks", A),
    (S.PROCESSING, S.BLOCKED): _r("the agent asked a person a question", A),
    (S.PROCESSING, S.FAILED): _r("error, timeout, budget exceeded or crash", D),
    (S.PROCESSING, S.PENDING): _r("recovered: its agent died with a previous daemon", D),
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
