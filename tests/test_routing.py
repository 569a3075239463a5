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

from aoi_git.domain.model import Status

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
    (h,) = org.humans(tid)
    employees = {p.name for p in (org.root / "employees").iterdir()}
    suggested = re.findall(r"reassign to ([a-z0-9-]+)", h.description)
    assert suggested and set(suggested) <= employees, (suggested, h.description)
    # the person's answer routes it by hand; it then runs
    org.ok("answer", h.id, "reassign to eng-1")
    org.ok("daemon", "--until-idle")
    assert org.task(tid).status is S.COMPLETED  # done by eng-1; the CEO reviews it
