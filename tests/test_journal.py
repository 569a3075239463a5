"""The employee journal (aoi_git.evolution.journal): lookups, and rotation into write-once archives,
committed through a real Store into a real git repository."""

from __future__ import annotations

import calendar
import re
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kit import git

from aoi_git.domain.model import Actor, ActorKind, Task
from aoi_git.domain.result import AgentResult
from aoi_git.evolution import journal
from aoi_git.evolution.journal import (
    append_journal,
    journal_entries,
    journal_entries_about,
    journal_entry,
    journal_files,
    journal_for,
    last_journal_entries,
)
from aoi_git.org.context import JOURNAL_ENTRIES
from aoi_git.store.org_store import Store
from aoi_git.store.txn import Txn, commit

AGENT = Actor(ActorKind.AGENT, "eng-1")
T0 = calendar.timegm((2026, 11, 21, 8, 0, 0, 0, 0, 0))
ARCHIVES = "employees/eng-1/journal"

# ------------------------------------------------------------------ lookups in one text

_IDS = ["t-aa", "t-ab", "t-abc", "fix-1", "fix-10"]


@st.composite
def _journals(draw: st.DrawFn) -> str:
    """Journals like journal_entry writes them, with ids also mentioned in bodies,
    prefixes of each other, headings without a date, `## ` lines in a body (an agent's
    markdown summary) and stray text before the first entry."""
    parts = [draw(st.sampled_from(["", "# Journal of x\n\n", "preface t-aa: here\n"]))]
    for _ in range(draw(st.integers(0, 12))):
        tid = draw(st.sampled_from(_IDS))
        date = draw(st.sampled_from(["2026-11-21 10:26 ", "2026-11-21 ", ""]))
        body = draw(st.sampled_from(["", "done", "see t-ab: also", "## not a heading",
                                     "## Summary\nmentions fix-10 and t-abc",
                                     "## plan for t-aa: step"]))
        parts.append(f"## {date}{tid}: title ({draw(st.sampled_from(['completed', 'x']))})"
                     f"\n\n{body}\n\n")
    return "".join(parts)


def entries_line_by_line(text: str) -> list[tuple[str, str]]:
    """(task id, entry) for every entry: a reference reading the text line by line."""
    head = re.compile(r"## (?:\d{4}-\d\d-\d\d (?:\d\d:\d\d )?)?([a-z0-9][a-z0-9-]*): ")
    out: list[tuple[str, str]] = []
    for line in text.splitlines(keepends=True):
        if m := head.match(line):
            out.append((m.group(1), line))
        elif out:
            out[-1] = (out[-1][0], out[-1][1] + line)
    return [(tid, e.strip()) for tid, e in out]


@given(_journals(), st.sets(st.sampled_from(_IDS)), st.integers(0, 15))
@settings(max_examples=300, deadline=None)
def test_journal_lookups_match_reading_every_line(text: str, ids: set[str], n: int) -> None:
    every = entries_line_by_line(text)
    assert journal_entries(text) == [e for _, e in every]
    assert journal_entries_about(text, ids) == [e for tid, e in every if tid in ids]
    many = set(_IDS) | {f"x-{i}" for i in range(40)}  # past 32 ids: the other path
    assert journal_entries_about(text, many) == [e for _, e in every]
    assert last_journal_entries(text, n) == ([e for _, e in every][-n:] if n else [])


# ------------------------------------------------------------------ rotation

def result(i: int) -> AgentResult:
    body = "## not an entry: a heading in the summary\n" if i % 7 == 3 else ""
    return AgentResult("completed", summary=f"{body}did step {i} " + "x" * (i % 50),
                       lessons=[f"lesson {i}"])


def append(store: Store, i: int, now: float) -> str:
    """One result's journal entry for task `t-n<i>`, committed; returns the entry."""
    entry = journal_entry(Task(id=f"t-n{i}", title=f"Step {i}"), result(i), now)

    def fn(txn: Txn) -> None:
        txn.subject = f"aoi: journal {i}"
        append_journal(txn, "eng-1", entry)

    commit(store, fn, AGENT)
    return entry


def archive_names(store: Store) -> list[str]:
    return sorted(store.head().names(ARCHIVES))


def test_the_kept_entries_cover_what_a_context_reads() -> None:
    assert journal.KEEP >= JOURNAL_ENTRIES


