"""Hiring and firing: employees come from talent packages, leave as `offboarded`.

- `aoi hire TALENT --as ID`: one commit by the person creates `employees/ID/`
  (`profile.yaml`, `principles.md` seeded from the talent's "How you work", `journal.md`)
  and copies the package into `talents/TALENT/` when the org does not have it yet.
- `aoi fire ID`: one commit sets the profile's `status: offboarded` (a round trip that
  keeps the person's comments) and gives the supervisor (the first person up the
  `reports_to` chain) one `human` task listing the employee's open tasks. The pending,
  failed and blocked ones wait on that task (`extra.escalation`); its answer is applied
  to each of them like an escalation's: `reassign to EMPLOYEE`, `retry` or `cancel`.
- An agent proposes a hire (`hire: {talent, as, reason}` in its result, or the claude
  `propose_hire` tool): `propose_hire` adds, in the agent's commit, a task for HR to
  shortlist (the market search results are in its description) and a `human` task for
  the CEO. Nothing is created until the CEO answers `approve` (optionally
  `approve TALENT as ID`); the daemon then applies the decision as the CEO
  (`apply_hire_decision`). `reject ...` or cancelling the task creates nothing.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from aoi_git.domain.bookkeeping import Bookkeeping, HireProposal
from aoi_git.domain.ids import is_valid_id
from aoi_git.domain.model import Actor, ActorKind, Employee, Kind, OrgConfig, Status, Talent, Task
from aoi_git.domain.reporting import first_human_up
from aoi_git.domain.task_rows import open_tasks as open_ones
from aoi_git.errors import AoiError
from aoi_git.evolution import market
from aoi_git.org.organisation import Org
from aoi_git.org.task_ops import new_task
from aoi_git.store import yamlio
from aoi_git.store.txn import Txn

DEFAULT_CAPACITY: Mapping[str, Any] = {"concurrency": 1, "usd_per_day": 20,
                                       "tokens_per_task": 400_000, "timeout_s": 1800,
                                       "memory_mb": 4096}
OPEN_TO_REASSIGN = (Status.PENDING, Status.FAILED, Status.BLOCKED)
SHORTLIST = 5
_APPROVE = re.compile(r"^\s*(?:approve[sd]?|yes|ok|accept(?:ed)?)\b(.*)$", re.I | re.S)
_OVERRIDE = re.compile(r"(?:(?!as\b)([a-z0-9][a-z0-9-]+))?\s*(?:\bas\s+([a-z0-9][a-z0-9-]+))?\s*")


# ------------------------------------------------------------------------ talents

@dataclass(frozen=True)
class TalentSource:
    """A talent to hire from: the org's own (`files` empty) or a market package."""

    talent: Talent
    origin: str  # "org" or the market's name
    files: Mapping[str, bytes] = field(default_factory=dict)


def find_talent(org_root: Path | None, org: Org, talent_id: str, *,
                catalogue: market.Catalogue | None = None) -> TalentSource:
    """The org's `talents/<id>` first, then the markets in order; a miss names the closest."""
    if talent_id in org.talents:
        return TalentSource(org.talents[talent_id], "org")
    cat = catalogue or market.load_catalogue(org_root, org.config)
    pkg = cat.find(talent_id)
    if pkg is None:
        near = cat.closest(talent_id, extra=org.talents)
        hint = f"; closest: {', '.join(near)}" if near else ""
        raise AoiError(f"no talent {talent_id!r} in talents/ or the markets{hint} "
                       f"(`aoi market search {talent_id.replace('-', ' ')}` ranks them)")
    return TalentSource(pkg.talent, pkg.market, pkg.files())


def known_backends() -> set[str]:
    return {"script", "claude", *(ep.name for ep in entry_points(group="aoi.backends"))}


