"""The organisation loop through the claude backend (issue 4, item 7): the real
claude-agent-sdk and its bundled CLI, run by the daemon, talking to a scripted Messages
API on 127.0.0.1.

The scripted server answers every model call with `Brain`, which reads the request: the
system prompt is the assembled context, so it says which employee works on which task
(`# You are <name> (<role>)`, `## Your task: <title>`, `id: <id>  kind: <kind>`), and the
number of assistant messages says how far that conversation is. So the answers do not
depend on the order in which the daemon schedules the runs.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_org_loop import LoopOrg, commit_of

from aoi_git.domain.model import Kind, Status
from aoi_git.testing.fake_messages_api import (
    ScriptedMessagesAPI,
    Text,
    ToolUse,
    Turn,
    offline_env,
    system_text,
)

pytestmark = pytest.mark.timeout(150)

S = Status
MODEL = "claude-sonnet-4-5"
REJECTION = "hello.txt must greet loudly: end it with an exclamation mark (marker-rv1)"
ANSWER = "Use port 8443 (marker-ans)"


@dataclass
class Call:
    employee: str
    role: str
    task: str
    title: str
    kind: str
    turn: int  # assistant messages before this call
    system: str
    user: str  # the first user message (the task prompt)


def parse(request: dict[str, Any]) -> Call:
    system = system_text(request)
    who = re.search(r"^# You are (\S+) \(([^)]*)\)", system, re.M)
    task = re.search(r"^id: (\S+)\s+kind: (\S+)", system, re.M)
    title = re.search(r"^## Your task: (.*)$", system, re.M)
    messages = request.get("messages") or []
    turn = sum(1 for m in messages if m.get("role") == "assistant")
    user = json.dumps(messages[0]) if messages else ""
    return Call(who.group(1) if who else "?", who.group(2) if who else "?",
                task.group(1) if task else "?", title.group(1) if title else "?",
                task.group(2) if task else "?", turn, system, user)


def report(summary: str) -> ToolUse:
    return ToolUse("mcp__aoi__report_result", {"outcome": "completed", "summary": summary})


class Brain:
    """Every employee's model, answering from what the request shows."""

    def __init__(self, org_root: Path) -> None:
        self.org_root = org_root
        self.lock = threading.Lock()
        self.calls: list[Call] = []
        self.reviews: dict[str, list[str]] = {}  # subject title -> review task ids, in order
        self.seen_in_cwd: dict[str, list[str]] = {}  # task id -> files at its first call

    def worktree(self, task_id: str) -> Path:
        return self.org_root / ".aoi" / "worktrees" / task_id

    def __call__(self, request: dict[str, Any]) -> Turn:
        c = parse(request)
        with self.lock:
            self.calls.append(c)
        if c.kind == "review":
            return self.review(c)
        if c.role == "coo":
            return self.plan(c)
        if c.role == "engineer":
            return self.engineer(c)
        if c.role == "analyst":
            return self.analyst(c)
        return Text("nothing to do")

    def plan(self, c: Call) -> Turn:
        if c.turn == 0:
            return ToolUse("mcp__aoi__create_subtasks", {"subtasks": [
                {"key": "hello", "title": "Write hello.txt",
                 "description": "Create hello.txt with a greeting.", "assignee": "eng-1"},
                {"key": "world", "title": "Write world.txt",
                 "description": "Create world.txt next to hello.txt.",
                 "assignee": "role:engineer", "depends_on": ["hello"]},
            ]})
        if c.turn == 1:
            return report("Split the kit into hello.txt and world.txt")
        return Text("Planned.")

    def review(self, c: Call) -> Turn:
        subject = c.title.removeprefix("Review: ")
        with self.lock:
            ids = self.reviews.setdefault(subject, [])
            if c.task not in ids:
                ids.append(c.task)
            first = ids.index(c.task) == 0
        reject = subject == "Write hello.txt" and first
        if c.turn == 0:
            if reject:
                return ToolUse("mcp__aoi__submit_review",
                               {"decision": "reject", "feedback": REJECTION})
            return ToolUse("mcp__aoi__submit_review",
                           {"decision": "accept", "feedback": "Looks right."})
        if c.turn == 1:
            return report(f"Reviewed {subject}: {'rejected' if reject else 'accepted'}")
        return Text("Reviewed.")

    def engineer(self, c: Call) -> Turn:
        name = "hello.txt" if "hello" in c.title else "world.txt"
        path = str(self.worktree(c.task) / name)
        rework = "marker-rv1" in c.system
        if c.turn == 0:
            wt = self.worktree(c.task)
            with self.lock:
                self.seen_in_cwd.setdefault(c.task, sorted(
                    str(p.relative_to(wt)) for p in wt.rglob("*.txt")))
        text = "hello!\n" if rework else ("hello\n" if name == "hello.txt" else "world\n")
        # Claude Code's Write refuses to overwrite a file it has not read: read it first
        steps: list[Turn] = [ToolUse("Read", {"file_path": path})] if rework else []
        steps += [ToolUse("Write", {"file_path": path, "content": text}),
                  report(f"Wrote {name}"), Text("Done.")]
        return steps[min(c.turn, len(steps) - 1)]

    def analyst(self, c: Call) -> Turn:
        answered = "marker-ans" in c.system
        if not answered:
            if c.turn == 0:
                return ToolUse("mcp__aoi__ask_human",
                               {"question": "Which port should the service listen on?"})
            return Text("Waiting for the answer.")
        if c.turn == 0:
            return ToolUse("Write", {"file_path": str(self.worktree(c.task) / "port.txt"),
                                     "content": "8443\n"})
        if c.turn == 1:
            return report("Configured port 8443 as answered")
        return Text("Done.")


