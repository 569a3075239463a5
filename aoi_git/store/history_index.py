"""Which aoi commits name a task: an index of the branch's history, kept up to date.

A retrospective or a review cycle needs the commits of one project. Asking `git log` for
them walks the whole history since the project began, and in a busy org that history
holds every other project's commits too, so each finish cost more than the last. This
index maps each task id to the commits whose `Aoi-Task:` trailers name it. It lives in
`.aoi/cache/history.sqlite` (a cache: deleted or corrupt, it is rebuilt from git) and is
caught up from the commit it last saw to the one asked about, so a lookup costs the
project's commits plus the commits made since the last lookup.

Every commit of the history is numbered (aoi or not), in the order it was indexed: parents
before children within a catch-up, and no commit of a later catch-up is an ancestor of an
earlier one, so that order is a topological order, as `git log --reverse` gives. A
catch-up walks back from the new head and stops at commits already numbered, so it costs
the new commits alone, however many commits were made within the same second.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path

import pygit2

from aoi_git.store.history import Record, record
from aoi_git.store.trailers import parse_trailers

SCHEMA = "2"
_CHUNK = 500  # task ids per `IN (...)` query (well under SQLite's variable limit)
_RECORDS_KEPT = 4096  # parsed commits kept: a commit creating many tasks is read per project
_DDL = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS commits(seq INTEGER PRIMARY KEY, sha BLOB NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS task_commits(task TEXT NOT NULL, seq INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS task_commits_by_task ON task_commits(task);
"""


class HistoryIndex:
    """task id -> the aoi commits naming it, for the history of one line of commits."""

    def __init__(self, repo: pygit2.Repository, path: Path) -> None:
        self.repo = repo
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._parsed: dict[str, Record | None] = {}  # sha -> record (commits never change)

    # ---------------------------------------------------------------- public
    def records(self, rev: str, tasks: Iterable[str]) -> list[Record] | None:
        """The aoi commits up to `rev` that name any of `tasks`, oldest first (shared
        records: read them, don't change them).

        None when the index cannot answer for `rev`: `rev` is behind the commit the index
        was last caught up to (another process indexed a newer head), or the index file
        failed (it is dropped and rebuilt next time). The caller then asks git."""
        try:
            oid = self._resolve(rev)
            db = self._connect()
            if not self._catch_up(db, oid):
                return None
            shas = self._lookup(db, set(tasks))
        except (sqlite3.Error, OSError):
            self.reset()
            return None
        except (KeyError, ValueError, pygit2.GitError):  # e.g. a shallow clone's missing
            return None  # parent: let git answer, it knows the shallow boundary
        found = (self._record(sha) for sha in shas)
        return [rec for rec in found if rec is not None]

    def _record(self, sha: str) -> Record | None:
        if sha in self._parsed:
            return self._parsed[sha]
        commit = self.repo[sha]
        assert isinstance(commit, pygit2.Commit)
        rec = self._parsed[sha] = record(commit)
        if len(self._parsed) > _RECORDS_KEPT:
            del self._parsed[next(iter(self._parsed))]
        return rec

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def reset(self) -> None:
        """Drop the index file (it is rebuilt on the next lookup)."""
        self.close()
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(OSError):
                Path(str(self.path) + suffix).unlink()

    # ---------------------------------------------------------------- inside
    def _resolve(self, rev: str) -> pygit2.Oid:
        obj = self.repo.revparse_single(rev)
        commit = obj.peel(pygit2.Commit)
        return commit.id

    def _connect(self) -> sqlite3.Connection:
        if self._db is not None:
            return self._db
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        # a cache: WAL without fsync per commit (a crash loses at most the last catch-ups,
        # never consistency); no journal file created and deleted per transaction
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_DDL)
        row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None or row[0] != SCHEMA:
            with _write(db):
                _wipe(db)
                db.execute("INSERT OR REPLACE INTO meta VALUES('schema', ?)", (SCHEMA,))
        self._db = db
        return db

    def _catch_up(self, db: sqlite3.Connection, oid: pygit2.Oid) -> bool:
        """Index the commits up to `oid`; False if the index is ahead of it."""
        if _head(db) == str(oid):
            return True
        with _write(db):
            head = _head(db)  # again: another process may have caught up meanwhile
            if head == str(oid):
                return True
            if head is None:
                self._index_all(db, oid)
            else:
                new, boundary = self._unseen(db, oid)
                if pygit2.Oid(hex=head).raw in boundary:  # `oid` descends from `head`
                    _insert(db, new)
                elif _seen(db, oid.raw):
                    return False  # behind the index: another process indexed further
                else:  # history rewritten: index this line from scratch
                    _wipe(db)
                    self._index_all(db, oid)
            db.execute("INSERT OR REPLACE INTO meta VALUES('head', ?)", (str(oid),))
        return True

    def _unseen(self, db: sqlite3.Connection,
                oid: pygit2.Oid) -> tuple[list[pygit2.Commit], set[bytes]]:
        """The commits reachable from `oid` that are not indexed, parents first, and the
        indexed commits where the walk stopped. Every indexed commit is an ancestor of the
        indexed head, so the head is among them exactly when `oid` descends from it."""
        order: list[pygit2.Commit] = []
        boundary: set[bytes] = set()
        state: set[bytes] = set()
        stack: list[tuple[pygit2.Oid, bool]] = [(oid, False)]
        while stack:
            cid, parents_done = stack.pop()
            if parents_done:
                commit = self.repo[cid]
                assert isinstance(commit, pygit2.Commit)
                order.append(commit)
                continue
            if cid.raw in state:
                continue
            state.add(cid.raw)
            if _seen(db, cid.raw):
                boundary.add(cid.raw)
                continue
            stack.append((cid, True))
            commit = self.repo[cid]
            assert isinstance(commit, pygit2.Commit)
            stack.extend((p, False) for p in commit.parent_ids if p.raw not in state)
        return order, boundary

    def _index_all(self, db: sqlite3.Connection, oid: pygit2.Oid) -> None:
        _insert(db, self.repo.walk(
            oid, pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.REVERSE))

    @staticmethod
    def _lookup(db: sqlite3.Connection, tasks: set[str]) -> list[str]:
        found: dict[int, bytes] = {}
        ids = sorted(tasks)
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i:i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            found.update(db.execute(
                "SELECT c.seq, c.sha FROM task_commits t JOIN commits c ON c.seq = t.seq "
                f"WHERE t.task IN ({marks})", chunk).fetchall())
        return [found[s].hex() for s in sorted(found)]


