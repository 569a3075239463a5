"""Every task file at one commit, parsed once: the task index and its cache under `.aoi/`.

A blob is parsed only the first time it is seen (by content id), and a tree is listed only
once; both, with the last index, are kept in `.aoi/cache/tasks.pickle` between runs, so a
warm start at 100k tasks reads one file instead of parsing 100k. The cache is only a cache:
a stale or corrupt one is dropped and rebuilt from git.
"""

from __future__ import annotations

import contextlib
import copyreg
import dataclasses
import gc
import operator
import os
import pickle
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pygit2

from aoi_git.domain.bookkeeping import Bookkeeping, HireProposal
from aoi_git.domain.model import Task
from aoi_git.store.head_view import HeadView

CACHE_VERSION = 6  # raise when the parsed form of a task changes (6: schema-checked)

# Tasks are pickled as `Task(*values)`: the dataclass default for a frozen slotted class
# (`_dataclass_setstate`, which calls `fields()` per object) made a warm start at 100k tasks
# take ~1.5 s instead of ~0.5 s. The cache header records the fields it was made with.
_PICKLED_POSITIONALLY: tuple[type, ...] = (Task, HireProposal)
_FIELDS: dict[type, tuple[str, ...]] = {
    cls: tuple(f.name for f in dataclasses.fields(cls))
    for cls in (*_PICKLED_POSITIONALLY, Bookkeeping)}
_POSITIONAL = all(f.init and f.kw_only is not True
                  for cls in _PICKLED_POSITIONALLY for f in dataclasses.fields(cls))


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic-GC passes while building many acyclic objects at once."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _positional_reducer(cls: type) -> Callable[[object], tuple[type, tuple[object, ...]]]:
    values = operator.attrgetter(*_FIELDS[cls])

    def reduce(record: object) -> tuple[type, tuple[object, ...]]:
        return cls, values(record)

    return reduce


_REDUCERS: dict[type, Callable[[Any], tuple[type, tuple[object, ...]]]] = {
    cls: _positional_reducer(cls) for cls in _PICKLED_POSITIONALLY}


@dataclass
class TaskIndex:
    """Every task file at one commit: id -> path, parsed tasks, and files that failed."""

    root_tree: str | None
    paths: dict[str, str] = field(default_factory=dict)  # id -> path
    blobs: dict[str, str] = field(default_factory=dict)  # path -> blob id
    tasks: dict[str, Task] = field(default_factory=dict)  # id -> task
    errors: dict[str, tuple[int, str]] = field(default_factory=dict)  # path -> (line, msg)

    def record(self, task: Task, path: str, blob_id: str | None) -> None:
        """`task` is now at `path` (as blob `blob_id`, when known) in this index."""
        self.paths[task.id] = path
        self.tasks[task.id] = task
        if blob_id:
            self.blobs[path] = blob_id


