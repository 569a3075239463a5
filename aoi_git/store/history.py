"""The audit trail read back from git: every aoi commit's time, actor, transitions, cost."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pygit2

from aoi_git.store.git import GitError, git_stream, has_commits
from aoi_git.store.trailers import COST_TRAILERS, parse_trailers

_COST_BY_TRAILER = {v: k for k, v in COST_TRAILERS.items()}


@dataclass
class Record:
    commit: str
    time: int
    subject: str
    body: str
    actor: str
    transitions: list[tuple[str, str]] = field(default_factory=list)  # (task, "a->b")
    cost: dict[str, float] = field(default_factory=dict)
    trailers: list[tuple[str, str]] = field(default_factory=list)

    def tasks(self) -> list[str]:
        return [t for t, _ in self.transitions]


def records(root: Path, rev: str = "HEAD", since: str | None = None,
            tasks: Sequence[str] = (), having: str | None = None) -> Iterator[Record]:
    """aoi commits, oldest first, parsed from trailers (one `git log` process, streamed).

    `tasks`: only commits with an `Aoi-Task:` trailer naming one of these (git filters,
    so a short list costs little however long the history is). `having`: only commits
    whose message holds this text (e.g. a trailer's name), also filtered by git."""
    args = ["log", "--reverse", "--date-order",  # children after parents, always
            "--format=%H%x1f%ct%x1f%s%x1f%B%x1e", rev]
    if since:
        args.insert(2, f"--since={since}")
    if tasks:
        args[2:2] = ["--fixed-strings", *(f"--grep=Aoi-Task: {t}" for t in tasks)]
    elif having:
        args[2:2] = ["--fixed-strings", f"--grep={having}"]
    try:
        for item in git_stream(*args, cwd=root):
            rec = _parse(item)
            if rec is not None:
                yield rec
    except GitError:
        if has_commits(root):
            raise


def _parse(item: str) -> Record | None:
    item = item.lstrip("\n")
    parts = item.split("\x1f", 3)
    if len(parts) != 4:
        return None
    sha, ct, subject, body = parts
    return _record(sha, int(ct), subject, body)


def record(commit: pygit2.Commit) -> Record | None:
    """The record of one commit read with pygit2 (None if it is not an aoi commit)."""
    message = commit.message
    first = message.lstrip("\n").split("\n\n", 1)[0]
    return _record(str(commit.id), commit.commit_time, " ".join(first.split("\n")), message)


def _record(sha: str, ct: int, subject: str, body: str) -> Record | None:
    trailers = parse_trailers(body)
    actor = next((v for k, v in trailers if k == "Aoi-Actor"), None)
    if actor is None:
        return None
    if subject.endswith("\u2026"):  # cut at 72 characters: the whole line opens the body
        blocks = body.lstrip("\n").split("\n\n", 2)
        if len(blocks) > 1 and blocks[1].startswith(subject[:-1].rstrip()):
            subject = blocks[1]
    rec = Record(sha, ct, subject, body, actor, trailers=trailers)
    pending_task: str | None = None
    for k, v in trailers:
        if k == "Aoi-Task":
            pending_task = v
        elif k == "Aoi-Transition" and pending_task is not None:
            rec.transitions.append((pending_task, v))
            pending_task = None
        elif k in _COST_BY_TRAILER:
            try:
                rec.cost[_COST_BY_TRAILER[k]] = float(v)
            except ValueError:
                pass
    return rec


def body_text(rec: Record) -> str:
    """The commit body between the subject and the trailers (e.g. review feedback)."""
    blocks = rec.body.rstrip("\n").split("\n\n")
    middle = blocks[1:-1]
    if middle and middle[0] == rec.subject:  # the whole of a cut subject, not a text
        middle = middle[1:]
    return "\n\n".join(middle).strip()
