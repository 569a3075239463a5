"""Context assembly: what an agent is told before it starts a task.

Sections, in order: the talent's role prompt, the employee's working principles, the SOPs
that apply (by role or by the task's labels), recent lessons from the journal, the task,
the plan it has when it was decomposed before (`replanning.plan_section`), how similar
past plans went (for a root: `plan_history`, read from the retrospectives), its parent's
goal, its dependencies' results, and its feedback.

SOP matching: an SOP applies when its front matter `applies_to.roles` lists the
employee's role or `applies_to.labels` shares a label with the task; an SOP without
`applies_to` applies to everyone. Role matches are listed before label-only matches.
Recent lessons are the last `JOURNAL_ENTRIES` entries (`## ` blocks) of `journal.md`.

A run that continues a stopped one (resumed after a pause or a preemption, or handed
over to a new assignee) is told so right after the task, as part of it.

Bounded at `max_chars` (default `MAX_CHARS`). Truncation rule: the task, its plan so far,
its feedback and the contract (how to finish) are never cut. Until the whole fits, the
other sections give way in this order:

0. similar past plans;
1. journal lessons, oldest first (whole entries);
2. dependency results, each cut to its first `DEP_CHARS` characters, then dropped from
   the last one up;
3. SOPs, whole, label-only matches first, then role matches (last listed first);
4. the parent's goal: its description is cut from the end (its heading stays);
5. the principles, cut from the end;
6. the role prompt, cut from the end.

Cuts are marked `[... cut to fit the context budget]` and what was dropped whole is
counted in a closing note, so an agent knows something was left out. The result is at
most `max_chars` long unless the three never-cut parts alone are longer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aoi_git.domain.model import Employee, Kind, Task
from aoi_git.evolution import plan_history
from aoi_git.evolution.journal import journal_path, last_journal_entries
from aoi_git.org import replanning
from aoi_git.store import yamlio
from aoi_git.store.head_view import HeadView

MAX_CHARS = 24_000
JOURNAL_ENTRIES = 8
DEP_CHARS = 1_500
CUT = "\n[... cut to fit the context budget]"

CONTRACT = """## How to finish
Write your result as JSON to the file named by $AOI_RESULT_FILE (claude employees: call the
`report_result` tool instead):
{"outcome": "completed | failed | blocked", "summary": "what was done",
 "subtasks": [{"key": "a", "title": "...", "assignee": "role:engineer", "depends_on": []}],
 "question": "for blocked: what a person must answer",
 "plans": [{"title": "...", "summary": "...", "subtasks": [...]}],
 "keep": ["t-..."], "cancel": ["t-..."],
 "review": {"decision": "accept | reject", "feedback": "..."},
 "choice": {"plan": 1, "reason": "for a choice among plans: which and why"},
 "lessons": ["what you would do differently next time"]}