def seed_principles(talent: Talent) -> list[str]:
    """The bullets of the talent prompt's "How you work" section (else its first bullets)."""
    sections = re.split(r"(?m)^## +", talent.prompt)
    chosen = next((s for s in sections[1:] if s.lower().startswith("how you work")), None)
    text = chosen if chosen is not None else talent.prompt
    items: list[str] = []
    for line in text.splitlines():
        if re.match(r"^\s*[-*] ", line):
            items.append(line.strip()[2:].strip())
        elif items and line.startswith("  ") and line.strip() and chosen is not None:
            items[-1] += " " + line.strip()
        elif chosen is None and items and not line.strip():
            break
    return items[:12]


def employee_files(source: TalentSource, *, employee_id: str, name: str, reports_to: str,
                   backend_kind: str | None, command: str | None, person: str,
                   today: str | None = None) -> dict[str, bytes]:
    """The files a hire creates (paths relative to the org)."""
    talent = source.talent
    kind_default = str(talent.backend.get("kind") or "script")
    kind = backend_kind or kind_default
    if kind not in known_backends():
        raise AoiError(f"--backend {kind}: no such backend (installed: "
                       f"{', '.join(sorted(known_backends()))})")
    backend: dict[str, Any] = {"kind": kind}
    if kind == kind_default:
        backend = {**dict(talent.backend), "kind": kind}
    if command:
        backend["command"] = shlex.split(command)
    if kind == "script" and not backend.get("command"):
        raise AoiError("a script employee needs a command: add --command "
                       "\"python agents/<name>.py\" (or choose --backend claude)")
    today = today or dt.date.today().isoformat()
    profile: dict[str, Any] = {
        "id": employee_id, "name": name, "role": talent.role, "talent": talent.id,
        "reports_to": reports_to, "status": "active", "backend": backend,
        "capacity": dict(DEFAULT_CAPACITY),
    }
    if talent.tools:
        profile["tools"] = list(talent.tools)
    origin = "this org's talents/" if source.origin == "org" else f"the {source.origin} market"
    header = ("# yaml-language-server: $schema=../../schemas/profile.schema.json\n"
              f"# Hired from the talent {talent.id} ({origin}) by {person} on {today}.\n")
    items = seed_principles(talent) or [
        "Read the task, its feedback and the results it depends on before starting.",
        "Report what you did and how you checked it, so a reviewer can verify it.",
    ]
    principles = (
        f"# Working principles: {name} ({talent.role})\n\n"
        "These evolve: one-on-ones and reflections rewrite this file, and `git log` shows "
        f"how. Seeded from the talent {talent.id}.\n\n"
        + "".join(f"{i}. {item}\n" for i, item in enumerate(items, 1))
    )
    journal = (f"# Journal: {name} ({talent.role})\n\nA reflection is appended here after "
               "each task: what happened, what worked, what to do differently.\n")
    base = f"employees/{employee_id}"
    files = {f"{base}/profile.yaml": header.encode() + yamlio.dump(profile),
             f"{base}/principles.md": principles.encode(),
             f"{base}/journal.md": journal.encode()}
    for rel, data in source.files.items():
        files[f"talents/{talent.id}/{rel}"] = data
    return files


def check_new_id(txn: Txn, employee_id: str, config: OrgConfig) -> None:
    if not is_valid_id(employee_id):
        raise AoiError(f"{employee_id!r} is not a valid employee id: use 2-64 lowercase "
                       "letters, digits and '-', e.g. eng-2")
    if txn.view.exists(f"employees/{employee_id}"):
        raise AoiError(f"employee {employee_id!r} exists already (employees/{employee_id}/): "
                       "choose another --as")
    if employee_id in config.humans or employee_id == "none":
        raise AoiError(f"{employee_id!r} is a person in aoi.yaml: choose another --as")


