"""Which paths of the repository are org files, and which schema each one follows.

Its own module (only `re`), so that the git hooks can tell an org file without importing
the validator.
"""

from __future__ import annotations

import re

# Matched whole (`fullmatch`, `.` takes a newline too): a name with control characters is
# an org file like any other, reported by its name, never passed over.
SCHEMA_FOR: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"tasks/.+\.ya?ml", re.S), "task"),
    (re.compile(r"employees/[^/]+/profile\.yaml", re.S), "profile"),
    (re.compile(r"talents/[^/]+/talent\.yaml", re.S), "talent"),
    (re.compile(r"aoi\.yaml"), "aoi"),
]


def is_org_file(path: str) -> bool:
    return any(p.fullmatch(path) for p, _ in SCHEMA_FOR)


def is_task_path(path: str) -> bool:
    return SCHEMA_FOR[0][0].fullmatch(path) is not None
