"""Retrospectives: when a root task finishes, `retros/<c1>/<c2>/<root-id>.md`, sharded by
the id like task files (docs/formats.md).

The daemon writes it in the same commit as the root's `accepted -> finished` transition
(`write_into`), so the project's end and its lessons are one commit to read or revert.
Sections:

0. the plan, for a decomposed root: which plan was chosen among how many alternatives,
   by whom and why, and how it went; also in the front matter (`plan:`), where later
   planners' contexts and `aoi stats` read it (`aoi_git.evolution.plan_history`);
1. the signals read from git history (`aoi_git.evolution.project_metrics`): per task and per
   employee;
2. what went well and what went badly, derived from those numbers by fixed rules
   (no judgement is invented: each line names the numbers it comes from);
3. self-assessments: each participant's own journal entries for the project's tasks,
   quoted verbatim; nothing is written in anyone's name;
4. what people said: feedback, answers and review comments by `human:*` actors, verbatim;
   when there are none the retrospective says so instead of imagining a view;
5. proposed SOP changes, by rule: every reason a reviewer gave for rejecting work becomes a
   checklist item of `sops/retro-<role>.md` (role of the employee whose work was rejected;
   reasons given more than once are marked recurring), and an error that failed runs of a
   role more than once becomes an item too. Items already in the SOP are not repeated.
   They are committed to `sops/` with the retrospective, or, with `aoi.yaml`
   `evolution: {sop_approval: true}`, put on branch `aoi/sop-<root-id>` (based on the
   commit before the retrospective) with a `human` task asking the CEO to review and
   merge it. An SOP reaches the context of every later task whose assignee has the role
   (`context.assemble`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aoi_git.domain.bookkeeping import Bookkeeping
from aoi_git.domain.graph import TaskLinks
from aoi_git.domain.ids import sharded
from aoi_git.domain.model import Actor, Employee, Kind, OrgConfig, Status, Task
from aoi_git.evolution import plan_history
from aoi_git.evolution.journal import journal_for
from aoi_git.evolution.project_metrics import Signals, TaskSignals, collect, fmt_seconds
from aoi_git.org.task_ops import new_task
from aoi_git.store.head_view import HeadView
from aoi_git.store.org_store import Change, Store
from aoi_git.store.txn import Txn, now_iso

ENTRY_CHARS = 2000


@dataclass
class SopChange:
    path: str
    role: str
    items: list[str]
    content: bytes
    new_file: bool


@dataclass
class Retro:
    root: str
    text: str
    signals: Signals
    sops: list[SopChange] = field(default_factory=list)
    sop_branch: str | None = None
    path: str = ""  # where it is (or goes) in the repository

    def __post_init__(self) -> None:
        self.path = self.path or retro_path(self.root)

    def to_dict(self) -> dict[str, Any]:
        return {"root": self.root, "path": self.path, "signals": self.signals.to_dict(),
                "sop_changes": [{"path": s.path, "role": s.role, "items": s.items,
                                 "new": s.new_file} for s in self.sops],
                "sop_branch": self.sop_branch, "text": self.text}


def retro_path(root: str, view: HeadView | None = None) -> str:
    """`retros/<c1>/<c2>/<root>.md` (sharded like tasks, see `aoi_git.domain.ids`), or the flat
    `retros/<root>.md` an earlier aoi wrote, when `view` has that one: it stays where it is."""
    flat = f"retros/{root}.md"
    if view is not None and view.exists(flat):
        return flat
    return sharded("retros", root, ".md")


def sop_branch(root: str) -> str:
    return f"aoi/sop-{root}"


# ------------------------------------------------------------------------- building

def build(view: HeadView, store: Store, tasks: Mapping[str, Task],
          employees: Mapping[str, Employee], config: OrgConfig, root_id: str, *,
          finishing_at: float | None = None, links: TaskLinks | None = None) -> Retro:
    """The retrospective of `root_id` from the history up to `view` (a pure read).

    `finishing_at`: the root finishes in the commit being built, at this time. `links`:
    the links of `tasks` when the caller keeps them (the daemon)."""
    root = tasks[root_id]
    finishing = {root_id: finishing_at} if finishing_at is not None else None
    sig = collect(store, tasks, [root_id], rev=view.oid or "HEAD", finishing=finishing,
                  links=links)
    sops = propose_sops(view, sig, tasks, employees, root)
    branch = sop_branch(root_id) if sops and config.sop_approval else None
    text = render(view, sig, tasks, employees, config, root, sops, branch, finishing_at)
    return Retro(root_id, text, sig, sops, branch, retro_path(root_id, view))


def write_into(txn: Txn, store: Store, retro: Retro, tasks: Mapping[str, Task],
               config: OrgConfig) -> None:
    """Put the retrospective (and its SOP changes, or their approval) into `txn`."""
    txn.put_file(retro.path, retro.text.encode())
    txn.trailers.append(("Aoi-Retro", retro.root))
    txn.body_lines.append(f"retrospective: {retro.path}")
    if not retro.sops:
        return
    if retro.sop_branch is None:
        for s in retro.sops:
            txn.put_file(s.path, s.content)
        txn.body_lines.append("SOP changes: " + ", ".join(s.path for s in retro.sops))
        return
    _sop_branch_commit(store, txn.view, retro, str(txn.actor))
    txn.body_lines.append(f"SOP changes proposed on branch {retro.sop_branch}")
    merged = {**tasks, **txn.written}
    if any(t.bookkeeping.sop_branch == retro.sop_branch and not t.is_terminal
           for t in merged.values()):
        return  # already asked (a regenerated retrospective)
    root = merged[retro.root]
    files = "\n".join(f"- `{s.path}` ({'new' if s.new_file else 'changed'}): "
                      + "; ".join(s.items) for s in retro.sops)
    description = (
        f"The retrospective of \"{root.title}\" ({retro.path}) proposes changes to the "
        f"standard operating procedures, on branch `{retro.sop_branch}`:\n\n{files}\n\n"
        f"Review them with `git diff HEAD...{retro.sop_branch}`. To approve, merge the "
        f"branch (`git merge {retro.sop_branch}`); to decline, delete it "
        f"(`git branch -D {retro.sop_branch}`). Then answer this task "
        "(e.g. `aoi answer <this id> merged`)."
    )
    new_task(txn, merged, f"Approve SOP changes from the retrospective of {root.title}"[:200],
             kind="human", assignee=config.ceo, description=description,
             question=f"Merge the SOP changes on {retro.sop_branch}?",
             bookkeeping=Bookkeeping(about=retro.root, sop_branch=retro.sop_branch))


def _sop_branch_commit(store: Store, view: HeadView, retro: Retro, actor: str) -> str:
    files: dict[str, bytes | None] = {s.path: s.content for s in retro.sops}
    msg = (f"aoi: SOP changes from the retrospective of {retro.root}\n\n"
           + "\n".join(f"{s.path}: " + "; ".join(s.items) for s in retro.sops)
           + f"\n\nAoi-Retro: {retro.root}\nAoi-Actor: {actor}\n")
    assert retro.sop_branch is not None
    return store.commit_to_branch(retro.sop_branch, view, Change(files, msg), actor)


# ------------------------------------------------------------------------ SOP rules

def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def propose_sops(view: HeadView, sig: Signals, tasks: Mapping[str, Task],
                 employees: Mapping[str, Employee], root: Task) -> list[SopChange]:
    by_role: dict[str, list[str]] = {}
    # rule 1: each rejection reason -> an item for the role whose work was rejected
    reasons: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for t in sig.tasks.values():
        for r in t.rejections:
            role = _role_of(r.employee, t, tasks, employees)
            reason = _norm(r.reason)
            if not role or not reason or reason == "(no reason recorded)":
                continue
            reasons.setdefault((role, reason[:400]), []).append((t.id, r.by))
    for (role, reason), where in reasons.items():
        tids = ", ".join(dict.fromkeys(f"`{tid}`" for tid, _ in where))
        bys = ", ".join(dict.fromkeys(by for _, by in where))
        mark = f"recurring: rejected {len(where)} times" if len(where) > 1 else "rejected once"
        by_role.setdefault(role, []).append(f"{reason} ({mark}, in {tids}, by {bys})")
    # rule 2: an error that failed runs of one role more than once -> an item
    errors: dict[tuple[str, str], list[str]] = {}
    for t in sig.tasks.values():
        role = _role_of(t.employees[-1] if t.employees else None, t, tasks, employees)
        for err in t.errors:
            if role and err:
                errors.setdefault((role, _norm(err)[:300]), []).append(t.id)
    for (role, err), err_tids in errors.items():
        if len(err_tids) > 1:
            where_ids = ", ".join(dict.fromkeys(f"`{x}`" for x in err_tids))
            by_role.setdefault(role, []).append(
                f"Runs failed {len(err_tids)} times with: {err} (in {where_ids}); check for this "
                "before you report")
    out = []
    for role, items in sorted(by_role.items()):
        path = f"sops/retro-{role}.md"
        current = (view.read(path) or b"").decode("utf-8", "replace")
        fresh = [i for i in items if _item_key(i) not in current]
        if not fresh:
            continue
        if current:
            text = current.rstrip("\n") + "\n"
        else:
            title = f"Lessons from retrospectives: {role}"
            text = (f"---\ntitle: {json.dumps(title)}\napplies_to:\n"
                    f"  roles: {json.dumps([role])}\n---\n\n# {title}\n\n"
                    "Reviewers rejected work of this role for the reasons below, and some runs "
                    "failed the same way more than once. Each item was added by the "
                    "retrospective named above it (see `retros/`). Before you report a task "
                    "as completed, check that none of them applies to your work.\n")
        text += f"\n## From {root.id}: {_norm(root.title)}\n\n" + "".join(
            f"- {i}\n" for i in fresh)
        out.append(SopChange(path, role, fresh, text.encode(), not current))
    return out


def _item_key(item: str) -> str:
    """The part of an item that identifies it (the reason), to skip repeats."""
    return re.sub(r" \((?:recurring|rejected once|in `).*$", "", item).strip()


def _role_of(employee: str | None, t: TaskSignals, tasks: Mapping[str, Task],
             employees: Mapping[str, Employee]) -> str | None:
    if employee and employee in employees:
        return employees[employee].role or None
    assignee = tasks[t.id].assignee if t.id in tasks else None
    if assignee and assignee.startswith("role:"):
        return assignee[5:]
    if assignee and assignee in employees:
        return employees[assignee].role or None
    return None


# ------------------------------------------------------------------------ rendering

def _md(text: str) -> str:
    return _norm(text).replace("|", "\\|")


def render(view: HeadView, sig: Signals, tasks: Mapping[str, Task],
           employees: Mapping[str, Employee], config: OrgConfig, root: Task,
           sops: list[SopChange], branch: str | None, finishing_at: float | None) -> str:
    rs = sig.tasks[root.id]
    project = sig.of_root(root.id)
    work = [t for t in project if t.kind != Kind.HUMAN.value]
    runs = sum(t.runs for t in work)
    rejections = sum(len(t.rejections) for t in work)
    failures = sum(t.failures for t in work)
    lead = (rs.finished - rs.created) if rs.finished and rs.created else None
    finished = now_iso(rs.finished) if rs.finished else "-"
    plan = plan_history.record_of(root, rounds=rs.runs, rejections=rejections, usd=sig.usd,
                                  lead_time_s=lead, status=rs.status)
    out = [
        "---",
        f"root: {root.id}",
        f"title: {json.dumps(root.title)}",
        f"status: {rs.status}",
        f"finished: {finished}",
        f"tasks: {len(project)}",
        f"usd: {round(sig.usd, 6)}",
        f"tokens: {sig.tokens}",
        *([plan_history.front_matter_value(plan)] if plan else []),
        "---",
        "",
        f"# Retrospective: {root.title}",
        "",
        f"Root task `{root.id}`, "
        + (f"finished {finished}" if rs.finished else f"{rs.status} (not finished)")
        + f": {len(project)} tasks, "
        f"{runs} runs, {failures} failed runs, {rejections} rejections, "
        f"${sig.usd:.4f}, {sig.tokens:,} tokens, lead time {fmt_seconds(lead)}.",
        f"Every number below is read from the commit trailers of this project "
        f"(`aoi log {root.id}`).",
        "",
        *([*plan_history.plan_lines(plan), ""] if plan is not None else []),
        "## Signals",
        "",
        "| task | title | kind | run by | runs | failed | rejected | time | usd | tokens |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for t in sorted(project, key=lambda t: (t.created or 0, t.id)):
        out.append(f"| `{t.id}` | {_md(t.title)[:60]} | {t.kind} | "
                   f"{', '.join(t.employees) or '-'} | {t.runs} | {t.failures} | "
                   f"{len(t.rejections)} | {fmt_seconds(t.seconds)} | {t.usd:.4f} | "
                   f"{t.tokens:,} |")
    out += ["", "### Rejections and their reasons", ""]
    rej = [(t, r) for t in project for r in t.rejections]
    if rej:
        for t, r in rej:
            whose = f" (work of {r.employee})" if r.employee else ""
            out.append(f"- `{t.id}`{whose}, rejected by {r.by}: \"{_norm(r.reason)}\"")
    else:
        out.append("None.")
    fails = [(t, err) for t in project for err in t.errors]
    if fails:
        out += ["", "### Failed runs", ""]
        for t, err in fails:
            out.append(f"- `{t.id}` ({', '.join(t.employees) or '-'}): {err}")
    out += ["", "### Per employee", "",
            "| employee | tasks done | reviews done | runs | retries | failed runs | "
            "reviewed | passed first review | pass rate | usd | tokens |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for es in sorted(sig.employees.values(), key=lambda x: x.id):
        rate = "-" if es.pass_rate is None else f"{es.pass_rate:.0%}"
        out.append(f"| {es.id} | {es.tasks_done} | {es.reviews_done} | {es.runs} | "
                   f"{es.retries} | {es.failures} | {es.reviewed} | {es.passed_first} | {rate} | "
                   f"{es.usd:.4f} | {es.tokens:,} |")
    if not sig.employees:
        out.append("| - | | | | | | | | | | |")
    good, bad = judge(sig, tasks, root)
    out += ["", "## What went well", ""] + [f"- {g}" for g in good]
    out += ["", "## What went badly", ""] + [f"- {b}" for b in bad]
    out += ["", "## Self-assessments", "",
            "Quoted verbatim from each participant's journal (`employees/<id>/journal.md` "
            "and its archives in `employees/<id>/journal/`), the entries for this project's "
            "tasks. aoi adds nothing in anyone's name.", ""]
    participants = sorted({e for t in project for e in t.employees})
    if not participants:
        out.append("No employee ran a task of this project.")
    for emp_id in participants:
        entries = journal_for(view, emp_id, set(sig.tasks), sig.since)
        out.append(f"### {emp_id}" + (f" ({employees[emp_id].role})"
                                      if emp_id in employees else ""))
        out.append("")
        if not entries:
            out += ["No journal entry for this project's tasks.", ""]
            continue
        for entry in entries:
            if len(entry) > ENTRY_CHARS:
                entry = entry[:ENTRY_CHARS] + " [...]"
            out += ["> " + ln if ln.strip() else ">" for ln in entry.splitlines()]
            out.append("")
    out += ["## What people said", ""]
    if sig.said:
        out.append("Verbatim, from task feedback, answers and review decisions.")
        out.append("")
        for s in sig.said:
            quoted = _norm(s.text)
            out.append(f"- {s.who} ({s.kind}, `{s.task}`): \"{quoted}\"")
    else:
        out.append("No person wrote anything about this project (no review comment, answer "
                   "or decision by a person), so no person's view is recorded here.")
    out += ["", "## Proposed SOP changes", ""]
    if not sops:
        out.append("None: no review rejected work for a stated reason, and no error failed "
                   "runs of one role twice.")
    for change in sops:
        how = (f"on branch `{branch}`, waiting for {config.ceo}'s approval"
               if branch else "committed with this retrospective")
        out.append(f"- `{change.path}` ({'new' if change.new_file else 'changed'}, applies "
                   f"to role {change.role}), {how}:")
        out += [f"  - {i}" for i in change.items]
    return "\n".join(out).rstrip() + "\n"


def judge(sig: Signals, tasks: Mapping[str, Task], root: Task) -> tuple[list[str], list[str]]:
    """What went well and badly, each line derived from the signals by a fixed rule."""
    project = [t for t in sig.of_root(root.id) if t.kind == Kind.WORK.value]
    good: list[str] = []
    bad: list[str] = []
    reviewed = [t for t in project if t.first_review is not None]
    first_pass = [t for t in reviewed if t.first_review == "accept"]
    if reviewed:
        ids = ", ".join(f"`{t.id}`" for t in first_pass)
        if len(first_pass) == len(reviewed):
            good.append(f"All {len(reviewed)} reviewed tasks were accepted at their first "
                        "review.")
        elif first_pass:
            good.append(f"{len(first_pass)} of {len(reviewed)} reviewed tasks were accepted at "
                        f"their first review: {ids}.")
    ran = [t for t in project if t.runs]
    single = [t for t in ran if t.runs == 1 and t.failures == 0]
    if ran and len(single) == len(ran):
        good.append(f"Every task ran once: no failed run and no rework ({len(ran)} tasks).")
    elif single:
        good.append(f"{len(single)} of {len(ran)} tasks finished in a single run.")
    if ran and not any(t.failures for t in project):
        good.append("No run failed.")
    for t in project:
        if t.rejections:
            extra = t.runs - 1
            bad.append(f"`{t.id}` ({_md(t.title)[:60]}) was rejected {len(t.rejections)} "
                       f"time{'s' if len(t.rejections) > 1 else ''} in review"
                       + (f", which cost {extra} extra run{'s' if extra != 1 else ''}"
                          if extra > 0 else "") + ".")
        if t.failures:
            bad.append(f"`{t.id}` failed {t.failures} time{'s' if t.failures > 1 else ''} "
                       f"(last error: {t.errors[-1] if t.errors else '-'}).")
        if t.status == Status.CANCELLED.value:
            bad.append(f"`{t.id}` was cancelled.")
    escalations = [t for t in (tasks[tid] for tid in sorted(sig.tasks) if tid in tasks)
                   if t.kind is Kind.HUMAN and t.bookkeeping.decision_for]
    for h in escalations:
        bad.append(f"`{h.bookkeeping.decision_for}` was escalated to {h.assignee} "
                   f"(`{h.id}`).")
    costs = [t for t in sig.of_root(root.id) if t.usd > 0]
    total = sum(t.usd for t in costs)
    if len(costs) > 1 and total > 0:
        top = max(costs, key=lambda t: t.usd)
        if top.usd / total > 0.5:
            bad.append(f"`{top.id}` took {top.usd / total:.0%} of the project's cost "
                       f"(${top.usd:.4f} of ${total:.4f}).")
    if not good:
        good.append("Nothing measurable: no task was reviewed and passed, none ran cleanly "
                    "once.")
    if not bad:
        bad.append("Nothing measurable: no failed run, rejection, escalation or "
                   "cancellation.")
    return good, bad


# ------------------------------------------------------------------ daemon and CLI

def finish_root(txn: Txn, store: Store, tasks: Mapping[str, Task],
                employees: Mapping[str, Employee], config: OrgConfig, root_id: str,
                now: float, links: TaskLinks | None = None) -> Retro:
    """In the commit that finishes `root_id`: its retrospective, SOP changes included."""
    retro = build(txn.view, store, tasks, employees, config, root_id, finishing_at=now,
                  links=links)
    write_into(txn, store, retro, tasks, config)
    return retro


def commit_retro(store: Store, tasks: Mapping[str, Task],
                 employees: Mapping[str, Employee], config: OrgConfig, root_id: str,
                 actor: Actor, paths: Mapping[str, str]) -> tuple[str | None, Retro]:
    """`aoi retro ROOT --write`: (re)generate and commit it as `actor`."""
    from aoi_git.store.txn import commit

    holder: list[Retro] = []

    def fn(txn: Txn) -> None:
        retro = build(txn.view, store, tasks, employees, config, root_id)
        holder[:] = [retro]
        txn.subject = f"aoi: retro {root_id}: {tasks[root_id].title}"
        write_into(txn, store, retro, tasks, config)
        if all(txn.view.read(p) == d for p, d in txn.files.items()):
            txn.files.clear()  # nothing changed: no empty commit

    oid, _ = commit(store, fn, actor, paths)
    return oid, holder[0]

