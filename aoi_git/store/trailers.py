"""Commit messages and trailers: `aoi: <id> <from> -> <to>: <title>` + `Aoi-*` trailers."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

COST_TRAILERS = {
    "input_tokens": "Aoi-Cost-Input-Tokens",
    "output_tokens": "Aoi-Cost-Output-Tokens",
    "usd": "Aoi-Cost-Usd",
    "seconds": "Aoi-Cost-Seconds",
}
AUTHORITY = "Aoi-Authority"  # who decided a review: reviewer, ceo, manager-of:<id>, no-reviewer
FAILURE = "Aoi-Failure"  # on a failed run: retry, permanent, credentials or budget
ROUTED_BY = "Aoi-Routed-By"  # who routed an unassigned task (the router employee of routing.tasks)
_TRAILER_RE = re.compile(r"^([A-Za-z][A-Za-z0-9-]*): (.*)$")
SUBJECT_MAX = 72  # git's convention: longer subjects are cut, the whole line goes in the body


def fit_subject(line: str) -> tuple[str, str | None]:
    """`line` as a subject of at most SUBJECT_MAX characters, and the whole line when it
    had to be cut (for the body), else None."""
    line = " ".join(line.split())
    if len(line) <= SUBJECT_MAX:
        return line, None
    return line[:SUBJECT_MAX - 1].rstrip() + "\u2026", line


@dataclass
class Transition:
    task_id: str
    old: str | None  # None = created
    new: str
    title: str = ""

    @property
    def label(self) -> str:
        return f"{self.old or 'new'}->{self.new}"


@dataclass
class Message:
    transitions: Sequence[Transition]
    actor: str
    body: str = ""
    cost: Mapping[str, float] = field(default_factory=dict)
    extra: Sequence[tuple[str, str]] = ()
    subject: str | None = None

    def render(self) -> str:
        first = self.transitions[0] if self.transitions else None
        if self.subject:
            subject = self.subject
        elif first is None:
            subject = "aoi: change"
        elif first.old == first.new:
            subject = f"aoi: {first.task_id} edit: {first.title}"
        else:
            chain = successive_moves(self.transitions)
            stops = " -> ".join([first.old or "new", *(t.new for t in chain)])
            subject = f"aoi: {first.task_id} {stops}: {chain[-1].title}"
        rest = len(self.transitions) - (len(successive_moves(self.transitions)) or 1)
        if rest and not self.subject:
            subject += f" (+{rest} more)"
        subject, whole = fit_subject(subject)
        lines = [subject, ""]
        if whole is not None:
            lines += [whole, ""]
        if self.body.strip():
            lines += [self.body.strip(), ""]
        for t in self.transitions:
            lines.append(f"Aoi-Task: {t.task_id}")
            if t.old != t.new:  # a pure edit names the task but is no transition
                lines.append(f"Aoi-Transition: {t.label}")
        lines.append(f"Aoi-Actor: {self.actor}")
        for key, name in COST_TRAILERS.items():
            value = self.cost.get(key)
            if value:
                lines.append(f"{name}: {_num(value)}")
        for k, v in self.extra:
            lines.append(f"{k}: {v}".replace("\n", " "))
        return "\n".join(lines) + "\n"


def successive_moves(transitions: Sequence[Transition]) -> list[Transition]:
    """The leading moves of one task, each from where the one before left it (a commit
    that accepts and finishes a task names both)."""
    if not transitions or transitions[0].old == transitions[0].new:
        return []
    chain = [transitions[0]]
    for t in transitions[1:]:
        if t.task_id != chain[-1].task_id or t.old != chain[-1].new or t.old == t.new:
            break
        chain.append(t)
    return chain


def moves(message: str) -> dict[str, list[str]]:
    """task id -> its `Aoi-Transition` values in a commit message, in order: a commit may
    move one task several times (completed->accepted, then accepted->finished)."""
    out: dict[str, list[str]] = {}
    task: str | None = None
    for k, v in parse_trailers(message):
        if k == "Aoi-Task":
            task = v
        elif k == "Aoi-Transition" and task is not None:
            out.setdefault(task, []).append(v)
            task = None
    return out


def agent_work_message(title: str, summary: str, task_id: str, employee: str) -> str:
    """The message of the commit of an agent's work on its task branch."""
    subject, whole = fit_subject(title)
    head = f"{subject}\n\n{whole}\n\n" if whole else f"{subject}\n\n"
    return (f"{head}{summary[:2000]}\n\n"
            f"Aoi-Task: {task_id}\nAoi-Actor: agent:{employee}\n")


def merge_message(branch: str, title: str, task_id: str, actor: str) -> str:
    """The message of the commit that merges a task's branch into the workspace base."""
    subject, whole = fit_subject(f"aoi: merge {branch}: {title}")
    head = f"{subject}\n\n{whole}\n\n" if whole else f"{subject}\n\n"
    return f"{head}Aoi-Task: {task_id}\nAoi-Merge: {branch}\nAoi-Actor: {actor}\n"


def _num(v: float) -> str:
    if isinstance(v, int) or float(v).is_integer():
        return str(int(v))
    return f"{v:.6f}".rstrip("0").rstrip(".")


def parse_trailers(message: str) -> list[tuple[str, str]]:
    """The trailer block at the end of a commit message, in order (repeats kept)."""
    blocks = message.rstrip("\n").split("\n\n")
    last = blocks[-1].splitlines() if blocks else []
    out = []
    for line in last:
        m = _TRAILER_RE.match(line)
        if not m:
            return []
        out.append((m.group(1), m.group(2)))
    return out


def authorities(message: str) -> list[str]:
    """The `Aoi-Authority` values of a commit message: why its review decisions were made."""
    return [v for k, v in parse_trailers(message) if k == AUTHORITY]
