"""The person's side of review and work (issue 16, point 9), through the CLI and the
real daemon with script agents: `aoi review --accept/--reject` without an id is an
error; an empty review list says so; a review shows its cost as a person reads it and
the employee a `role:` assignee was routed to; a person finishes work assigned to them
(`aoi task done`, or `status: completed` in its file) and it is reviewed like any other.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kit import AOI_BIN, git, lines
from test_org_loop import LoopOrg

from aoi_git.domain.model import Kind, Status

pytestmark = pytest.mark.timeout(120)
S = Status


@pytest.fixture
def org(tmp_path: Path) -> Iterator[LoopOrg]:
    o = LoopOrg(tmp_path)
    o.employee("eng-1")
    o.employee("qa", role="reviewer")
    o.edit_config(lambda d: d["humans"].update(ana={"name": "Ana Lima",
                                                    "email": "ana@example.com"}))
    yield o


def aoi_as(org: LoopOrg, name: str, *args: str,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`aoi` run by the person whose git user.name is `name`."""
    person = {"GIT_CONFIG_COUNT": "2", "GIT_CONFIG_KEY_0": "user.name",
              "GIT_CONFIG_VALUE_0": name, "GIT_CONFIG_KEY_1": "user.email",
              "GIT_CONFIG_VALUE_1": f"{name.split()[0].lower()}@example.com"}
    return subprocess.run([str(AOI_BIN), "-C", str(org.root), *args], capture_output=True,
                          text=True, timeout=60, check=False,
                          env={**os.environ, **person, **(env or {})})


def test_review_without_an_id_is_an_error_and_an_empty_list_says_so(org: LoopOrg) -> None:
    org.commit()
    for flag in ("--accept", "--reject"):
        out = org.aoi("review", flag, *(["-m", "no"] if flag == "--reject" else []))
        assert out.returncode == 1, (flag, out.stdout, out.stderr)
        assert len(lines(out.stderr)) == 1 and "Traceback" not in out.stderr
        assert f"aoi review ID {flag}" in out.stderr
        assert out.stdout == ""
    assert org.ok("review").strip() == "nothing waits for review"


def test_a_review_shows_the_routed_employee_and_a_readable_cost(org: LoopOrg) -> None:
    org.act("Build it", {"files": {"it.txt": "it\n"},
                         "usage": {"input_tokens": 1200, "output_tokens": 340, "usd": 0.0123}})
    org.commit()
    org.new("build", "Build it", assignee="role:engineer", reviewer="ceo")
    org.ok("daemon", "--until-idle")
    assert org.task("build").status is S.COMPLETED
    listing = org.ok("review")
    assert re.search(r"^build\s+eng-1 \(role:engineer\)\s+reviewer ceo", listing, re.M), \
        listing
    shown = org.ok("review", "build")
    assert "(by eng-1 (role:engineer))" in shown
    (cost,) = [ln for ln in shown.splitlines() if ln.startswith("cost: ")]
    assert re.fullmatch(r"cost: \$0\.0123 · 1,200 in \+ 340 out tokens · \d+\.\d s", cost), cost
    assert "{" not in cost
    assert "+it" in shown  # the diff
    org.ok("review", "build", "--accept")
    org.ok("daemon", "--until-idle")
    assert org.task("build").status is S.FINISHED


def test_a_person_finishes_their_own_work_and_it_is_reviewed(org: LoopOrg) -> None:
    org.act("Review: Call the customer", {"review": {"decision": "accept",
                                                     "feedback": "good notes"}})
    org.commit()
    org.new("call", "Call the customer", assignee="ana", reviewer="qa")
    org.new("other", "Agent work", assignee="eng-1", reviewer="none",
            depends_on=["call"])
    # a person's task is theirs: the daemon does not run it, nor call it a deadlock
    org.ok("daemon", "--until-idle")
    assert org.task("call").status is S.PENDING and not org.humans()
    # it is the assignee's (or the CEO's) to finish: not someone else's
    out = aoi_as(org, "Bob Stone", "task", "done", "call", "-m", "called")
    assert out.returncode == 1 and len(lines(out.stderr)) == 1, out.stderr
    assert "ana's work" in out.stderr
    out = aoi_as(org, "Ana Lima", "task", "done", "other")
    assert out.returncode == 1 and "not to a person" in out.stderr, out.stderr
    out = aoi_as(org, "Ana Lima", "answer", "call", "done")  # not a question: says what is
    assert out.returncode == 1 and "aoi task done call" in out.stderr, out.stderr
    # her notes, on the task's branch, are its diff
    git(org.root, "checkout", "-q", "-b", "aoi/call")
    (org.root / "calls").mkdir()
    (org.root / "calls" / "acme.md").write_text("Acme wants the export in CSV.\n")
    git(org.root, "add", "calls/acme.md")
    git(org.root, "commit", "-q", "-m", "notes of the call")
    git(org.root, "checkout", "-q", "main")
    out = aoi_as(org, "Ana Lima", "task", "done", "call", "-m", "Called Acme; notes in calls/")
    assert out.returncode == 0, out.stderr
    assert "completed call (branch aoi/call)" in out.stdout
    t = org.task("call")
    assert t.status is S.COMPLETED and t.result is not None
    assert t.result["summary"] == "Called Acme; notes in calls/"
    assert org.transitions("call") == ["new->pending", "pending->completed"]
    assert "Aoi-Actor: human:ana" in git(org.root, "log", "-1", "--format=%B")
    # then it goes through its review like an agent's work: qa accepts, it is merged
    org.ok("daemon", "--until-idle")
    tasks = org.tasks()
    (review,) = [r for r in tasks.values() if r.kind is Kind.REVIEW and r.subject == "call"]
    assert review.assignee == "qa" and "calls/acme.md" in review.description
    assert tasks["call"].status is S.FINISHED
    assert org.in_base("calls/acme.md") == "Acme wants the export in CSV.\n"
    assert tasks["other"].status is S.FINISHED  # what waited on it runs
    org.assert_story()


