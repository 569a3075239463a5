"""The board's read model: the org at one commit, aggregated once, queried per page.

Built when the branch moves, not per request: status counts, each task's project, and
each project's progress. A page then asks for one column's first rows, one project's
tasks or one employee's: it never holds, or sends, every task.
"""

from __future__ import annotations

import bisect
import datetime as dt
import heapq
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from aoi_git.domain.graph import is_root
from aoi_git.domain.model import Kind, Status, Task
from aoi_git.org.organisation import Org
from aoi_git.store.history import Record

_ORDER = (Status.PENDING, Status.PROCESSING, Status.WAITING, Status.BLOCKED,
          Status.COMPLETED, Status.ACCEPTED, Status.FAILED, Status.FINISHED, Status.CANCELLED)
# every status has a column: one the lifecycle adds later goes before the terminal ones
COLUMNS: tuple[Status, ...] = (*_ORDER[:7], *(s for s in Status if s not in _ORDER),
                               *_ORDER[7:])
DONE = frozenset({Status.FINISHED, Status.ACCEPTED})
PER_COLUMN = 25  # tasks shown per status column


@dataclass(frozen=True)
class Filters:
    """What the work board is narrowed to (empty: everything)."""

    project: str = ""
    label: str = ""
    employee: str = ""

    def matches(self, task: Task, project_of: Mapping[str, str]) -> bool:
        if self.employee and task.assignee != self.employee and task.reviewer != self.employee:
            return False
        if self.label and self.label not in task.labels:
            return False
        return not (self.project and project_of.get(task.id) != self.project)

    @property
    def any(self) -> bool:
        return bool(self.project or self.label or self.employee)


@dataclass
class Column:
    status: Status
    count: int
    tasks: list[Task]  # the first rows, by priority then age


@dataclass
class Progress:
    total: int = 0
    done: int = 0
    cancelled: int = 0
    usd: float = 0.0

    @property
    def percent(self) -> int:
        live = self.total - self.cancelled
        return round(100 * self.done / live) if live else 100


class Top:
    """The first rows of one status column, kept as tasks come and go: always the
    smallest `len(keys)` of the column by `_order`, so a commit costs a bisect, not a
    pass over a column of 100k."""

    KEEP = 100

    def __init__(self) -> None:
        self.keys: list[tuple[int, str, str]] = []
        self.rows: list[Task] = []
        self.known = False  # False: computed at the next ask

    def add(self, t: Task, size_before: int) -> None:
        if not self.known:
            return
        k = _order(t)
        if len(self.keys) == size_before or (self.keys and k < self.keys[-1]):
            i = bisect.bisect_left(self.keys, k)
            self.keys.insert(i, k)
            self.rows.insert(i, t)
            if len(self.keys) > self.KEEP:
                self.keys.pop()
                self.rows.pop()

    def remove(self, t: Task) -> None:
        if not self.known:
            return
        k = _order(t)
        i = bisect.bisect_left(self.keys, k)
        if i < len(self.keys) and self.keys[i] == k:
            del self.keys[i], self.rows[i]

    def first(self, column: Mapping[str, Task], n: int, offset: int) -> list[Task]:
        if not self.known or (len(self.rows) < offset + n and len(self.rows) < len(column)):
            self.rows = heapq.nsmallest(max(self.KEEP, offset + n), column.values(), key=_order)
            self.keys = [_order(t) for t in self.rows]
            self.known = True
        return self.rows[offset:offset + n]


