"""A paused claude agent resumes its own session (issue 16, point 2): the real daemon
and CLI, the real claude-agent-sdk and its bundled CLI in the sandbox, against the
scripted Messages API on 127.0.0.1.

The model writes part 1, then its next answer is held back (the agent is busy) while a
person pauses the task; after `aoi task resume` the CLI is started on the same session:
the request it sends carries the first run's conversation, and the model finishes."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kit import AOI_BIN
from test_daemon import wait_for
from test_org_loop import LoopOrg
from test_scenarios_claude import claude_employee, stderr_of

from aoi_git.domain.model import Status
from aoi_git.runtime.backends.claude_runner import RESUME_PROMPT
from aoi_git.testing.fake_messages_api import (
    ScriptedMessagesAPI,
    Text,
    ToolUse,
    Turn,
    offline_env,
)

pytestmark = pytest.mark.timeout(180)
S = Status


class Writer:
    """The model of eng-1 on task `notes`."""

    def __init__(self, worktree: Path) -> None:
        self.worktree = worktree
        self.release = threading.Event()  # lets the held answer of the first run go
        self.holding = threading.Event()  # the first run waits for its second answer
        self.resumed: list[dict[str, Any]] = []  # the requests after the resume

    def __call__(self, request: dict[str, Any]) -> Turn:
        messages = request.get("messages") or []
        if RESUME_PROMPT[:40] in json.dumps(messages):
            self.resumed.append(request)
            sent = json.dumps([b for m in messages if m.get("role") == "assistant"
                               for b in (m.get("content") or []) if isinstance(b, dict)
                               and b.get("type") == "tool_use"])
            if "part2.txt" not in sent:
                return ToolUse("Write", {"file_path": str(self.worktree / "part2.txt"),
                                         "content": "part 2\n"})
            if "report_result" not in sent:
                return ToolUse("mcp__aoi__report_result",
                               {"outcome": "completed", "summary": "wrote both parts"})
            return Text("Done.")
        if not any(m.get("role") == "assistant" for m in messages):
            return ToolUse("Write", {"file_path": str(self.worktree / "part1.txt"),
                                     "content": "part 1\n"})
        self.holding.set()  # a slow answer: the agent is busy until it is paused
        self.release.wait(90)
        return Text("(too late)")


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[
        tuple[LoopOrg, Writer]]:
    org = LoopOrg(tmp_path)
    org.edit_config(lambda d: d["tools"]["gated"].update({"Write": ["engineer"]}))
    claude_employee(org, "eng-1", "engineer")
    org.commit()
    writer = Writer(org.root / ".aoi" / "worktrees" / "notes")
    home = tmp_path / "claude-home"
    home.mkdir()
    with ScriptedMessagesAPI([writer] * 50) as api:
        for k, v in offline_env(api.base_url, str(home)).items():
            monkeypatch.setenv(k, v)  # the daemon passes its environment to the runner
        yield org, writer
        writer.release.set()


def test_a_paused_claude_agent_resumes_its_own_session(setup: tuple[LoopOrg, Writer]) -> None:
    org, writer = setup
    org.new("notes", "Write the notes", assignee="eng-1", reviewer="none",
            description="part1.txt, then part2.txt")
    log = open(org.root.parent / "daemon.out", "wb")  # noqa: SIM115
    daemon = subprocess.Popen([str(AOI_BIN), "-C", str(org.root), "daemon"], stdout=log,
                              stderr=subprocess.STDOUT)
    log.close()
    try:
        assert writer.holding.wait(90), stderr_of(org, "notes")
        session = (org.root / ".aoi" / "runs" / "notes" / "session").read_text().strip()
        org.ok("task", "pause", "notes")
        wait_for(lambda: org.task("notes").bookkeeping.resuming, timeout=30,
                 what="the pause to settle")
        t = org.task("notes")
        assert t.status is S.SUSPENDED and t.bookkeeping.session == session
        assert t.cost["input_tokens"] >= 100  # what the stopped run noted it had spent
        assert (org.root / ".aoi" / "worktrees" / "notes" / "part1.txt").exists()
        org.ok("task", "resume", "notes")
        wait_for(lambda: org.task("notes").status is S.FINISHED, timeout=90,
                 what="the resumed task to finish")
    finally:
        daemon.terminate()
        daemon.wait(30)
    # the resumed run went on in the same conversation: its first request carries the
    # first run's Write of part1.txt and the task prompt it was given
    first = json.dumps(writer.resumed[0]["messages"])
    assert "part1.txt" in first and "# Task notes: Write the notes" in first
    assert org.in_base("part1.txt") == "part 1\n" and org.in_base("part2.txt") == "part 2\n"
    t = org.task("notes")
    assert t.attempts == 0 and t.bookkeeping.session is None
    assert org.transitions("notes")[:6] == [
        "new->pending", "pending->processing", "processing->suspended", "suspended->pending",
        "pending->processing", "processing->completed"]
