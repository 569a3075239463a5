"""Review authority: completed -> accepted or rejected only by the task's reviewer, the CEO
or someone up the reviewer's reports_to chain, and the commit says which
(`Aoi-Authority`); an agent's result neither accepts nor gives people work.

Real CLI (`aoi review`, `git commit` through the pre-commit hook), real daemon with script
agents, real git. The person of the test suite's git identity ran `aoi init`, so they are
the CEO; other people act through git's own config environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kit import AOI_BIN, PERSON_ACTOR, PERSON_EMAIL, PERSON_NAME, git
from test_org_loop import LoopOrg, commit_of

from aoi_git.domain.bookkeeping import Bookkeeping
from aoi_git.domain.lifecycle import (
    CEO,
    MANAGER_OF,
    NO_REVIEWER,
    REVIEWER,
    ReviewRefused,
    review_authority,
)
from aoi_git.domain.model import Actor, Employee, Human, Kind, OrgConfig, Status, Task
from aoi_git.domain.people import people_named, person_id
from aoi_git.store.trailers import authorities

pytestmark = pytest.mark.timeout(120)

S = Status
PEOPLE = {"alice": ("Alice Reviewer", "alice@example.com"),
          "bob": ("Bob Manager", "bob@example.com"),
          "mallory": ("Mallory Other", "mallory@example.com")}


def as_person(org: LoopOrg, who: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`aoi ARGS` run by the person `who` of PEOPLE (their git name and email)."""
    name, email = PEOPLE[who]
    env = {**os.environ, "GIT_CONFIG_COUNT": "2", "GIT_CONFIG_KEY_0": "user.name",
           "GIT_CONFIG_VALUE_0": name, "GIT_CONFIG_KEY_1": "user.email",
           "GIT_CONFIG_VALUE_1": email}
    return subprocess.run([str(AOI_BIN), "-C", str(org.root), *args], capture_output=True,
                          text=True, timeout=60, check=False, env=env)


@pytest.fixture(name="org")
def authority_org(tmp_path: Path) -> LoopOrg:
    o = LoopOrg(tmp_path)
    o.employee("eng-1")
    o.employee("lead", role="lead", reports_to="bob")
    o.employee("qa", role="reviewer", reports_to="lead")
    o.edit_config(lambda d: d["humans"].update(
        {hid: {"name": name, "email": email} for hid, (name, email) in PEOPLE.items()}))
    o.act("Work", {"files": {"work.txt": "work\n"}})
    # qa's review asks a question first: the review stays open while people act
    o.act("Review: Work", {"outcome": "blocked", "question": "is this in scope?"})
    return o