`plans` offers alternative plans (instead of `subtasks`) for your reviewer to choose among;
re-planning, `keep`/`cancel` name your existing subtasks and `subtasks` only what to add.
Change files only in your working directory (your branch). Never edit tasks/, employees/,
talents/, sops/ or aoi.yaml: org state changes only through this result."""


@dataclass(frozen=True)
class Sop:
    name: str
    title: str
    roles: tuple[str, ...]
    labels: tuple[str, ...]
    body: str

    def applies(self, role: str, labels: tuple[str, ...]) -> tuple[bool, bool]:
        """(applies at all, applies by role)."""
        if not self.roles and not self.labels:
            return True, True
        by_role = role in self.roles
        return by_role or bool(set(labels) & set(self.labels)), by_role


def parse_sop(name: str, text: str) -> Sop:
    meta: Mapping[str, object] = {}
    body = text
    if text.startswith("---"):
        parts = text.split("---", 2)
        if len(parts) == 3:
            try:
                loaded = yamlio.load(parts[1])
                meta = loaded if isinstance(loaded, dict) else {}
            except yamlio.YamlError:
                meta = {}
            body = parts[2].lstrip("\n")
    applies = meta.get("applies_to") if isinstance(meta.get("applies_to"), dict) else {}
    assert isinstance(applies, dict)
    return Sop(
        name=name,
        title=str(meta.get("title") or name),
        roles=tuple(str(r) for r in applies.get("roles") or ()),
        labels=tuple(str(x) for x in applies.get("labels") or ()),
        body=body.strip(),
    )


def load_sops(view: HeadView, names: list[str]) -> list[Sop]:
    out = []
    for name in sorted(names):
        if not name.endswith(".md") or name.lower() == "readme.md":
            continue
        data = view.read(f"sops/{name}")
        if data is not None:
            out.append(parse_sop(name[:-3], data.decode("utf-8", "replace")))
    return out


def _task_section(task: Task) -> str:
    lines = [f"## Your task: {task.title}", f"id: {task.id}  kind: {task.kind.value}"]
    if task.labels:
        lines.append(f"labels: {', '.join(task.labels)}")
    if task.description:
        lines += ["", task.description.strip()]
    if task.question:
        lines += ["", "### Question", task.question]
    return "\n".join(lines)


def _continuation_section(task: Task) -> str:
    """A run that goes on from a stopped one: resumed where it was, or handed over."""
    book = task.bookkeeping
    if book.handoff_from:
        notes = [str(fb.get("text")) for fb in task.feedback
                 if isinstance(fb, Mapping) and fb.get("kind") == "handoff"]
        return "\n".join([
            f"## Handed over to you from {book.handoff_from}",
            f"{book.handoff_from} started this task and was stopped before finishing. Its "
            f"work so far is committed on the branch aoi/{task.id}, and your working "
            "directory starts from it: read what is there, keep what is good and finish "
            "the task.", *(f"- {n}" for n in notes[-2:])])
    if book.resuming:
        return ("## You are resuming this task\n"
                "Your run of this task was stopped before you finished (paused or preempted "
                "by a task that outranked it). Your working directory is as you left it "
                "(what you had written is also committed on your branch): check where you "
                "were and go on from there; do not start over. ($AOI_RESUMING is 1.)")
    return ""


def _feedback_section(task: Task) -> str:
    if not task.feedback:
        return ""
    lines = ["## Feedback on earlier attempts (address every point)"]
    for fb in task.feedback:
        if isinstance(fb, Mapping):
            who = f"{fb.get('kind', 'note')} from {fb.get('from', '?')}"
            lines.append(f"- [{who}] {fb.get('text')}")
        else:
            lines.append(f"- {fb}")
    return "\n".join(lines)


def _cut(text: str, keep: int) -> str:
    """`text` cut to at most `keep` characters (tail first, marked); "" if too little room."""
    if len(text) <= keep:
        return text
    if keep < len(CUT) + 40:
        return ""
    return text[: keep - len(CUT)].rstrip() + CUT


def _plural(n: int, word: str) -> str:
    plural = word[:-1] + "ies" if word.endswith("y") else word + "s"
    return f"{n} {word if n == 1 else plural}"


def assemble(
    *,
    task: Task,
    employee: Employee,
    talent_prompt: str,
    principles: str,
    sops: list[Sop],
    journal: str,
    tasks: Mapping[str, Task],
    max_chars: int = MAX_CHARS,
    plan_part: str = "",
    past_plans: str = "",
) -> str:
    """The context text for one run of `task` by `employee` (see the module doc)."""
    role_part = f"# You are {employee.name or employee.id} ({employee.role})\n\n" \
                f"{talent_prompt.strip()}".rstrip()
    principles_part = f"## Your working principles\n\n{principles.strip()}" \
        if principles.strip() else ""
    matching = []
    for sop in sops:
        ok, by_role = sop.applies(employee.role, task.labels)
        if ok:
            matching.append((by_role, sop))
    matching.sort(key=lambda p: (not p[0], p[1].name))  # role matches first
    sop_parts = [f"## SOP: {s.title}\n\n{s.body}" for _, s in matching]
    lessons = last_journal_entries(journal, JOURNAL_ENTRIES)
    parent = tasks.get(task.parent) if task.parent else None
    parent_head = parent_part = ""
    if parent is not None:
        parent_head = f"## The goal this serves (parent {parent.id}): {parent.title}"
        parent_part = f"{parent_head}\n\n{parent.description.strip()}".rstrip()
    dep_parts = []
    for dep_id in task.depends_on:
        dep = tasks.get(dep_id)
        if dep is None:
            continue
        summary = (dep.result or {}).get("summary") or "(no summary)"
        branch = (dep.result or {}).get("branch")
        dep_parts.append(f"### {dep.id}: {dep.title} [{dep.status.value}]\n{summary}"
                         + (f"\n(its work is merged into your base from {branch})"
                            if branch else ""))
    task_part, feedback_part = _task_section(task), _feedback_section(task)
    continuation = _continuation_section(task)
    if continuation:
        task_part = f"{task_part}\n\n{continuation}"
    left_out = {"journal entry": 0, "dependency result": 0, "SOP": 0}

    def render() -> str:
        parts = [role_part, principles_part, *sop_parts]
        if lessons:
            parts.append("## Recent lessons from your journal\n\n" + "\n\n".join(lessons))
        parts += [task_part, plan_part, past_plans, parent_part]
        if dep_parts:
            parts.append("## Results of the tasks this depends on\n\n" + "\n\n".join(dep_parts))
        parts += [feedback_part, CONTRACT]
        gone = [_plural(n, w) for w, n in left_out.items() if n]
        if gone:
            parts.append(f"[Left out to fit the context budget: {', '.join(gone)}.]")
        return "\n\n".join(p for p in parts if p) + "\n"

    def over() -> int:
        return len(render()) - max_chars

    # 0. similar past plans
    if over() > 0:
        past_plans = ""
    # 1. journal lessons, oldest first
    while over() > 0 and lessons:
        lessons.pop(0)
        left_out["journal entry"] += 1
    # 2. dependency results: each to its first DEP_CHARS, then the last ones dropped
    if over() > 0:
        dep_parts = [_cut(d, DEP_CHARS) for d in dep_parts]
    while over() > 0 and dep_parts:
        dep_parts.pop()
        left_out["dependency result"] += 1
    # 3. SOPs: label-only matches go first (they were sorted last), then role matches
    while over() > 0 and sop_parts:
        sop_parts.pop()
        left_out["SOP"] += 1
    # 4-6. the parent's goal, the principles, the role prompt: tail cut, marked
    if over() > 0 and parent_part:
        parent_part = _cut(parent_part, len(parent_part) - over()) or parent_head
    if over() > 0 and principles_part:
        principles_part = _cut(principles_part, len(principles_part) - over())
    if over() > 0:
        role_part = _cut(role_part, len(role_part) - over())
    return render()


def assemble_from_view(view: HeadView, task: Task, employee: Employee,
                       tasks: Mapping[str, Task], sop_names: list[str]) -> str:
    talent_prompt = ""
    if employee.talent:
        talent_prompt = (view.read(f"talents/{employee.talent}/prompt.md") or b"").decode(
            "utf-8", "replace")
    principles = (view.read(f"employees/{employee.id}/principles.md") or b"").decode(
        "utf-8", "replace")
    journal = (view.read(journal_path(employee.id)) or b"").decode(
        "utf-8", "replace")
    past = ""
    if task.parent is None and task.kind is Kind.WORK:  # a root: how similar plans went
        past = plan_history.section(plan_history.similar(plan_history.read_records(view),
                                                         task))
    return assemble(task=task, employee=employee, talent_prompt=talent_prompt,
                    principles=principles, sops=load_sops(view, sop_names), journal=journal,
                    tasks=tasks, plan_part=replanning.plan_section(task, tasks),
                    past_plans=past)
