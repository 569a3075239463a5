"""Task files written by aoi 0.1.0 load and are written back unchanged.

The fixture `tests/fixtures/tasks-0.1.0/` holds task files written by aoi 0.1.0: `aoi demo`
and the org loop, hiring, daemon and evolution scenarios, one file for each shape of the
`extra:` bookkeeping they wrote (`b/` holds other versions of tasks in `a/`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from aoi_git.domain.model import Task
from aoi_git.org.validate import parse_task_bytes
from aoi_git.store import yamlio

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "tasks-0.1.0"
FILES = sorted(FIXTURE.glob("*/*.yaml"))

EXTRA_KEYS = {
    "about", "answers", "applied", "budget_for", "budget_request", "daily", "day",
    "decision_for", "escalation", "folded_into", "hire", "hire_for", "hiring_need",
    "offboarded", "offboarding", "review_task", "routed_to", "sop_branch", "subtasks",
    "superseded", "tasks", "waiting_on",
}


def load(path: Path) -> Task:
    task = parse_task_bytes(path.read_bytes(), f"tasks/{path.name}")
    assert isinstance(task, Task), task
    return task


def test_the_fixture_has_every_bookkeeping_key() -> None:
    keys = {k for path in FILES for k in yamlio.load(path.read_bytes())["extra"]}
    assert keys == EXTRA_KEYS


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(FIXTURE)))
def test_a_task_written_by_0_1_0_is_written_back_the_same(path: Path) -> None:
    data = path.read_bytes()
    task = load(path)
    assert task.to_dict() == yamlio.load(data)
    assert yamlio.dump(task.to_dict()) == data  # byte for byte: no diff when rewritten