@dataclass
class BoardData:
    """The org at `org.commit` with its aggregates, kept up to date task by task."""

    org: Org
    project_of: dict[str, str] = field(default_factory=dict)  # task id -> root id
    progress: dict[str, Progress] = field(default_factory=dict)  # root id -> progress
    by_status: dict[Status, dict[str, Task]] = field(
        default_factory=lambda: {s: {} for s in COLUMNS})
    label_set: set[str] = field(default_factory=set)
    children: dict[str, dict[str, None]] = field(default_factory=dict)  # ordered sets
    usd_by_employee: dict[str, float] = field(default_factory=dict)
    open_by_id: dict[str, dict[str, Task]] = field(default_factory=dict)  # assignee -> open
    open_kind: dict[Kind, dict[str, Task]] = field(  # open review and human tasks
        default_factory=lambda: {Kind.REVIEW: {}, Kind.HUMAN: {}})
    tops: dict[Status, Top] = field(default_factory=lambda: {s: Top() for s in COLUMNS})
    _columns: dict[tuple[Filters, int, int], list[Column]] = field(default_factory=dict)

    @property
    def commit(self) -> str | None:
        return self.org.commit

    @property
    def tasks(self) -> Mapping[str, Task]:
        return self.org.tasks

    @property
    def counts(self) -> dict[Status, int]:
        return {s: len(ts) for s, ts in self.by_status.items()}

    @property
    def labels(self) -> list[str]:
        return sorted(self.label_set)[:500]

    @property
    def open_by(self) -> dict[str, list[Task]]:
        return {who: list(ts.values()) for who, ts in self.open_by_id.items()}

    def columns(self, filters: Filters, per_column: int, offset: int = 0) -> list[Column]:
        """Each status's count and its first `per_column` tasks (after `offset`); for a
        filter, the last few answers are kept until a task changes."""
        if not filters.any:
            return [Column(s, len(ts), self.tops[s].first(ts, per_column, offset))
                    for s, ts in self.by_status.items()]
        key = (filters, per_column, offset)
        if key not in self._columns:
            if len(self._columns) >= 32:
                del self._columns[next(iter(self._columns))]
            self._columns[key] = self._pick(filters, per_column, offset)
        return self._columns[key]

    def _pick(self, filters: Filters, per_column: int, offset: int) -> list[Column]:
        chosen: dict[Status, list[Task]] = {s: [] for s in COLUMNS}
        for t in self.tasks.values():
            if filters.matches(t, self.project_of):
                chosen[t.status].append(t)
        return [Column(s, len(ts), first(ts, per_column, offset)) for s, ts in chosen.items()]

    def projects(self) -> list[tuple[Task, Progress]]:
        roots = [self.tasks[r] for r in self.progress if r in self.tasks]
        roots.sort(key=lambda t: (t.is_terminal, -t.priority, t.created or "", t.id))
        return [(t, self.progress[t.id]) for t in roots]

    def subtree(self, root: str, limit: int) -> list[tuple[int, Task]]:
        """(depth, task) of `root` and its subtasks depth first, at most `limit` rows."""
        out: list[tuple[int, Task]] = []
        stack = [(0, root)]
        seen: set[str] = set()
        while stack and len(out) < limit:
            depth, tid = stack.pop()
            if tid in seen or tid not in self.tasks:
                continue
            seen.add(tid)
            out.append((depth, self.tasks[tid]))
            kids = sorted(self.children.get(tid, ()),
                          key=lambda k: (self.tasks[k].created or "", k), reverse=True)
            stack.extend((depth + 1, k) for k in kids)
        return out

    def open_of(self, employee: str) -> list[Task]:
        return list(self.open_by_id.get(employee, {}).values())

    # ------------------------------------------------------------ keeping it up to date
    def _count(self, t: Task, sign: int) -> None:
        """Add (`sign` 1) or take away (-1) what `t` contributes to the aggregates."""
        column = self.by_status.setdefault(t.status, {})
        top = self.tops.setdefault(t.status, Top())
        kind = self.open_kind.get(t.kind)
        if sign > 0:
            top.add(t, len(column))
            column[t.id] = t
            if kind is not None and not t.is_terminal:
                kind[t.id] = t
            if t.labels:
                self.label_set.update(t.labels)
            if t.parent is not None:
                self.children.setdefault(t.parent, {})[t.id] = None
            if t.assignee and not t.is_terminal:
                self.open_by_id.setdefault(t.assignee, {})[t.id] = t
        else:
            top.remove(t)
            column.pop(t.id, None)
            if kind is not None:
                kind.pop(t.id, None)
            if t.parent is not None:
                self.children.get(t.parent, {}).pop(t.id, None)
            if t.assignee:
                self.open_by_id.get(t.assignee, {}).pop(t.id, None)
        usd = t.cost.get("usd", 0.0)
        if t.assignee and usd:
            self.usd_by_employee[t.assignee] = self.usd_by_employee.get(t.assignee, 0.0) \
                + sign * usd
        root = self.project_of.get(t.id)
        p = self.progress.get(root) if root is not None else None
        if p is not None:
            p.total += sign
            p.done += sign * (t.status in DONE)
            p.cancelled += sign * (t.status is Status.CANCELLED)
            p.usd += sign * usd

    def changed(self, old: Task | None, new: Task | None) -> bool:
        """Take in one task's change (added, changed or removed; the org's index holds the
        new state already). False when the change moves tasks between projects: then the
        caller builds the aggregates again."""
        if old is not None and new is not None and (
                old.parent != new.parent or is_root(old) != is_root(new)):
            return False
        if old is not None and new is None and (self.children.get(old.id) or is_root(old)):
            return False
        self._columns.clear()
        if old is not None:
            self._count(old, -1)
        if new is not None:
            if new.id not in self.project_of:
                self.project_of[new.id] = _root(new.id, self.tasks, self.project_of)
                if is_root(new) and self.project_of[new.id] == new.id:
                    self.progress[new.id] = Progress()
            self._count(new, 1)
        elif old is not None:
            self.project_of.pop(old.id, None)
        return True


