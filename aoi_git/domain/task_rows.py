"""The compact form of the org's tasks: one row per task file, full records only when open.

At 100k tasks nearly all are finished, and a finished task is read again only when someone
asks for it (its retrospective, `aoi task show`, a dependency check). So the task map keeps
a `TaskRow` per task (what listing, status, the scheduler's links and dependency checks
read) and a parsed `Task` only for the open ones; a finished task's record is parsed from
its blob on demand, the last few kept.
"""

from __future__ import annotations

import sys
from collections import ChainMap, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import NamedTuple

from aoi_git.domain.ids import shard_path
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
    said: bool  # a person wrote in it (feedback from a human, a person's answer)

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
                   float(task.cost.get("usd", 0.0)), _opt(task.bookkeeping.routed_to),
                   person_said(task))


def person_said(task: Task) -> bool:
    """Whether a person wrote in `task`: feedback from a human, or a person's answer."""
    if task.kind is Kind.HUMAN and task.answer:
        return True
    return any(isinstance(fb, Mapping) and str(fb.get("from", "")).startswith("human:")
               for fb in task.feedback)


def keeps_record(task: Task) -> bool:
    """Whether the map keeps `task` parsed: it is open, or it is a person's decision on a
    proposed hire not applied yet (the scheduler looks at both on every plan)."""
    if not task.is_terminal:
        return True
    return task.kind is Kind.HUMAN and task.bookkeeping.hire is not None \
        and not task.bookkeeping.applied


# A row is held as a plain tuple (what the cache file unpickles to, at C speed: a
# `TaskRow` per row would cost ~1 us each at every start), with the path left empty when
# it is the task's `shard_path` (nearly always). `TaskRows` hands out `TaskRow`s.
_ID, _PATH, _BLOB, _STATUS, _KIND = range(5)
_PARENT, _CREATED, _ABOUT = 8, 12, 13


def _stored(row: TaskRow) -> tuple[object, ...]:
    if row.path == shard_path(row.id):
        return (row.id, "", *row[2:])
    return tuple(row)


