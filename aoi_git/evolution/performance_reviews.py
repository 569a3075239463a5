"""Performance reviews: every N finished roots, HR reviews each participant
(`reviews/<employee>/<n>.md`, docs/formats.md).

When a root finishes, the daemon checks whether a review cycle is due: the finished roots
(work tasks without a parent) not yet covered by a review number at least
`aoi.yaml evolution.review_every` (default 3). Then, in one commit by `agent:hr` (the
active employee with role `hr`; `daemon` when there is none), every employee that ran a
task of those roots gets `reviews/<employee>/<n>.md` (n = 1, 2, ... per employee) built
from the same signals as the retrospectives (`aoi_git.evolution.project_metrics`).

The rule, stated in every review: **fail** when the review pass rate (tasks accepted at
their first review / tasks reviewed) is below `evolution.min_pass_rate` (default 0.5;
only when at least one task was reviewed), or when there are more than
`evolution.max_retries_per_task` (default 1.0) retries per task run (runs beyond the
first of each task); **pass** otherwise.

Consequences, counted from the `result:` of the review files alone (no hidden state):
three failed reviews in a row put an active employee on `status: pip`; a fourth in a row
offboards it (as `aoi fire` does: its open tasks go to its supervisor) and gives the CEO
a `human` task flagging the hiring need. A passed review while on `pip` ends the pip
(`status: active`). Profiles are changed with a ruamel round trip that keeps comments.

Which roots a cycle covered is in each review's front matter (`roots:`, `cycle:`), so
the next due cycle is derived from the files in `reviews/` as well.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from aoi_git.domain.bookkeeping import Bookkeeping
from aoi_git.domain.graph import TaskLinks, is_root, oldest_first
from aoi_git.domain.model import Actor, ActorKind, Employee, EmployeeStatus, OrgConfig, Status, Task
from aoi_git.evolution.journal import journal_for
from aoi_git.evolution.project_metrics import EmployeeSignals, Signals, collect
from aoi_git.org.task_ops import new_task
from aoi_git.store import yamlio
from aoi_git.store.head_view import HeadView
from aoi_git.store.objects import read_blob, tree_entries
from aoi_git.store.org_store import Store
from aoi_git.store.txn import Txn, now_iso

PIP_AFTER = 3  # failed reviews in a row -> pip
OFFBOARD_AFTER = 4  # ... one more -> offboarded


@dataclass(frozen=True)
class Rule:
    min_pass_rate: float = 0.5
    max_retries_per_task: float = 1.0

    @classmethod
    def of(cls, config: OrgConfig) -> Rule:
        evo = (config.raw or {}).get("evolution") or {}
        return cls(float(evo.get("min_pass_rate", 0.5)),
                   float(evo.get("max_retries_per_task", 1.0)))

    def text(self) -> str:
        return (f"fail when the review pass rate is below {self.min_pass_rate:.0%} (with at "
                f"least one task reviewed) or there are more than "
                f"{self.max_retries_per_task:g} retries per task run; pass otherwise")

    def verdict(self, e: EmployeeSignals) -> tuple[bool, list[str]]:
        reasons = []
        if e.pass_rate is not None and e.pass_rate < self.min_pass_rate:
            reasons.append(f"review pass rate {e.pass_rate:.0%} < {self.min_pass_rate:.0%} "
                           f"({e.passed_first} of {e.reviewed} accepted at first review)")
        if e.tasks_run and e.retries_per_task > self.max_retries_per_task:
            reasons.append(f"{e.retries_per_task:.2f} retries per task > "
                           f"{self.max_retries_per_task:g} ({e.retries} retries over "
                           f"{e.tasks_run} tasks)")
        return not reasons, reasons


@dataclass
class ReviewFile:
    employee: str
    n: int
    cycle: int
    result: str  # pass | fail
    roots: list[str]


@dataclass
class Outcome:
    cycle: int
    roots: list[str]
    files: dict[str, str] = field(default_factory=dict)  # path -> text
    status: dict[str, str] = field(default_factory=dict)  # employee -> new status
    hiring_tasks: list[str] = field(default_factory=list)


def reviewer(employees: Mapping[str, Employee], fallback: Actor) -> Actor:
    hrs = sorted((e for e in employees.values() if e.role == "hr" and e.is_active),
                 key=lambda e: (e.id != "hr", e.id))
    return Actor(ActorKind.AGENT, hrs[0].id) if hrs else fallback


class Reviews(dict[str, list[ReviewFile]]):
    """Review files by employee, and (computed once) the projects they cover."""

    @functools.cached_property
    def covered(self) -> frozenset[str]:
        return frozenset(r for files in self.values() for f in files for r in f.roots)


# Parsed review files by blob id, each employee's folder by tree id and whole `reviews/`
# trees by tree id: content-addressed, so right for any repository. A daemon reads the
# reviews at every root it finishes; a new cycle changes the folders of the employees it
# reviewed, and only those are listed again (by tree entries: looking each file up by
# path cost ~10 us, 6.8 ms per cycle with 666 reviews of one employee).
_META_BY_BLOB: dict[str, tuple[int, str, list[str]]] = {}
_BY_FOLDER: dict[str, list[ReviewFile]] = {}
_BY_TREE: dict[str, Reviews] = {}
_CACHE_MAX = 20_000
_REVIEW_NAME = re.compile(r"(\d+)\.md")


def read_reviews(view: HeadView, store: Store) -> Reviews:
    """Every `reviews/<employee>/<n>.md`, by employee, in order of n (don't mutate)."""
    tree_id = view.blob_id("reviews")
    if tree_id is None:
        return Reviews()
    if tree_id in _BY_TREE:
        return _BY_TREE[tree_id]
    out = Reviews()
    for folder in tree_entries(store, tree_id):
        if folder.kind == "tree":
            files = _folder_reviews(store, folder.name, folder.id)
            if files:
                out[folder.name] = files
    if len(_BY_TREE) >= 8:
        _BY_TREE.pop(next(iter(_BY_TREE)))
    _BY_TREE[tree_id] = out
    return out


def _folder_reviews(store: Store, emp: str, folder_id: str) -> list[ReviewFile]:
    known = _BY_FOLDER.get(folder_id)
    if known is not None:
        return known
    files = []
    for entry in tree_entries(store, folder_id):
        m = _REVIEW_NAME.fullmatch(entry.name)
        if m is None or entry.kind != "blob":
            continue
        cycle, result, roots = _review_meta(store, entry.id)
        files.append(ReviewFile(emp, int(m.group(1)), cycle, result, roots))
    files.sort(key=lambda f: f.n)
    if len(_BY_FOLDER) >= 64:
        _BY_FOLDER.pop(next(iter(_BY_FOLDER)))
    _BY_FOLDER[folder_id] = files
    return files


def _review_meta(store: Store, blob_id: str) -> tuple[int, str, list[str]]:
    """(cycle, pass|fail, roots) from a review file's front matter."""
    known = _META_BY_BLOB.get(blob_id)
    if known is not None:
        return known
    meta = front_matter(read_blob(store, blob_id) or b"")
    roots = meta.get("roots") or []
    try:
        cycle = int(meta.get("cycle") or 0)
    except (TypeError, ValueError):  # a person's edit: the file still counts
        cycle = 0
    found = (cycle,
             "fail" if str(meta.get("result", "")).lower() == "fail" else "pass",
             [str(r) for r in roots] if isinstance(roots, list) else [])
    if len(_META_BY_BLOB) >= _CACHE_MAX:
        _META_BY_BLOB.clear()
    _META_BY_BLOB[blob_id] = found
    return found


def front_matter(data: bytes) -> dict[str, Any]:
    text = data.decode("utf-8", "replace")
    if not text.startswith("---"):
        return {}
    parts = text.split("---", 2)
    if len(parts) < 3:
        return {}
    try:
        meta = yamlio.load(parts[1])
    except yamlio.YamlError:
        return {}
    return meta if isinstance(meta, dict) else {}


def fails_in_a_row(results: list[str]) -> int:
    n = 0
    for r in reversed(results):
        if r != "fail":
            break
        n += 1
    return n


class Uncovered:
    """The finished projects no review covers, kept across calls by the daemon. A call
    costs the projects finished since the previous one; every finished project is looked
    at again only when the reviews (or the links) are others than last time, i.e. after a
    cycle, not at every root finish (0.8 ms per root finish with ~3,000 projects)."""

    def __init__(self) -> None:
        self._reviews: Reviews | None = None
        self._links: TaskLinks | None = None
        self._seen = 0
        self._roots: dict[str, None] = {}

    def roots(self, reviews: Reviews, links: TaskLinks) -> list[str]:
        covered = reviews.covered
        if reviews is not self._reviews or links is not self._links:
            self._reviews, self._links = reviews, links
            self._roots = dict.fromkeys(r for r in links.finished_roots if r not in covered)
        else:
            for r in links.finished_log[self._seen:]:
                if r not in covered:
                    self._roots[r] = None
        self._seen = len(links.finished_log)
        for r in [r for r in self._roots if r not in links.finished_roots]:
            del self._roots[r]  # reopened since
        return list(self._roots)


def due_roots(tasks: Mapping[str, Task], reviews: Reviews, every: int,
              links: TaskLinks | None = None,
              passed_over: Collection[str] = (),
              uncovered: Uncovered | None = None) -> list[str] | None:
    """The finished projects no review covers yet, when there are at least `every`
    (`passed_over`: projects a cycle already found no one to review in; `uncovered`: the
    caller's tracker, with `links`)."""
    if links is not None and uncovered is not None:
        candidates = uncovered.roots(reviews, links)
    else:
        finished = links.finished_roots if links is not None else \
            [t.id for t in tasks.values() if is_root(t) and t.status is Status.FINISHED]
        candidates = [r for r in finished if r not in reviews.covered]
    due = [r for r in candidates if r not in passed_over and r in tasks]
    if len(due) < max(1, every):
        return None
    return oldest_first(tasks, due)


def run_cycle(txn: Txn, *, store: Store, tasks: Mapping[str, Task],
              employees: Mapping[str, Employee], config: OrgConfig, org: Any = None,
              now: float | None = None, links: TaskLinks | None = None,
              passed_over: set[str] | None = None,
              uncovered: Uncovered | None = None) -> Outcome | None:
    """Write the due review cycle into `txn` (nothing when none is due).

    `links`: the links of `tasks` when the caller keeps them (the daemon). `passed_over`:
    kept by the caller across cycles; the projects of a cycle that finds no one to review
    (no runs in their history, e.g. imported ones) are added and not examined again, so
    they do not make every later root finish read all their history once more. The next
    cycle that writes reviews lists them among its projects (as it would have without
    the set: they finished since the last review), so they stay covered after a restart.
    `uncovered`: the caller's tracker of unreviewed projects (see `Uncovered`)."""
    reviews = read_reviews(txn.view, store)
    roots = due_roots(tasks, reviews, config.review_every, links, passed_over or (),
                      uncovered)
    if roots is None:
        return None
    sig = collect(store, tasks, roots, rev=txn.view.oid or "HEAD", links=links)
    quiet = [r for r in passed_over or () if r in tasks and r not in reviews.covered]
    listed = oldest_first(tasks, {*roots, *quiet})
    cycle = max((f.cycle for files in reviews.values() for f in files), default=0) + 1
    outcome = Outcome(cycle, listed)
    rule = Rule.of(config)
    by = str(txn.actor)
    when = now_iso(now)
    for emp_id in sorted(sig.employees):
        emp = employees.get(emp_id)
        if emp is None or emp.status is EmployeeStatus.OFFBOARDED:
            continue
        earlier = reviews.get(emp_id, [])
        n = max((f.n for f in earlier), default=0) + 1
        ok, reasons = rule.verdict(sig.employees[emp_id])
        results = [f.result for f in earlier] + ["pass" if ok else "fail"]
        streak = fails_in_a_row(results)
        status = emp.status.value
        new_status = status
        if not ok and streak >= OFFBOARD_AFTER and status == EmployeeStatus.PIP.value:
            new_status = EmployeeStatus.OFFBOARDED.value
        elif not ok and streak >= PIP_AFTER and status == EmployeeStatus.ACTIVE.value:
            new_status = EmployeeStatus.PIP.value
        elif ok and status == EmployeeStatus.PIP.value:
            new_status = EmployeeStatus.ACTIVE.value
        path = f"reviews/{emp_id}/{n}.md"
        outcome.files[path] = render(
            emp, n, cycle, ok, reasons, rule, sig, listed, tasks, txn.view, by, when,
            streak, ([f.n for f in earlier] + [n])[len(earlier) + 1 - streak:],
            status, new_status)
        if new_status != status:
            outcome.status[emp_id] = new_status
    if not outcome.files:
        if passed_over is not None:
            passed_over.update(roots)
        return None
    for path, text in outcome.files.items():
        txn.put_file(path, text.encode())
    for emp_id, new_status in outcome.status.items():
        _change_status(txn, emp_id, new_status, employees, tasks, config, org, outcome)
    verdicts = ", ".join(f"{p.split('/')[1]} {'pass' if 'result: pass' in t else 'fail'}"
                         for p, t in outcome.files.items())
    txn.subject = f"aoi: performance reviews, cycle {cycle}: {verdicts}"[:200]
    txn.body_lines.append(f"over {len(listed)} finished roots: {', '.join(listed)}")
    txn.body_lines.append(f"rule: {rule.text()}")
    for emp_id, st in outcome.status.items():
        txn.body_lines.append(f"{emp_id}: status -> {st}")
    txn.trailers.append(("Aoi-Review-Cycle", str(cycle)))
    return outcome


def _change_status(txn: Txn, emp_id: str, new_status: str, employees: Mapping[str, Employee],
                   tasks: Mapping[str, Task], config: OrgConfig, org: Any,
                   outcome: Outcome) -> None:
    from aoi_git.evolution import hiring

    if new_status != EmployeeStatus.OFFBOARDED.value:
        hiring.set_profile_fields(txn, emp_id, status=new_status)
        return
    emp = employees[emp_id]
    reason = f"failed {OFFBOARD_AFTER} performance reviews in a row (reviews/{emp_id}/)"
    subject = txn.subject
    if org is not None:
        hiring.fire(txn, org, emp_id, reason)  # open tasks go to its supervisor
    else:
        hiring.set_profile_fields(txn, emp_id, status=new_status)
    txn.subject = subject
    merged = {**tasks, **txn.written}
    description = (
        f"HR offboarded {emp_id} ({emp.role}): it {reason}. The organisation now lacks "
        f"that capacity.\n\nFind a talent with `aoi market search {emp.role}` and hire with "
        f"`aoi hire TALENT --as ID`, or answer `no hire` if the work is covered.\n"
        f"The reviews: " + ", ".join(f"`{p}`" for p in outcome.files if f"/{emp_id}/" in p)
    )
    h = new_task(txn, merged, f"Hiring need: a {emp.role} to replace {emp_id}"[:200],
                 kind="human", assignee=config.ceo, description=description,
                 question=f"{emp_id} ({emp.role}) was offboarded after failed performance "
                          "reviews: hire a replacement?",
                 bookkeeping=Bookkeeping(hiring_need=emp.role, offboarded=emp_id))
    outcome.hiring_tasks.append(h.id)


def render(emp: Employee, n: int, cycle: int, ok: bool, reasons: list[str], rule: Rule,
           sig: Signals, roots: list[str], tasks: Mapping[str, Task], view: HeadView,
           by: str, when: str, streak: int, streak_reviews: list[int], status: str,
           new_status: str) -> str:
    e = sig.employees[emp.id]
    rate = "-" if e.pass_rate is None else f"{e.pass_rate:.0%}"
    verdict = "PASS" if ok else "FAIL"
    lines = [
        "---",
        f"employee: {emp.id}",
        f"review: {n}",
        f"cycle: {cycle}",
        f"result: {'pass' if ok else 'fail'}",
        f"roots: {json.dumps(roots)}",
        f"reviewer: {by}",
        f"date: {when}",
        f"status: {new_status}",
        "---",
        "",
        f"# Performance review {n} of {emp.id} ({emp.role}): {verdict}",
        "",
        f"By {by} on {when[:10]}, over the {len(roots)} projects finished since the last "
        "review: " + ", ".join(f"`{r}` ({tasks[r].title})" for r in roots if r in tasks) + ".",
        "",
        "## Rule",
        "",
        rule.text()[0].upper() + rule.text()[1:] + ".",
        "",
        "## Signals (from git history)",
        "",
        "| tasks done | reviews done | runs | tasks run | retries | retries per task | "
        "failed runs | reviewed | passed first review | pass rate | rejections | usd | tokens |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        f"| {e.tasks_done} | {e.reviews_done} | {e.runs} | {e.tasks_run} | {e.retries} | "
        f"{e.retries_per_task:.2f} | {e.failures} | {e.reviewed} | {e.passed_first} | {rate} | "
        f"{e.rejections} | {e.usd:.4f} | {e.tokens:,} |",
    ]
    rejected = [(t.id, r) for t in sig.tasks.values() for r in t.rejections
                if r.employee == emp.id]
    if rejected:
        lines += ["", "### Rejections of its work", ""]
        lines += [f"- `{tid}` by {r.by}: \"{' '.join(r.reason.split())}\"" for tid, r in rejected]
    lines += ["", "## Verdict", "",
              f"{verdict}: " + ("; ".join(reasons) if reasons else "within the rule") + "."]
    lines += ["", "## Standing", ""]
    if streak:
        lines.append(f"Failed reviews in a row: {streak} (reviews "
                     + ", ".join(str(x) for x in streak_reviews) + ").")
    else:
        lines.append("Failed reviews in a row: 0.")
    if new_status != status:
        why = {"pip": f"{PIP_AFTER} failed reviews in a row",
               "offboarded": f"{OFFBOARD_AFTER} failed reviews in a row (after pip)",
               "active": "passed while on pip"}[new_status]
        lines.append(f"Status: {status} -> {new_status} ({why}).")
    else:
        lines.append(f"Status: {status} (unchanged). {PIP_AFTER} failed reviews in a row put "
                     f"an employee on pip; {OFFBOARD_AFTER} offboard it.")
    entries = journal_for(view, emp.id, set(sig.tasks), sig.since)
    lines += ["", "## Self-assessment", "",
              f"Quoted verbatim from `employees/{emp.id}/journal.md` and its archives in "
              f"`employees/{emp.id}/journal/` (entries for these projects' tasks)."]
    if not entries:
        lines += ["", "No journal entry for these projects' tasks."]
    for entry in entries[-6:]:
        lines.append("")
        lines += ["> " + ln if ln.strip() else ">" for ln in entry[:2000].splitlines()]
    return "\n".join(lines).rstrip() + "\n"

