"""Creating a plan's subtasks: one pending child task per subtask of an agent's result
(docs/agents.md), in dependency order so every `depends_on` already exists."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aoi_git.domain.model import Task
from aoi_git.errors import AoiError
from aoi_git.org.task_ops import new_task
from aoi_git.store.txn import Txn


def subtask_keys(items: Sequence[Mapping[str, Any]]) -> list[str]:
    """The local key of each subtask: its `key`, else its position."""
    return [str(s.get("key") or i) for i, s in enumerate(items)]


def create_subtasks(txn: Txn, task: Task, items: Sequence[Mapping[str, Any]],
                    tasks: Mapping[str, Task],
                    known: Mapping[str, str] | None = None) -> list[str]:
    """Create `items` as subtasks of `task`; returns their ids in creation order.

    A `depends_on` entry is a sibling's key, a key of `known` (key -> id of an existing
    subtask the plan keeps), or a task id."""
    keys = subtask_keys(items)
    ids: dict[str, str] = dict(known or {})
    created: list[str] = []
    remaining = list(zip(keys, items, strict=True))
    while remaining:
        progressed = False
        for key, s in list(remaining):
            deps_keys = [str(d) for d in s.get("depends_on") or []]
            if any(d in keys and d not in ids for d in deps_keys):
                continue
            deps = [ids.get(d, d) for d in deps_keys]
            t = new_task(
                txn, tasks, str(s["title"]), parent=task.id,
                description=str(s.get("description") or ""),
                assignee=str(s["assignee"]) if s.get("assignee") else task.assignee,
                depends_on=deps, labels=list(s.get("labels") or task.labels),
                priority=int(s.get("priority") or task.priority),
                reviewer=str(s["reviewer"]) if s.get("reviewer") else None,
            )
            ids[key] = t.id
            created.append(t.id)
            remaining.remove((key, s))
            progressed = True
        if not progressed:  # pragma: no cover - cycles are refused before
            raise AoiError("subtask dependencies could not be ordered")
    return created
