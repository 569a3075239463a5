"""What an agent run reported: its result file as read (docs/agents.md), or the failure
the daemon recorded in its place."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
