"""The daemon's work-tree and index updates that are committed but not written yet.

A daemon commits many times a second. Writing the index after each commit would cost
~40 ms at 100k tasks, and bringing each task file in the work tree along after each of its
four transitions would write it four times; so the daemon does both at most every half
second (see `Store.flush_index`). Until then, each commit's paths are journaled here as JSON
lines `[path, old blob, new blob]`, so that:

* a daemon restarted after a kill -9 finishes the update (`git status` shows only what a
  person changed, never a stale file);
* a person's `git commit` in that half second does not revert what the daemon committed:
  the pre-commit hook moves stale index entries forward first;
* `aoi validate` and `aoi status` do not mistake a stale file for a person's edit.

A flush's index write can still be undone: `git commit` reads the index before it takes
`index.lock` and then writes back the copy it read (builtin/commit.c `prepare_index`), so
a daemon write that lands in between is lost. The moves of a flush therefore stay in the
journal, `Settling`, for `SETTLE_S`: every later flush moves again an entry found back at
its old blob, and the hook still knows such an entry for the daemon's.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

KEEP = "keep"  # `file_old` of a path whose work-tree file is not ours to move
SETTLE_S = 2.0  # how long a written index entry is watched for a person's git undoing it


@dataclass(frozen=True)
class Move:
    """A path's update still to write: blob ids, None where the path is absent."""

    index_old: str | None  # what the index has for it
    new: str | None  # what the last commit has
    file_old: str | None  # what the work tree has, if we wrote it; KEEP: a person's file
    index_also: tuple[str | None, ...] = ()  # blobs the entry may hold instead of index_old

    def then(self, later: Move) -> Move:
        """This move followed by `later` (a later commit of the same path): the entry may
        be at any blob in between (an earlier one may have been written already)."""
        return replace(self, new=later.new, index_also=(
            *self.index_also, later.index_old, *later.index_also))

    @property
    def index_olds(self) -> frozenset[str | None]:
        """Every blob the entry may hold that this move takes on to `new`."""
        return frozenset((self.index_old, *self.index_also))


def _row(path: str, move: Move) -> str:
    also = [list(move.index_also)] if move.index_also else []
    return json.dumps([path, move.index_old, move.new, move.file_old, *also]) + "\n"


def _parse(line: str) -> tuple[str, Move] | None:
    try:
        path, index_old, new, file_old, *also = json.loads(line)
        return path, Move(index_old, new, file_old, tuple(also[0]) if also else ())
    except (ValueError, TypeError, IndexError):
        return None  # a line cut short by a crash


def journal_path(root: Path) -> Path:
    return root / ".aoi" / "daemon" / "index-pending.jsonl"


class Writer:
    """The daemon's journal, kept open: a commit's rows are one `write` (no open and close
    per commit), and a flush empties the file in place instead of deleting it."""

    def __init__(self, journal: Path) -> None:
        self.path = journal
        self._fd: int | None = None

    def append(self, moves: Iterable[tuple[str, Move]]) -> None:
        rows = "".join(_row(path, m) for path, m in moves)
        if not rows:
            return
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                               0o644)
        os.write(self._fd, rows.encode())

    def clear(self) -> None:
        if self._fd is None:
            clear(self.path)
        else:
            os.ftruncate(self._fd, 0)

    def rewrite(self, moves: Iterable[tuple[str, Move]]) -> None:
        """Replace the journal by `moves` in one rename (a reader sees the old rows or the
        new ones, never none)."""
        rows = list(moves)
        if not rows:
            self.clear()
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(_row(path, m) for path, m in rows))
        os.replace(tmp, self.path)
        self.close()  # the next append opens the new file

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Settling:
    """Index entries a flush wrote, watched for `SETTLE_S` (see the module docstring)."""

    def __init__(self) -> None:
        self.moves: dict[str, Move] = {}
        self._since: dict[str, float] = {}

    def add(self, moves: Mapping[str, Move], now: float) -> None:
        for path, move in moves.items():
            if move.index_old != move.new:
                self.moves[path] = move
                self._since[path] = now

    def lost(self, entries: Mapping[str, str | None], now: float) -> dict[str, Move]:
        """The moves whose entry (`entries`: blob per path, None for none) is back at its
        old blob, to be made again; the others are forgotten once `SETTLE_S` is over."""
        out: dict[str, Move] = {}
        for path, move in list(self.moves.items()):
            entry = entries.get(path)
            if entry in move.index_olds and entry != move.new:
                out[path] = move
                self._since[path] = now  # made again: watched anew
            elif now - self._since[path] >= SETTLE_S:
                del self.moves[path], self._since[path]
        return out


def read(journal: Path) -> dict[str, Move]:
    """Journaled moves merged per path (the earliest olds, the newest `new`)."""
    try:
        lines = journal.read_text().splitlines()
    except OSError:
        return {}
    out: dict[str, Move] = {}
    for line in lines:
        parsed = _parse(line)
        if parsed is None:
            continue
        path, move = parsed
        earlier = out.get(path)
        out[path] = earlier.then(move) if earlier else move
    return out


def clear(journal: Path) -> None:
    journal.unlink(missing_ok=True)


def stale_file(moves: Mapping[str, Move], path: str, blob: str | None,
               head_blob: str | None) -> bool:
    """True when a work-tree file with `blob` is only the daemon's update still to write."""
    move = moves.get(path)
    return move is not None and blob == move.file_old and blob != head_blob


def passed_blobs(journal: Path) -> dict[str, set[str | None]]:
    """Per path, every blob the journal says the daemon moved the path from or to (None:
    absent); an index entry holding one that is not HEAD's only lags behind the daemon."""
    try:
        lines = journal.read_text().splitlines()
    except OSError:
        return {}
    out: dict[str, set[str | None]] = {}
    for line in lines:
        parsed = _parse(line)
        if parsed is not None:
            path, move = parsed
            out.setdefault(path, set()).update((*move.index_olds, move.new))
    return out


def stale_entry(passed: Mapping[str, set[str | None]], path: str, blob: str | None,
                head_blob: str | None) -> bool:
    """True when an index entry with `blob` is only the daemon's update still to write
    (`passed`: from `passed_blobs`)."""
    return blob != head_blob and blob in passed.get(path, ())