def _order(t: Task) -> tuple[int, str, str]:
    return (-t.priority, t.created or "", t.id)


def first(tasks: Iterable[Task], n: int, offset: int = 0) -> list[Task]:
    """The `n` tasks after `offset` by priority (highest first), then age (a partial
    sort: a column of 100k tasks is not sorted whole for its first rows)."""
    return heapq.nsmallest(offset + n, tasks, key=_order)[offset:]


def build(org: Org) -> BoardData:
    """The aggregates of `org` (one pass over its tasks, plus the parent chains)."""
    tasks = org.tasks
    data = BoardData(org)
    project_of = data.project_of
    for tid in tasks:
        project_of[tid] = _root(tid, tasks, project_of)
    for tid, t in tasks.items():
        if is_root(t) and project_of[tid] == tid:
            data.progress[tid] = Progress()
    for t in tasks.values():
        data._count(t, 1)
    return data


def _root(tid: str, tasks: Mapping[str, Task], known: Mapping[str, str]) -> str:
    chain = []
    cur = tid
    seen: set[str] = set()
    while True:
        if cur in known:
            root = known[cur]
            break
        parent = tasks[cur].parent
        if parent is None or parent not in tasks or cur in seen:
            root = cur
            break
        seen.add(cur)
        chain.append(cur)
        cur = parent
    assert isinstance(known, dict)
    for c in chain:
        known[c] = root
    return root


# ------------------------------------------------------------------ what needs a person
@dataclass(frozen=True)
class Ask:
    """One thing that waits on a person: a review, a question, an escalation, a budget or
    a hire approval."""

    kind: str  # review | question | escalation | budget | hire | decision
    task: Task
    about: Task | None


def asks(data: BoardData) -> list[Ask]:
    """Completed work nobody but a person reviews now, and open questions for a person."""
    tasks = data.tasks
    humans = set(data.org.config.humans)
    out: list[Ask] = []
    for t in data.by_status[Status.COMPLETED].values():
        if t.kind is Kind.WORK:
            out.append(Ask("review", t, None))
    for t in data.open_kind[Kind.HUMAN].values():
        if t.status is Status.PENDING and (
                t.assignee is None or t.assignee in humans or t.assignee not in data.org.employees):
            b = t.bookkeeping
            kind = ("hire" if b.hire is not None or b.hire_for else
                    "budget" if b.budget_for else
                    "escalation" if b.decision_for else
                    "question")
            ref = b.about or t.subject
            out.append(Ask(kind, t, tasks.get(ref) if ref else None))
    order = {"review": 0, "escalation": 1, "budget": 2, "hire": 3, "question": 4}
    out.sort(key=lambda a: (order.get(a.kind, 9), -a.task.priority, a.task.created or ""))
    return out


# ------------------------------------------------------------------ cost
@dataclass
class CostDay:
    day: str
    usd: float


def cost_by_day(rows: Iterable[tuple[int, float]], days: int, today: dt.date) -> list[CostDay]:
    """USD per day over the last `days` days, from (commit time, usd) pairs."""
    start = today - dt.timedelta(days=days - 1)
    out = {(start + dt.timedelta(days=i)).isoformat(): 0.0 for i in range(days)}
    for ts, usd in rows:
        day = dt.datetime.fromtimestamp(ts).date().isoformat()
        if day in out:
            out[day] += usd
    return [CostDay(d, u) for d, u in out.items()]


def iter_costs(records: Iterable[Record]) -> Iterator[tuple[int, float]]:
    for rec in records:
        usd = rec.cost.get("usd", 0.0)
        if usd:
            yield rec.time, usd
