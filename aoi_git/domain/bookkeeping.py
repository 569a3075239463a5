"""aoi's own bookkeeping on a task: the links and marks the lifecycle adds as it runs.

A task file keeps them in its `extra:` mapping, one key per field below, under the same
name except `offboarding_tasks`, whose key is `tasks`. `Bookkeeping.from_dict` reads that
mapping and `to_dict` writes it back: a mapping written by aoi comes back the same, and a
key aoi does not know (or a known key holding a value of another type, e.g. edited by
hand) is kept as it was in `other` and written back after the known ones, so nothing a
person wrote is lost.

Fields are ids of other tasks unless said otherwise; None (or an empty tuple) means the
key is absent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["NO_BOOKKEEPING", "Bookkeeping", "HireProposal"]


@dataclass(frozen=True, slots=True)
class HireProposal:
    """An agent's proposal to hire (`extra.hire` of the CEO's approval task).

    On disk a mapping with the keys talent, as, reason, proposed_by, about; only
    `talent` is required, the others are written when not empty."""

    talent: str
    as_id: str = ""  # the employee id to hire under (key `as`)
    reason: str = ""
    proposed_by: str = ""  # the employee who proposed it
    about: str = ""  # the task it was working on

    _KEYS = ("talent", "as", "reason", "proposed_by", "about")

    @classmethod
    def parse(cls, value: object) -> HireProposal | None:
        """The proposal, or None when `value` is not a mapping of these keys to text."""
        if not isinstance(value, Mapping) or not isinstance(value.get("talent"), str):
            return None
        if any(k not in cls._KEYS or not isinstance(v, str) for k, v in value.items()):
            return None
        return cls(talent=value["talent"], as_id=value.get("as", ""),
                   reason=value.get("reason", ""), proposed_by=value.get("proposed_by", ""),
                   about=value.get("about", ""))

    def to_dict(self) -> dict[str, str]:
        values = (self.talent, self.as_id, self.reason, self.proposed_by, self.about)
        return {k: v for k, v in zip(self._KEYS, values, strict=True) if v or k == "talent"}


@dataclass(frozen=True)
class Bookkeeping:
    """What the lifecycle noted on a task (the `extra:` mapping of its file).

    The field order is the order keys are written in. Not slotted: a record read from a
    file or from the parsed-task cache holds only the fields that are set (the others
    are the class defaults), so reading 100k of them costs about what plain mappings do."""

    # --- on a review, question or decision task: what it is about and what it is for
    hire: HireProposal | None = None  # a proposed hire the CEO approves or rejects
    about: str | None = None  # the task this one is about (the subject of a question)
    answers: str | None = None  # an agent's answer to the blocked task's question
    decision_for: str | None = None  # a person decides on this failed or rejected task
    choice_for: str | None = None  # a choice among this task's planner's alternative plans
    budget_for: str | None = None  # an employee id: a budget request for its work
    day: str | None = None  # ISO date the budget request was made (per employee and day)
    daily: bool | None = None  # whether that request is about the daily cap
    sop_branch: str | None = None  # a branch of proposed SOP changes to merge or delete
    hire_for: str | None = None  # an employee id HR shortlists a hire for
    applied: str | None = None  # what was done once the decision on `hire` was applied
    offboarding: str | None = None  # an employee id whose open tasks a person reassigns
    offboarding_tasks: tuple[str, ...] = ()  # those tasks (key `tasks`)
    hiring_need: str | None = None  # a role to hire for after an offboarding
    offboarded: str | None = None  # the employee id offboarded
    # --- on a work task: where the lifecycle took it
    routed_to: str | None = None  # an employee id a `role:` assignee was routed to
    subtasks: tuple[str, ...] = ()  # its subtasks, from its latest plan
    superseded: tuple[str, ...] = ()  # subtasks a re-plan cancelled (they no longer count)
    review_task: str | None = None  # its open review
    waiting_on: str | None = None  # the question it is blocked on
    escalation: str | None = None  # a person's decision on it is open (retry/reassign/cancel)
    budget_request: str | None = None  # a person is asked for more budget for it
    folded_into: str | None = None  # the parent question its escalation was folded into
    plan_choice: str | None = None  # the open choice among its alternative plans
    # --- on a work task whose run was stopped (aoi_git.org.control)
    preempted_by: str | None = None  # suspended for this task, which outranked it
    resuming: bool | None = None  # its next run continues a stopped one in the same worktree
    session: str | None = None  # the backend session to resume (claude: its session id)
    handoff_from: str | None = None  # an employee id whose stopped run this one continues
    # keys aoi does not know, or known keys with a value of another type: (key, value)
    # pairs as read
    other: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Bookkeeping:
        """Read an `extra:` mapping (None or empty: `NO_BOOKKEEPING`)."""
        if not data:
            return NO_BOOKKEEPING
        if not isinstance(data, Mapping):
            raise ValueError(f"extra must be a mapping, not {type(data).__name__}")
        values: dict[str, Any] = {}
        other: list[tuple[str, Any]] = []
        for key, value in data.items():
            name = _FIELD_OF_KEY.get(key) if isinstance(key, str) else None
            parsed = _parse(name, value) if name is not None else None
            if parsed is None:
                other.append((key, value))
            else:
                values[name] = parsed  # type: ignore[index]
        if other:
            values["other"] = tuple(other)
        return _from_fields(values)

    def to_dict(self) -> dict[str, Any]:
        """The `extra:` mapping to write: the fields set, in field order, then `other`."""
        out: dict[str, Any] = {}
        for name, key in _KEY_OF_FIELD.items():
            value = getattr(self, name)
            if value is None or value == ():
                continue
            if isinstance(value, HireProposal):
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = list(value)
            out[key] = value
        for key, value in self.other:
            out.setdefault(key, value)
        return out

    def __getstate__(self) -> dict[str, Any]:
        """The fields that are set (pickle restores them into a new record's `__dict__`)."""
        return {k: v for k, v in self.__dict__.items() if v is not None and v != ()}


NO_BOOKKEEPING = Bookkeeping()


def _from_fields(values: dict[str, Any]) -> Bookkeeping:
    """`Bookkeeping(**values)`, holding only `values` (see the class docstring)."""
    book = object.__new__(Bookkeeping)
    book.__dict__.update(values)
    return book

_KEY_OF_FIELD: dict[str, str] = {
    f.name: ("tasks" if f.name == "offboarding_tasks" else f.name)
    for f in dataclasses.fields(Bookkeeping) if f.name != "other"
}
_FIELD_OF_KEY: dict[str, str] = {key: name for name, key in _KEY_OF_FIELD.items()}
_ID_LISTS = frozenset({"offboarding_tasks", "subtasks", "superseded"})


def _parse(name: str, value: Any) -> Any:
    """The typed value of field `name`, or None when `value` is not of its type."""
    if name == "hire":
        return HireProposal.parse(value)
    if name in ("daily", "resuming"):
        return value if isinstance(value, bool) else None
    if name in _ID_LISTS:
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return tuple(value)
        return None
    return value if isinstance(value, str) else None