class TaskRows(Mapping[str, TaskRow]):
    """Every task's row by id: the compact index `aoi task list` and `aoi status` read.

    Read from the cache file it may start partial: only the rows of open tasks (and of
    tasks changed since the file's full version) are held, with the counts per status of
    all of them; the rest, nearly all finished, are read from the file the first time a
    question needs them (`rest`). Listing open tasks and counting cost the open rows,
    not 100k. Any change first reads the rest, but `moved`: a row whose earlier state
    the map holds (`held_stored`), which keeps the counts right without the rest."""

    def __init__(self, stored: dict[str, tuple[object, ...]] | None = None,
                 rest: Callable[[], Iterable[tuple[object, ...]]] | None = None,
                 counts: dict[str, int] | None = None,
                 gone: frozenset[str] = frozenset()) -> None:
        # partial (`rest` set): every open row is in `_rows`, and a row in `_rows` wins
        # over the rest's; `gone` are ids removed since the rest was written
        self._rows: dict[str, tuple[object, ...]] = stored if stored is not None else {}
        self._rest = rest
        self._counts = counts
        self._gone = gone

    def _whole(self) -> dict[str, tuple[object, ...]]:
        """Every row (the rest read in first, once, when partial)."""
        rest = self._rest
        if rest is not None:
            self._rest = None
            held, gone = self._rows, self._gone
            rows = {str(t[_ID]): t for t in rest() if t[_ID] not in gone}
            rows.update(held)
            self._rows = rows
            self._counts = None
        return self._rows

    def _found(self, tid: str) -> tuple[object, ...] | None:
        found = self._rows.get(tid)
        if found is None and self._rest is not None and tid not in self._gone:
            found = self._whole().get(tid)
        return found

    @property
    def partial(self) -> bool:
        """Only the open rows are read so far (see the class)."""
        return self._rest is not None

    def __getitem__(self, tid: str) -> TaskRow:
        found = self._found(tid)
        if found is None:
            raise KeyError(tid)
        return _wrap(found)

    def __iter__(self) -> Iterator[str]:
        return iter(self._whole())

    def __len__(self) -> int:
        if self._rest is not None and self._counts is not None:
            return sum(self._counts.values())
        return len(self._whole())

    def __contains__(self, tid: object) -> bool:
        return isinstance(tid, str) and self._found(tid) is not None

    def row(self, tid: str) -> TaskRow | None:
        found = self._found(tid)
        return None if found is None else _wrap(found)

    def status_of(self, tid: str) -> str | None:
        found = self._found(tid)
        return None if found is None else str(found[_STATUS])

    def path_of(self, tid: str) -> str:
        found = self._found(tid)
        if found is None:
            raise KeyError(tid)
        path = found[_PATH]
        return str(path) if path else shard_path(tid)

    def by_status(self, *statuses: Status | str) -> list[TaskRow]:
        """The rows in any of `statuses`, oldest first (as `aoi task list` shows them)."""
        wanted = {str(s) for s in statuses}
        rows = self._rows if wanted.isdisjoint(_TERMINAL_VALUES) else self._whole()
        picked = [t for t in rows.values() if t[_STATUS] in wanted]
        picked.sort(key=lambda t: (t[_CREATED] or "", t[_ID]))
        return [_wrap(t) for t in picked]

    def counts(self) -> dict[str, int]:
        """Tasks per status value (every status, zeros included)."""
        out = dict.fromkeys((s.value for s in Status), 0)
        if self._rest is not None and self._counts is not None:
            out.update(self._counts)
            return out
        for t in self._whole().values():
            status = str(t[_STATUS])
            out[status] = out.get(status, 0) + 1
        return out

    def open_rows(self) -> list[TaskRow]:
        return [_wrap(t) for t in self._rows.values() if t[_STATUS] not in _TERMINAL_VALUES]

    def links(self) -> Iterator[tuple[str, str | None, tuple[str, ...], bool, bool]]:
        """(id, parent, about, is a project, is finished) of every row, for `TaskLinks`."""
        work, finished = Kind.WORK.value, Status.FINISHED.value
        for t in self._whole().values():
            parent = t[_PARENT]
            yield (t[_ID], parent, t[_ABOUT], parent is None and t[_KIND] == work,  # type: ignore[misc]
                   t[_STATUS] == finished)

    def put(self, row: TaskRow) -> None:
        self._whole()[row.id] = _stored(row)

    def pop(self, tid: str) -> TaskRow | None:
        found = self._whole().pop(tid, None)
        return None if found is None else _wrap(found)

    def stored(self, tid: str) -> tuple[object, ...] | None:
        return self._found(tid)

    def put_stored(self, tid: str, stored: tuple[object, ...] | None) -> None:
        rows = self._whole()
        if stored is None:
            rows.pop(tid, None)
        else:
            rows[tid] = stored

    def copy(self) -> TaskRows:
        return TaskRows(dict(self._whole()))

    def held_stored(self, tid: str) -> tuple[bool, tuple[object, ...] | None]:
        """(whether this map can say, the stored row): a partial map knows the rows it
        holds and the ids removed since its rest was written, not what the rest holds."""
        found = self._rows.get(tid)
        if found is not None or self._rest is None or tid in self._gone:
            return True, found
        return False, None

    def moved(self, row: TaskRow, was: tuple[object, ...] | None) -> None:
        """`row` replaces `was` (None: a new task), without reading the rest: the counts
        follow. Only for a row whose earlier state the caller knows (`held_stored`)."""
        if self._rest is None:
            self.put(row)
            return
        if self._counts is not None:
            if was is not None:
                self._counts[str(was[_STATUS])] -= 1
            self._counts[row.status] = self._counts.get(row.status, 0) + 1
        self._rows[row.id] = _stored(row)

    def as_tuples(self) -> list[tuple[object, ...]]:
        return list(self._whole().values())

    def split_tuples(self) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
        """(open rows, the others): the two parts of the cache file."""
        open_part: list[tuple[object, ...]] = []
        rest: list[tuple[object, ...]] = []
        for t in self._whole().values():
            (rest if t[_STATUS] in _TERMINAL_VALUES else open_part).append(t)
        return open_part, rest

    @classmethod
    def from_tuples(cls, rows: Iterable[tuple[object, ...]]) -> TaskRows:
        return cls({str(r[_ID]): r for r in rows})


def _wrap(t: tuple[object, ...]) -> TaskRow:
    row = TaskRow._make(t)
    return row if row.path else row._replace(path=shard_path(row.id))


class _Paths(Mapping[str, str]):
    """id -> path of a `TaskRows` (what a transaction needs to find a task's file)."""

    def __init__(self, rows: TaskRows) -> None:
        self._rows = rows

    def __getitem__(self, tid: str) -> str:
        return self._rows.path_of(tid)

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
        # ids put or removed since the map was read from its cache file (None: built from
        # scratch), so saving it writes those rows, not all
        self.changed: set[str] | None = None

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
        if self.changed is not None:
            self.changed.add(task.id)
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
        if self.changed is not None:
            self.changed.add(tid)
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


def row_in(tasks: Mapping[str, Task], tid: str) -> TaskRow | None:
    """The row of `tid` when `tasks` is a `TaskMap` (or a ChainMap ending in one, the
    task absent from the maps before it): a finished task's title, status or creation
    without parsing it. None: read `tasks[tid]`."""
    maps = tasks.maps if isinstance(tasks, ChainMap) else [tasks]
    for m in maps:
        if isinstance(m, TaskMap):
            return m.rows.row(tid)
        if tid in m:
            return None
    return None
