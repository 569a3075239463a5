"""Context assembly: what an agent is told before it starts a task.

Sections, in order: the talent's role prompt, the employee's working principles, the SOPs
that apply (by role or by the task's labels), recent lessons from the journal, the task,
its parent's goal, its dependencies' results, and its feedback.

Bounded at `MAX_CHARS`. Truncation rule: the task, its feedback and the contract are
never cut; the other sections are cut in this order until the whole fits: journal
lessons (oldest first), dependency results (each to its first 1,500 characters), SOPs
(those matching only by label go first), principles, and last the role prompt (tail cut).
Each cut is marked in the text, so an agent knows something was left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aoi_git import yamlio
from aoi_git.model import Employee, Task
from aoi_git.store import HeadView

MAX_CHARS = 24_000
JOURNAL_ENTRIES = 8
CUT = "\n[... cut to fit the context budget]"

CONTRACT = """## How to finish
Write your result as JSON to the file named by $AOI_RESULT_FILE (claude employees: call the
`report_result` tool instead):
{"outcome": "completed | failed | blocked", "summary": "what was done",
 "subtasks": [{"key": "a", "title": "...", "assignee": "role:engineer", "depends_on": []}],
 "question": "for blocked: what a person must answer",
 "review": {"decision": "accept | reject", "feedback": "..."},
 "lessons": ["what you would do differently next time"]}
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


def journal_entries(text: str) -> list[str]:
    """Entries of a journal: blocks starting with a `## ` heading."""
    entries: list[str] = []
    for block in ("\n" + text).split("\n## ")[1:]:
        entries.append("## " + block.strip())
    return entries


def _task_section(task: Task) -> str:
    lines = [f"## Your task: {task.title}", f"id: {task.id}  kind: {task.kind.value}"]
    if task.labels:
        lines.append(f"labels: {', '.join(task.labels)}")
    if task.description:
        lines += ["", task.description.strip()]
    if task.question:
        lines += ["", "### Question", task.question]
    return "\n".join(lines)


def _feedback_section(task: Task) -> str:
    if not task.feedback:
        return ""
    lines = ["## Feedback on earlier attempts (address every point)"]
    for fb in task.feedback:
        if isinstance(fb, Mapping):
            lines.append(f"- [{fb.get('kind', 'note')} from {fb.get('from', '?')}] {fb.get('text')}")
        else:
            lines.append(f"- {fb}")
    return "\n".join(lines)


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
) -> str:
    """The context text for one run of `task` by `employee` (see the module doc)."""
    role_part = f"# You are {employee.name or employee.id} ({employee.role})\n\n{talent_prompt.strip()}"
    principles_part = f"## Your working principles\n\n{principles.strip()}" if principles.strip() else ""
    matching = []
    for sop in sops:
        ok, by_role = sop.applies(employee.role, task.labels)
        if ok:
            matching.append((by_role, sop))
    matching.sort(key=lambda p: (not p[0], p[1].name))
    sop_parts = [f"## SOP: {s.title}\n\n{s.body}" for _, s in matching]
    lessons = journal_entries(journal)[-JOURNAL_ENTRIES:]
    parent = tasks.get(task.parent) if task.parent else None
    parent_part = ""
    if parent is not None:
        parent_part = f"## The goal this serves (parent {parent.id}): {parent.title}\n\n" \
                      f"{parent.description.strip()}"
    dep_parts = []
    for dep_id in task.depends_on:
        dep = tasks.get(dep_id)
        if dep is None:
            continue
        summary = (dep.result or {}).get("summary") or "(no summary)"
        branch = (dep.result or {}).get("branch")
        dep_parts.append(f"### {dep.id}: {dep.title} [{dep.status.value}]\n{summary}"
                         + (f"\n(its work is merged into your base from {branch})" if branch else ""))
    fixed = [_task_section(task), _feedback_section(task), CONTRACT]

    def render() -> str:
        parts = [role_part, principles_part, *sop_parts]
        if lessons:
            parts.append("## Recent lessons from your journal\n\n" + "\n\n".join(lessons))
        parts.append(fixed[0])
        if parent_part:
            parts.append(parent_part)
        if dep_parts:
            parts.append("## Results of the tasks this depends on\n\n" + "\n\n".join(dep_parts))
        parts += fixed[1:]
        return "\n\n".join(p for p in parts if p) + "\n"

    text = render()
    while len(text) > max_chars and lessons:
        lessons.pop(0)
        text = render()
    if len(text) > max_chars:
        dep_parts = [d if len(d) <= 1500 else d[:1500] + CUT for d in dep_parts]
        text = render()
    while len(text) > max_chars and sop_parts:
        sop_parts.pop()  # label-only matches were sorted last
        text = render()
    if len(text) > max_chars and principles_part:
        room = max(200, len(principles_part) - (len(text) - max_chars))
        principles_part = principles_part[:room] + CUT
        text = render()
    if len(text) > max_chars:
        room = max(200, len(role_part) - (len(text) - max_chars))
        role_part = role_part[:room] + CUT
        text = render()
    return text


def assemble_from_view(view: HeadView, task: Task, employee: Employee,
                       tasks: Mapping[str, Task], sop_names: list[str]) -> str:
    talent_prompt = ""
    if employee.talent:
        talent_prompt = (view.read(f"talents/{employee.talent}/prompt.md") or b"").decode(
            "utf-8", "replace")
    principles = (view.read(f"employees/{employee.id}/principles.md") or b"").decode(
        "utf-8", "replace")
    journal = (view.read(f"employees/{employee.id}/journal.md") or b"").decode(
        "utf-8", "replace")
    return assemble(task=task, employee=employee, talent_prompt=talent_prompt,
                    principles=principles, sops=load_sops(view, sop_names), journal=journal,
                    tasks=tasks)
