"""Backend `script`: the employee profile's own command, run under the agent
contract (docs/agents.md)."""

from __future__ import annotations

import sys

from aoi_git.domain.model import Employee
from aoi_git.errors import AoiError


class ScriptBackend:
    kind = "script"

    def command(self, employee: Employee) -> list[str]:
        # `{python}` stands for the interpreter running aoi, so org scripts need no PATH setup
        command = [sys.executable if part == "{python}" else str(part)
                   for part in employee.backend.command]
        if not command:
            raise AoiError(
                f"employee {employee.id!r} has backend kind `script` but no command: set "
                f"`backend.command` in employees/{employee.id}/profile.yaml "
                f"(e.g. `command: [python, agent.py]`)"
            )
        return command

    def environment(self, employee: Employee) -> dict[str, str]:
        return {}
