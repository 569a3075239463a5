"""An employee's journal: `employees/<id>/journal.md`, one reflection appended after each
run it reports on, read back by contexts, retrospectives and reviews.

Entries are `## <date> <time> <task id>: <title> (<outcome>)` blocks, oldest first. Other
lines starting with `## ` (an agent's markdown summary) belong to the entry they are in.

Rotation. Git stores whole files and every result commit rewrites the journal, so the
journal is kept short enough for that to cost the same whatever its age: when an append takes
`journal.md` past `ROTATE_BYTES`, every entry but the last `KEEP` moves, verbatim and in
order, into a new archive `employees/<id>/journal/<seq>-<time of its newest entry>.md`
(e.g. `0003-2026-11-21T10-15.md`), written once and never again. `journal.md` keeps its
heading and its latest entries, so an agent's recent lessons come from it alone, and a
person reads the whole journal as the archives in order, then `journal.md`.

Lookups by task (`journal_for`: retrospectives, performance reviews) read `journal.md` and
the archives whose newest entry is not older than the project's first commit (less
`ARCHIVE_SLACK_S` for clocks of different hosts), so their cost follows the project, not
the employee's whole career.
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Collection
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aoi_git.domain.model import Task
    from aoi_git.domain.result import AgentResult
    from aoi_git.store.head_view import HeadView
    from aoi_git.store.txn import Txn

ROTATE_BYTES = 32 * 1024
KEEP = 10  # entries journal.md keeps when it rotates (a context uses the last 8)
ARCHIVE_SLACK_S = 3600

# An entry starts at a heading line as `journal_entry` writes it (date and time may be
# missing in a hand-written one); other `## ` lines, e.g. an agent's markdown summary, are its body.
_HEADING = re.compile(
    r"^## (?:(\d{4}-\d\d-\d\d)(?: (\d\d):(\d\d))? )?([a-z0-9][a-z0-9-]*): ", re.MULTILINE)
_ARCHIVE = re.compile(r"^(\d+)(?:-(\d{4}-\d\d-\d\d)T(\d\d)-(\d\d))?\.md$")


def journal_path(employee: str) -> str:
    return f"employees/{employee}/journal.md"


def archive_folder(employee: str) -> str:
    return f"employees/{employee}/journal"


def is_journal_file(path: str) -> bool:
    """journal.md or one of its archives (not configuration: no reload when they change)."""
    return path.endswith("/journal.md") or "/journal/" in path


# ------------------------------------------------------------------------- writing

def journal_entry(task: Task, result: AgentResult, now: float | None = None) -> str:
    from aoi_git.store.txn import now_iso

    when = now_iso(now)[:16].replace("T", " ")
    lines = [f"## {when} {task.id}: {task.title} ({result.outcome})", ""]
    if result.summary:
        lines.append(result.summary.strip()[:1500])
    if result.error:
        lines.append(f"Error: {result.error.strip()[:500]}")
    for lesson in result.lessons:
        lines.append(f"- Lesson: {lesson.strip()}")
    return "\n".join(lines) + "\n\n"


def append_journal(txn: Txn, employee: str, entry: str) -> None:
    """Append `entry` to the employee's journal in `txn`, rotating it when it gets long."""
    path = journal_path(employee)
    current = txn.files.get(path)
    if current is None:
        current = txn.view.read(path) or f"# Journal of {employee}\n\n".encode()
    txt = current.decode("utf-8", "replace")
    if not txt.endswith("\n"):
        txt += "\n"
    txt = txt + "\n" + entry
    if len(txt) > ROTATE_BYTES:  # characters: a cheap lower bound of the bytes
        txt = _rotate(txn, employee, txt)
    txn.put_file(path, txt.encode())


