"""Backend `claude`: runs `aoi_git.runtime.backends.claude_runner` (claude-agent-sdk) per
task."""

from __future__ import annotations

import sys

from aoi_git.domain.model import Employee


class ClaudeBackend:
    """The runner reads the task, context and `AgentConfig` from the files of the agent
    contract (docs/agents.md); the
    daemon's environment (ANTHROPIC_*, CLAUDE_CODE_*) reaches the Claude CLI through it."""

    kind = "claude"

    def command(self, employee: Employee) -> list[str]:
        return [sys.executable, "-m", "aoi_git.runtime.backends.claude_runner"]

    def environment(self, employee: Employee) -> dict[str, str]:
        return {}
