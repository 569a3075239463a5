"""The board's read model: the org at one commit, aggregated once, queried per page.

Built when the branch moves, not per request: status counts, each task's project, and
each project's progress. A page then asks for one column's first rows, one project's
tasks or one employee's: it never holds, or sends, every task.
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from aoi_git.domain.graph import is_root
from aoi_git.domain.model import Kind, Status, Task
from aoi_git.org.organisation import Org
from aoi_git.store.history import Record

COLUMNS: tuple[Status, ...] = (
    Status.PENDING, Status.PROCESSING, Status.WAITING, Status.BLOCKED, Status.COMPLETED,
    Status.ACCEPTED, Status.FAILED, Status.FINISHED, Status.CANCELLED)
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


@dataclass
class BoardData:
    """The org at `org.commit` with its aggregates."""

    org: Org
    project_of: dict[str, str] = field(default_factory=dict)  # task id -> root id
    progress: dict[str, Progress] = field(default_factory=dict)  # root id -> progress
    counts: dict[Status, int] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)
    children: dict[str, list[str]] = field(default_factory=dict)
    usd_by_employee: dict[str, float] = field(default_factory=dict)
    open_by: dict[str, list[Task]] = field(default_factory=dict)  # assignee -> open tasks
    _columns: dict[tuple[Filters, int, int], list[Column]] = field(default_factory=dict)

    @property
    def commit(self) -> str | None:
        return self.org.commit

    @property
    def tasks(self) -> Mapping[str, Task]:
        return self.org.tasks

    def columns(self, filters: Filters, per_column: int, offset: int = 0) -> list[Column]:
        """Each status's count and its first `per_column` tasks (after `offset`); the last
        few answers are kept (this commit's data never changes)."""
        key = (filters, per_column, offset)
        if key not in self._columns:
            if len(self._columns) >= 32:
                del self._columns[next(iter(self._columns))]
            self._columns[key] = self._pick(filters, per_column, offset)
        return self._columns[key]

    def _pick(self, filters: Filters, per_column: int, offset: int) -> list[Column]:
        if filters.any:
            chosen: dict[Status, list[Task]] = {s: [] for s in COLUMNS}
            for t in self.tasks.values():
                if filters.matches(t, self.project_of):
                    chosen[t.status].append(t)
            return [Column(s, len(ts), first(ts, per_column, offset))
                    for s, ts in chosen.items()]
        by_status: dict[Status, list[Task]] = {s: [] for s in COLUMNS}
        for t in self.tasks.values():
            by_status[t.status].append(t)
        return [Column(s, self.counts.get(s, 0), first(ts, per_column, offset))
                for s, ts in by_status.items()]

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
        return self.open_by.get(employee, [])


def _order(t: Task) -> tuple[int, str, str]:
    return (-t.priority, t.created or "", t.id)


def first(tasks: list[Task], n: int, offset: int = 0) -> list[Task]:
    """The `n` tasks after `offset` by priority (highest first), then age (a partial
    sort: a column of 100k tasks is not sorted whole for its first rows)."""
    return heapq.nsmallest(offset + n, tasks, key=_order)[offset:]


def build(org: Org) -> BoardData:
    """The aggregates of `org` (one pass over its tasks, plus the parent chains)."""
    tasks = org.tasks
    data = BoardData(org)
    counts: dict[Status, int] = {s: 0 for s in COLUMNS}
    labels: set[str] = set()
    for t in tasks.values():
        counts[t.status] += 1
        labels.update(t.labels)
        if t.parent is not None and t.parent in tasks:
            data.children.setdefault(t.parent, []).append(t.id)
        if t.assignee and not t.is_terminal:
            data.open_by.setdefault(t.assignee, []).append(t)
        if t.assignee:
            usd = t.cost.get("usd", 0.0)
            if usd:
                data.usd_by_employee[t.assignee] = data.usd_by_employee.get(t.assignee, 0.0) + usd
    data.counts = counts
    data.labels = sorted(labels)[:500]
    project_of = data.project_of
    for tid in tasks:
        project_of[tid] = _root(tid, tasks, project_of)
    for tid, root in project_of.items():
        if not is_root(tasks[root]):
            continue
        p = data.progress.get(root)
        if p is None:
            p = data.progress[root] = Progress()
        t = tasks[tid]
        p.total += 1
        p.done += t.status in DONE
        p.cancelled += t.status is Status.CANCELLED
        p.usd += t.cost.get("usd", 0.0)
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
    for t in tasks.values():
        if t.kind is Kind.WORK and t.status is Status.COMPLETED:
            out.append(Ask("review", t, None))
        elif t.kind is Kind.HUMAN and t.status is Status.PENDING and (
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
