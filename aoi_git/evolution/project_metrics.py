"""Objective signals of projects, read back from git history (the `Aoi-*` trailers,
docs/git.md).

A project is a root task (a work task without a parent) and its subtree: every task whose
parent chain reaches the root, plus the review and human tasks about those (`subject`,
`extra.about`, transitively). Which tasks belong to a project comes from the task files;
everything measured comes from the commits (`history.records`):

per task
  runs         claims (`pending->processing`): the attempts made
  failures     `processing->failed`
  rejections   `completed->pending`, each with who rejected and why (the task's
               `feedback` entries of kind `review`, in order; else the commit body)
  time         first claim -> `accepted->finished` (seconds)
  cost         the cost trailers of the commits that ended its runs (usd, tokens)

per employee (who ran what: the `Aoi-Employee` trailer of the claim)
  tasks done   distinct tasks it brought to completed (or decomposed)
  reviewed     tasks whose first review decision after its run was by a reviewer
               (an accept by the daemon because the task had no reviewer does not count)
  passed       of those, accepted at that first decision; pass rate = passed / reviewed
  retries      runs beyond the first of each task it ran
  cost         the cost trailers of its runs

and what people wrote: feedback, answers and review comments by `human:*` actors, verbatim.
"""

from __future__ import annotations

import datetime as dt
import re
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aoi_git.domain.graph import TaskLinks
from aoi_git.domain.model import Kind, Status, Task
from aoi_git.domain.task_rows import row_in
from aoi_git.evolution.stats import Acc, fmt_s
from aoi_git.store.history import Record, body_text, records
from aoi_git.store.org_store import Store

# "<actor> accepted|rejected <task>[: <comment>]" (flow._apply_review); a person's name
# may hold spaces, a comment newlines
_DECISION_RE = re.compile(
    r"^((?:agent|human|daemon):[^\n]+?) (accepted|rejected) ([a-z0-9][a-z0-9-]*)(?:: (.*))?$",
    re.S | re.M)


@dataclass
class Rejection:
    task: str
    by: str
    reason: str
    at: int
    employee: str | None = None  # whose work was rejected

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "by": self.by, "reason": self.reason, "at": self.at,
                "employee": self.employee}


@dataclass
class TaskSignals:
    id: str
    title: str
    kind: str
    parent: str | None
    status: str
    root: str
    runs: int = 0
    failures: int = 0
    errors: list[str] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    employees: list[str] = field(default_factory=list)  # who ran it, in order of first run
    created: int | None = None
    first_claim: int | None = None
    finished: int | None = None
    first_review: str | None = None  # accept | reject
    usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    agent_seconds: float = 0.0

    @property
    def seconds(self) -> float | None:
        """First claim (else creation) to finished."""
        start = self.first_claim if self.first_claim is not None else self.created
        if start is None or self.finished is None:
            return None
        return float(self.finished - start)

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "title": self.title, "kind": self.kind, "parent": self.parent,
            "status": self.status, "root": self.root, "runs": self.runs,
            "failures": self.failures, "errors": self.errors,
            "rejections": [r.to_dict() for r in self.rejections],
            "employees": self.employees, "created": self.created,
            "first_claim": self.first_claim, "finished": self.finished,
            "seconds": self.seconds, "first_review": self.first_review,
            "usd": round(self.usd, 6), "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens, "agent_seconds": round(self.agent_seconds, 3),
        }


@dataclass
class EmployeeSignals(Acc):
    """The counters of `aoi stats`, for one employee within one project."""

    id: str = ""
    tasks_run: int = 0

    @property
    def pass_rate(self) -> float | None:
        return self.passed_first / self.reviewed if self.reviewed else None

    @property
    def retries_per_task(self) -> float:
        return self.retries / self.tasks_run if self.tasks_run else 0.0

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "tasks_done": self.tasks_done, "reviews_done": self.reviews_done,
            "runs": self.runs, "tasks_run": self.tasks_run, "retries": self.retries,
            "retries_per_task": round(self.retries_per_task, 3), "failures": self.failures,
            "reviewed": self.reviewed, "passed_first_review": self.passed_first,
            "review_pass_rate": None if self.pass_rate is None else round(self.pass_rate, 4),
            "rejections": self.rejections, "usd": round(self.usd, 6),
            "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
        }


@dataclass
class Said:
    """Words a person wrote, verbatim, and where."""

    task: str
    who: str  # human:<name>
    kind: str  # review | answer | accept | note ...
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "who": self.who, "kind": self.kind, "text": self.text}