def test_a_person_finishes_their_work_by_editing_its_status(org: LoopOrg) -> None:
    org.commit()
    org.new("memo", "Write the memo", assignee="ceo", reviewer="none")
    add = f"{sys.executable} -c \"import sys; open(sys.argv[1], 'a')" \
          ".write('status: completed\\n')\""
    out = subprocess.run(
        [str(AOI_BIN), "-C", str(org.root), "task", "edit", "memo"], capture_output=True,
        text=True, timeout=60, check=False, env={**os.environ, "EDITOR": add})
    assert out.returncode == 0, out.stderr
    assert org.task("memo").status is S.COMPLETED
    org.ok("daemon", "--until-idle")
    assert org.task("memo").status is S.FINISHED  # no reviewer: accepted and finished
    # an agent's task cannot be completed by hand
    org.new("bot", "Bot work", assignee="eng-1", depends_on=["memo"], reviewer="ceo")
    out = subprocess.run(
        [str(AOI_BIN), "-C", str(org.root), "task", "edit", "bot"], capture_output=True,
        text=True, timeout=60, check=False, env={**os.environ, "EDITOR": add})
    assert out.returncode == 1 and "not to a person" in out.stderr, out.stderr


def test_one_person_is_recorded_under_one_name_from_any_machine(org: LoopOrg) -> None:
    """Three machines with three `user.name`s and one e-mail: the CLI's commit, a hand
    `git commit` and the daemon's commit of a saved file all say `human:ana`."""
    org.commit()
    out = aoi_as(org, "Ana L.", "task", "new", "Call the supplier", "--assignee", "ana")
    assert out.returncode == 0, out.stderr
    tid = out.stdout.strip()
    assert "Aoi-Actor: human:ana" in git(org.root, "log", "-1", "--format=%B")
    path = org.root / next(p for p in git(org.root, "ls-files", "tasks").split()
                           if p.endswith(f"/{tid}.yaml"))
    path.write_text(path.read_text().replace("priority: 0", "priority: 3")
                    .replace("Call the supplier", "Call the supplier today"))
    ana = {"GIT_AUTHOR_NAME": "A. Lima", "GIT_AUTHOR_EMAIL": "ana@example.com",
           "GIT_COMMITTER_NAME": "A. Lima", "GIT_COMMITTER_EMAIL": "ana@example.com",
           "GIT_CONFIG_COUNT": "2", "GIT_CONFIG_KEY_0": "user.name",
           "GIT_CONFIG_VALUE_0": "A. Lima", "GIT_CONFIG_KEY_1": "user.email",
           "GIT_CONFIG_VALUE_1": "ana@example.com"}
    subprocess.run(["git", "-C", str(org.root), "commit", "-qam", "Sooner"], check=True,
                   env={**os.environ, **ana}, timeout=60)
    message = git(org.root, "log", "-1", "--format=%an|%B")
    assert message.startswith("A. Lima|Sooner") and "Aoi-Actor: human:ana" in message
    path.write_text(path.read_text().replace("Call the supplier today", "Call them now"))
    out = aoi_as(org, "Ana (laptop)", "daemon", "--until-idle")
    assert out.returncode == 0, out.stderr
    by_daemon = git(org.root, "log", "-1", "--format=%B", "--", str(path))
    assert "Sooner" not in by_daemon and "Aoi-Actor: human:ana" in by_daemon, by_daemon
    assert "Call them now" in git(org.root, "show", f"HEAD:{path.relative_to(org.root)}")
    actors = git(org.root, "log", "--format=%(trailers:key=Aoi-Actor,valueonly)")
    assert "human:Ana" not in actors and "human:A." not in actors
