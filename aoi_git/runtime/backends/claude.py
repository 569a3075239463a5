"""Backend `claude`: runs `aoi_git.runtime.backends.claude_runner` (claude-agent-sdk) per
task."""

from __future__ import annotations

import os
import sys
from pathlib import Path

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

    def session_binds(self, employee: Employee, run_folder: Path) -> list[tuple[Path, Path]]:
        """The Claude CLI keeps its sessions in `<config dir>/projects/`, which the sandbox
        leaves read-only: it is bound to the task's own `claude-sessions/` in its run
        folder, so the session of a stopped run is there when it resumes."""
        config = Path(os.environ.get("CLAUDE_CONFIG_DIR") or Path.home() / ".claude")
        mine = run_folder / "claude-sessions"
        try:
            (config / "projects").mkdir(parents=True, exist_ok=True)
            mine.mkdir(exist_ok=True)
        except OSError:
            return []
        return [(mine, config / "projects")]
