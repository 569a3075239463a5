"""Task transactions: read tasks at a head, change them through the transition table,
and commit everything as one commit with trailers (rebuilt on a moved head)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

import pygit2

from aoi_git.domain.ids import shard_path
from aoi_git.domain.lifecycle import check_transition
from aoi_git.domain.model import Actor, Status, Task
from aoi_git.errors import AoiError, IllegalTransition
from aoi_git.org.validate import parse_task_bytes
from aoi_git.store import yamlio
from aoi_git.store.head_view import HeadView
from aoi_git.store.org_store import Change, Store
from aoi_git.store.trailers import Message, Transition


def now_iso(now: float | None = None) -> str:
    t = dt.datetime.now(dt.UTC) if now is None else dt.datetime.fromtimestamp(now, dt.UTC)
    return t.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def dump_task(task: Task, path: str | None = None) -> bytes:
    """The task file's bytes; with its repo-relative `path`, headed by the modeline that
    points the YAML language server (any editor's) at the schema."""
    return (schema_modeline(path) if path is not None else b"") + yamlio.dump(task.to_dict())


def schema_modeline(path: str) -> bytes:
    """`# yaml-language-server: $schema=...` with the schema's path relative to `path`."""
    up = "../" * path.count("/")
    return f"# yaml-language-server: $schema={up}schemas/task.schema.json\n".encode()


class Txn:
    """One commit's worth of changes, built against one head."""

    def __init__(self, view: HeadView, paths: Mapping[str, str], actor: Actor,
                 known: Callable[[str, str], Task | None] | None = None) -> None:
        self.view = view
        self.known = known  # (blob id, task id) -> the task, already parsed (a cache)
        self.paths = paths
        self.actor = actor
        self.files: dict[str, bytes | None] = {}
        self.transitions: list[Transition] = []
        self.written: dict[str, Task] = {}
        self.body_lines: list[str] = []
        self.cost: dict[str, float] = {}
        self.trailers: list[tuple[str, str]] = []
        self.subject: str | None = None
        self.extra_parents: tuple[str, ...] = ()
        self.base_tree: str | None = None
        self.in_work_tree: list[str] = []  # files a person saved: not to be written back
        self._found: dict[str, Task | None] = {}  # task id -> parsed version at this head
        self._written_paths: dict[str, str] = {}

    def path_of(self, task_id: str) -> str:
        if task_id in self._written_paths:  # put at a path of the writer's choosing
            return self._written_paths[task_id]
        if task_id in self.paths:
            return self.paths[task_id]
        return shard_path(task_id)

    def get(self, task_id: str) -> Task:
        if task_id in self.written:
            return self.written[task_id]
        found = self.find(task_id)
        if found is None:
            raise AoiError(f"no task {task_id!r} at {self.view.oid or 'the empty repo'}")
        return found

    def find(self, task_id: str) -> Task | None:
        if task_id in self.written:
            return self.written[task_id]
        if task_id in self._found:
            return self._found[task_id]
        path = self.path_of(task_id)
        if self.known is not None:
            blob = self.view.blob_id(path)
            cached = self.known(blob, task_id) if blob is not None else None
            if cached is not None and cached.id == task_id:
                self._found[task_id] = cached
                return cached
        data = self.view.read(path)
        if data is None:
            self._found[task_id] = None
            return None
        parsed = parse_task_bytes(data, path)
        if isinstance(parsed, tuple):
            raise AoiError(f"{path}:{parsed[0]}: {parsed[1]}")
        self._found[task_id] = parsed
        return parsed

    def put(self, task: Task, *, new: bool = False, path: str | None = None,
            then: bool = False) -> Task:
        """Write `task`; its status change is checked against the version at this head.

        `then`: a further move of a task this commit has already moved (e.g. accepted,
        then finished), checked against the version written here and recorded as a
        transition of its own, so the commit carries one `Aoi-Transition` per move."""
        old = None if new else self.find(task.id)
        if new and self.find(task.id) is not None:
            raise AoiError(f"task {task.id!r} already exists")
        if not new and old is None:
            raise AoiError(f"no task {task.id!r} to change")
        base_status = old.status if old is not None else None
        # the move this commit is making of the task: what the change is checked against
        last = next((t for t in reversed(self.transitions) if t.task_id == task.id), None)
        if then and last is not None and last.old != last.new:
            base_status = Status(last.new)
            last = None  # a move of its own
        elif last is not None:
            base_status = Status(last.old) if last.old else None
        check_transition(base_status, task.status, self.actor.kind, task.kind)
        target = path or self.path_of(task.id)
        if path is not None:
            self._written_paths[task.id] = path
        self.files[target] = dump_task(task, target)
        self.written[task.id] = task
        if last is not None:
            last.new = task.status.value
            last.title = task.title
        else:
            self.transitions.append(
                Transition(task.id, base_status.value if base_status else None,
                           task.status.value, task.title)
            )
        return task

    def update(self, task_id: str, **changes: Any) -> Task:
        return self.put(self.get(task_id).with_changes(**changes))

    def move(self, task_id: str, status: Status, **changes: Any) -> Task:
        """A transition that must change the status (a claim, a report): if the task is
        already in `status` at this head, another writer made the move first."""
        current = self.get(task_id)
        if current.status is status:
            raise IllegalTransition(
                f"task {task_id} is already {status.value}: another writer moved it first"
            )
        return self.put(current.with_changes(status=status, **changes))

    def put_file(self, path: str, data: bytes | None) -> None:
        self.files[path] = data

    def add_cost(self, cost: Mapping[str, float]) -> None:
        for k, v in cost.items():
            if isinstance(v, int | float) and v:
                self.cost[k] = self.cost.get(k, 0) + v

    def change(self) -> Change | None:
        if not self.files:
            return None
        msg = Message(self.transitions, str(self.actor), "\n".join(self.body_lines),
                      self.cost, self.trailers, self.subject)
        return Change(self.files, msg.render(), self.extra_parents, self.base_tree,
                      tuple(self.in_work_tree), actor=str(self.actor))


def commit(
    store: Store,
    fn: Callable[[Txn], Any],
    actor: Actor,
    paths: Mapping[str, str] | None = None,
) -> tuple[str | None, Txn]:
    """Run `fn` on a fresh Txn at the head (again if the head moves) and commit it."""
    holder: list[Txn] = []

    def build(view: HeadView) -> Change | None:
        txn = Txn(view, paths if paths is not None else {}, actor, store.parsed_task)
        holder[:] = [txn]
        fn(txn)
        return txn.change()

    oid = store.transact(build, actor=str(actor))
    txn = holder[0]
    if oid is not None:
        made = store.repo[oid]  # not the head: another writer may have moved it since
        assert isinstance(made, pygit2.Commit)
        head = HeadView(store.repo, made)
        for tid, task in txn.written.items():
            path = txn.path_of(tid)
            blob = head.blob_id(path)
            if blob is not None:
                store.note_task_written(path, blob, task, txn.view.blob_id(path))
        store.task_cache.follow_commit(txn.view, head, txn.written, txn.path_of, txn.files)
    return oid, txn
