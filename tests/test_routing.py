"""The founding team in a fresh org (issue 16, point 6): the EA routes a work task saved
without an assignee by role, skills and load (the daemon, script agents); external work
goes to the CSO; what matches no one goes to the EA itself; with no EA an unassigned
task is failed as stuck and the escalation names only employees that exist.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kit import git
from test_org_loop import LoopOrg

from aoi_git.domain.model import (
    Backend,
    Capacity,
    Employee,
    EmployeeStatus,
    Kind,
    OrgConfig,
    Status,
    Talent,
    Task,
)
from aoi_git.org import routing
from aoi_git.runtime.scheduler import LiveSet, Route, SchedState, plan

pytestmark = pytest.mark.timeout(120)
S = Status


def as_script(org: LoopOrg, eid: str) -> None:
    """Keep employee `eid` (its role, talent) but run it on the test's script agent."""
    path = org.root / "employees" / eid / "profile.yaml"
    profile = yaml.safe_load(path.read_text())
    profile["backend"] = {"kind": "script",
                          "command": [sys.executable, str(org.root / "agents" / "act.py")]}
    path.write_text(yaml.safe_dump(profile, sort_keys=False))


@pytest.fixture
def org(tmp_path: Path) -> Iterator[LoopOrg]:
    o = LoopOrg(tmp_path)
    for eid in ("ea", "cso", "coo", "hr"):  # the founding team, on scripts
        as_script(o, eid)
    o.employee("eng-1")
    o.employee("eng-2")
    o.ok("hire", "marketing", "--as", "mkt-1")  # a talent from the bundled market
    as_script(o, "mkt-1")
    yield o


def test_the_ea_routes_unassigned_work_by_role_skills_and_load(org: LoopOrg) -> None:
    org.commit()
    # eng-1 has open work already (it waits on a person's answer): eng-2 is less loaded
    org.new("gate", "Go ahead?", kind="human", assignee="ceo")
    org.new("later", "Later work", assignee="eng-1", depends_on=["gate"])
    fix = org.ok("task", "new", "Fix the login bug", "--label", "engineer",
                 "--reviewer", "none").strip()
    post = org.ok("task", "new", "Write the launch post", "--label", "launch",
                  "--reviewer", "none").strip()
    odd = org.ok("task", "new", "Water the office plants", "--reviewer", "none").strip()
    asked = org.ok("task", "new", "Acme asks for an invoice copy", "--label", "external",
                   "--reviewer", "none").strip()
    out = org.aoi("daemon", "--until-idle")
    assert out.returncode == 0, out.stderr
    tasks = org.tasks()
    assert tasks[fix].assignee == "eng-2"  # role engineer; eng-1 is loaded
    assert tasks[post].assignee == "mkt-1"  # label launch: a tag of the marketing talent
    assert tasks[odd].assignee == "ea"  # matches no one: the EA triages it itself
    assert tasks[asked].assignee == "cso"  # work from outside: the CSO owns it
    for tid in (fix, post, odd, asked):
        assert tasks[tid].status is S.FINISHED, (tid, tasks[tid].status)
        (run,) = [r for r in org.runs() if r["task"] == tid]
        assert run["employee"] == tasks[tid].assignee
    assert tasks["later"].assignee == "eng-1" and tasks["later"].status is S.PENDING
    # each routing is its own commit: the daemon's, naming the router and the reason
    raw = git(org.root, "log", "--format=%B%x01")
    routed = [c for c in raw.split("\x01") if "Aoi-Routed-By: ea" in c]
    assert len(routed) == 4
    assert any("routed by ea to mkt-1: launch matches marketing" in c for c in routed), routed
    assert any("routed by ea to cso: work from outside" in c for c in routed), routed
    assert all(re.search(r"Aoi-Actor: daemon:", c) for c in routed)
    assert f"{post}: routed by ea to mkt-1" in org.daemon_log()
    listing = org.ok("task", "list")
    assert re.search(rf"{post}\s+finished\s+mkt-1\s", listing), listing
    org.assert_story()


