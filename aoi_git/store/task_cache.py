"""Every task file at one commit: the compact task index and its cache under `.aoi/`.

The index holds one `TaskRow` per task file and a parsed `Task` only for the open ones
(`aoi_git.domain.task_rows`); a finished task is parsed from its blob when asked for. It is
kept in `.aoi/cache/tasks.pickle` between runs, keyed by the id of the `tasks/` tree it
describes: a warm start reads that one file, and an index of an older tree is brought up
to HEAD by the files that changed since (a git tree diff: unchanged subtrees are never
read), so only the first cold build parses every file. The cache is only a cache: a stale
or corrupt one is dropped and rebuilt from git.
"""

from __future__ import annotations

import gc
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pygit2

from aoi_git.domain.model import Task
from aoi_git.domain.task_rows import TaskMap, TaskRow, TaskRows, keeps_record, row_of
from aoi_git.errors import AoiError
from aoi_git.store.head_view import HeadView
from aoi_git.store.task_cache_file import (
    CACHE_VERSION,
    follow_commit,
    gc_paused,
    read_index,
    write_delta,
    write_whole,
)

__all__ = ["CACHE_VERSION", "TaskCache", "TaskIndex"]
RECENT_KEPT = 1024  # tasks this process wrote, by blob id (a transaction's lookups)
DELTA_MAX = 2000  # rows changed since the cache file past which it is rewritten whole


@dataclass
class TaskIndex:
    """Every task file at one commit: the task map (rows, open tasks) and files that
    failed to load."""

    root_tree: str | None
    tasks: TaskMap
    errors: dict[str, tuple[int, str]] = field(default_factory=dict)  # path -> (line, msg)

    @property
    def rows(self) -> TaskRows:
        return self.tasks.rows

    @property
    def paths(self) -> Mapping[str, str]:
        """id -> path of every task."""
        return self.tasks.paths

    def record(self, task: Task, path: str, blob_id: str | None) -> None:
        """`task` is now at `path` (as blob `blob_id`) in this index."""
        self.tasks.put(task, row_of(task, path, blob_id or ""))

    def remove(self, task_id: str) -> None:
        self.tasks.remove(task_id)