def _rotate(txn: Txn, employee: str, text: str) -> str:
    """Move all but the last KEEP entries of `text` into a new archive in `txn`; returns
    what journal.md keeps (its heading and those entries). Unchanged with too few entries."""
    heads = list(_HEADING.finditer(text))
    if len(heads) <= KEEP:
        return text
    first, cut = heads[0].start(), heads[-KEEP].start()
    newest = max(_entry_time(m) for m in heads[:-KEEP])
    folder = archive_folder(employee)
    taken = [*txn.view.names(folder),
             *(p.rsplit("/", 1)[1] for p in txn.files if p.startswith(folder + "/"))]
    seq = 1 + max((int(m.group(1)) for n in taken if (m := _ARCHIVE.match(n))), default=0)
    stamp = time.strftime("-%Y-%m-%dT%H-%M", time.gmtime(newest)) if newest else ""
    archive = f"{folder}/{seq:04d}{stamp}.md"
    body = text[first:cut]
    txn.put_file(archive, (f"# Journal of {employee}, part {seq}\n\n" + body).encode())
    return text[:first] + text[cut:]


def _entry_time(m: re.Match[str]) -> int:
    if not m.group(1):
        return 0
    hhmm = f"{m.group(2)}:{m.group(3)}" if m.group(2) else "23:59"  # a date alone: its end
    return _utc_minute(m.group(1), hhmm) or 0


def _utc_minute(date: str, hhmm: str) -> int | None:
    """`YYYY-MM-DD`, `HH:MM` (UTC) as a timestamp; None when it is no real time."""
    try:
        return calendar.timegm(time.strptime(f"{date} {hhmm}", "%Y-%m-%d %H:%M"))
    except ValueError:
        return None


# ------------------------------------------------------------------------- reading

def journal_entries(text: str) -> list[str]:
    """Every entry of a journal text, oldest first, each stripped."""
    starts = [m.start() for m in _HEADING.finditer(text)]
    return [text[a:b].strip() for a, b in zip(starts, [*starts[1:], len(text)], strict=False)]


def last_journal_entries(text: str, n: int) -> list[str]:
    """The last `n` entries, found from the end (reading all of a long journal for the
    latest few made every run of a long-serving employee cost more)."""
    found: list[str] = []
    end = pos = len(text)
    while len(found) < n and pos > 0:
        pos = text.rfind("\n## ", 0, pos) + 1  # 0: none left but maybe the first line
        if _HEADING.match(text, pos):
            found.append(text[pos:end].strip())
            end = pos
        pos -= 1
    return found[::-1]


def journal_entries_about(text: str, task_ids: Collection[str]) -> list[str]:
    """The entries whose heading names one of `task_ids`, oldest first. A few ids are
    looked up where they occur, not by reading every entry."""
    if len(task_ids) > 32:
        return [e for e in journal_entries(text)
                if (m := _HEADING.match(e)) and m.group(4) in task_ids]
    starts: set[int] = set()
    for tid in task_ids:
        at = text.find(tid)
        while at >= 0:
            line = text.rfind("\n", 0, at) + 1
            if (m := _HEADING.match(text, line)) and m.start(4) == at and m.group(4) == tid:
                starts.add(line)
            at = text.find(tid, at + len(tid))
    out = []
    for start in sorted(starts):
        nxt = _HEADING.search(text, start + 1)
        out.append(text[start:nxt.start() if nxt else len(text)].strip())
    return out


def journal_files(view: HeadView, employee: str, since: float | None = None) -> list[str]:
    """The paths that may hold entries written at `since` or later, oldest first: the
    archives (all of them when `since` is None) and then `journal.md`."""
    archives = []
    for name in view.names(archive_folder(employee)):
        m = _ARCHIVE.match(name)
        if m is None:
            continue
        newest = _utc_minute(m.group(2), f"{m.group(3)}:{m.group(4)}") if m.group(2) else None
        # +60: the name has whole minutes; a name without a (real) time is always read
        if since is not None and newest is not None and newest + 60 < since - ARCHIVE_SLACK_S:
            continue
        archives.append((int(m.group(1)), name))
    return [f"{archive_folder(employee)}/{n}" for _, n in sorted(archives)] + \
        [journal_path(employee)]


def journal_for(view: HeadView, employee: str, task_ids: Collection[str],
                since: float | None = None) -> list[str]:
    """The employee's journal entries about any of `task_ids`, verbatim, oldest first.
    `since`: when the earliest of those tasks began (None: unknown, read every archive)."""
    out: list[str] = []
    for path in journal_files(view, employee, since):
        data = view.read(path)
        if data is not None:
            out += journal_entries_about(data.decode("utf-8", "replace"), task_ids)
    return out

