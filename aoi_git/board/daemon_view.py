"""What a running daemon says it is doing (`.aoi/daemon/status.json`), typed for the board.

The board reads the branch for everything else; this file only adds what is not in git:
which runs are in progress since when, and which backends a circuit breaker paused."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Run:
    task: str
    employee: str
    backend: str
    started: float


@dataclass(frozen=True)
class DaemonView:
    running: bool = False
    pid: int | None = None
    runs: tuple[Run, ...] = ()
    paused_until: dict[str, float] = field(default_factory=dict)  # backend kind -> time

    def run_of(self, employee: str) -> Run | None:
        return next((r for r in self.runs if r.employee == employee), None)


def read_daemon(root: Path) -> DaemonView:
    """The daemon's status file, or "not running" when it is missing, stopped or stale."""
    try:
        data = json.loads((root / ".aoi" / "daemon" / "status.json").read_text())
        pid = int(data["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return DaemonView()
    if not isinstance(data, dict) or data.get("stopped"):
        return DaemonView()
    try:
        os.kill(pid, 0)
    except OSError:
        return DaemonView()
    runs = []
    for r in data.get("running") or ():
        try:
            runs.append(Run(str(r["task"]), str(r["employee"]), str(r.get("backend", "")),
                            float(r["started"])))
        except (KeyError, TypeError, ValueError):
            continue
    paused: dict[str, float] = {}
    for kind, b in (data.get("breakers") or {}).items():
        try:
            paused[str(kind)] = float(b["until"])
        except (KeyError, TypeError, ValueError):
            continue
    return DaemonView(True, pid, tuple(runs), paused)
