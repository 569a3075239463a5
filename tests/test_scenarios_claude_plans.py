"""Alternative plans and re-planning through the claude backend (issue 16, points 4 and
5): the real claude-agent-sdk and its bundled CLI, run by the daemon against the
scripted Messages API. The COO offers two plans with `propose_plans`, the reviewer
chooses with `choose_plan`, the engineers write the files, the reviewer rejects the
finished root once, and the COO's re-plan keeps the merged work (`revise_plan`) and
adds one subtask.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_org_loop import LoopOrg, commit_of
from test_scenarios_claude import Call, claude_employee, parse, report, stderr_of

from aoi_git.domain.model import Kind, Status
from aoi_git.testing.fake_messages_api import ScriptedMessagesAPI, Text, ToolUse, Turn, offline_env

pytestmark = pytest.mark.timeout(300)

S = Status
ROOT = "Build the greeting kit"
REJECT = "The kit needs a README.txt (marker-readme)"


def sub(key: str, title: str) -> dict[str, Any]:
    return {"key": key, "title": title, "assignee": "eng-1",
            "description": f"Create {title.split()[-1]}."}


class Brain:
    def __init__(self, org_root: Path) -> None:
        self.org_root = org_root
        self.lock = threading.Lock()
        self.calls: list[Call] = []
        self.root_reviews: list[str] = []

    def __call__(self, request: dict[str, Any]) -> Turn:
        c = parse(request)
        with self.lock:
            self.calls.append(c)
        if c.title.startswith("Choose a plan:"):
            steps: list[Turn] = [ToolUse("mcp__aoi__choose_plan",
                                         {"plan": 2, "reason": "two engineers, in parallel "
                                                               "(marker-choice)"}),
                                 report("Chose plan 2"), Text("Chosen.")]
            return steps[min(c.turn, 2)]
        if c.kind == "review":
            return self.review(c)
        if c.role == "coo":
            return self.plan(c)
        if c.role == "engineer":
            name = c.title.split()[-1]
            path = str(self.org_root / ".aoi" / "worktrees" / c.task / name)
            steps = [ToolUse("Write", {"file_path": path, "content": f"{name}\n"}),
                     report(f"Wrote {name}"), Text("Done.")]
            return steps[min(c.turn, 2)]
        return Text("nothing to do")

    def plan(self, c: Call) -> Turn:
        if "## Your plan so far" not in c.system:
            steps: list[Turn] = [ToolUse("mcp__aoi__propose_plans", {"plans": [
                {"title": "solo", "summary": "one engineer writes both files",
                 "subtasks": [sub("all", "Write hello.txt and world.txt")]},
                {"title": "split", "summary": "one file each",
                 "subtasks": [sub("hello", "Write hello.txt"),
                              sub("world", "Write world.txt")]},
            ]}), report("Two ways to build the kit"), Text("Planned.")]
            return steps[min(c.turn, 2)]
        merged = re.findall(r"^- (t-[a-z0-9]+) \[finished, merged\]", c.system, re.M)
        steps = [ToolUse("mcp__aoi__revise_plan", {"keep": merged}),
                 ToolUse("mcp__aoi__create_subtasks",
                         {"subtasks": [sub("readme", "Write README.txt")]}),
                 report("Kept the merged files, added the README"), Text("Re-planned.")]
        return steps[min(c.turn, 3)]

    def review(self, c: Call) -> Turn:
        subject = c.title.removeprefix("Review: ")
        reject = False
        if subject == ROOT:
            with self.lock:
                if c.task not in self.root_reviews:
                    self.root_reviews.append(c.task)
                reject = self.root_reviews.index(c.task) == 0
        verdict = {"decision": "reject", "feedback": REJECT} if reject else \
            {"decision": "accept", "feedback": "fine"}
        steps: list[Turn] = [ToolUse("mcp__aoi__submit_review", verdict),
                             report(f"Reviewed {subject}"), Text("Reviewed.")]
        return steps[min(c.turn, 2)]


@pytest.fixture
def claude_org(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[
        tuple[LoopOrg, Brain]]:
    org = LoopOrg(tmp_path)
    org.edit_config(lambda d: d["tools"]["gated"].update({"Write": ["coo", "engineer"]}))
    brain = Brain(org.root)
    home = tmp_path / "claude-home"
    home.mkdir()
    with ScriptedMessagesAPI([brain] * 400) as api:
        for k, v in offline_env(api.base_url, str(home)).items():
            monkeypatch.setenv(k, v)
        yield org, brain


def test_claude_planner_offers_plans_the_reviewer_chooses_and_a_replan_keeps_work(
        claude_org: tuple[LoopOrg, Brain]) -> None:
    org, brain = claude_org
    claude_employee(org, "coo", "coo")
    claude_employee(org, "eng-1", "engineer", concurrency=2)
    claude_employee(org, "rev", "reviewer")
    org.commit()
    org.new("kit", ROOT, assignee="coo", reviewer="rev", description="hello and world")
    org.run()
    kit = org.task("kit")
    assert kit.status is S.FINISHED, (kit.feedback_texts(), stderr_of(org, "kit"))
    # the reviewer chose plan 2 through choose_plan, in one commit with the subtasks
    (choice,) = [t for t in org.tasks().values() if t.bookkeeping.choice_for == "kit"]
    assert choice.kind is Kind.REVIEW and choice.assignee == "rev"
    assert kit.result is not None and kit.result["chosen"]["plan"] == 2
    assert kit.result["chosen"]["by"] == "agent:rev"
    assert "marker-choice" in kit.result["chosen"]["reason"]
    body = commit_of(org, choice.id, "processing->completed")
    assert "Aoi-Plan: kit 2" in body and "marker-choice" in body
    titles = sorted(t.title for t in org.tasks().values() if t.parent == "kit")
    assert titles == ["Write README.txt", "Write hello.txt", "Write world.txt"]
    hello, world = org.by_title("Write hello.txt"), org.by_title("Write world.txt")
    readme = org.by_title("Write README.txt")
    # the re-plan kept the merged work: each file was written by one run only
    for t in (hello, world):
        assert len([c for c in brain.calls if c.task == t.id and c.turn == 0]) == 1
    assert kit.bookkeeping.subtasks == (hello.id, world.id, readme.id)
    assert kit.bookkeeping.superseded == ()
    replan = [c for c in brain.calls if c.task == "kit" and c.turn == 0
              and c.kind == "work"][1]
    assert f"- {hello.id} [finished, merged] @eng-1 Write hello.txt" in replan.system
    assert "marker-readme" in replan.system
    for name in ("hello.txt", "world.txt", "README.txt"):
        assert org.in_base(name) == f"{name}\n"
    org.assert_story()
