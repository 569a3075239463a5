"""How the EA routes a work task saved without an assignee: to the employee whose role,
talent, tags or skills match the task's labels and words, the least loaded first; work
from outside the organisation (label `external`) to the CSO; and, when nothing matches,
to the router itself, whose agent triages it (its talent's `triage` skill).

Pure: the caller gives the employees, talents and each employee's open work; the commit
that sets the assignee is `route` (a Txn builder).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from aoi_git.domain.model import Employee, Kind, OrgConfig, Status, Talent, Task
from aoi_git.errors import AoiError
from aoi_git.store.trailers import ROUTED_BY
from aoi_git.store.txn import Txn

EXTERNAL_LABEL = "external"
_WORD = re.compile(r"[a-z0-9]+")
_OPEN = (Status.PENDING, Status.PROCESSING, Status.BLOCKED)


@dataclass(frozen=True)
class Choice:
    employee: str
    why: str


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") \
        else word


def _words(text: str) -> set[str]:
    return {_stem(w) for w in _WORD.findall(text.lower()) if len(w) > 2}


def talent_keywords(talent: Talent) -> frozenset[str]:
    """What a talent is matched on: its id, role, tags and skills (and their words)."""
    words: set[str] = set()
    for text in (talent.id, talent.role, *talent.tags, *talent.skills):
        words |= _words(text.replace("-", " ")) | {_stem(text.lower())}
    return frozenset(words)


def open_load(tasks: Iterable[Task]) -> dict[str, int]:
    """Open work per employee id (pending, processing or blocked, assigned or routed)."""
    load: dict[str, int] = {}
    for t in tasks:
        if t.status in _OPEN:
            who = t.bookkeeping.routed_to or t.assignee
            if who:
                load[who] = load.get(who, 0) + 1
    return load


def choose(task: Task, employees: Mapping[str, Employee], talents: Mapping[str, Talent],
           load: Mapping[str, int], config: OrgConfig, router: Employee) -> Choice:
    """Whom `router` gives `task`: external work to the external role; else the best
    match of labels (3 points a word), title (2) and description (1) against each active
    employee's keywords, ties to the least loaded; no match: the router itself."""
    active = [e for e in employees.values() if e.is_active and e.capacity.concurrency > 0]

    def lightest(cands: list[Employee]) -> Employee:
        return min(cands, key=lambda e: (load.get(e.id, 0) / max(1, e.capacity.concurrency),
                                         e.id))

    labels = {lb.lower() for lb in task.labels}
    if EXTERNAL_LABEL in labels and config.external_role:
        owners = [e for e in active if e.role == config.external_role]
        if owners:
            e = lightest(owners)
            return Choice(e.id, f"work from outside (label {EXTERNAL_LABEL}) goes to "
                                f"{config.external_role}")
    parts = [(_words(" ".join(task.labels)), 3), (_words(task.title), 2),
             (_words(task.description), 1)]
    groups: dict[tuple[str, str], list[Employee]] = {}  # one score per role and talent
    for e in active:
        if e.id != router.id:
            groups.setdefault((e.role, e.talent or ""), []).append(e)
    scored: list[tuple[int, Employee, list[str]]] = []
    for (role, talent_id), members in groups.items():
        talent = talents.get(talent_id)
        kw = _words(role) | (talent_keywords(talent) if talent is not None else frozenset())
        score, hits = 0, []
        for words, weight in parts:
            found = sorted(words & kw)
            score += weight * len(found)
            hits += [w for w in found if w not in hits]
        if score:
            scored += [(score, e, hits) for e in members]
    if not scored:
        return Choice(router.id, "no employee's role or skills match it: "
                                 f"{router.id} triages it")
    best = max(s for s, _, _ in scored)
    top = [(e, hits) for s, e, hits in scored if s == best]
    e = lightest([e for e, _ in top])
    hits = next(h for c, h in top if c.id == e.id)
    return Choice(e.id, f"{', '.join(hits)} matches {e.role}"
                        + (f" (least loaded of {len(top)})" if len(top) > 1 else ""))


def route(txn: Txn, task_id: str, choice: Choice, router: Employee) -> None:
    """Set the chosen assignee of an unassigned pending work task, saying who and why."""
    task = txn.get(task_id)
    if task.assignee is not None or task.status is not Status.PENDING \
            or task.kind is not Kind.WORK:
        raise AoiError(f"task {task_id} is not an unassigned pending work task any more")
    txn.put(replace(task, assignee=choice.employee))
    txn.trailers.append((ROUTED_BY, router.id))
    txn.body_lines.append(f"routed by {router.id} to {choice.employee}: {choice.why}")


def reassign_candidates(task: Task, employees: Mapping[str, Employee]) -> list[str]:
    """Active employees a person could hand `task` to, most fitting first: others of its
    assignee's role (or of the `role:` it names), then the rest, the assignee last."""
    who = task.bookkeeping.routed_to or task.assignee or ""
    role = who[5:] if who.startswith("role:") else \
        (employees[who].role if who in employees else None)
    active = sorted((e for e in employees.values() if e.is_active), key=lambda e: e.id)
    same = [e.id for e in active if e.role == role and e.id != who]
    rest = [e.id for e in active if e.role != role and e.id != who]
    mine = [who] if who in employees and employees[who].is_active else []
    return same + rest + mine