def test_rotation_moves_older_entries_verbatim_into_write_once_archives(
        org_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal, "ROTATE_BYTES", 2_000)
    store = Store(org_dir)
    written: list[str] = []
    blobs: dict[str, str] = {}  # archive -> its blob when first seen
    for i in range(120):
        written.append(append(store, i, T0 + 60 * i))
        head = store.head()
        text = (head.read("employees/eng-1/journal.md") or b"").decode()
        # the heading stays, the latest entries are here, the file stays small
        assert text.startswith("# Journal of eng-1\n")
        assert len(text) <= 2_000 + 200
        # a context reads what it would read in the whole journal
        assert last_journal_entries(text, JOURNAL_ENTRIES) == \
            last_journal_entries("".join(written), JOURNAL_ENTRIES)
        assert len(re.findall(r"^## 2026", text, re.M)) >= min(len(written), journal.KEEP)
        for name in archive_names(store):
            blob = head.blob_id(f"{ARCHIVES}/{name}")
            assert blobs.setdefault(name, blob or "") == blob  # never written again
    names = archive_names(store)
    assert len(names) >= 3
    assert [int(n[:4]) for n in names] == list(range(1, len(names) + 1))
    # archives in order, then journal.md: every entry, verbatim, once, in order
    files = journal_files(store.head(), "eng-1")
    assert files == [f"{ARCHIVES}/{n}" for n in names] + ["employees/eng-1/journal.md"]
    kept = (store.read(files[-1]) or b"").decode()
    at = kept.index("\n## 2026") + 1
    parts = [(store.read(p) or b"").decode() for p in files[:-1]]
    assert all(p.startswith(f"# Journal of eng-1, part {n}\n\n## 2026")
               for n, p in enumerate(parts, 1))
    whole = kept[:at] + "".join(p.split("\n", 2)[2] for p in parts) + kept[at:]
    assert whole == "# Journal of eng-1\n\n" + "".join("\n" + e for e in written)
    # an archive is named by the time of its newest entry
    for name, path in zip(names, files, strict=False):
        heads = re.findall(r"^## (\S+) (\d\d):(\d\d) ", (store.read(path) or b"").decode(), re.M)
        day, hh, mm = heads[-1]
        assert name == f"{int(name[:4]):04d}-{day}T{hh}-{mm}.md"
    assert git(org_dir, "fsck", "--no-progress") == ""
    assert git(org_dir, "status", "--porcelain") == ""


def test_journal_for_reads_the_archives_a_project_can_be_in(
        org_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal, "ROTATE_BYTES", 2_000)
    store = Store(org_dir)
    # one entry every 10 minutes for a day
    entries = {i: append(store, i, T0 + 600 * i) for i in range(144)}
    view = store.head()
    names = archive_names(store)
    assert len(names) >= 4
    every = [f"t-n{i}" for i in entries]
    assert journal_for(view, "eng-1", every) == [e.strip() for e in entries.values()]
    assert journal_for(view, "eng-1", {"t-n0", "t-n143"}) == \
        [entries[0].strip(), entries[143].strip()]
    # a project that began at entry 100: archives whose newest entry is more than an hour
    # older are not read, and the entries from then on are all found
    since = T0 + 600 * 100
    files = journal_files(view, "eng-1", since)
    skipped = [f"{ARCHIVES}/{n}" for n in names if f"{ARCHIVES}/{n}" not in files]
    assert skipped and files[-1] == "employees/eng-1/journal.md"
    for path in skipped:
        newest = re.findall(r"^## (\S+ \d\d:\d\d) ", (view.read(path) or b"").decode(), re.M)[-1]
        assert calendar.timegm(time.strptime(newest, "%Y-%m-%d %H:%M")) < since - 3600
    later = [f"t-n{i}" for i in range(100, 144)]
    assert journal_for(view, "eng-1", later, since) == \
        [entries[i].strip() for i in range(100, 144)]
    # an entry older than `since` that a skipped archive holds is not looked for
    assert journal_for(view, "eng-1", {"t-n0"}, since) == []
    # an archive whose name has no real time (a person renamed it) is always read
    git(org_dir, "mv", f"{ARCHIVES}/{names[0]}", f"{ARCHIVES}/{names[0][:5]}2026-19-99T10-15.md")
    git(org_dir, "commit", "-q", "--no-verify", "-m", "renamed")
    assert journal_for(store.head(), "eng-1", {"t-n0"}, since) == [entries[0].strip()]


def test_a_long_journal_with_few_entries_is_not_cut(
        org_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal, "ROTATE_BYTES", 500)
    store = Store(org_dir)
    for i in range(journal.KEEP):
        append(store, i, T0 + i)
    assert archive_names(store) == []
    text = (store.read("employees/eng-1/journal.md") or b"").decode()
    assert len(journal_entries(text)) == journal.KEEP
    append(store, journal.KEEP, T0 + 99)
    (name,) = archive_names(store)
    assert name.startswith("0001-") and len(journal_entries(
        (store.read("employees/eng-1/journal.md") or b"").decode())) == journal.KEEP


def test_two_rotations_in_one_commit_take_two_sequence_numbers(
        org_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal, "ROTATE_BYTES", 300)
    store = Store(org_dir)
    written = {i: append(store, i, T0 + 60 * i) for i in range(journal.KEEP)}

    def two(txn: Txn) -> None:
        txn.subject = "aoi: two results"
        for i in (50, 51):
            written[i] = journal_entry(Task(id=f"t-n{i}", title="x"), result(i), T0 + 60 * i)
            append_journal(txn, "eng-1", written[i])

    commit(store, two, AGENT)
    assert [n[:5] for n in archive_names(store)] == ["0001-", "0002-"]
    assert journal_for(store.head(), "eng-1", {"t-n0", "t-n1", "t-n51"}) == \
        [written[i].strip() for i in (0, 1, 51)]