def hire(txn: Txn, org: Org, source: TalentSource, *, employee_id: str,
         reports_to: str | None = None, backend_kind: str | None = None,
         command: str | None = None, name: str | None = None) -> dict[str, bytes]:
    """Write a hire into `txn` (the caller commits); returns the files written."""
    check_new_id(txn, employee_id, org.config)
    boss = reports_to or org.config.ceo
    if boss not in org.config.humans and boss not in org.employees:
        raise AoiError(f"--reports-to {boss}: neither an employee nor a person in aoi.yaml")
    if boss in org.employees and not org.employees[boss].is_active:
        raise AoiError(f"--reports-to {boss}: that employee is offboarded")
    files = employee_files(source, employee_id=employee_id, name=name or employee_id,
                           reports_to=boss, backend_kind=backend_kind, command=command,
                           person=txn.actor.name)
    for path, data in files.items():
        if path.startswith("talents/") and txn.view.exists(path):
            continue  # the org has its own copy
        txn.put_file(path, data)
    talent = source.talent
    txn.subject = f"aoi: hire {employee_id} ({talent.id}, {talent.role})"
    txn.trailers += [("Aoi-Employee", employee_id), ("Aoi-Talent", talent.id)]
    if source.origin != "org":
        txn.body_lines.append(f"talents/{talent.id}/ copied from the {source.origin} market")
    return files


# ------------------------------------------------------------------------- firing

def set_profile_fields(txn: Txn, employee_id: str, **fields: Any) -> None:
    """Change top-level keys of a profile, keeping the person's comments and key order."""
    from ruamel.yaml import YAML

    path = f"employees/{employee_id}/profile.yaml"
    data = txn.files.get(path) or txn.view.read(path)
    if data is None:
        raise AoiError(f"no {path}")
    rt = YAML()
    rt.preserve_quotes = True
    rt.width = 4096
    doc = rt.load(data.decode("utf-8"))
    for key, value in fields.items():
        doc[key] = value
    out = io.StringIO()
    rt.dump(doc, out)
    txn.put_file(path, out.getvalue().encode())


@dataclass
class Offboarding:
    employee: str
    open_tasks: list[str]
    waiting: list[str]  # the open tasks that wait on the supervisor's answer
    human_task: str | None = None
    supervisor: str | None = None
    reports: list[str] = field(default_factory=list)  # employees reporting to the fired one


def fire(txn: Txn, org: Org, employee_id: str, reason: str = "") -> Offboarding:
    emp = org.employees.get(employee_id)
    if emp is None:
        raise AoiError(f"no employee {employee_id!r}: `ls employees/` lists them")
    if not emp.is_active:
        raise AoiError(f"{employee_id} is offboarded already")
    set_profile_fields(txn, employee_id, status="offboarded")
    open_tasks = sorted((t for t in open_ones(org.tasks)
                         if t.assignee == employee_id and not t.is_terminal),
                        key=lambda t: (t.created or "", t.id))
    out = Offboarding(employee_id, [t.id for t in open_tasks], [],
                      reports=sorted(e.id for e in org.employees.values()
                                     if e.reports_to == employee_id and e.is_active))
    txn.subject = f"aoi: fire {employee_id}: offboarded" + (f" ({reason})" if reason else "")
    txn.trailers.append(("Aoi-Employee", employee_id))
    if reason:
        txn.body_lines.append(reason)
    if not open_tasks:
        return out
    boss = first_human_up(employee_id, org.employees, org.config)
    waiting = [t for t in open_tasks
               if t.status in OPEN_TO_REASSIGN and not t.bookkeeping.escalation]
    lines = []
    for t in open_tasks:
        note = "" if t in waiting else "  (in flight: listed for information)"
        lines.append(f"- {t.id} [{t.status.value}] {t.title}{note}")
    description = (
        f"{employee_id} ({emp.role}) was offboarded"
        + (f": {reason}" if reason else "") + ". These tasks were assigned to it:\n\n"
        + "\n".join(lines) + "\n\n"
        "Answer for all the waiting ones at once with one of:\n"
        "- `reassign to EMPLOYEE` (or `reassign to role:ROLE`)\n- `cancel`\n"
        "or set each task's `assignee:` yourself (`aoi task edit ID`) and answer `done`.\n"
        f"e.g. `aoi answer <this id> \"reassign to role:{emp.role}\"`"
    )
    h = new_task(txn, org.tasks, f"Reassign the open tasks of {employee_id}"[:200],
                 kind="human", assignee=boss, description=description,
                 question=f"{employee_id} was offboarded: who takes over its "
                          f"{len(open_tasks)} open task(s)?",
                 bookkeeping=Bookkeeping(offboarding=employee_id,
                                         offboarding_tasks=tuple(out.open_tasks)))
    for t in waiting:
        cur = txn.get(t.id)
        txn.put(cur.with_changes(bookkeeping=replace(cur.bookkeeping, escalation=h.id)))
    out.human_task, out.supervisor, out.waiting = h.id, boss, [t.id for t in waiting]
    return out


