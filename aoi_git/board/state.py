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
from aoi_git.domain.model import Actor, Task
from aoi_git.evolution.project_metrics import project_records
from aoi_git.org.organisation import load_org
from aoi_git.org.validate import parse_task_bytes
from aoi_git.store import tree_diff
from aoi_git.store.history import Record, records
from aoi_git.store.org_store import Store
from aoi_git.store.worktrees import open_workspace

T = TypeVar("T")
COST_DAYS = 30
ADVANCE_MAX_FILES = 2000  # more changed task files than this: load the org again


def _depth(t: Task | None, batch: dict[str, Task]) -> int:
    """How many of its ancestors are new in `batch` (a new project's root comes first)."""
    depth, seen = 0, set()
    while t is not None and t.parent in batch and t.id not in seen:
        seen.add(t.id)
        depth += 1
        t = batch[t.parent]
    return depth


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
        self.full_loads = 0  # times the org was loaded whole (not brought along)

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
        data = self._data
        if data is not None and data.commit == oid:
            return data
        if data is None or data.commit is None or oid is None or not self._advance(data, oid):
            self._data = data = read.build(load_org(self.store))
            self.full_loads += 1
        data.columns(read.Filters(), read.PER_COLUMN)  # the first page's answer, ready
        return data

    def _advance(self, data: BoardData, new: str) -> bool:
        """Bring `data` from its commit to `new` by the task files that changed (a commit
        touches a few of 100k); False when that is not worth it or not enough (a file
        outside tasks/ changed, many files, tasks moved between projects)."""
        assert data.commit is not None
        changes = tree_diff.between(self.store.repo, data.commit, new)
        if changes.others or len(changes.tasks) > ADVANCE_MAX_FILES:
            return False
        view = self.store.view(new)
        index = data.org.index
        removed: list[Task] = []
        added: list[Task] = []
        for path, blob in sorted(changes.tasks, key=lambda c: c[1] is not None):
            name = path.rsplit("/", 1)[-1]
            if not name.endswith((".yaml", ".yml")):
                continue
            tid = name.rsplit(".", 1)[0]
            old = index.tasks.get(tid) if index.paths.get(tid) == path else None
            if old is not None:
                index.remove(tid)
                removed.append(old)
            index.errors.pop(path, None)
            if blob is None:
                continue
            parsed = self.store.parsed_task(blob) or parse_task_bytes(view.read(path) or b"",
                                                                      path)
            if not isinstance(parsed, Task):
                index.errors[path] = parsed
            elif parsed.id != tid or parsed.id in index.paths:
                index.root_tree = None  # half brought along: never the index of a tree
                return False  # the loader's checks (id = file name, unique) decide
            else:
                index.record(parsed, path, blob)
                added.append(parsed)
        index.root_tree = view.blob_id("tasks")
        data.org.tasks_changed(new)
        self.store.task_cache.adopt(index)
        before = {t.id: t for t in removed}
        now = {t.id: t for t in added}
        pairs = [(before.get(tid), now.get(tid)) for tid in (*before, *now.keys() - before)]
        pairs.sort(key=lambda p: _depth(p[1], now) if p[0] is None else -1)
        return all(data.changed(old, new_) for old, new_ in pairs)

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
