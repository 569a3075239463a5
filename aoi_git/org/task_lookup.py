"""One task at HEAD found by its id (or a prefix of one) without loading the org.

A task aoi creates lives at `shard_path(id)`, and one a person names with `--id` at
`tasks/<id>.yaml`, so a command about one task reads that one blob, and resolves a prefix
by listing the one shard folder (or the 32 of a one-character prefix) it can be in, plus
the files at the top of `tasks/`. What this cannot settle is left to the caller's full load
(`load_org`), which answers exactly as before: an id found nowhere here (a file a person
saved elsewhere under `tasks/`, a file that does not parse, a mistyped id), a prefix too
short to name a folder. A task found here is the one the full load gives unless the same
id is also in a second file (which `aoi validate` reports as a duplicate).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from aoi_git.domain.ids import sharded
from aoi_git.domain.model import Task
from aoi_git.errors import AoiError

_MATCHES_SHOWN = 5
_ID_CHARS = re.compile(r"[a-z0-9-]+")  # what an id (so a prefix that names one) is made of


class Files(Protocol):
    """The files of one commit (a `HeadView`, a `CatFileView`)."""

    def read(self, path: str) -> bytes | None: ...

    def names(self, path: str) -> list[str]: ...


@dataclass(frozen=True)
class Found:
    task: Task
    path: str
    data: bytes  # the file's bytes at the commit read


def candidate_paths(task_id: str) -> list[str]:
    """Where a task with this id is saved by aoi: its shard, or `tasks/<id>.yaml`."""
    return [sharded("tasks", task_id, ".yaml"), f"tasks/{task_id}.yaml",
            sharded("tasks", task_id, ".yml"), f"tasks/{task_id}.yml"]


def find(view: Files, task_id: str) -> Found | None:
    """The valid task `task_id` at one of its `candidate_paths`, else None."""
    from aoi_git.org.validate import parse_task_bytes  # its schema checker: only when needed

    for path in candidate_paths(task_id):
        data = view.read(path)
        if data is None:
            continue
        parsed = parse_task_bytes(data, path)
        if isinstance(parsed, Task) and parsed.id == task_id:
            return Found(parsed, path, data)
    return None


def resolve(view: Files, prefix: str) -> Found | None:
    """The task a full id or unique prefix names, as `Org.resolve_id` would resolve it;
    None when only the full load can tell. Raises when the prefix is ambiguous."""
    if not _ID_CHARS.fullmatch(prefix):
        return None  # no id is spelt so: the full load says so in its own words
    exact = find(view, prefix)
    if exact is not None:
        return exact
    found = _by_prefix(view, prefix)
    if found is None and not prefix.startswith("t-") and len(prefix) >= 2:
        found = _by_prefix(view, "t-" + prefix)  # `4k2m` means `t-4k2m...`
    return found


def _by_prefix(view: Files, prefix: str) -> Found | None:
    stem = prefix[2:] if prefix.startswith("t-") else prefix
    if not stem or (prefix.startswith("t-") and len(prefix) == 2):
        return None
    if len(stem) >= 2:
        folders = [f"tasks/{stem[0]}/{stem[1]}"]
    else:
        folders = [f"tasks/{stem[0]}/{name}" for name in view.names(f"tasks/{stem[0]}")]
    stems: set[str] = set()
    for folder in [*folders, "tasks"]:
        for name in view.names(folder):
            base, dot, ext = name.rpartition(".")
            if dot and ext in ("yaml", "yml") and base.startswith(prefix):
                stems.add(base)
    matches: list[Found] = []
    for tid in sorted(stems):
        got = find(view, tid)
        if got is not None:
            matches.append(got)
            if len(matches) > _MATCHES_SHOWN:
                break
    if len(matches) > 1:
        shown = ", ".join(m.task.id for m in matches[:_MATCHES_SHOWN])
        raise AoiError(f"task id prefix {prefix!r} is ambiguous ({shown}...): give more of it")
    return matches[0] if matches else None
