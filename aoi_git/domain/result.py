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

    def fail(self, failure: Failure, error: str) -> None:
        """Turn this result into a failure of `failure`'s kind (its usage is kept)."""
        self.outcome, self.failure, self.error = "failed", failure, error
