"""The task cache's files under `.aoi/cache/`, read and written without pygit2.

`tasks.pickle` holds, after a header (the cache version and the fields tasks were
pickled with), the open part of a task index (its tree, the rows of open tasks, the
counts per status, the open tasks parsed, the files that failed to load), then the rows
of the other tasks as a second pickle, read only when asked for. `tasks.delta.pickle`
holds the rows changed since, on the tree that file was written for. A one-shot command
that only lists open tasks reads the first part without importing pygit2 (`read_index`).
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aoi_git.domain.bookkeeping import Bookkeeping, HireProposal
from aoi_git.domain.model import Task
from aoi_git.domain.task_rows import TaskRow, TaskRows, keeps_record
from aoi_git.errors import AoiError

CACHE_VERSION = 9  # raise when the parsed form of a task or a row changes (9: two parts)

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
def gc_paused(freeze: bool = False) -> Iterator[None]:
    """No cyclic-GC passes while building many acyclic objects at once. `freeze`: they
    live as long as the process, so they go out of the collector's reach before it is
    enabled again (else the first allocation after it traverses them all in a full pass:
    ~50 ms for a cache of 100k rows)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if enabled:
            gc.enable()


def _positional_reducer(cls: type) -> Callable[[object], tuple[type, tuple[object, ...]]]:
    values = operator.attrgetter(*_FIELDS[cls])

    def reduce(record: object) -> tuple[type, tuple[object, ...]]:
        return cls, values(record)

    return reduce


_REDUCERS: dict[type, Callable[[Any], tuple[type, tuple[object, ...]]]] = {
    cls: _positional_reducer(cls) for cls in _PICKLED_POSITIONALLY}


def _read(path: Path) -> Any:
    """A cache file's data, None when missing or of another version."""
    try:
        with open(path, "rb") as fh:
            if pickle.load(fh) != _header():
                return None
            with gc_paused(freeze=True):  # no cycles in here; collector passes cost ~30%
                return pickle.load(fh)
    except FileNotFoundError:
        return None


def _open(path: Path) -> tuple[Any, Callable[[], list[tuple[object, ...]]]] | None:
    """A cache file's first part, and how to read its second (the rows of finished
    tasks) later from the same file, even if it has been replaced since. None when it is
    missing or of another version."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 (kept open: the second part is read later)
    except FileNotFoundError:
        return None
    try:
        if pickle.load(fh) != _header():
            fh.close()
            return None
        with gc_paused(freeze=True):
            first = pickle.load(fh)
    except BaseException:
        fh.close()
        raise

    def rest() -> list[tuple[object, ...]]:
        with fh, gc_paused(freeze=True):
            try:
                rows: list[tuple[object, ...]] = pickle.load(fh)
            except Exception as exc:  # a cache is only a cache: the next run rebuilds it
                path.unlink(missing_ok=True)
                raise AoiError(f"the task cache {path} could not be read ({exc}); it is "
                               "removed and rebuilt from git: run the command again") from exc
            return rows

    return first, rest


def write_whole(file: Path, root_tree: str | None, rows: TaskRows,
                open_tasks: dict[str, Task], errors: dict[str, tuple[int, str]]) -> None:
    """Write the cache file of an index: its open part, then its finished rows."""
    open_rows, rest = rows.split_tuples()
    _write_parts(file, {"root_tree": root_tree, "open_rows": open_rows,
                        "counts": rows.counts(), "open": list(open_tasks.values()),
                        "errors": errors}, rest)


def write_delta(delta_file: Path, base_root: str, root_tree: str | None, rows: TaskRows,
                changed: set[str], open_tasks: dict[str, Task],
                errors: dict[str, tuple[int, str]]) -> None:
    """Write the delta of an index on the cache file of `base_root`: the rows of the ids
    `changed` since (None: removed), their open tasks, the counts and the errors."""
    _write_parts(delta_file, {
        "base_root": base_root, "root_tree": root_tree,
        "rows": {tid: rows.stored(tid) for tid in changed},
        "open": [open_tasks[tid] for tid in changed if tid in open_tasks],
        "errors": errors, "counts": rows.counts()})


def _write_parts(path: Path, data: object, *more: object) -> None:
    """Write a cache file (atomically): the header, then each part as a pickle of its own."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        pickle.dump(_header(), fh, protocol=pickle.HIGHEST_PROTOCOL)
        pickler = pickle.Pickler(fh, protocol=pickle.HIGHEST_PROTOCOL)
        if _POSITIONAL:
            pickler.dispatch_table = {**copyreg.dispatch_table, **_REDUCERS}
        for part in (data, *more):
            pickler.dump(part)
            pickler.clear_memo()
    os.replace(tmp, path)


