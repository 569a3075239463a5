"""The finished projects a review cycle found no one to review in, kept across restarts.

A cycle that finds no runs in a project's history (imported projects, ones finished by
hand) adds it to the daemon's `passed_over` set so later cycles do not read its history
again (`performance_reviews.run_cycle`). Kept only in memory, the set was empty after
every restart, and an org of 100 such projects of 1,000 tasks spent seconds of each start
collecting their metrics again to find nothing. The set is runtime state under `.aoi/`,
like the task cache: each project with the blob id its root's file had, so a project
whose root changed since (reopened, finished again) is looked at again; a missing or
unreadable file is an empty set.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection
from pathlib import Path

from aoi_git.domain.task_rows import TaskRows


def load(path: Path, rows: TaskRows) -> set[str]:
    """The projects of `path` whose root's file is still the one that was passed over."""
    try:
        kept = json.loads(path.read_text())
        if not isinstance(kept, dict):
            return set()
    except (OSError, ValueError):
        return set()
    out = set()
    for root, blob in kept.items():
        row = rows.row(root) if isinstance(root, str) else None
        if row is not None and row.blob == blob:
            out.add(root)
    return out


def save(path: Path, roots: Collection[str], rows: TaskRows) -> None:
    """Write `roots` with their roots' blob ids (atomically; a failure is not an error:
    the next start looks at them once more)."""
    kept = {}
    for root in sorted(roots):
        row = rows.row(root)
        if row is not None:
            kept[root] = row.blob
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(kept, indent=0))
        os.replace(tmp, path)
    except OSError:
        pass