@dataclass
class Signals:
    roots: list[str]
    tasks: dict[str, TaskSignals]
    employees: dict[str, EmployeeSignals]
    said: list[Said]

    def of_root(self, root: str) -> list[TaskSignals]:
        return [t for t in self.tasks.values() if t.root == root]

    @property
    def usd(self) -> float:
        return sum(t.usd for t in self.tasks.values())

    @property
    def since(self) -> int | None:
        """Commit time at which the earliest of these tasks appeared (or was first claimed),
        None when one has neither in the history read (e.g. a shallow clone's edge)."""
        starts = [t.created if t.created is not None else t.first_claim
                  for t in self.tasks.values()]
        if not starts or any(s is None for s in starts):
            return None
        return min(s for s in starts if s is not None)

    @property
    def tokens(self) -> int:
        return sum(t.tokens for t in self.tasks.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "roots": self.roots,
            "tasks": [t.to_dict() for t in self.tasks.values()],
            "employees": [e.to_dict() for e in self.employees.values()],
            "people_said": [s.to_dict() for s in self.said],
            "usd": round(self.usd, 6), "tokens": self.tokens,
        }


def project_members(tasks: Mapping[str, Task], roots: Iterable[str],
                    links: TaskLinks | None = None) -> dict[str, str]:
    """task id -> its root, for the subtrees of `roots` and the tasks about them.

    `links`: the task map's links kept by the caller (else built here, a scan of all)."""
    return (links or TaskLinks(tasks)).members(tasks, roots)


GREP_MEMBERS = 64


def _since(tasks: Mapping[str, Task], members: Iterable[str]) -> str | None:
    """A `git log --since` bound: a day before the earliest creation (clock skew margin)."""
    times = []
    for tid in members:
        r = row_in(tasks, tid)
        created = r.created if r is not None else tasks[tid].created
        if not created:
            return None
        try:
            times.append(dt.datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp())
        except ValueError:
            return None
    if not times:
        return None
    start = dt.datetime.fromtimestamp(int(min(times)) - 86400, dt.UTC)
    return start.strftime("%Y-%m-%d %H:%M:%S +0000")


def project_records(store: Store, tasks: Mapping[str, Task], members: Iterable[str],
                    rev: str) -> Iterable[Record]:
    """The aoi commits up to `rev` naming `members`, oldest first: from the history index,
    or (when it cannot answer for `rev`) from `git log` since the project began."""
    members = list(members)
    found = store.history.records(rev, members)
    if found is not None:
        return found
    # a small project: git picks its commits out of the day's (a big one: read them all)
    only = members if len(members) <= GREP_MEMBERS else []
    return records(store.root, rev=rev, since=_since(tasks, members), tasks=only)


def collect(store: Store, tasks: Mapping[str, Task], roots: Iterable[str], *,
            rev: str = "HEAD", finishing: Mapping[str, float] | None = None,
            links: TaskLinks | None = None) -> Signals:
    """The signals of the projects `roots` from the history up to `rev`.

    `finishing`: tasks being finished in the commit that is being built (not in history
    yet), with the time they finish. `links`: see `project_members`."""
    roots = list(roots)
    members = project_members(tasks, roots, links)
    sig: dict[str, TaskSignals] = {}
    for tid, root in members.items():
        r = row_in(tasks, tid)  # (a finished project's tasks are rows: none parsed)
        if r is not None:
            sig[tid] = TaskSignals(tid, r.title, r.kind, r.parent, r.status, root)
            continue
        t = tasks[tid]
        sig[tid] = TaskSignals(tid, t.title, t.kind.value, t.parent, t.status.value, root)
    emps: dict[str, EmployeeSignals] = {}
    said: list[Said] = []
    owner: dict[str, str] = {}  # task -> employee of its latest run
    decided: set[tuple[str, str]] = set()  # (task, owner) whose first decision is counted
    ran: set[tuple[str, str]] = set()
    done: set[tuple[str, str]] = set()
    rejection_no: dict[str, int] = {}

    def emp(eid: str) -> EmployeeSignals:
        if eid not in emps:
            emps[eid] = EmployeeSignals(id=eid)
        return emps[eid]

    if members:
        for rec in project_records(store, tasks, members, rev):
            mine = [(t, tr) for t, tr in rec.transitions if t in sig]
            if not mine:
                continue
            trailers = dict(rec.trailers)
            employee = trailers.get("Aoi-Employee")
            note = None
            for tid, tr in mine:
                s = sig[tid]
                old, _, new = tr.partition("->")
                if old == "new":
                    s.created = rec.time if s.created is None else s.created
                if tr == "pending->processing":
                    s.runs += 1
                    if s.first_claim is None:
                        s.first_claim = rec.time
                    if employee:
                        owner[tid] = employee
                        e = emp(employee)
                        e.runs += 1
                        if (tid, employee) in ran:
                            e.retries += 1
                        else:
                            ran.add((tid, employee))
                            e.tasks_run += 1
                        if employee not in s.employees:
                            s.employees.append(employee)
                elif old == "processing":
                    who = employee or owner.get(tid)
                    if rec.cost:
                        s.usd += rec.cost.get("usd", 0.0)
                        s.input_tokens += int(rec.cost.get("input_tokens", 0))
                        s.output_tokens += int(rec.cost.get("output_tokens", 0))
                        s.agent_seconds += rec.cost.get("seconds", 0.0)
                        if who:
                            e = emp(who)
                            e.usd += rec.cost.get("usd", 0.0)
                            e.input_tokens += int(rec.cost.get("input_tokens", 0))
                            e.output_tokens += int(rec.cost.get("output_tokens", 0))
                    if new == "failed":
                        s.failures += 1
                        if note is None:
                            note = body_text(rec)
                        s.errors.append(_error_line(note))
                        if who:
                            emp(who).failures += 1
                    elif new in ("completed", "waiting") and who and (tid, who) not in done:
                        done.add((tid, who))  # distinct tasks: a redone one counts once
                        if s.kind == Kind.REVIEW.value:
                            emp(who).reviews_done += 1
                        else:
                            emp(who).tasks_done += 1
                elif tr == "completed->accepted" or tr == "completed->pending":
                    accept = new == "accepted"
                    if accept and rec.actor.startswith("daemon:") and not _decision_in(
                            rec, tid):
                        continue  # accepted at once: no reviewer
                    who = owner.get(tid)
                    if note is None:
                        note = body_text(rec)
                    if not accept:
                        n = rejection_no.get(tid, 0)
                        rejection_no[tid] = n + 1
                        by, reason = _rejection(tasks[tid], n, rec.actor, note)
                        s.rejections.append(Rejection(tid, by, reason, rec.time, who))
                        if who:
                            emp(who).rejections += 1
                    else:
                        text = _accept_comment(note, tid)
                        if text and rec.actor.startswith("human:"):
                            said.append(Said(tid, rec.actor, "accept", text))
                    if s.first_review is None:
                        s.first_review = "accept" if accept else "reject"
                    if who and (tid, who) not in decided:
                        decided.add((tid, who))
                        e = emp(who)
                        e.reviewed += 1
                        e.passed_first += int(accept)
                elif new == "finished":
                    s.finished = rec.time
    for tid, when in (finishing or {}).items():
        if tid in sig:
            sig[tid].finished = int(when)
            sig[tid].status = Status.FINISHED.value
    said = _people_said(tasks, sig, said)
    return Signals(roots, sig, emps, said)