# ------------------------------------------------------------- proposed hires

def _hr_assignee(employees: Mapping[str, Employee]) -> str | None:
    hr = employees.get("hr")
    if hr is not None and hr.is_active:
        return "hr"
    if any(e.role == "hr" and e.is_active for e in employees.values()):
        return "role:hr"
    return None


def _free_id(wanted: str, role: str, taken: set[str]) -> str:
    if is_valid_id(wanted) and wanted not in taken:
        return wanted
    stem = market.slug(wanted) if is_valid_id(market.slug(wanted)) else market.slug(role)
    stem = stem or "hire"
    n = 2
    while f"{stem}-{n}" in taken:
        n += 1
    return f"{stem}-{n}"


def shortlist(org_root: Path | None, config: OrgConfig, query: str,
              n: int = SHORTLIST) -> tuple[list[market.Match], market.Catalogue]:
    """Market search for a proposal, without network access (cached clones only)."""
    cat = market.load_catalogue(org_root, config, fetch=False)
    return market.search(cat.packages, query, limit=n), cat


def propose_hire(txn: Txn, *, proposer: Employee, proposal: Mapping[str, Any], about: Task,
                 tasks: Mapping[str, Task], employees: Mapping[str, Employee],
                 config: OrgConfig, org_root: Path | None) -> Task | None:
    """An HR task to shortlist and a `human` task for the CEO to approve; returns the latter.

    Runs inside the proposer's result commit. A proposal without a talent, or one that
    repeats an open proposal for the same talent and id, is noted and skipped."""
    talent_id = str(proposal.get("talent") or "").strip()
    reason = str(proposal.get("reason") or "").strip() or "(no reason given)"
    if not talent_id:
        txn.body_lines.append("hire proposal ignored: it names no talent")
        return None
    taken = set(employees) | set(config.humans)
    for t in [*open_ones(tasks), *txn.written.values()]:
        prop = t.bookkeeping.hire
        if (prop is not None and not t.is_terminal and t.kind is Kind.HUMAN
                and prop.talent == talent_id
                and prop.as_id in (proposal.get("as"), "")):
            txn.body_lines.append(f"hire proposal of {talent_id} already open in {t.id}")
            return None
        if prop is not None and not t.is_terminal:
            taken.add(prop.as_id)
    matches, cat = shortlist(org_root, config, f"{talent_id.replace('-', ' ')} {reason}")
    proposed = cat.find(talent_id)
    role = proposed.talent.role if proposed is not None else talent_id
    as_id = _free_id(str(proposal.get("as") or "").strip(), role, taken)
    found = (f"{talent_id} ({proposed.talent.role}, {proposed.market} market): "
             f"{proposed.talent.description}" if proposed is not None else
             f"{talent_id}: not in the markets (closest: "
             f"{', '.join(cat.closest(talent_id)) or 'none'})")
    ranked = "\n".join(f"{i}. {m.package.id} ({m.package.talent.role}, {m.package.market}) "
                       f"score {m.score:.1f}: {m.package.talent.description}"
                       for i, m in enumerate(matches, 1)) or "(no talent matched)"
    record = HireProposal(talent=talent_id, as_id=as_id, reason=reason,
                          proposed_by=proposer.id, about=about.id)
    common = (f"{proposer.id} ({proposer.role}) proposes to hire {talent_id} as {as_id}, "
              f"while working on {about.id} \"{about.title}\".\n\nReason: {reason}\n\n"
              f"Proposed talent: {found}\n\nMarket search for the need:\n{ranked}\n")
    hr_task = None
    hr = _hr_assignee(employees)
    if hr is not None:
        hr_task = new_task(
            txn, tasks, f"Shortlist a hire: {talent_id} as {as_id}"[:200], assignee=hr,
            reviewer="none", labels=["hiring"], description=common + (
                "\nCheck the need against the organisation's open and failed tasks and its "
                "current employees. Report a summary recommending the proposed talent or one "
                "from the list (with the employee id to use), and why. The CEO decides; do "
                "not create employees yourself."),
            bookkeeping=Bookkeeping(about=about.id, hire_for=as_id))
    decide = (
        "\nAnswer with `aoi answer <this id> approve` to hire as proposed, "
        f"`approve TALENT as ID` to hire another talent or under another id (e.g. "
        f"`approve {matches[0].package.id if matches else talent_id} as {as_id}`), "
        "or `reject <why>`. Nothing is created before you approve."
        + (f"\n\nHR shortlists in {hr_task.id}." if hr_task is not None else ""))
    h = new_task(txn, tasks, f"Approve hire: {talent_id} as {as_id}"[:200], kind="human",
                 assignee=config.ceo, description=common + decide,
                 question=f"Hire {talent_id} as {as_id}? approve or reject",
                 depends_on=[hr_task.id] if hr_task is not None else None,
                 bookkeeping=Bookkeeping(hire=record, about=about.id))
    txn.body_lines.append(f"proposed hire: {talent_id} as {as_id}; the CEO decides in {h.id}"
                          + (f", HR shortlists in {hr_task.id}" if hr_task else ""))
    return h