class TaskCache:
    """Parsed tasks by blob id, listed trees by tree id, and the last index built."""

    def __init__(self, repo: pygit2.Repository, aoi_dir: Path) -> None:
        self.repo = repo
        self.file = aoi_dir / "cache" / "tasks.pickle"
        self.index: TaskIndex | None = None
        self.dirty = False  # changed since the cache file was written
        self._trees: dict[str, list[tuple[str, str, bool]]] = {}
        self._parsed: dict[str, Task | tuple[int, str]] = {}
        self._loaded = False

    def load_tasks(self, view: HeadView) -> TaskIndex:
        """All tasks at `view`, parsing only blobs not seen before."""
        self.load()
        root_tree = view.blob_id("tasks")
        cached = self.index
        if cached is not None and cached.root_tree == root_tree:
            return cached
        index = TaskIndex(root_tree=root_tree)
        if root_tree is not None:
            with gc_paused():  # parsing 100k files: the collector's passes cost ~10%
                self._walk(root_tree, "tasks", index)
        self.adopt(index)
        return index

    def adopt(self, index: TaskIndex) -> None:
        """`index` is the current one (e.g. brought up to a commit this process made
        itself): the next load at its tree returns it, and the cache file is rewritten."""
        self.index = index
        self.dirty = True

    def parsed_blob_ids(self) -> set[str]:
        """Blob ids whose parsed task (or parse error) is known."""
        return set(self._parsed)

    def note_task_written(self, path: str, blob_id: str, task: Task,
                          replaced: str | None = None) -> None:
        """Record a task just committed so the next load (or transaction) need not parse
        it; the version it replaced is dropped, so a long-running process's cache stays
        the size of the org, not of its history."""
        self._parsed[blob_id] = task
        if replaced is not None and replaced != blob_id:
            self._parsed.pop(replaced, None)

    def parsed_task(self, blob_id: str) -> Task | None:
        """The parsed task of a blob this process has already read or written, if any."""
        found = self._parsed.get(blob_id)
        return found if isinstance(found, Task) else None

    def _walk(self, tree_id: str, prefix: str, index: TaskIndex) -> None:
        entries = self._trees.get(tree_id)
        if entries is None:
            tree = self.repo[tree_id]
            assert isinstance(tree, pygit2.Tree)
            entries = [
                (e.name or "", str(e.id), e.type_str == "tree") for e in tree
            ]
            self._trees[tree_id] = entries
            self.dirty = True
        for name, oid, is_tree in entries:
            path = f"{prefix}/{name}"
            if is_tree:
                self._walk(oid, path, index)
                continue
            if not name.endswith((".yaml", ".yml")):
                continue
            index.blobs[path] = oid
            parsed = self._parsed.get(oid)
            if parsed is None:
                parsed = self._parse_blob(oid, path)
                self._parsed[oid] = parsed
                self.dirty = True
            if isinstance(parsed, Task):
                stem = name.rsplit(".", 1)[0]
                if parsed.id != stem:
                    index.errors[path] = (1, f"id {parsed.id!r} must equal the file name {stem!r}")
                    continue
                if parsed.id in index.paths:
                    other = index.paths[parsed.id]
                    index.errors[path] = (1, f"duplicate task id {parsed.id!r} (also {other})")
                    continue
                index.paths[parsed.id] = path
                index.tasks[parsed.id] = parsed
            else:
                index.errors[path] = parsed

    def _parse_blob(self, oid: str, path: str) -> Task | tuple[int, str]:
        from aoi_git.org.validate import parse_task_bytes  # local: validate imports store types

        blob = self.repo[oid]
        assert isinstance(blob, pygit2.Blob)
        return parse_task_bytes(blob.data, path)

    # ------------------------------------------------------------- cache file
    def load(self) -> None:
        """Read the cache file (once; a missing, stale or corrupt one leaves it empty)."""
        if self._loaded:
            return
        self._loaded = True
        try:
            with open(self.file, "rb") as fh:
                header = pickle.load(fh)
                if header != _header():
                    return
                with gc_paused():  # no cycles in here; collector passes cost ~30%
                    data = pickle.load(fh)
            self._trees = data["trees"]
            self._parsed = data["parsed"]
            self.index = data["index"]
        except FileNotFoundError:
            return
        except Exception:
            # A stale or corrupt cache is only a cache: start over, it is rebuilt from git.
            self._trees, self._parsed, self.index = {}, {}, None

    def save(self) -> None:
        """Write the cache file, keeping only the trees and tasks of the current index."""
        if not self.dirty or self.index is None:
            return
        live_trees: dict[str, list[tuple[str, str, bool]]] = {}
        live_blobs = set(self.index.blobs.values())

        def keep(tree_id: str | None) -> None:
            if tree_id is None or tree_id not in self._trees:
                return
            live_trees[tree_id] = self._trees[tree_id]
            for _name, oid, is_tree in live_trees[tree_id]:
                if is_tree:
                    keep(oid)

        keep(self.index.root_tree)
        parsed = {k: v for k, v in self._parsed.items() if k in live_blobs}
        self._trees, self._parsed = live_trees, parsed
        data = {"trees": live_trees, "parsed": parsed, "index": self.index}
        self.file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.file.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            pickle.dump(_header(), fh, protocol=pickle.HIGHEST_PROTOCOL)
            pickler = pickle.Pickler(fh, protocol=pickle.HIGHEST_PROTOCOL)
            if _POSITIONAL:
                pickler.dispatch_table = {**copyreg.dispatch_table, **_REDUCERS}
            pickler.dump(data)
        os.replace(tmp, self.file)
        self.dirty = False


def _header() -> dict[str, object]:
    return {"version": CACHE_VERSION,
            "fields": {cls.__name__: names for cls, names in _FIELDS.items()}}
