"""A person's saved task files, as the watcher reports them, taken into the org.

A saved task file that differs from HEAD (and is not the daemon's own write still to be
moved into the checkout) is validated as the person's; a valid one is committed as theirs
(with `commit_human_edits`, the person's bytes exactly), an invalid one waits with its
problems (`problems`, shown by `aoi status`) until the person fixes it. Invalid files
never keep the daemon busy.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from aoi_git.domain.org_paths import is_task_path
from aoi_git.domain.people import person_actor
from aoi_git.org.validate import Validator
from aoi_git.runtime.executor import Executor
from aoi_git.store import index_journal
from aoi_git.store.objects import hash_blob


class PersonFiles:
    def __init__(self, root: Path, name: str, email: str, log: Callable[[str], None]) -> None:
        self.root = root
        self.name, self.email = name, email  # the checkout's git identity
        self.log = log
        self.rescan = True  # look at every changed org file, not only the reported ones
        self.problems: dict[str, list[str]] = {}  # path -> `path:line: message` lines
        self._dirty: set[str] = set()
        self._lock = threading.Lock()

    def saw(self, path: str) -> None:
        """(On the watcher's thread.) `path` changed on disk."""
        with self._lock:
            self._dirty.add(path)

    def take(self, ex: Executor) -> None:
        """Validate and commit the files changed since the last call."""
        with self._lock:
            paths, self._dirty = self._dirty, set()
        if self.rescan:
            self.rescan = False
            from aoi_git.org.person_edits import changed_org_files  # (imports the CLI's)

            paths |= {str(self.root / p) for p in changed_org_files(self.root)}
            paths |= {str(self.root / p) for p in self.problems}
        rel = []
        for p in paths:
            try:
                r = str(Path(p).resolve().relative_to(self.root))
            except ValueError:
                continue
            if is_task_path(r):
                rel.append(r)
        if not rel:
            return
        head = ex.store.head()
        files: dict[str, bytes | None] = {}
        for r in sorted(set(rel)):
            full = self.root / r
            try:
                data: bytes | None = full.read_bytes()
            except (FileNotFoundError, IsADirectoryError):
                data = None
            blob = hash_blob(data) if data is not None else None
            at_head = head.blob_id(r)  # None for both: gone from disk and from HEAD
            if blob == at_head or index_journal.stale_file(ex.store.pending_moves, r, blob,
                                                           at_head):
                self.problems.pop(r, None)  # at HEAD, or our own write still to come
                continue
            files[r] = data
        if not files:
            return
        validator = Validator.for_org(ex.org)
        person = person_actor(self.name, self.email, ex.org.config.humans)
        for r, data in files.items():
            problems = validator.check({r: data}, person, self.email)
            if problems:
                if self.problems.get(r) != problems:
                    for line in problems:
                        self.log(f"invalid: {line}")
                self.problems[r] = problems
                continue
            self.problems.pop(r, None)
            if not ex.org.config.commit_human_edits:
                continue
            assert data is not None
            refused = ex.commit_person_file(r, data, person)
            if refused:
                self.problems[r] = refused
