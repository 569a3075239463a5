"""What an agent run reported: its result file as read (docs/agents.md), or the failure
the daemon recorded in its place, and what kind of failure a failed run is."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Failure(str, Enum):
    """What kind of failure a failed run is; it decides what happens next (org.flow):

    - RETRY: it may not happen again (a crash, a timeout, the agent's own `failed`):
      retried with backoff, escalated to a person after `limits.max_attempts`;
    - PERMANENT: no retry can fix it (a refused plan, a malformed result, a result over
      its size limit, a review without a decision): escalated at once, with its reason;
    - CREDENTIALS: the backend has no working key or login: escalated at once, and the
      daemon holds the backend until the credentials change;
    - BUDGET: the task's budget is spent: a person is asked to raise it; the task runs
      again once it is raised (not a failed attempt).
    """

    RETRY = "retry"
    PERMANENT = "permanent"
    CREDENTIALS = "credentials"
    BUDGET = "budget"

    @property
    def escalates_at_once(self) -> bool:
        return self in (Failure.PERMANENT, Failure.CREDENTIALS)


@dataclass(frozen=True)
class PlanOption:
    """One alternative plan a planner offers (`plans` of the result): its subtasks are
    created only if it is chosen."""

    title: str
    summary: str = ""
    subtasks: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "summary": self.summary,
                "subtasks": [dict(s) for s in self.subtasks]}


@dataclass(frozen=True)
class PlanChoice:
    """A choice among a planner's alternatives (`choice` of a choice task's result):
    `plan` counts from 1."""

    plan: int
    reason: str = ""


@dataclass
class AgentResult:
    outcome: str  # completed | failed | blocked
    summary: str = ""
    subtasks: list[dict[str, Any]] = field(default_factory=list)
    question: str | None = None
    review: dict[str, Any] | None = None
    usage: dict[str, float] = field(default_factory=dict)
    lessons: list[str] = field(default_factory=list)
    hire: dict[str, Any] | None = None
    error: str | None = None
    failure: Failure = Failure.RETRY  # with outcome failed: what kind of failure
    plans: list[PlanOption] = field(default_factory=list)  # alternatives to choose among
    keep: list[str] = field(default_factory=list)  # a re-plan: existing subtasks kept
    cancel: list[str] = field(default_factory=list)  # a re-plan: existing subtasks cancelled
    choice: PlanChoice | None = None  # a choice task's verdict

    def fail(self, failure: Failure, error: str) -> None:
        """Turn this result into a failure of `failure`'s kind (its usage is kept)."""
        self.outcome, self.failure, self.error = "failed", failure, error

    @property
    def revises(self) -> bool:
        """Whether the result names existing subtasks to keep or cancel (a revision)."""
        return bool(self.keep or self.cancel)
