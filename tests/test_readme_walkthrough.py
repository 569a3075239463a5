"""The README's walkthrough, verbatim, in a fresh folder (issue 16, point 6): the shell
block of its "Using it" section is read from README.md and run by bash, so the README
and this test cannot drift. The founding team and the hired talent run on the claude
backend (the real claude-agent-sdk and its CLI) against a scripted Messages API.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from kit import AOI_BIN, git

from aoi_git.domain.model import Kind, Status
from aoi_git.org.organisation import load_org
from aoi_git.store.org_store import Store
from aoi_git.testing.fake_messages_api import (
    ScriptedMessagesAPI,
    Text,
    ToolUse,
    Turn,
    offline_env,
    system_text,
)

pytestmark = pytest.mark.timeout(300)
S = Status
README = Path(__file__).resolve().parent.parent / "README.md"


def walkthrough() -> str:
    """The first ```sh block of the README's "Using it" section."""
    text = README.read_text()
    section = text[text.index("\n## Using it\n"):]
    found = re.search(r"```sh\n(.*?)```", section, re.S)
    assert found, "README.md: no sh block under 'Using it'"
    return found.group(1)


class Brain:
    """Each employee's model: the marketing writer and the CSO write a file and report;
    anything else (a reflection) is answered with text."""

    def __init__(self, org_root: Path) -> None:
        self.org_root = org_root
        self.lock = threading.Lock()
        self.calls: list[tuple[str, str]] = []  # (role, task id) of each first turn

    def __call__(self, request: dict[str, Any]) -> Turn:
        system = system_text(request)
        who = re.search(r"^# You are (.+?) \(([^)]*)\)$", system, re.M)
        task = re.search(r"^id: (\S+)\s+kind: (\S+)", system, re.M)
        if not who or not task:
            return Text("Noted.")
        role, tid = who.group(2), task.group(1)
        turn = sum(1 for m in request.get("messages") or [] if m.get("role") == "assistant")
        if turn == 0:
            with self.lock:
                self.calls.append((role, tid))
        name = {"marketing": "launch/{}.md", "cso": "outbox/{}.md"}.get(role)
        if name is None:
            return Text("Nothing for me to do.")
        path = self.org_root / ".aoi" / "worktrees" / tid / name.format(tid)
        steps: list[Turn] = [
            ToolUse("Write", {"file_path": str(path), "content": f"Draft for {tid}.\n"}),
            ToolUse("mcp__aoi__report_result", {"outcome": "completed",
                                                "summary": f"Wrote {name.format(tid)}"}),
            Text("Done."),
        ]
        return steps[min(turn, len(steps) - 1)]


def test_the_readme_walkthrough_runs_verbatim_in_a_fresh_folder(tmp_path: Path) -> None:
    script = walkthrough()
    assert "aoi init acme" in script and "aoi daemon" in script
    org = tmp_path / "acme"
    brain = Brain(org)
    home = tmp_path / "claude-home"
    home.mkdir()
    with ScriptedMessagesAPI([brain] * 200) as api:
        env = {**os.environ, **offline_env(api.base_url, str(home)),
               "PATH": f"{AOI_BIN.parent}{os.pathsep}{os.environ['PATH']}"}
        out = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=280,
                             check=False)
    assert out.returncode == 0, (out.stdout[-3000:], out.stderr[-3000:])
    assert "Traceback" not in out.stderr
    tasks = load_org(Store(org)).tasks
    by_title = {t.title: t for t in tasks.values() if t.kind is Kind.WORK}
    post = by_title["Write the launch post"]
    faq = by_title["Draft the launch FAQ"]
    asked = by_title["Answer Acme's question about the launch date"]
    # the role assignee went to the hired writer; accepted by the person, then merged
    assert post.bookkeeping.routed_to == "mkt-1"
    assert post.status is S.FINISHED, (post.status, post.feedback_texts())
    shown = git(org, "show", f"main:launch/{post.id}.md")
    assert shown == f"Draft for {post.id}.\n"
    # the unassigned task was routed by the EA; the external one is the CSO's
    assert faq.assignee == "mkt-1" and faq.status is S.COMPLETED, faq.feedback_texts()
    assert asked.assignee == "cso" and asked.status is S.COMPLETED, asked.feedback_texts()
    log = git(org, "log", "--format=%B%x01")
    assert log.count("Aoi-Routed-By: ea") == 2
    # nothing failed, nothing was called a deadlock, nobody but the CEO is asked anything
    assert not [t for t in tasks.values() if t.status is S.FAILED]
    assert not [t for t in tasks.values() if t.kind is Kind.HUMAN]
    assert "deadlock" not in log
    assert sorted(role for role, _ in brain.calls) == ["cso", "marketing", "marketing"]
    assert git(org, "show", f"aoi/{asked.id}:outbox/{asked.id}.md") == f"Draft for {asked.id}.\n"
    # what the person read: the review list, the review with its cost and routed employee
    assert re.search(rf"^{post.id}\s+mkt-1 \(role:marketing\)\s+reviewer ceo", out.stdout,
                     re.M), out.stdout
    assert f"{post.id} [completed] Write the launch post  (by mkt-1 (role:marketing))" \
        in out.stdout
    assert re.search(r"^cost: \$\d+\.\d{4} · [\d,]+ in \+ [\d,]+ out tokens · ", out.stdout,
                     re.M), out.stdout
    assert f"accepted {post.id}" in out.stdout