def _decision_in(rec: Any, tid: str) -> bool:
    """A daemon commit may carry a reviewer's decision (e.g. refused org-state changes)."""
    return any(m.group(3) == tid for m in _DECISION_RE.finditer(body_text(rec)))


def _error_line(note: str) -> str:
    for line in note.splitlines():
        line = line.strip()
        if line:
            return re.sub(r"^attempt \d+ failed: ", "", line)[:300]
    return "(no error text)"


def _rejection(task: Task, n: int, actor: str, note: str) -> tuple[str, str]:
    """Who rejected and why: the n-th review feedback of the task, else the commit body."""
    reviews = [f for f in task.feedback if isinstance(f, Mapping) and f.get("kind") == "review"]
    if n < len(reviews):
        fb = reviews[n]
        return str(fb.get("from") or actor), str(fb.get("text") or "").strip()
    for m in _DECISION_RE.finditer(note):
        if m.group(3) == task.id and m.group(2) == "rejected":
            return m.group(1), (m.group(4) or "").strip()
    return actor, "(no reason recorded)"


def _accept_comment(note: str, tid: str) -> str:
    for m in _DECISION_RE.finditer(note):
        if m.group(3) == tid and m.group(2) == "accepted":
            return (m.group(4) or "").strip()
    return ""


def _people_said(tasks: Mapping[str, Task], sig: Mapping[str, TaskSignals],
                 said: list[Said]) -> list[Said]:
    """Everything a person wrote about these tasks, verbatim, each once."""
    out: list[Said] = []
    seen: set[tuple[str, str]] = set()

    def add(s: Said) -> None:
        key = (s.who, s.text.strip())
        if s.text.strip() and key not in seen:
            seen.add(key)
            out.append(s)

    for tid in sig:
        r = row_in(tasks, tid)
        if r is not None and not r.said:
            continue  # nothing a person wrote: not parsed
        t = tasks[tid]
        for fb in t.feedback:
            if isinstance(fb, Mapping) and str(fb.get("from", "")).startswith("human:"):
                add(Said(tid, str(fb["from"]), str(fb.get("kind") or "note"),
                         str(fb.get("text") or "")))
        if t.kind is Kind.HUMAN and t.answer and t.status is Status.FINISHED:
            add(Said(tid, f"human:{t.assignee}", "answer", t.answer))
    for s in said:
        add(s)
    return out


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def fmt_seconds(s: float | None) -> str:
    """Durations in retrospectives: whole minutes."""
    return fmt_s(s, minute_places=0)