def _insert(db: sqlite3.Connection, commits: Iterable[pygit2.Commit]) -> None:
    """Number `commits` (given parents first) after those indexed, and link their tasks."""
    row = db.execute("SELECT MAX(seq) FROM commits").fetchone()
    seq = (row[0] or 0) if row else 0
    rows: list[tuple[int, bytes]] = []
    links: list[tuple[str, int]] = []
    for commit in commits:
        seq += 1
        rows.append((seq, commit.id.raw))
        links.extend((t, seq) for t in _tasks_named(commit.message))
    db.executemany("INSERT INTO commits VALUES(?, ?)", rows)
    db.executemany("INSERT INTO task_commits VALUES(?, ?)", links)


def _seen(db: sqlite3.Connection, sha: bytes) -> bool:
    return db.execute("SELECT 1 FROM commits WHERE sha = ?", (sha,)).fetchone() is not None


def _tasks_named(message: str) -> list[str]:
    """The `Aoi-Task:` values of an aoi commit (one with an `Aoi-Actor:` trailer)."""
    trailers = parse_trailers(message)
    if not any(k == "Aoi-Actor" for k, _ in trailers):
        return []
    return list(dict.fromkeys(v for k, v in trailers if k == "Aoi-Task"))


def _head(db: sqlite3.Connection) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE key='head'").fetchone()
    return str(row[0]) if row else None


def _wipe(db: sqlite3.Connection) -> None:
    db.execute("DELETE FROM commits")
    db.execute("DELETE FROM task_commits")
    db.execute("DELETE FROM meta WHERE key='head'")


@contextlib.contextmanager
def _write(db: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, taken before reading (so two processes serialise)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
