"""The backend protocol.

Every backend is run by the daemon as a separate process group under one contract
(docs/agents.md): environment `AOI_TASK_ID`, `AOI_TASK_FILE` (task JSON), `AOI_CONTEXT_FILE`
(assembled prompt), `AOI_RESULT_FILE`, `AOI_ORG_DIR`, plus `AOI_AGENT_CONFIG` (a JSON
file: see `AgentConfig`), cwd = the task's worktree. A backend only decides the command
line and any extra environment; the daemon owns spawning, caps and result handling.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from aoi_git.domain.model import Employee


@dataclass(frozen=True)
class AgentConfig:
    """What a runner needs beyond the task and context; written to `AOI_AGENT_CONFIG`."""

    employee: str
    role: str
    model: str | None = None
    tools: list[str] = field(default_factory=list)  # allowed tools after aoi.yaml gating
    max_turns: int | None = None
    max_budget_usd: float | None = None
    max_tokens: int | None = None
    reflect: bool = False  # ask for a short reflection turn after the task (claude)
    resume_session: str | None = None  # the stopped run's session to go on in (claude)
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Backend(Protocol):
    """Registered under the entry point group `aoi.backends` by its `kind`."""

    kind: str

    def command(self, employee: Employee) -> list[str]:
        """The argv to run for a task of this employee."""
        ...

    def environment(self, employee: Employee) -> dict[str, str]:
        """Extra environment for the process (the daemon's env is passed through)."""
        ...
