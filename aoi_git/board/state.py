"""The board's view of the org: the branch tip it shows, reloaded when the branch moves.

Pages are built, and decisions committed, one at a time on one thread of their own (the
store's handles, e.g. the history index's SQLite connection, belong to one thread); a page
takes milliseconds, a reload at 100k tasks a few hundred."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from aoi_git.board import read
from aoi_git.board.daemon_view import DaemonView, read_daemon
from aoi_git.board.read import Ask, BoardData, CostDay
from aoi_git.domain.model import Actor
from aoi_git.evolution.project_metrics import project_records
from aoi_git.org.organisation import load_org
from aoi_git.store.history import Record, records
from aoi_git.store.org_store import Store
from aoi_git.store.worktrees import open_workspace

T = TypeVar("T")
COST_DAYS = 30


@dataclass(frozen=True)
class Transition:
    commit: str
    actor: str
    task: str
    move: str  # "a->b"
    subject: str


@dataclass(frozen=True)
class Costs:
    today_usd: float
    days: list[CostDay]


class BoardState:
    def __init__(self, root: Path, person: Actor, email: str) -> None:
        self.root = root
        self.person = person
        self.email = email
        self.store = Store(root)
        self._ref_store = Store(root)  # the live feed's: reads the branch tip alone
        self.lock = threading.Lock()
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="board-store")
        self._data: BoardData | None = None
        self._asks: tuple[str | None, list[Ask]] | None = None
        self._costs: tuple[str | None, Costs] | None = None

    # ---------------------------------------------------------------- reading
    def tip(self) -> str | None:
        """The branch tip now (read fresh from the ref, without the lock)."""
        head = self._ref_store.head_commit()
        return str(head.id) if head is not None else None

    async def call(self, fn: Callable[..., T], *args: object) -> T:
        """`fn(*args)` on the store's thread."""
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn, *args)

    def locked(self, fn: Callable[[BoardData], T]) -> T:
        """`fn` of the org at the current branch tip, under the lock."""
        with self.lock:
            return fn(self._current())

    def _current(self) -> BoardData:
        head = self.store.head_commit()
        oid = str(head.id) if head is not None else None
        if self._data is None or self._data.commit != oid:
            first = self._data is None
            self._data = read.build(load_org(self.store))
            self._data.columns(read.Filters(), read.PER_COLUMN)  # the first page's answer
            if first:
                self.store.save_cache()  # a later `aoi` command starts warm
        return self._data

    def daemon(self) -> DaemonView:
        return read_daemon(self.root)

    def asks(self, data: BoardData) -> list[Ask]:
        if self._asks is None or self._asks[0] != data.commit:
            self._asks = (data.commit, read.asks(data))
        return self._asks[1]

    def diff(self, data: BoardData, task_id: str) -> str:
        return open_workspace(self.store, data.org.config).diff(task_id)

    def trail(self, data: BoardData, task_id: str) -> list[Record]:
        if data.commit is None:
            return []
        return list(project_records(self.store, data.tasks, [task_id], data.commit))

    def costs(self, data: BoardData) -> Costs:
        if self._costs is None or self._costs[0] != data.commit:
            today = dt.date.today()
            start = today - dt.timedelta(days=COST_DAYS - 1)
            rows = [] if data.commit is None else list(read.iter_costs(records(
                self.root, rev=data.commit, since=f"{start.isoformat()} 00:00")))
            midnight = time.mktime(today.timetuple())
            self._costs = (data.commit, Costs(
                sum(usd for ts, usd in rows if ts >= midnight),
                read.cost_by_day(rows, COST_DAYS, today)))
        return self._costs[1]

    def transitions(self, old: str | None, new: str | None) -> list[Transition]:
        """The transitions committed after `old` up to `new` (oldest first)."""
        if new is None or old is None:
            return []
        out = []
        for rec in records(self.root, rev=f"{old}..{new}"):
            out += [Transition(rec.commit, rec.actor, task, move, rec.subject)
                    for task, move in rec.transitions]
        return out[-50:]
