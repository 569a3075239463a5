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

import time
from collections.abc import Callable
from pathlib import Path

from aoi_git.runtime.clock import Clock
from aoi_git.store import index_journal
from aoi_git.store.org_store import Store

INDEX_FLUSH_S = 0.5
INDEX_FLUSH_SHARE = 50  # while busy, flush at most every 50x the last flush took (<= 2%)
PERSON_QUIET_S = 1.0
INDEX_LAG_S = 10.0
EXIT_WAIT_S = 5.0  # at exit, how long the last index write waits for another git
EXIT_POLL_S = 0.05


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

    def flush(self, with_index: bool = True, quiet: bool = False) -> None:
        """Move what is pending now (later, when another git process holds the index);
        `with_index=False`: the work-tree files only. `quiet`: no log line when later."""
        started = self.clock.monotonic()
        done = self.store.flush_index(with_index)
        if self.store.pending_moves:
            self.behind_since = self.behind_since if self.behind_since is not None else started
        else:
            self.behind_since = None
        if not done:
            if not quiet:
                self.log("index locked by another git process: updating it later")
            return
        if not with_index:
            return
        # what a person's git may still write back stays known (see index_journal)
        self.writer.rewrite(self.store.settling_moves.items())
        # ~40 ms at 100k tasks (the whole index is rewritten): every 2 s, not every 0.5 s
        took = self.clock.monotonic() - started
        self.every = max(INDEX_FLUSH_S, min(5.0, INDEX_FLUSH_SHARE * took))

    def finish(self, sleep: Callable[[float], None] = time.sleep) -> None:
        """At exit: the last flush, tried again for up to EXIT_WAIT_S while another git
        (a person's commit under way) holds the index back. What is still pending then
        stays journaled: the next start finishes it (and a person's commit meanwhile
        takes HEAD's version of those entries, see the module docstring)."""
        deadline = self.clock.monotonic() + EXIT_WAIT_S
        self.flush(quiet=True)
        while self.store.pending_moves and self.clock.monotonic() < deadline:
            sleep(EXIT_POLL_S)
            self.flush(quiet=True)
        if self.store.pending_moves:
            self.log(f"index entries of {len(self.store.pending_moves)} path(s) not updated "
                     f"at exit: another git held the index for {EXIT_WAIT_S:.0f} s; the next "
                     "start updates them")

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
