"""Retries start from the current base (issue 16, point 8), through the real daemon with
script agents: a branch with no work of its own is made afresh at the base (the retry
sees a file committed to the base since); one with work is rebased onto the base; a
rebase that conflicts keeps the earlier work on `aoi/<id>.conflict-1` and tells the
agent. An agent's error is logged whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kit import git
from test_org_loop import LoopOrg

from aoi_git.domain.model import Status

pytestmark = pytest.mark.timeout(120)
S = Status
GIT = "git -c user.name=agent -c user.email=agent@aoi.invalid"


@pytest.fixture
def org(tmp_path: Path) -> Iterator[LoopOrg]:
    o = LoopOrg(tmp_path)
    o.employee("eng-1")
    # one failed run escalates: the person's `retry` is the retry, after the base moved
    o.config(max_attempts=1, breaker_failures=100)
    yield o


def on_base(org: LoopOrg, path: str, text: str) -> None:
    """A person commits `path` to main while the task waits."""
    (org.root / path).parent.mkdir(parents=True, exist_ok=True)
    (org.root / path).write_text(text)
    git(org.root, "add", path)
    git(org.root, "commit", "-q", "-m", f"add {path}")


def fail_once(org: LoopOrg, tid: str) -> str:
    """Run the daemon until `tid` failed and was escalated; the escalation's id."""
    out = org.aoi("daemon", "--until-idle")
    assert out.returncode == 0, out.stderr
    assert org.task(tid).status is S.FAILED
    (h,) = org.humans(tid)
    return h.id


def retry(org: LoopOrg, escalation: str) -> None:
    """The person answers `retry`; the daemon runs the task again."""
    org.ok("answer", escalation, "retry")
    out = org.aoi("daemon", "--until-idle")
    assert out.returncode == 0, out.stderr


def test_a_retry_without_work_of_its_own_starts_from_the_current_base(org: LoopOrg) -> None:
    long_error = "can't open file tools/writer.py: " + " ".join(f"word{i}" for i in range(120))
    org.act("Run the writer",
            {"exit": 1, "stderr": long_error},
            {"sh": ["python3 tools/writer.py > out.txt"]})
    org.commit()
    org.new("writer", "Run the writer")
    asked = fail_once(org, "writer")
    # the error is in the log whole, not cut mid-word
    assert long_error in org.daemon_log()
    on_base(org, "tools/writer.py", "print('written')\n")
    retry(org, asked)
    t = org.task("writer")
    assert t.status is S.FINISHED, (t.status, t.feedback_texts())
    second = org.runs("Run the writer")[1]
    assert "tools/writer.py" in second["files"]
    assert org.in_base("out.txt") == "written\n"
    assert "writer: its branch recreated on the current main" in org.daemon_log()
    org.assert_story()


def test_a_retry_with_kept_work_is_rebased_onto_the_current_base(org: LoopOrg) -> None:
    org.act("Two parts",
            {"files": {"part1.txt": "one\n"},
             "sh": [f"git add part1.txt && {GIT} commit -nqm 'part one'"], "exit": 1},
            {"files": {"part2.txt": "two\n"}})
    org.commit()
    org.new("two", "Two parts")
    asked = fail_once(org, "two")
    assert git(org.root, "show", "aoi/two:part1.txt") == "one\n"
    on_base(org, "upstream.txt", "from the base\n")
    retry(org, asked)
    t = org.task("two")
    assert t.status is S.FINISHED, (t.status, t.feedback_texts())
    second = org.runs("Two parts")[1]
    assert {"part1.txt", "upstream.txt"} <= set(second["files"])
    assert org.in_base("part1.txt") == "one\n" and org.in_base("part2.txt") == "two\n"
    assert "two: its branch rebased on the current main" in org.daemon_log()
    # the agent's own commit kept its message, now on top of the base's commit
    (mine,) = [ln.split(" ", 1)[0] for ln in git(org.root, "log", "--format=%H %s",
                                                   "main").splitlines()
               if ln.endswith(" part one")]
    assert "add upstream.txt" in git(org.root, "log", "--format=%s", mine).splitlines()
    org.assert_story()


def test_a_rebase_that_conflicts_goes_back_to_the_agent_as_feedback(org: LoopOrg) -> None:
    org.act("Clash",
            {"files": {"shared.txt": "mine\n"},
             "sh": [f"git add shared.txt && {GIT} commit -nqm 'my version'"], "exit": 1},
            {"files": {"shared.txt": "merged by hand\n"}})
    org.commit()
    org.new("clash", "Clash")
    asked = fail_once(org, "clash")
    on_base(org, "shared.txt", "theirs\n")
    retry(org, asked)
    t = org.task("clash")
    assert t.status is S.FINISHED, (t.status, t.feedback_texts())
    context = org.context("Clash", 2)
    assert "does not rebase onto the current main" in context
    assert "shared.txt" in context and "aoi/clash.conflict-1" in context
    assert any(f.get("kind") == "conflict" for f in t.feedback)
    # the earlier work stays reachable; the run started from the base's version
    assert git(org.root, "show", "aoi/clash.conflict-1:shared.txt") == "mine\n"
    assert org.in_base("shared.txt") == "merged by hand\n"
    org.assert_story()
