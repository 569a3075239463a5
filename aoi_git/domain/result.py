"""What an agent run reported: its result file as read (docs/agents.md), or the failure
the daemon recorded in its place."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
    plans: list[PlanOption] = field(default_factory=list)  # alternatives to choose among
    keep: list[str] = field(default_factory=list)  # a re-plan: existing subtasks kept
    cancel: list[str] = field(default_factory=list)  # a re-plan: existing subtasks cancelled
    choice: PlanChoice | None = None  # a choice task's verdict

    @property
    def revises(self) -> bool:
        """Whether the result names existing subtasks to keep or cancel (a revision)."""
        return bool(self.keep or self.cancel)
