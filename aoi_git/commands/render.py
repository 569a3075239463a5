"""Plain-text renderings shared by commands: task lines, trees, graphs."""

from __future__ import annotations

from collections.abc import Mapping

from aoi_git.domain.graph import children, oldest_first
from aoi_git.domain.model import Task
from aoi_git.domain.task_rows import TaskRow


def assignee_text(t: Task) -> str:
    """Who has the task: its assignee, and for a `role:` one the employee it went to
    (`mkt-1 (role:marketing)`); `-` for nobody yet."""
    who = t.assignee or "-"
    routed = t.bookkeeping.routed_to
    return f"{routed} ({who})" if routed and routed != who else who


def cost_text(cost: Mapping[str, float]) -> str:
    """A task's cost as a person reads it: `$0.0123 · 1,200 in + 340 out tokens · 4.2 s`."""
    parts = []
    usd = float(cost.get("usd", 0.0))
    tokens_in, tokens_out = int(cost.get("input_tokens", 0)), int(cost.get("output_tokens", 0))
    if usd:
        parts.append(f"${usd:.4f}")
    if tokens_in or tokens_out:
        parts.append(f"{tokens_in:,} in + {tokens_out:,} out tokens")
    seconds = float(cost.get("seconds", 0.0))
    if seconds or not parts:
        parts.append(f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min")
    return " · ".join(parts)


def task_line(t: Task) -> str:
    return f"{t.id}  {t.status.value:<10}  {assignee_text(t):<14}  {t.title}"


def row_line(r: TaskRow) -> str:
    """`task_line` of a task's compact row (the same text)."""
    who = r.assignee or "-"
    shown = f"{r.routed_to} ({who})" if r.routed_to and r.routed_to != who else who
    return f"{r.id}  {r.status:<10}  {shown:<14}  {r.title}"


def tree_lines(tasks: Mapping[str, Task], roots: list[str] | None = None) -> list[str]:
    kids = {k: oldest_first(tasks, v) for k, v in children(tasks).items()}
    if roots is None:
        roots = oldest_first(
            tasks, (t.id for t in tasks.values() if not t.parent or t.parent not in tasks))
    out: list[str] = []
    seen: set[str] = set()

    def walk(tid: str, depth: int) -> None:
        if tid in seen:
            return
        seen.add(tid)
        t = tasks[tid]
        deps = f"  (after {', '.join(t.depends_on)})" if t.depends_on else ""
        who = f" @{assignee_text(t)}" if t.assignee else ""
        parent = tasks.get(t.parent) if t.parent else None
        mark = ", superseded" if parent is not None \
            and t.id in parent.bookkeeping.superseded else ""
        out.append(f"{'  ' * depth}{t.id} [{t.status.value}{mark}]{who} {t.title}{deps}")
        for k in kids.get(tid, []):
            walk(k, depth + 1)

    for r in roots:
        walk(r, 0)
    return out


def _label(t: Task) -> str:
    return f"{t.id}: {t.title} [{t.status.value}]".replace('"', "'")


def mermaid(tasks: Mapping[str, Task]) -> str:
    lines = ["flowchart TD"]
    for t in sorted(tasks.values(), key=lambda t: t.id):
        lines.append(f'  {t.id.replace("-", "_")}["{_label(t)}"]')
    for t in sorted(tasks.values(), key=lambda t: t.id):
        node = t.id.replace("-", "_")
        if t.parent and t.parent in tasks:
            lines.append(f"  {t.parent.replace('-', '_')} --> {node}")
        for d in t.depends_on:
            lines.append(f"  {d.replace('-', '_')} -.-> {node}")
    return "\n".join(lines) + "\n"


def dot(tasks: Mapping[str, Task]) -> str:
    lines = ["digraph aoi {", "  rankdir=TB;"]
    for t in sorted(tasks.values(), key=lambda t: t.id):
        lines.append(f'  "{t.id}" [label="{_label(t)}"];')
    for t in sorted(tasks.values(), key=lambda t: t.id):
        if t.parent and t.parent in tasks:
            lines.append(f'  "{t.parent}" -> "{t.id}";')
        for d in t.depends_on:
            lines.append(f'  "{d}" -> "{t.id}" [style=dashed];')
    lines.append("}")
    return "\n".join(lines) + "\n"