def _header() -> dict[str, object]:
    return {"version": CACHE_VERSION,
            "fields": {cls.__name__: names for cls, names in _FIELDS.items()}}


@dataclass
class CachedIndex:
    """What a cache file and its delta say: the index of `root_tree` (its rows partial,
    the rest read from the file on demand), built on the full file of `base_root`."""

    root_tree: str | None
    base_root: str | None
    rows: TaskRows
    open: dict[str, Task]
    errors: dict[str, tuple[int, str]]
    changed: set[str]  # ids the delta changed


def read_index(file: Path, delta_file: Path) -> CachedIndex | None:
    """The index a cache file and its delta hold (None: missing or of another version;
    a corrupt one raises)."""
    opened = _open(file)
    if opened is None:
        return None
    data, rest = opened
    stored = {str(t[0]): t for t in data["open_rows"]}
    held: dict[str, Task] = {t.id: t for t in data["open"]}
    root_tree, errors, counts = data["root_tree"], data["errors"], data["counts"]
    base_root = root_tree
    changed: set[str] = set()
    gone: set[str] = set()
    delta = _read(delta_file)
    if delta is not None and delta["base_root"] == root_tree:
        for tid, row in delta["rows"].items():
            held.pop(tid, None)
            changed.add(tid)
            if row is None:
                stored.pop(tid, None)
                gone.add(tid)
            else:
                stored[tid] = row
        held.update((t.id, t) for t in delta["open"])
        root_tree, errors, counts = delta["root_tree"], delta["errors"], delta["counts"]
    return CachedIndex(root_tree, base_root, TaskRows(stored, rest, counts, frozenset(gone)),
                       held, errors, changed)


def follow_commit(file: Path, delta_file: Path, old_root: str | None, new_root: str | None,
                  written: list[tuple[Task, TaskRow, bool]]) -> bool:
    """Bring a cache of `old_root` to `new_root`, a commit that wrote only `written` among
    the task files (each task, its new row, and whether its file is new), by a delta:
    what a one-off command that never loads the org (`aoi task new`) does, so the next
    `aoi task list` or `aoi status` finds the cache at HEAD. False (the cache left as it
    is, to be brought along at the next load) when the cache is of another tree, or
    cannot tell a task's earlier state without reading its finished rows."""
    if old_root is None or new_root is None:
        return False
    try:
        read = read_index(file, delta_file)
    except Exception:
        return False
    if read is None or read.root_tree != old_root or read.base_root is None:
        return False
    rows = read.rows
    for task, row, new_file in written:
        known, was = rows.held_stored(task.id)
        if not (new_file if was is None else known) or row.path in read.errors:
            return False  # (a finished task: its earlier row is in the part not read)
        if was is not None and rows.path_of(task.id) != row.path:
            return False  # moved to another file: the next load's tree diff decides
        rows.moved(row, was)
        read.changed.add(task.id)
        if keeps_record(task):
            read.open[task.id] = task
        else:
            read.open.pop(task.id, None)
    write_delta(delta_file, read.base_root, new_root, rows, read.changed, read.open,
                read.errors)
    return True
