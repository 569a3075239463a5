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
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

KEEP = "keep"  # `file_old` of a path whose work-tree file is not ours to move


@dataclass(frozen=True)
class Move:
    """A path's update still to write: blob ids, None where the path is absent."""

    index_old: str | None  # what the index has for it
    new: str | None  # what the last commit has
    file_old: str | None  # what the work tree has, if we wrote it; KEEP: a person's file

    def then(self, later: Move) -> Move:
        """This move followed by `later` (a later commit of the same path)."""
        return replace(self, new=later.new)


def journal_path(root: Path) -> Path:
    return root / ".aoi" / "daemon" / "index-pending.jsonl"


class Writer:
    """The daemon's journal, kept open: a commit's rows are one `write` (no open and close
    per commit), and a flush empties the file in place instead of deleting it."""

    def __init__(self, journal: Path) -> None:
        self.path = journal
        self._fd: int | None = None

    def append(self, moves: Iterable[tuple[str, Move]]) -> None:
        rows = "".join(json.dumps([path, m.index_old, m.new, m.file_old]) + "\n"
                       for path, m in moves)
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

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def read(journal: Path) -> dict[str, Move]:
    """Journaled moves merged per path (the earliest olds, the newest `new`)."""
    try:
        lines = journal.read_text().splitlines()
    except OSError:
        return {}
    out: dict[str, Move] = {}
    for line in lines:
        try:
            path, index_old, new, file_old = json.loads(line)
        except (ValueError, TypeError):
            continue  # a line cut short by a crash
        move = Move(index_old, new, file_old)
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


def stale_entry(moves: Mapping[str, Move], path: str, blob: str | None,
                head_blob: str | None) -> bool:
    """True when an index entry with `blob` is only the daemon's update still to write."""
    move = moves.get(path)
    return move is not None and blob == move.index_old and blob != head_blob