def refused_in_one_line(out: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    for needle in needles:
        assert needle in out.stderr, out.stderr


def test_the_ceo_is_who_ran_aoi_init(org: LoopOrg) -> None:
    humans = yaml.safe_load((org.root / "aoi.yaml").read_text())["humans"]
    assert humans["ceo"] == {"name": PERSON_NAME, "email": PERSON_EMAIL}


def test_a_person_who_is_not_the_reviewer_is_refused(org: LoopOrg) -> None:
    org.commit()
    org.new("wk", "Work", reviewer="alice")
    org.run()
    assert org.task("wk").status is S.COMPLETED
    refused_in_one_line(as_person(org, "mallory", "review", "wk", "--accept"),
                        "may not decide the review of wk", "its reviewer is alice")
    refused_in_one_line(as_person(org, "bob", "review", "wk", "--reject", "-m", "no"),
                        "its reviewer is alice")
    assert org.task("wk").status is S.COMPLETED
    out = as_person(org, "alice", "review", "wk", "--accept")
    assert out.returncode == 0, out.stderr
    assert authorities(commit_of(org, "wk", "completed->accepted")) == [REVIEWER]
    org.run()
    assert org.task("wk").status is S.FINISHED and org.in_base("work.txt") == "work\n"
    org.assert_story()


def test_no_one_without_authority_overrides_an_agent_reviewer(org: LoopOrg) -> None:
    org.commit()
    org.new("wk", "Work", reviewer="qa")
    org.run()
    t = org.task("wk")
    assert t.bookkeeping.review_task is not None
    review = org.task(t.bookkeeping.review_task)
    assert t.status is S.COMPLETED and review.status is S.BLOCKED  # qa is still on it
    refused_in_one_line(as_person(org, "mallory", "review", "wk", "--accept"),
                        "its reviewer is qa")
    refused_in_one_line(as_person(org, "alice", "review", "wk", "--accept"))
    assert org.task(review.id).status is S.BLOCKED  # the review was not cancelled
    # bob is up qa's chain (qa -> lead -> bob): he may decide instead of qa
    out = as_person(org, "bob", "review", "wk", "--reject", "-m", "smaller, please")
    assert out.returncode == 0, out.stderr
    assert authorities(commit_of(org, "wk", "completed->pending")) == [MANAGER_OF + "qa"]
    assert org.task(review.id).status is S.CANCELLED


def test_the_ceo_decides_anything_and_the_commit_says_so(org: LoopOrg) -> None:
    org.commit()
    org.new("wk", "Work", reviewer="alice")
    org.run()
    org.ok("review", "wk", "--accept")  # the suite's person is the CEO
    body = commit_of(org, "wk", "completed->accepted")
    assert authorities(body) == [CEO] and f"Aoi-Actor: {PERSON_ACTOR}" in body


def test_an_agent_reviewer_decides_through_its_review_task(org: LoopOrg) -> None:
    org.act("Review: Work", {"review": {"decision": "accept", "feedback": "fine"}})
    org.commit()
    org.new("wk", "Work", reviewer="qa")
    org.run()
    assert org.task("wk").status is S.FINISHED
    body = commit_of(org, "wk", "completed->accepted")
    assert authorities(body) == [REVIEWER] and "Aoi-Actor: agent:qa" in body
    org.new("quick", "Quick", reviewer="none")
    org.run()
    assert authorities(commit_of(org, "quick", "completed->accepted")) == [NO_REVIEWER]


def test_an_agent_result_does_not_accept(org: LoopOrg) -> None:
    org.act("Work", {"files": {"work.txt": "work\n"},
                     "review": {"decision": "accept", "feedback": "I approve myself"}})
    org.config(max_attempts=1)
    org.commit()
    org.new("wk", "Work", reviewer="alice")
    org.run()
    t = org.task("wk")
    assert t.status is S.FAILED
    assert any("only a review task's result accepts or rejects" in x
               for x in t.feedback_texts())
    assert "completed->accepted" not in org.transitions("wk")


def test_an_agent_result_does_not_give_a_person_work(org: LoopOrg) -> None:
    org.act("Plan", {"subtasks": [{"key": "a", "title": "Do it yourself", "assignee": "ceo"},
                                  {"key": "b", "title": "Mine", "assignee": "eng-1"}]})
    org.config(max_attempts=1)
    org.commit()
    org.new("plan", "Plan", reviewer="none")
    org.run()
    t = org.task("plan")
    assert t.status is S.FAILED
    assert any("assignee 'ceo' is a person" in x for x in t.feedback_texts())
    assert not [x for x in org.tasks().values() if x.title in ("Do it yourself", "Mine")]
    assert not [x for x in org.tasks().values()
                if x.assignee == "ceo" and x.kind is Kind.WORK]


def test_the_pre_commit_hook_judges_a_hand_made_acceptance(org: LoopOrg) -> None:
    org.commit()
    org.new("wk", "Work", reviewer="alice")
    org.run()
    path = org.root / "tasks" / "wk.yaml"
    data = yaml.safe_load(path.read_text())
    data["status"] = "accepted"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    git(org.root, "add", "tasks/wk.yaml")
    name, email = PEOPLE["mallory"]
    out = subprocess.run(["git", "-c", f"user.name={name}", "-c", f"user.email={email}",
                          "commit", "-q", "-m", "accept it"], cwd=org.root,
                         capture_output=True, text=True, check=False)
    assert out.returncode != 0 and "its reviewer is alice" in out.stderr, out.stderr
    name, email = PEOPLE["alice"]
    out = subprocess.run(["git", "-c", f"user.name={name}", "-c", f"user.email={email}",
                          "commit", "-q", "-m", "accept it"], cwd=org.root,
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert org.task("wk").status is S.ACCEPTED


def test_the_pre_receive_hook_refuses_a_pushed_acceptance_without_authority(
        org: LoopOrg, tmp_path: Path) -> None:
    org.commit()
    org.new("wk", "Work", reviewer="alice")
    org.run()
    bare = tmp_path / "shared.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    hook = bare / "hooks" / "pre-receive"
    hook.write_text((Path(__file__).parents[1] / "hooks" / "pre-receive").read_text())
    hook.chmod(0o755)
    git(bare, "config", "aoi.python", sys.executable)
    git(org.root, "push", "-q", str(bare), "main")  # the daemon's history so far: fine
    path = org.root / "tasks" / "wk.yaml"
    data = yaml.safe_load(path.read_text())
    data["status"] = "accepted"
    path.write_text(yaml.safe_dump(data, sort_keys=False))

    def push_as(who: str) -> subprocess.CompletedProcess[str]:
        name, email = PEOPLE[who]
        env = {**os.environ, "GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email}
        git(org.root, "commit", "-q", "--no-verify", "-am", f"{who} accepts", env=env)
        return subprocess.run(["git", "push", "-q", str(bare), "main"], cwd=org.root,
                              capture_output=True, text=True, check=False)

    out = push_as("mallory")
    assert out.returncode != 0 and "its reviewer is alice" in out.stderr, out.stderr
    git(org.root, "reset", "-q", "--soft", "HEAD~1")
    out = push_as("alice")
    assert out.returncode == 0, out.stderr


# ---------------------------------------------------------------- the pure rule

CFG = OrgConfig(ceo="ceo", humans={
    "ceo": Human("ceo", "Chief", "chief@x"), "alice": Human("alice", "Alice", "a@x"),
    "bob": Human("bob", "Bob", "b@x")})
STAFF = {"qa": Employee.from_dict({"id": "qa", "role": "reviewer", "reports_to": "lead"}),
         "lead": Employee.from_dict({"id": "lead", "role": "lead", "reports_to": "bob"})}
SUBJECT = Task(id="t-1", title="x", status=S.COMPLETED,
               bookkeeping=Bookkeeping(review_task="t-r"))
REVIEW = Task(id="t-r", title="Review: x", kind=Kind.REVIEW, subject="t-1", assignee="qa",
              status=S.PROCESSING)


def decide(who: str, reviewer: str, email: str = "", via: Task | None = None) -> str:
    return review_authority(Actor.parse(who), SUBJECT, reviewer, config=CFG,
                            employees=STAFF, email=email, via=via)


def test_review_authority_rule() -> None:
    assert decide("human:alice", "alice") == REVIEWER
    assert decide("human:Alice", "alice") == REVIEWER  # by name
    assert decide("human:someone", "alice", email="A@X") == REVIEWER  # by email
    assert decide("human:Chief", "alice") == CEO
    assert decide("human:bob", "qa") == MANAGER_OF + "qa"
    assert decide("human:bob", "role:reviewer") == MANAGER_OF + "role:reviewer"
    assert decide("agent:qa", "qa", via=REVIEW) == REVIEWER
    assert decide("daemon:aoi", "none") == NO_REVIEWER
    for who, reviewer, via in [("human:bob", "alice", None), ("human:alice", "qa", None),
                               ("human:nobody", "alice", None), ("agent:qa", "qa", None),
                               ("agent:eng-1", "qa", REVIEW), ("daemon:aoi", "qa", None)]:
        with pytest.raises(ReviewRefused):
            decide(who, reviewer, via=via)
    other = Task(id="t-o", title="Review: y", kind=Kind.REVIEW, subject="t-2", assignee="qa")
    with pytest.raises(ReviewRefused):  # the review task of another task
        decide("agent:qa", "qa", via=other)


def test_people_named_matches_id_name_or_email() -> None:
    assert people_named("alice", "", CFG.humans) == ["alice"]
    assert people_named("BOB", "", CFG.humans) == ["bob"]
    assert people_named("x", "chief@X", CFG.humans) == ["ceo"]
    assert people_named("", "", CFG.humans) == []


def test_one_person_goes_by_one_name() -> None:
    """Whatever `user.name` a machine has, the person is recorded by their aoi.yaml id."""
    assert person_id("Alice Smith", "A@X", CFG.humans) == "alice"  # by e-mail first
    assert person_id("Chief", "home@elsewhere", CFG.humans) == "ceo"  # else by name
    assert person_id("bob", "", CFG.humans) == "bob"  # or id
    assert person_id("Bob", "a@x", CFG.humans) == "alice"  # the e-mail decides
    assert person_id("Carol ", "c@x", CFG.humans) == "Carol"  # not listed: git name
    assert person_id("", "", CFG.humans) == "unknown"
