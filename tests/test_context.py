"""Context assembly (aoi_git.org.context) and tool access by role (aoi_git.org.tool_access):
unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from aoi_git.domain.model import Backend, Employee, OrgConfig, Status, Talent, Task
from aoi_git.org.context import (
    CONTRACT,
    CUT,
    DEP_CHARS,
    JOURNAL_ENTRIES,
    assemble,
    assemble_from_view,
    parse_sop,
)
from aoi_git.org.organisation import load_org
from aoi_git.org.tool_access import allowed_tools, tool_access
from aoi_git.store.org_store import Store

ENG = Employee(id="eng-1", role="engineer", name="Ada", talent="software-engineer",
               backend=Backend(kind="claude"))


def sop(name: str, roles: list[str] | None = None, labels: list[str] | None = None,
        body: str = "") -> object:
    front = ""
    if roles is not None or labels is not None:
        front = f"---\ntitle: SOP {name}\napplies_to:\n  roles: {roles or []}\n" \
                f"  labels: {labels or []}\n---\n"
    return parse_sop(name, front + (body or f"Body of {name}.") + "\n")


def journal(n: int, size: int = 40) -> str:
    return "# Journal\n\nintro\n\n" + "".join(
        f"## 2025-01-{i:02d} t-{i}: task {i} (completed)\n\nlesson-{i} " + "x" * size + "\n\n"
        for i in range(1, n + 1))


def make(**over: object) -> str:
    parent = Task(id="root", title="Ship the login", description="GOAL-TEXT: users log in.")
    dep = Task(id="dep-1", title="Design the API", status=Status.FINISHED,
               result={"summary": "DEP-SUMMARY: REST endpoints", "branch": "aoi/dep-1"})
    task = Task(id="t-1", title="Build the login API", description="TASK-TEXT: build it",
                parent="root", depends_on=("dep-1",), labels=("backend",),
                feedback=({"from": "agent:rev", "kind": "review", "text": "FEEDBACK-TEXT"},))
    args: dict[str, object] = dict(
        task=task, employee=ENG, talent_prompt="ROLE-PROMPT: you write code.",
        principles="PRINCIPLES-TEXT: test first.",
        sops=[sop("by-role", roles=["engineer"]), sop("by-label", labels=["backend"]),
              sop("other", roles=["designer"], labels=["ui"]), sop("everyone")],
        journal=journal(3), tasks={"root": parent, "dep-1": dep, "t-1": task})
    args.update(over)
    return assemble(**args)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ sections

def test_every_section_is_present_in_order() -> None:
    text = make()
    order = ["# You are Ada (engineer)", "ROLE-PROMPT", "## Your working principles",
             "PRINCIPLES-TEXT", "## SOP: SOP by-role", "## SOP: SOP by-label",
             "## Recent lessons from your journal", "lesson-3", "## Your task: Build the login",
             "TASK-TEXT", "GOAL-TEXT", "DEP-SUMMARY", "aoi/dep-1", "FEEDBACK-TEXT",
             "## How to finish"]
    positions = [text.index(marker) for marker in order]
    assert positions == sorted(positions)
    assert "labels: backend" in text
    assert CUT not in text and "Left out" not in text


def test_sops_match_by_role_or_label_and_others_are_left_out() -> None:
    text = make()
    assert "Body of by-role." in text
    assert "Body of by-label." in text
    assert "Body of everyone." in text  # no applies_to: applies to all
    assert "Body of other." not in text
    # role matches come before label-only matches
    assert text.index("Body of by-role.") < text.index("Body of by-label.")


def test_sop_by_label_only_when_the_task_has_it() -> None:
    task = Task(id="t-2", title="Plain task")
    text = make(task=task, tasks={"t-2": task})
    assert "Body of by-label." not in text and "Body of by-role." in text


def test_journal_gives_the_most_recent_entries() -> None:
    text = make(journal=journal(JOURNAL_ENTRIES + 4))
    assert f"lesson-{JOURNAL_ENTRIES + 4} " in text
    assert "lesson-5 " in text and "lesson-4 " not in text and "intro" not in text


def test_missing_parent_dependency_and_empty_principles() -> None:
    task = Task(id="t-3", title="Alone", depends_on=("gone",))
    text = make(task=task, tasks={"t-3": task}, principles="  ")
    assert "## Your working principles" not in text
    assert "The goal this serves" not in text and "Results of the tasks" not in text


# ---------------------------------------------------------------------------- truncation

def big(**sizes: int) -> dict[str, object]:
    """Arguments whose sections have the given sizes (characters)."""
    parent = Task(id="root", title="Root", description="G" * sizes.get("parent", 100))
    deps = {f"d-{i}": Task(id=f"d-{i}", title=f"Dep {i}", status=Status.FINISHED,
                           result={"summary": f"dep{i}:" + "D" * sizes.get("dep", 100)})
            for i in range(3)}
    task = Task(id="t-1", title="The task", description="T" * sizes.get("task", 200),
                parent="root", depends_on=tuple(deps), labels=("backend",),
                feedback=("F" * sizes.get("feedback", 100),))
    return dict(
        task=task, employee=ENG, talent_prompt="R" * sizes.get("role", 2000),
        principles="P" * sizes.get("principles", 2000),
        sops=[sop("a-role", roles=["engineer"], body="S" * sizes.get("sop", 1000)),
              sop("b-label", labels=["backend"], body="L" * sizes.get("sop", 1000))],
        journal=journal(6, size=sizes.get("lesson", 1000)),
        tasks={"root": parent, "t-1": task, **deps})


def test_lessons_go_first_oldest_first() -> None:
    args = big()
    full = assemble(**args)  # type: ignore[arg-type]
    text = assemble(**args, max_chars=len(full) - 1500)  # type: ignore[arg-type]
    assert "lesson-1 " not in text and "lesson-2 " not in text and "lesson-6 " in text
    assert "SSSS" in text and "LLLL" in text and CUT not in text
    assert "2 journal entries" in text


def test_then_dependencies_then_label_sops_then_role_sops() -> None:
    args = big(dep=3000)
    full = assemble(**args)  # type: ignore[arg-type]
    lessons = 6 * 1100
    # room for everything but the lessons and part of the dependency results
    text = assemble(**args, max_chars=len(full) - lessons - 3000)  # type: ignore[arg-type]
    assert "lesson-" not in text
    assert CUT in text and "D" * (DEP_CHARS + 10) not in text and "dep0:" in text
    assert "SSSS" in text and "LLLL" in text
    text = assemble(**args, max_chars=len(full) - lessons - 3 * 3000 - 500)  # type: ignore[arg-type]
    assert "LLLL" not in text and "SSSS" in text  # the label-only SOP goes before
    assert "PPPP" in text and "RRRR" in text


def test_parent_then_principles_then_role_prompt_are_cut_last() -> None:
    args = big(parent=3000)
    tight = assemble(**args, max_chars=3500)  # type: ignore[arg-type]
    assert "lesson-" not in tight and "SSSS" not in tight and "dep0:" not in tight
    assert "GGGG" not in tight  # the parent's description went ...
    assert "## The goal this serves (parent root): Root" in tight  # ... its heading stays
    mid = assemble(**args, max_chars=5000)  # type: ignore[arg-type]
    assert "PPPP" in mid and "RRRR" in mid and "GGGG" not in mid
    assert len(tight) <= 3500 and len(mid) <= 5000


def test_task_feedback_and_contract_are_never_cut() -> None:
    args = big(task=5000, feedback=3000)
    text = assemble(**args, max_chars=1000)  # type: ignore[arg-type]
    assert "T" * 5000 in text and "F" * 3000 in text and CONTRACT in text
    assert "RRRR" not in text and "PPPP" not in text


@pytest.mark.parametrize("limit", [2500, 4000, 6000, 9000, 12000, 16000, 24000])
def test_size_bound_is_respected(limit: int) -> None:
    text = assemble(**big(), max_chars=limit)  # type: ignore[arg-type]
    assert len(text) <= limit
    assert "T" * 200 in text and "F" * 100 in text


def test_from_view_reads_the_org(org_dir: Path) -> None:
    store = Store(org_dir)
    org = load_org(store)
    hr = org.employees["hr"]
    view = store.head()
    names = store.list_dir("sops", view)
    task = Task(id="t-9", title="Review eng-1", labels=("release",))
    text = assemble_from_view(view, task, hr, {"t-9": task}, names)
    assert "# You are" in text and "hiring" in text.lower()  # the hr talent's prompt
    assert "Working principles" in text
    assert "Definition of done" in text  # applies to label release
    plain = Task(id="t-8", title="Plain")
    assert "Definition of done" not in assemble_from_view(view, plain, hr, {"t-8": plain},
                                                          names)


# ---------------------------------------------------------------------------- tool access

CONFIG = OrgConfig(base_tools=("Read", "Glob", "Grep"),
                   gated_tools={"Write": ("engineer",), "Bash": ("engineer", "qa"),
                                "WebFetch": ("*",)})
TALENT = Talent(id="figma-designer", role="designer",
                tools=("Read", "Write", "mcp__figma__export"))


@pytest.mark.parametrize(
    ("role", "talent", "profile_tools", "allowed", "denied"),
    [
        # base tools for everyone, whether asked for or not
        ("designer", None, (), ["Read", "Glob", "Grep"], []),
        # gated: only the roles aoi.yaml lists
        ("engineer", None, ("Write", "Bash"), ["Read", "Glob", "Grep", "Write", "Bash"], []),
        ("designer", None, ("Write", "Bash"), ["Read", "Glob", "Grep"], ["Write", "Bash"]),
        ("qa", None, ("Write", "Bash(pytest:*)"), ["Read", "Glob", "Grep", "Bash(pytest:*)"],
         ["Write"]),
        ("anyone", None, ("WebFetch",), ["Read", "Glob", "Grep", "WebFetch"], []),
        # a talent's own tool: only for holders of that talent
        ("designer", TALENT, (), ["Read", "Glob", "Grep", "mcp__figma__export"], ["Write"]),
        ("designer", None, ("mcp__figma__export",), ["Read", "Glob", "Grep"],
         ["mcp__figma__export"]),
        ("engineer", TALENT, ("Write", "mcp__figma__export"),
         ["Read", "Glob", "Grep", "Write", "mcp__figma__export"], []),
    ],
)
def test_tool_gating(role: str, talent: Talent | None, profile_tools: tuple[str, ...],
                     allowed: list[str], denied: list[str]) -> None:
    emp = Employee(id="e-1", role=role, talent=talent.id if talent else None,
                   tools=profile_tools)
    access = tool_access(emp, CONFIG, talent)
    assert list(access.allowed) == allowed
    assert sorted(access.denied) == sorted(denied)
    assert allowed_tools(emp, CONFIG, talent) == allowed


def test_profile_tools_take_precedence_over_the_talents() -> None:
    emp = Employee(id="e-1", role="engineer", talent="figma-designer", tools=("Read",))
    assert allowed_tools(emp, CONFIG, TALENT) == ["Read", "Glob", "Grep"]
