"""Org operations shared by the CLI and the daemon (each runs inside one Txn)."""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Mapping

from aoi_git.domain.bookkeeping import NO_BOOKKEEPING, Bookkeeping
from aoi_git.domain.graph import descendants, would_cycle
from aoi_git.domain.ids import is_valid_id, new_task_id, shard_path
from aoi_git.domain.model import Status, Task
from aoi_git.errors import AoiError
from aoi_git.store.txn import Txn, now_iso


def new_task(
    txn: Txn,
    tasks: Mapping[str, Task],
    title: str,
    *,
    task_id: str | None = None,
    bookkeeping: Bookkeeping = NO_BOOKKEEPING,
    **fields: object,
) -> Task:
    """Create a pending task (random id unless one is chosen), refusing dependency cycles.

    `fields` are task file keys, read as `Task.from_dict` reads a file."""
    if not title.strip():
        raise AoiError("a task needs a title")
    if task_id is not None:
        if not is_valid_id(task_id):
            raise AoiError(
                f"{task_id!r} is not a valid task id: use 2-64 lowercase letters, digits and '-'"
            )
        if task_id in tasks or txn.find(task_id) is not None:
            raise AoiError(f"task {task_id!r} already exists")
        path = f"tasks/{task_id}.yaml"
    else:
        task_id = new_task_id()
        while task_id in tasks:
            task_id = new_task_id()
        path = shard_path(task_id)
    task = Task.from_dict({"title": title, **{k: v for k, v in fields.items() if v is not None}},
                          default_id=task_id)
    task = task.with_changes(id=task_id, created=task.created or now_iso(),
                             bookkeeping=bookkeeping)
    for dep in task.depends_on:
        if dep not in tasks and dep not in txn.written:
            raise AoiError(f"--after {dep}: no such task")
    if task.parent and task.parent not in tasks and task.parent not in txn.written:
        raise AoiError(f"--parent {task.parent}: no such task")
    merged = ChainMap(txn.written, tasks)  # type: ignore[arg-type]
    cycle = would_cycle(merged, task_id, task.depends_on) if task.depends_on else None
    if cycle:
        raise AoiError(f"that dependency would close a cycle: {' -> '.join(cycle)}")
    return txn.put(task, new=True, path=path)


def cancel_cascade(txn: Txn, tasks: Mapping[str, Task], task_id: str, reason: str) -> list[str]:
    """Cancel a task and every transitive subtask and dependent that is not terminal."""
    target = txn.get(task_id)
    if target.is_terminal:
        raise AoiError(f"task {task_id} is already {target.status.value}")
    merged = {**tasks, **txn.written}
    cancelled = []
    for tid in [task_id, *descendants(merged, task_id)]:
        t = txn.find(tid)
        if t is None or t.is_terminal:
            continue
        note = {"from": str(txn.actor), "kind": "note", "text": f"cancelled: {reason}",
                "at": now_iso()}
        txn.put(t.with_changes(status=Status.CANCELLED, feedback=(*t.feedback, note)))
        cancelled.append(tid)
    return cancelled