class TaskCache:
    """The last task index built, its cache file, and the tasks this process wrote."""

    def __init__(self, repo: pygit2.Repository, aoi_dir: Path) -> None:
        self.repo = repo
        self.file = aoi_dir / "cache" / "tasks.pickle"
        self.delta_file = aoi_dir / "cache" / "tasks.delta.pickle"  # changes since `file`
        self._base_root: str | None = None  # the tree `file` was written for
        self.index: TaskIndex | None = None
        self.dirty = False  # changed since the cache file was written
        self.parsed_blobs = 0  # blobs parsed by this process (a warm start parses none)
        self._recent: OrderedDict[str, Task] = OrderedDict()
        self._loaded = False

    def new_index(self, root_tree: str | None, rows: TaskRows | None = None,
                  open_tasks: dict[str, Task] | None = None) -> TaskIndex:
        return TaskIndex(root_tree, TaskMap(rows or TaskRows(), open_tasks or {},
                                            self._load_row))

    def load_tasks(self, view: HeadView) -> TaskIndex:
        """All tasks at `view`: the cached index, brought along by the files changed since
        its tree, or (no cache) every file parsed."""
        self.load()
        root_tree = view.blob_id("tasks")
        cached = self.index
        if cached is not None and cached.root_tree == root_tree:
            return cached
        index = None
        if cached is not None and cached.root_tree is not None and root_tree is not None:
            index = self._advanced(cached, root_tree)
        if index is None:
            index = self.new_index(root_tree)
            if root_tree is not None:
                with gc_paused():  # parsing 100k files: the collector's passes cost ~10%
                    self._walk(root_tree, "tasks", index, cached)
        self.adopt(index)
        return index

    def adopt(self, index: TaskIndex) -> None:
        """`index` is the current one (e.g. brought up to a commit this process made
        itself): the next load at its tree returns it, and the cache file is rewritten."""
        self.index = index
        self.dirty = True

    def follow_commit(self, before: HeadView, after: HeadView, written: Mapping[str, Task],
                      path_of: Callable[[str], str], files: Mapping[str, object]) -> None:
        """A commit from `before` to `after` that wrote `written` (`files`: every file it
        wrote): when this process has no index of its own (a one-off command that read
        only the tasks it changed), the cache file follows it (`follow_commit` of
        `task_cache_file`), so the next command finds it at HEAD."""
        if self.index is not None:
            return  # (its index is saved by its owner, brought along at its next load)
        paths = {path_of(tid): tid for tid in written}
        if any(p.startswith("tasks/") and p not in paths for p in files):
            return  # a task file removed or written raw: the next load's tree diff decides
        rows = []
        for path, tid in paths.items():
            blob = after.blob_id(path)
            if blob is None:
                return
            rows.append((written[tid], row_of(written[tid], path, blob),
                         before.blob_id(path) is None))
        follow_commit(self.file, self.delta_file, before.blob_id("tasks"),
                      after.blob_id("tasks"), rows)

    def note_task_written(self, path: str, blob_id: str, task: Task,
                          replaced: str | None = None) -> None:
        """Record a task just committed so the next transaction need not parse it."""
        recent = self._recent
        if replaced is not None and replaced != blob_id:
            recent.pop(replaced, None)
        recent[blob_id] = task
        if len(recent) > RECENT_KEPT:
            recent.popitem(last=False)

    def parsed_task(self, blob_id: str, task_id: str | None = None) -> Task | None:
        """The parsed task of a blob, if this process holds it without parsing: one it
        wrote, or (given its id) the current version of a task in the index."""
        found = self._recent.get(blob_id)
        if found is not None or task_id is None or self.index is None:
            return found
        row = self.index.rows.row(task_id)
        if row is None or row.blob != blob_id:
            return None
        return self.index.tasks.held(task_id)

    # ------------------------------------------------------------- building
    def _load_row(self, row: TaskRow) -> Task:
        """The record of a task not held parsed (a finished one), from its blob."""
        found = self._recent.get(row.blob)
        if found is not None:
            return found
        parsed = self._parse_blob(row.blob, row.path)
        if isinstance(parsed, Task):
            return parsed
        raise AoiError(f"{row.path}:{parsed[0]}: {parsed[1]}")

    def _take(self, index: TaskIndex, path: str, oid: str,
              old: TaskIndex | None) -> None:
        """The file `path` (blob `oid`) into `index`: a row (and the task, if open), or
        the reason it is not a task."""
        name = path.rsplit("/", 1)[-1]
        stem = name.rsplit(".", 1)[0]
        rows = index.tasks.rows
        task: Task | None = None
        if old is not None and stem not in rows:  # the same blob at the same path: reuse
            known = old.tasks.rows.row(stem)
            if known is not None and known.blob == oid and known.path == path:
                rows.put(known)
                held = old.tasks.open.get(stem)
                if held is not None:
                    index.tasks.open[stem] = held
                return
        parsed = self._recent.get(oid) or self._parse_blob(oid, path)
        if not isinstance(parsed, Task):
            index.errors[path] = parsed
            return
        task = parsed
        if task.id != stem:
            index.errors[path] = (1, f"id {task.id!r} must equal the file name {stem!r}")
            return
        if task.id in rows:
            other = rows[task.id].path
            index.errors[path] = (1, f"duplicate task id {task.id!r} (also {other})")
            return
        rows.put(row_of(task, path, oid))
        if keeps_record(task):
            index.tasks.open[task.id] = task

    def _walk(self, tree_id: str, prefix: str, index: TaskIndex,
              old: TaskIndex | None) -> None:
        tree = self.repo[tree_id]
        assert isinstance(tree, pygit2.Tree)
        for e in tree:
            name = e.name or ""
            path = f"{prefix}/{name}"
            if e.type_str == "tree":
                self._walk(str(e.id), path, index, old)
            elif name.endswith((".yaml", ".yml")):
                self._take(index, path, str(e.id), old)

    def _advanced(self, old: TaskIndex, root_tree: str) -> TaskIndex | None:
        """`old` brought to `root_tree` by the files that differ (None: rebuild, e.g. when
        a change involves a duplicated id, whose winner only a full walk decides)."""
        assert old.root_tree is not None
        a, b = self.repo[old.root_tree], self.repo[root_tree]
        assert isinstance(a, pygit2.Tree) and isinstance(b, pygit2.Tree)
        diff = a.diff_to_tree(b)
        changed: list[tuple[str, str | None]] = []  # path -> new blob (None: gone)
        for delta in diff.deltas:
            old_path = "tasks/" + (delta.old_file.path or "")
            new_path = "tasks/" + (delta.new_file.path or "")
            if delta.status_char() in ("D", "R"):
                changed.append((old_path, None))
            if delta.status_char() != "D":
                changed.append((new_path, str(delta.new_file.id)))
        duplicated = {msg.split("'")[1] for msg in
                      (m for _line, m in old.errors.values()) if msg.startswith("duplicate")}
        index = self.new_index(root_tree, old.tasks.rows.copy(),
                               dict(old.tasks.open))
        index.errors = dict(old.errors)
        index.tasks.changed = None if old.tasks.changed is None else set(old.tasks.changed)
        rows = index.tasks.rows
        for path, _blob in changed:
            stem = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
            if stem in duplicated:
                return None
            index.errors.pop(path, None)
            row = rows.row(stem)
            if row is not None and row.path == path:
                index.remove(stem)
        with gc_paused():
            for path, blob in changed:
                if blob is not None and path.endswith((".yaml", ".yml")):
                    self._take(index, path, blob, None)
        if index.tasks.changed is not None:
            index.tasks.changed.update(p.rsplit("/", 1)[-1].rsplit(".", 1)[0]
                                       for p, _blob in changed)
        if any(index.errors.get(path, (0, ""))[1].startswith("duplicate")
               for path, _blob in changed):
            return None  # which file keeps the id is the tree order's: a full walk's
        return index

    def _parse_blob(self, oid: str, path: str) -> Task | tuple[int, str]:
        from aoi_git.org.validate import parse_task_bytes  # local: validate imports store types

        blob = self.repo[oid]
        assert isinstance(blob, pygit2.Blob)
        self.parsed_blobs += 1
        if self.parsed_blobs % 1000 == 0:  # the collector is paused: the YAML loaders'
            gc.collect(0)  # cycles of the last 1000 files are freed here, not kept
        return parse_task_bytes(blob.data, path)

    # ------------------------------------------------------------- cache file
    def load(self) -> None:
        """Read the cache file's open part and its delta (once; a missing, stale or
        corrupt one leaves it empty). The rows of finished tasks, the file's second part,
        are read when a question first needs them (`TaskRows`)."""
        if self._loaded:
            return
        self._loaded = True
        try:
            read = read_index(self.file, self.delta_file)
        except Exception:
            # A stale or corrupt cache is only a cache: start over, it is rebuilt from git.
            read = None
        if read is None:
            return
        index = self.new_index(read.root_tree, read.rows, read.open)
        index.errors = read.errors
        index.tasks.changed = read.changed
        self._base_root = read.base_root
        self.index = index
        gc.freeze()  # the rows live as long as the process: out of the collector's passes

    def save(self, whole: bool = True) -> None:
        """Write the cache: only the rows changed since the cache file was read (a small
        delta file beside it) or, after a build or many changes, the whole index (not
        with `whole=False`: a running daemon's saves between commits, which must stay
        small; it writes the whole index at its exit)."""
        if not self.dirty or self.index is None:
            return
        index = self.index
        changed = index.tasks.changed
        small = changed is not None and self._base_root is not None and \
            len(changed) <= DELTA_MAX
        if not small and not whole:
            return
        if small:
            assert changed is not None and self._base_root is not None
            write_delta(self.delta_file, self._base_root, index.root_tree, index.rows,
                        changed, index.tasks.open, index.errors)
        else:
            write_whole(self.file, index.root_tree, index.rows, index.tasks.open,
                        index.errors)
            self.delta_file.unlink(missing_ok=True)
            self._base_root = index.root_tree
            index.tasks.changed = set()
        self.dirty = False
