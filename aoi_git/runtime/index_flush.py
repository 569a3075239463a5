"""Bringing the person's checkout (work-tree files and index) along with the daemon's commits.

The moves are made at most every INDEX_FLUSH_S, one index write for many commits and one
file write for a task's several transitions; until then they are journaled in `.aoi/`
(see `aoi_git.store.index_journal`), so a restart after a kill -9 finishes them, and a
person's commit or `aoi validate` meanwhile is not misled.

The index is the person's: writing it holds git's `index.lock`, and a `git add` or
`git commit` of theirs that starts meanwhile fails. So while a person's git is at work in
the checkout (seen in the last PERSON_QUIET_S), only the work-tree files are moved; the
index entries wait until the person's git has been quiet that long, or at most
INDEX_LAG_S (their commit meanwhile takes HEAD's version of a lagging entry: the
pre-commit hook moves it, see `aoi_git.org.commit_hooks`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from aoi_git.runtime.clock import Clock
from aoi_git.store import index_journal
from aoi_git.store.org_store import Store

INDEX_FLUSH_S = 0.5
INDEX_FLUSH_SHARE = 50  # while busy, flush at most every 50x the last flush took (<= 2%)
PERSON_QUIET_S = 1.0
INDEX_LAG_S = 10.0


class IndexFlush:
    def __init__(self, store: Store, journal: Path, clock: Clock,
                 log: Callable[[str], None]) -> None:
        self.store = store
        self.journal = journal
        journal.parent.mkdir(parents=True, exist_ok=True)
        self.writer = index_journal.Writer(journal)
        self.clock = clock
        self.log = log
        self.last = 0.0
        self.every = INDEX_FLUSH_S  # longer in a big org: its index write costs more
        self.behind_since: float | None = None  # (monotonic) index entries left pending

    def flush(self, with_index: bool = True) -> None:
        """Move what is pending now (later, when another git process holds the index);
        `with_index=False`: the work-tree files only."""
        started = self.clock.monotonic()
        done = self.store.flush_index(with_index)
        if self.store.pending_moves:
            self.behind_since = self.behind_since if self.behind_since is not None else started
        else:
            self.behind_since = None
        if not done:
            self.log("index locked by another git process: updating it later")
            return
        if not with_index:
            return
        # what a person's git may still write back stays known (see index_journal)
        self.writer.rewrite(self.store.settling_moves.items())
        # ~40 ms at 100k tasks (the whole index is rewritten): every 2 s, not every 0.5 s
        took = self.clock.monotonic() - started
        self.every = max(INDEX_FLUSH_S, min(5.0, INDEX_FLUSH_SHARE * took))

    def when_due(self, now: float, busy: bool) -> float | None:
        """Flush if it is time (always when not `busy`); when to come back, if pending."""
        if not (self.store.pending_moves or self.store.settling_moves):
            return None
        if now - self.last >= self.every or not busy:
            self.flush(self._index_due())
            self.last = now
            if not (self.store.pending_moves or self.store.settling_moves):
                return None
        return self.last + self.every

    def _index_due(self) -> bool:
        """The index may be written now (see the module docstring)."""
        if self.store.person_quiet_for() >= PERSON_QUIET_S:
            return True
        return (self.behind_since is not None
                and self.clock.monotonic() - self.behind_since >= INDEX_LAG_S)

    def finish_interrupted(self) -> None:
        """Finish the moves a process that died before flushing them journaled."""
        moves = index_journal.read(self.journal)
        if not moves:
            self.writer.clear()
            return
        self.store.resume_moves(moves)
        self.flush()
        # (a clean exit leaves only moves made, journaled while they settle: none to tell)
        unmade = sum(1 for m in moves.values() if m.file_old not in (m.new, index_journal.KEEP))
        if unmade:
            self.log(f"finished the work-tree and index update of {unmade} path(s) a crash "
                     "interrupted")