def test_without_an_ea_unassigned_work_fails_as_stuck_naming_real_employees(
        org: LoopOrg) -> None:
    org.edit_config(lambda d: d.setdefault("routing", {}).update(tasks=None))
    org.commit()
    tid = org.ok("task", "new", "Nobody's job").strip()
    out = org.aoi("daemon", "--until-idle")
    assert out.returncode == 0, out.stderr
    t = org.task(tid)
    assert t.status is S.FAILED and t.assignee is None
    assert any("no assignee and no employee routes" in x for x in t.feedback_texts())
    (h,) = org.humans(tid)
    employees = {p.name for p in (org.root / "employees").iterdir()}
    suggested = re.findall(r"reassign to ([a-z0-9-]+)", h.description)
    assert suggested and set(suggested) <= employees, (suggested, h.description)
    # the person's answer routes it by hand; it then runs
    org.ok("answer", h.id, "reassign to eng-1")
    org.ok("daemon", "--until-idle")
    assert org.task(tid).status is S.COMPLETED  # done by eng-1; the CEO reviews it


# ------------------------------------------------------------------ the pure parts

def person(eid: str, role: str, talent: str | None = None, *, concurrency: int = 1,
           status: EmployeeStatus = EmployeeStatus.ACTIVE) -> Employee:
    return Employee(eid, role, talent=talent, status=status, backend=Backend(),
                    capacity=Capacity(concurrency=concurrency))


def test_the_plan_routes_unassigned_work_only_when_a_router_is_active() -> None:
    tasks = {"u": Task("u", "Unassigned"), "q": Task("q", "Question", kind=Kind.HUMAN),
             "a": Task("a", "Assigned", assignee="eng-1")}
    staff = {"ea": person("ea", "ea"), "eng-1": person("eng-1", "engineer")}
    p = plan(SchedState(tasks, staff, OrgConfig()), 0.0)
    assert [a for a in p.actions if isinstance(a, Route)] == [Route("u", "ea")]
    # the queued fast path leaves no unassigned task behind in the dispatch queue
    live = LiveSet(tasks)
    assert "u" in live.live and "u" not in live.queue and "a" in live.queue
    p = plan(SchedState(tasks, staff, OrgConfig(), live=live.live, queue=live.queue,
                        children=live.children), 0.0)
    assert Route("u", "ea") in p.actions
    gone = {**staff, "ea": person("ea", "ea", status=EmployeeStatus.OFFBOARDED)}
    for employees, cfg in ((gone, OrgConfig()), (staff, OrgConfig(router_role=None))):
        p = plan(SchedState(tasks, employees, cfg), 0.0)
        assert not [a for a in p.actions if isinstance(a, Route)]


def test_choose_weighs_labels_over_words_and_breaks_ties_by_load() -> None:
    talents = {"marketing": Talent("marketing", "marketing", tags=("launch", "blog")),
               "writer": Talent("writer", "writer", tags=("docs", "blog"))}
    staff = {"ea": person("ea", "ea"), "mkt-1": person("mkt-1", "marketing", "marketing"),
             "mkt-2": person("mkt-2", "marketing", "marketing", concurrency=2),
             "doc-1": person("doc-1", "writer", "writer"),
             "idle": person("idle", "qa", concurrency=0)}
    router, cfg = staff["ea"], OrgConfig()
    # a label counts more than a word of the title: docs (label) beats launch (title)
    t = Task("t1", "Blog post for the launch", labels=("docs",))
    assert routing.choose(t, staff, talents, {}, cfg, router).employee == "doc-1"
    # equal matches: the lower load per slot wins (mkt-2 has two slots)
    t = Task("t2", "Launch blog post")
    got = routing.choose(t, staff, talents, {"mkt-1": 1, "mkt-2": 1}, cfg, router)
    assert got.employee == "mkt-2" and "least loaded" in got.why
    # nothing matches, or only an employee without a slot: the router takes it
    t = Task("t3", "Quality assurance of the qa plan")
    assert routing.choose(t, staff, talents, {}, cfg, router).employee == "ea"
    # work from outside with no one of the external role: routed like any other
    t = Task("t4", "Launch question from a customer", labels=("external",))
    assert routing.choose(t, staff, talents, {}, cfg, router).employee == "mkt-1"


def test_reassign_candidates_are_existing_active_employees_same_role_first() -> None:
    staff = {"eng-1": person("eng-1", "engineer"), "eng-3": person("eng-3", "engineer"),
             "qa": person("qa", "qa"),
             "old": person("old", "engineer", status=EmployeeStatus.OFFBOARDED)}
    assert routing.reassign_candidates(Task("t", "x", assignee="eng-1"), staff) == \
        ["eng-3", "qa", "eng-1"]
    assert routing.reassign_candidates(Task("t", "x", assignee="old"), staff) == \
        ["eng-1", "eng-3", "qa"]
    assert routing.reassign_candidates(Task("t", "x"), staff) == ["eng-1", "eng-3", "qa"]
    assert routing.reassign_candidates(Task("t", "x", assignee="eng-2"), {}) == []
