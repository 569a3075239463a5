"""The compact form of the org's tasks: one row per task file, full records only when open.

At 100k tasks nearly all are finished, and a finished task is read again only when someone
asks for it (its retrospective, `aoi task show`, a dependency check). So the task map keeps
a `TaskRow` per task (what listing, status, the scheduler's links and dependency checks
read) and a parsed `Task` only for the open ones; a finished task's record is parsed from
its blob on demand, the last few kept.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import NamedTuple

from aoi_git.domain.model import TERMINAL, Kind, Status, Task

PARSED_KEPT = 4096  # finished tasks parsed on demand and kept (an LRU)


class TaskRow(NamedTuple):
    """One task file, as listing and status read it. `status` and `kind` are the plain
    values (`Status` and `Kind` are str enums, so `row.status == Status.FINISHED` holds)."""

    id: str
    path: str
    blob: str
    status: str
    kind: str
    title: str
    assignee: str | None
    reviewer: str | None
    parent: str | None
    depends_on: tuple[str, ...]
    priority: int
    labels: tuple[str, ...]
    created: str | None
    about: tuple[str, ...]  # the tasks it is about (a review's subject, a decision's task)
    usd: float
    routed_to: str | None  # the employee a `role:` assignee went to

    @property
    def is_terminal(self) -> bool:
        return self.status in _TERMINAL_VALUES


_TERMINAL_VALUES = frozenset(s.value for s in TERMINAL)
_intern = sys.intern


def _opt(s: str | None) -> str | None:
    return None if s is None else _intern(s)


def row_of(task: Task, path: str, blob: str) -> TaskRow:
    """The row of `task`, stored at `path` as blob `blob`. Repeated strings (statuses,
    names, labels, dates) are interned: 100k rows share them."""
    about = tuple(dict.fromkeys(r for r in (task.subject, task.bookkeeping.about)
                                if isinstance(r, str) and r))
    return TaskRow(task.id, path, blob, task.status.value, task.kind.value, task.title,
                   _opt(task.assignee), _opt(task.reviewer), task.parent,
                   tuple(task.depends_on), task.priority,
                   tuple(_intern(x) for x in task.labels), _opt(task.created), about,
                   float(task.cost.get("usd", 0.0)), _opt(task.bookkeeping.routed_to))


def keeps_record(task: Task) -> bool:
    """Whether the map keeps `task` parsed: it is open, or it is a person's decision on a
    proposed hire not applied yet (the scheduler looks at both on every plan)."""
    if not task.is_terminal:
        return True
    return task.kind is Kind.HUMAN and task.bookkeeping.hire is not None \
        and not task.bookkeeping.applied


class TaskRows(Mapping[str, TaskRow]):
    """Every task's row by id: the compact index `aoi task list` and `aoi status` read."""

    def __init__(self, rows: dict[str, TaskRow] | None = None) -> None:
        self._rows: dict[str, TaskRow] = rows if rows is not None else {}

    def __getitem__(self, tid: str) -> TaskRow:
        return self._rows[tid]

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, tid: object) -> bool:
        return tid in self._rows

    def row(self, tid: str) -> TaskRow | None:
        return self._rows.get(tid)

    def by_status(self, *statuses: Status | str) -> list[TaskRow]:
        """The rows in any of `statuses`, oldest first (as `aoi task list` shows them)."""
        wanted = {str(s) for s in statuses}
        return sorted((r for r in self._rows.values() if r.status in wanted),
                      key=lambda r: (r.created or "", r.id))

    def counts(self) -> dict[str, int]:
        """Tasks per status value (every status, zeros included)."""
        out = dict.fromkeys((s.value for s in Status), 0)
        for r in self._rows.values():
            out[r.status] = out.get(r.status, 0) + 1
        return out

    def open_rows(self) -> Iterator[TaskRow]:
        return (r for r in self._rows.values() if not r.is_terminal)

    def put(self, row: TaskRow) -> None:
        self._rows[row.id] = row

    def pop(self, tid: str) -> TaskRow | None:
        return self._rows.pop(tid, None)

    def as_tuples(self) -> list[tuple[object, ...]]:
        return [tuple(r) for r in self._rows.values()]

    @classmethod
    def from_tuples(cls, rows: Iterable[tuple[object, ...]]) -> TaskRows:
        make = TaskRow._make
        return cls({r[0]: make(r) for r in rows})  # type: ignore[misc]


class _Paths(Mapping[str, str]):
    """id -> path of a `TaskRows` (what a transaction needs to find a task's file)."""

    def __init__(self, rows: TaskRows) -> None:
        self._rows = rows

    def __getitem__(self, tid: str) -> str:
        return self._rows[tid].path

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, tid: object) -> bool:
        return tid in self._rows


class TaskMap(Mapping[str, Task]):
    """Every task by id: open ones held parsed, finished ones parsed from their blob when
    looked up (`load(row)`), the last `PARSED_KEPT` of those kept.

    Iterating the values parses every finished task: callers that want the open tasks
    use `open_values()`, and those that want a list or counts use `rows`."""

    def __init__(self, rows: TaskRows, open_tasks: dict[str, Task],
                 load: Callable[[TaskRow], Task]) -> None:
        self.rows = rows
        self.open = open_tasks
        self._load = load
        self._parsed: OrderedDict[str, Task] = OrderedDict()

    def __getitem__(self, tid: str) -> Task:
        task = self.open.get(tid)
        if task is not None:
            return task
        row = self.rows[tid]  # KeyError: no such task
        parsed = self._parsed
        task = parsed.get(tid)
        if task is not None:
            parsed.move_to_end(tid)
            return task
        task = self._load(row)
        parsed[tid] = task
        if len(parsed) > PARSED_KEPT:
            parsed.popitem(last=False)
        return task

    def __iter__(self) -> Iterator[str]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __contains__(self, tid: object) -> bool:
        return tid in self.rows

    def held(self, tid: str) -> Task | None:
        """The task if it is held parsed (open, or a finished one parsed lately)."""
        return self.open.get(tid) or self._parsed.get(tid)

    def open_values(self) -> list[Task]:
        """The tasks held parsed: every open one (see `keeps_record`)."""
        return list(self.open.values())

    def put(self, task: Task, row: TaskRow) -> None:
        """`task` (stored as `row`) is now the version in this map."""
        self.rows.put(row)
        if keeps_record(task):
            self.open[task.id] = task
            self._parsed.pop(task.id, None)
        else:
            self.open.pop(task.id, None)
            self._parsed[task.id] = task
            self._parsed.move_to_end(task.id)
            if len(self._parsed) > PARSED_KEPT:
                self._parsed.popitem(last=False)

    def remove(self, tid: str) -> None:
        self.rows.pop(tid)
        self.open.pop(tid, None)
        self._parsed.pop(tid, None)

    @property
    def paths(self) -> Mapping[str, str]:
        return _Paths(self.rows)



def open_tasks(tasks: Mapping[str, Task]) -> Iterable[Task]:
    """The tasks of `tasks` that `keeps_record` (every open one), without parsing the
    finished ones of a `TaskMap`; a plain mapping is filtered."""
    if isinstance(tasks, TaskMap):
        return tasks.open_values()
    return [t for t in tasks.values() if keeps_record(t)]