def claude_employee(org: LoopOrg, eid: str, role: str, *, concurrency: int = 1) -> None:
    profile = {"id": eid, "name": eid, "role": role, "reports_to": "ceo", "status": "active",
               "backend": {"kind": "claude", "model": MODEL, "reflect": False},
               "capacity": {"concurrency": concurrency, "timeout_s": 90, "max_turns": 10},
               "tools": ["Read", "Write"]}
    folder = org.root / "employees" / eid
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "profile.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))


@pytest.fixture
def claude_org(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[
        tuple[LoopOrg, Brain, ScriptedMessagesAPI]]:
    org = LoopOrg(tmp_path)
    org.edit_config(lambda d: d["tools"]["gated"].update({"Write": ["coo", "engineer",
                                                                    "analyst"]}))
    brain = Brain(org.root)
    home = tmp_path / "claude-home"
    home.mkdir()
    with ScriptedMessagesAPI([brain] * 400) as api:
        for k, v in offline_env(api.base_url, str(home)).items():
            monkeypatch.setenv(k, v)  # the daemon passes its environment to the runner
        yield org, brain, api


def stderr_of(org: LoopOrg, tid: str) -> str:
    path = org.root / ".aoi" / "runs" / tid / "stderr.log"
    return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def test_coo_decomposes_engineers_write_reviewer_rejects_once(
        claude_org: tuple[LoopOrg, Brain, ScriptedMessagesAPI]) -> None:
    org, brain, api = claude_org
    claude_employee(org, "coo", "coo", concurrency=2)
    claude_employee(org, "eng-1", "engineer")
    claude_employee(org, "eng-2", "engineer")
    org.commit()
    org.new("kit", "Build the greeting kit", assignee="coo", reviewer="none",
            description="hello.txt and world.txt")
    org.run()
    tasks = org.tasks()
    kit = tasks["kit"]
    hello, world = org.by_title("Write hello.txt"), org.by_title("Write world.txt")
    assert kit.status is S.FINISHED, (kit.feedback_texts(), stderr_of(org, "kit"))
    # the COO decomposed through mcp__aoi__create_subtasks: one commit, its own
    assert kit.bookkeeping.subtasks == (hello.id, world.id)
    assert hello.assignee == "eng-1" and world.assignee == "role:engineer"
    assert world.depends_on == (hello.id,) and hello.parent == world.parent == "kit"
    body = commit_of(org, "kit", "processing->waiting")
    assert "Aoi-Actor: agent:coo" in body and f"Aoi-Task: {world.id}" in body
    # the engineers' Write calls produced real files, merged into the base
    assert org.in_base("hello.txt") == "hello!\n"
    assert org.in_base("world.txt") == "world\n"
    assert hello.status is world.status is S.FINISHED
    # world.txt depended on hello.txt: its worktree already held the merged hello.txt
    assert brain.seen_in_cwd[world.id] == ["hello.txt"]
    # the claude reviewer (the COO, the parent's assignee) rejected hello once, then accepted
    assert hello.review_rounds == 1 and world.review_rounds == 0
    assert any("marker-rv1" in x for x in hello.feedback_texts())
    assert len(brain.reviews["Write hello.txt"]) == 2
    assert len(brain.reviews["Write world.txt"]) == 1
    reviews = [t for t in tasks.values() if t.kind is Kind.REVIEW]
    assert {t.assignee for t in reviews} == {"coo"} and len(reviews) == 3
    first_review = next(c for c in brain.calls if c.kind == "review"
                        and c.task == brain.reviews["Write hello.txt"][0])
    assert "+hello" in first_review.user and "Wrote hello.txt" in first_review.user
    assert "Aoi-Actor: agent:coo" in commit_of(org, hello.id, "completed->pending")
    # the rework saw the feedback in its system prompt and in its task prompt
    hello_calls = [c for c in brain.calls if c.task == hello.id and c.turn == 0]
    assert len(hello_calls) == 2
    assert "marker-rv1" not in hello_calls[0].system
    assert "marker-rv1" in hello_calls[1].system and "marker-rv1" in hello_calls[1].user
    assert org.transitions(hello.id) == [
        "new->pending", "pending->processing", "processing->completed", "completed->pending",
        "pending->processing", "processing->completed", "completed->accepted",
        "accepted->finished"]
    # costs from the CLI's result reached the tasks and the commits
    assert hello.cost["usd"] > 0 and hello.cost["input_tokens"] >= 600
    story = org.ok("log", "kit")
    lines = story.splitlines()
    assert any("agent:coo" in ln and "processing->waiting" in ln for ln in lines)
    assert "marker-rv1" in story and "$" in story
    org.assert_story()


def test_an_agent_asks_a_person_and_resumes_after_aoi_answer(
        claude_org: tuple[LoopOrg, Brain, ScriptedMessagesAPI]) -> None:
    org, brain, api = claude_org
    claude_employee(org, "analyst", "analyst")
    org.commit()
    org.new("port", "Pick the port", assignee="analyst", reviewer="none",
            description="Decide the service's port and write it to port.txt.")
    org.run()
    t = org.task("port")
    assert t.status is S.BLOCKED, (t.feedback_texts(), stderr_of(org, "port"))
    (h,) = org.humans("port")
    assert h.assignee == "ceo" and h.question == "Which port should the service listen on?"
    assert "Pick the port" in h.description
    assert "Aoi-Actor: agent:analyst" in commit_of(org, "port", "processing->blocked")
    org.ok("answer", h.id, ANSWER)
    org.run()
    t = org.task("port")
    assert t.status is S.FINISHED, (t.feedback_texts(), stderr_of(org, "port"))
    assert org.in_base("port.txt") == "8443\n"
    resumed = [c for c in brain.calls if c.task == "port" and c.turn == 0]
    assert len(resumed) == 2
    assert "marker-ans" not in resumed[0].system
    assert ANSWER in resumed[1].system and ANSWER in resumed[1].user
    assert org.transitions("port") == [
        "new->pending", "pending->processing", "processing->blocked", "blocked->pending",
        "pending->processing", "processing->completed", "completed->accepted",
        "accepted->finished"]
    org.assert_story()
