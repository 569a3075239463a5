"""People and agents on the board: each employee's state and current task, and the
hand-offs between them (reviews, questions, subtasks) that are open now."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from aoi_git.board.daemon_view import DaemonView
from aoi_git.board.read import BoardData
from aoi_git.domain.lifecycle import reviewer_of
from aoi_git.domain.model import Employee, Kind, Status, Task


class State(str, Enum):
    IDLE = "idle"
    RUNNING = "running"
    BLOCKED = "blocked"
    SUSPENDED = "suspended"
    PAUSED = "paused"  # its backend's circuit breaker is open
    OFFBOARDED = "offboarded"


@dataclass(frozen=True)
class Card:
    id: str
    name: str
    role: str
    reports_to: str | None
    is_human: bool
    state: State
    current: Task | None
    elapsed_s: float | None
    started: float | None  # when its run started (epoch seconds)
    open_count: int
    usd: float


@dataclass(frozen=True)
class HandOff:
    source: str
    target: str
    kind: str  # review | question | subtask
    task: str


ACTIVE = (Status.PROCESSING, Status.BLOCKED, Status.WAITING)


def _state(e: Employee, active: list[Task], daemon: DaemonView, now: float) -> State:
    status = e.status.value
    if status == "offboarded":
        return State.OFFBOARDED
    if status == "suspended" or any(t.status.value == "suspended" for t in active):
        return State.SUSPENDED
    if daemon.paused_until.get(e.backend.kind, 0.0) > now:
        return State.PAUSED
    if daemon.run_of(e.id) is not None or any(t.status is Status.PROCESSING for t in active):
        return State.RUNNING
    if any(t.status in (Status.BLOCKED, Status.WAITING) for t in active):
        return State.BLOCKED
    return State.IDLE


def _active(data: BoardData) -> dict[str, list[Task]]:
    """Each assignee's tasks that are under way (processing, blocked, waiting, or in a
    status the lifecycle adds later), read off those columns: not off every open task."""
    out: dict[str, list[Task]] = {}
    for status, column in data.by_status.items():
        if status in ACTIVE or status.value == "suspended":
            for t in column.values():
                if t.assignee:
                    out.setdefault(t.assignee, []).append(t)
    return out


def cards(data: BoardData, daemon: DaemonView, now: float) -> list[Card]:
    org = data.org
    active = _active(data)
    out: list[Card] = []
    for hid, h in sorted(org.config.humans.items()):
        n = len(data.open_by_id.get(hid, {}))
        out.append(Card(hid, h.name, h.role or "person", None, True,
                        State.BLOCKED if n else State.IDLE, None, None, None, n,
                        data.usd_by_employee.get(hid, 0.0)))
    for eid, e in sorted(org.employees.items()):
        mine = active.get(eid, [])
        run = daemon.run_of(eid)
        current: Task | None = data.tasks.get(run.task) if run else None
        if current is None:
            current = next((t for t in mine if t.status is Status.PROCESSING), None)
        if current is None:
            current = next(iter(mine), None)
        out.append(Card(eid, e.name or eid, e.role, e.reports_to, False,
                        _state(e, mine, daemon, now), current,
                        now - run.started if run else None, run.started if run else None,
                        len(data.open_by_id.get(eid, {})),
                        data.usd_by_employee.get(eid, 0.0)))
    return out


def hand_offs(data: BoardData, limit: int = 200) -> list[HandOff]:
    """Open hand-offs between two different people or agents, one per (from, to, kind):
    work waiting for its reviewer, an open review task or question, a subtask under way.
    (A subtask still in the queue is not a hand-off yet.)"""
    seen: dict[tuple[str, str, str], HandOff] = {}
    candidates = [*data.by_status[Status.COMPLETED].values(),
                  *(t for s in ACTIVE for t in data.by_status[s].values()),
                  *data.open_kind[Kind.REVIEW].values(), *data.open_kind[Kind.HUMAN].values()]
    for t in candidates:
        if len(seen) >= limit:
            break
        if not t.assignee or t.is_terminal:
            continue
        src, dst, kind = _hand_off(t, t.assignee, data)
        if src and dst and src != dst:
            seen.setdefault((src, dst, kind), HandOff(src, dst, kind, t.id))
    return list(seen.values())


def _hand_off(t: Task, who: str, data: BoardData) -> tuple[str | None, str | None, str]:
    tasks: Mapping[str, Task] = data.tasks
    if t.kind is Kind.WORK and t.status is Status.COMPLETED:
        return who, reviewer_of(t, tasks, data.org.config), "review"
    if t.kind is Kind.REVIEW:
        subject = tasks.get(t.subject) if t.subject else None
        return (subject.assignee if subject else None), who, "review"
    if t.kind is Kind.HUMAN:
        about = t.bookkeeping.about or t.subject
        asker = tasks.get(about) if about else None
        return (asker.assignee if asker else None), who, "question"
    parent = tasks.get(t.parent) if t.parent else None
    return (parent.assignee if parent else None), who, "subtask"