def parse_decision(h: Task) -> tuple[bool, str | None, str | None]:
    """(approved, talent override, id override) from the CEO's answer."""
    if h.status is Status.CANCELLED:
        return False, None, None
    m = _APPROVE.match(h.answer or "")
    if m is None:
        return False, None, None
    rest = _OVERRIDE.fullmatch(m.group(1).strip())  # anything else is a plain approval
    talent = rest.group(1) if rest and rest.group(1) else None
    as_id = rest.group(2) if rest and rest.group(2) else None
    return True, talent, as_id


CommitFn = Callable[[Callable[[Txn], Any], Actor], Any]


def apply_hire_decision(org_root: Path, org: Org, human_task_id: str,
                        commit_fn: CommitFn) -> bool:
    """Apply the CEO's answer to a proposed hire, as one commit by the CEO.

    Approved: the employee is created (as `aoi hire` would), reporting to the CEO.
    Rejected or cancelled: nothing is created. Either way the human task records what
    was done in its `applied` bookkeeping, so the decision is applied once."""
    h = org.tasks.get(human_task_id)
    prop = h.bookkeeping.hire if h is not None else None
    if h is None or prop is None or h.bookkeeping.applied:
        return False
    approved, talent_over, id_over = parse_decision(h)
    talent_id = talent_over or prop.talent
    as_id = id_over or prop.as_id
    ceo = Actor(ActorKind.HUMAN, h.assignee or org.config.ceo)
    source: TalentSource | None = None
    outcome = f"rejected by {ceo.name}: {h.answer or h.status.value}"
    if approved:
        try:
            source = find_talent(org_root, org, talent_id)
        except AoiError as exc:
            outcome = f"approved but not hired: {exc}"

    def build(txn: Txn) -> None:
        cur = txn.get(human_task_id)
        if cur.bookkeeping.applied:
            return
        result = outcome
        if source is not None:
            try:
                hire(txn, org, source, employee_id=as_id, reports_to=org.config.ceo)
                txn.trailers.append(("Aoi-Hire-Proposal", human_task_id))
                txn.body_lines.append(f"approved by {ceo.name} in {human_task_id}: "
                                      f"{prop.reason}")
                result = f"hired {as_id} ({talent_id})"
            except AoiError as exc:
                txn.files.clear()
                txn.subject = None
                txn.trailers.clear()
                result = f"approved but not hired: {exc}"
        if txn.subject is None:
            txn.subject = f"aoi: hire proposal {human_task_id}: {result}"[:200]
        txn.put(cur.with_changes(bookkeeping=replace(cur.bookkeeping, applied=result)))

    commit_fn(build, ceo)
    return True
