"""Hiring and firing: `aoi hire`, `aoi fire`, and hires proposed by agents that HR shortlists
and the CEO approves through a human task (applied by the daemon)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from kit import PERSON_ACTOR, CliRun, git

from aoi_git.domain.model import EmployeeStatus, Kind, Status, Task
from aoi_git.org.organisation import load_org
from aoi_git.runtime.daemon import Daemon, DaemonOptions
from aoi_git.store.org_store import Store

pytestmark = pytest.mark.timeout(120)
S = Status


def head(org: Path) -> str:
    return git(org, "rev-parse", "HEAD").strip()


def changed(org: Path, rev: str = "HEAD") -> list[str]:
    return git(org, "diff-tree", "--no-commit-id", "-r", "--name-only", rev).split()


def tasks(org: Path) -> dict[str, Task]:
    return load_org(Store(org)).tasks


def agent(org: Path, name: str, result: dict[str, Any]) -> list[str]:
    """A script agent that writes `result`; returns its command."""
    path = org / "agents" / f"{name}.py"
    path.parent.mkdir(exist_ok=True)
    path.write_text("import json, os, pathlib\n"
                    f"pathlib.Path(os.environ['AOI_RESULT_FILE']).write_text({json.dumps(result)!r})\n")
    return [sys.executable, str(path)]


def set_backend(org: Path, emp: str, backend: dict[str, Any]) -> None:
    profile = org / "employees" / emp / "profile.yaml"
    data = yaml.safe_load(profile.read_text())
    data["backend"] = backend
    profile.write_text(yaml.safe_dump(data, sort_keys=False))


def run_daemon(org: Path) -> Daemon:
    d = Daemon(org, DaemonOptions(until_idle=True, watch=False))
    assert d.run() == 0
    return d


# ------------------------------------------------------------------------------ aoi hire

def test_hire_creates_the_employee_in_one_commit(org_dir: Path, cli: CliRun) -> None:
    before = head(org_dir)
    out = cli(org_dir, "hire", "software-engineer", "--as", "eng-1", "--reports-to", "coo",
              "--name", "Ada")
    assert out.exit_code == 0, out.output
    assert git(org_dir, "rev-list", "--count", f"{before}..HEAD").strip() == "1"
    files = changed(org_dir)
    assert {"employees/eng-1/profile.yaml", "employees/eng-1/principles.md",
            "employees/eng-1/journal.md", "talents/software-engineer/talent.yaml",
            "talents/software-engineer/prompt.md",
            "talents/software-engineer/skills/debug-failure/SKILL.md"} <= set(files)
    assert all(f.startswith(("employees/eng-1/", "talents/software-engineer/")) for f in files)
    msg = git(org_dir, "log", "-1", "--format=%B")
    assert msg.startswith("aoi: hire eng-1 (software-engineer, engineer)")
    assert f"Aoi-Actor: {PERSON_ACTOR}" in msg and "Aoi-Talent: software-engineer" in msg
    assert git(org_dir, "status", "--porcelain") == ""
    assert cli(org_dir, "validate").exit_code == 0
    emp = load_org(Store(org_dir)).employees["eng-1"]
    assert (emp.name, emp.role, emp.talent, emp.reports_to) == ("Ada", "engineer",
                                                                "software-engineer", "coo")
    assert emp.backend.kind == "claude" and emp.backend.model == "claude-sonnet-4-5"
    assert emp.capacity.concurrency == 1 and emp.capacity.usd_per_day == 20
    assert "Bash" in emp.tools and "Write" in emp.tools
    principles = (org_dir / "employees" / "eng-1" / "principles.md").read_text()
    assert principles.startswith("# Working principles: Ada (engineer)")
    assert "1. Read before you write" in principles  # seeded from the talent's prompt


def test_hire_refuses_duplicates_bad_ids_and_unknown_talents(org_dir: Path,
                                                            cli: CliRun) -> None:
    assert cli(org_dir, "hire", "qa-engineer", "--as", "qa-1").exit_code == 0
    before = head(org_dir)
    for args, error in [
        (("qa-engineer", "--as", "qa-1"), "exists already"),
        (("qa-engineer", "--as", "hr"), "exists already"),
        (("qa-engineer", "--as", "ceo"), "is a person in aoi.yaml"),
        (("qa-engineer", "--as", "QA_2"), "not a valid employee id"),
        (("qa-enginer", "--as", "qa-2"), "closest: qa-engineer"),
        (("qa-engineer", "--as", "qa-2", "--reports-to", "nobody"), "--reports-to nobody"),
        (("qa-engineer", "--as", "qa-2", "--backend", "script"), "needs a command"),
        (("qa-engineer", "--as", "qa-2", "--backend", "nope"), "no such backend"),
    ]:
        out = cli(org_dir, "hire", *args)
        assert out.exit_code == 1, (args, out.output)
        assert error in out.stderr, (args, out.stderr)
        assert "Traceback" not in out.output
    assert head(org_dir) == before


def test_hire_from_the_orgs_own_talent_and_as_a_script(org_dir: Path, cli: CliRun) -> None:
    out = cli(org_dir, "hire", "hr", "--as", "hr-2", "--backend", "script", "--command",
              "python agents/hr.py")
    assert out.exit_code == 0, out.output
    assert all(f.startswith("employees/hr-2/") for f in changed(org_dir))  # no copy
    emp = load_org(Store(org_dir)).employees["hr-2"]
    assert emp.backend.kind == "script" and emp.backend.command == ("python", "agents/hr.py")
    assert emp.backend.model is None and emp.reports_to == "ceo"


# ------------------------------------------------------------------------------ aoi fire

def test_fire_offboards_and_hands_open_tasks_to_the_supervisor(org_dir: Path,
                                                               cli: CliRun) -> None:
    ok = agent(org_dir, "ok", {"outcome": "completed", "summary": "done by eng-2"})
    assert cli(org_dir, "hire", "software-engineer", "--as", "eng-1",
               "--reports-to", "coo").exit_code == 0
    assert cli(org_dir, "hire", "software-engineer", "--as", "eng-2", "--backend", "script",
               "--command", " ".join(ok)).exit_code == 0
    git(org_dir, "add", "agents")
    git(org_dir, "commit", "-q", "-m", "agents")
    ids = [cli(org_dir, "task", "new", title, "--assignee", "eng-1").stdout.strip()
           for title in ("Build login", "Write tests")]
    other = cli(org_dir, "task", "new", "Someone else's", "--assignee", "ceo").stdout.strip()
    done = cli(org_dir, "task", "new", "Cancelled one", "--assignee", "eng-1").stdout.strip()
    assert cli(org_dir, "task", "cancel", done).exit_code == 0
    before = head(org_dir)

    out = cli(org_dir, "fire", "eng-1", "-m", "the project ended")
    assert out.exit_code == 0, out.output
    assert git(org_dir, "rev-list", "--count", f"{before}..HEAD").strip() == "1"
    profile = (org_dir / "employees" / "eng-1" / "profile.yaml").read_text()
    assert "status: offboarded" in profile
    assert "# Hired from the talent software-engineer" in profile  # comments kept
    diff = git(org_dir, "diff", "HEAD~1", "--", "employees/eng-1/profile.yaml")
    assert diff.count("\n-") == 2 and "-status: active" in diff  # one line changed (+ header)
    org = load_org(Store(org_dir))
    assert org.employees["eng-1"].status is EmployeeStatus.OFFBOARDED
    humans = [t for t in org.tasks.values() if t.kind is Kind.HUMAN]
    assert len(humans) == 1
    h = humans[0]
    assert h.assignee == "ceo"  # eng-1 -> coo -> ceo: the first person up
    assert all(i in h.description for i in ids) and other not in h.description
    assert done not in h.description
    assert sorted(h.bookkeeping.offboarding_tasks) == sorted(ids)
    assert all(org.tasks[i].bookkeeping.escalation == h.id for i in ids)
    msg = git(org_dir, "log", "-1", "--format=%B")
    assert msg.startswith("aoi: fire eng-1: offboarded (the project ended)")
    assert f"Aoi-Actor: {PERSON_ACTOR}" in msg
    assert cli(org_dir, "validate").exit_code == 0
    again = cli(org_dir, "fire", "eng-1")
    assert again.exit_code == 1 and "offboarded already" in again.stderr

    # the supervisor answers; the daemon reassigns the open tasks and eng-2 runs them
    assert cli(org_dir, "answer", h.id, "reassign to eng-2").exit_code == 0
    run_daemon(org_dir)
    after = tasks(org_dir)
    for i in ids:
        assert after[i].assignee == "eng-2"
        assert after[i].status is S.COMPLETED, after[i].feedback_texts()
        assert after[i].bookkeeping.escalation is None


def test_fire_without_open_tasks_makes_no_human_task(org_dir: Path, cli: CliRun) -> None:
    out = cli(org_dir, "fire", "cso")
    assert out.exit_code == 0, out.output
    assert not [t for t in tasks(org_dir).values() if t.kind is Kind.HUMAN]
    assert changed(org_dir) == ["employees/cso/profile.yaml"]
    assert cli(org_dir, "fire", "nobody").exit_code == 1


# ------------------------------------------------------------------- proposed hires

PROPOSAL = {"talent": "qa-engineer", "as": "qa-1",
            "reason": "nobody writes integration tests for the login flow"}


def proposed(org_dir: Path, cli: CliRun) -> tuple[Task, Task]:
    """eng-1 (a script) proposes a hire; HR (a script) shortlists. Returns (HR, CEO) tasks."""
    prop = agent(org_dir, "proposer", {"outcome": "completed", "summary": "no QA here",
                                       "hire": PROPOSAL})
    hr = agent(org_dir, "hr", {"outcome": "completed",
                               "summary": "Shortlist: qa-engineer fits best."})
    set_backend(org_dir, "hr", {"kind": "script", "command": hr})
    git(org_dir, "add", "-A")
    git(org_dir, "commit", "-q", "-m", "script agents")
    assert cli(org_dir, "hire", "software-engineer", "--as", "eng-1", "--backend", "script",
               "--command", " ".join(prop)).exit_code == 0
    tid = cli(org_dir, "task", "new", "Ship login", "--assignee", "eng-1",
              "--reviewer", "none").stdout.strip()
    run_daemon(org_dir)
    all_tasks = tasks(org_dir)
    assert all_tasks[tid].status is S.FINISHED
    [hr_task] = [t for t in all_tasks.values() if "hiring" in t.labels]
    [ceo_task] = [t for t in all_tasks.values() if t.kind is Kind.HUMAN]
    assert not (org_dir / "employees" / "qa-1").exists()  # nothing before the CEO approves
    return hr_task, ceo_task


def test_a_proposed_hire_needs_the_ceos_approval(org_dir: Path, cli: CliRun) -> None:
    hr_task, ceo_task = proposed(org_dir, cli)
    assert hr_task.assignee == "hr" and hr_task.status is S.FINISHED
    assert "1. qa-engineer" in hr_task.description  # the market search results
    assert PROPOSAL["reason"] in hr_task.description
    assert ceo_task.assignee == "ceo" and ceo_task.status is S.PENDING
    hire = ceo_task.bookkeeping.hire
    assert hire is not None and hire.talent == "qa-engineer" and hire.proposed_by == "eng-1"
    assert hr_task.id in ceo_task.description and "approve" in ceo_task.description
    log = git(org_dir, "log", "--format=%B", "-n", "30")
    assert "proposed hire: qa-engineer as qa-1" in log

    assert cli(org_dir, "answer", ceo_task.id, "approve").exit_code == 0
    run_daemon(org_dir)
    emp = load_org(Store(org_dir)).employees["qa-1"]
    assert emp.role == "qa" and emp.talent == "qa-engineer" and emp.reports_to == "ceo"
    msg = git(org_dir, "log", "-1", "--format=%B")
    assert msg.startswith("aoi: hire qa-1 (qa-engineer, qa)")
    assert "Aoi-Actor: human:ceo" in msg and f"Aoi-Hire-Proposal: {ceo_task.id}" in msg
    assert set(changed(org_dir)) >= {"employees/qa-1/profile.yaml",
                                     "talents/qa-engineer/talent.yaml"}
    assert tasks(org_dir)[ceo_task.id].bookkeeping.applied == "hired qa-1 (qa-engineer)"
    assert cli(org_dir, "validate").exit_code == 0
    before = head(org_dir)
    run_daemon(org_dir)  # applied once
    assert head(org_dir) == before


def test_a_rejected_proposal_creates_nothing(org_dir: Path, cli: CliRun) -> None:
    _, ceo_task = proposed(org_dir, cli)
    assert cli(org_dir, "answer", ceo_task.id, "reject: not this quarter").exit_code == 0
    run_daemon(org_dir)
    assert not (org_dir / "employees" / "qa-1").exists()
    assert "qa-1" not in load_org(Store(org_dir)).employees
    assert tasks(org_dir)[ceo_task.id].bookkeeping.applied.startswith("rejected by ceo")
    assert "employees/" not in " ".join(changed(org_dir))


def test_approve_with_another_talent_and_id(org_dir: Path, cli: CliRun) -> None:
    _, ceo_task = proposed(org_dir, cli)
    assert cli(org_dir, "answer", ceo_task.id, "approve code-reviewer as rev-1").exit_code == 0
    run_daemon(org_dir)
    org = load_org(Store(org_dir))
    assert "qa-1" not in org.employees and org.employees["rev-1"].talent == "code-reviewer"


def test_propose_hire_through_the_claude_backend(org_dir: Path, cli: CliRun, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from aoi_git.testing.fake_messages_api import ScriptedMessagesAPI, Text, ToolUse, offline_env

    set_backend(org_dir, "hr", {"kind": "script", "command": agent(
        org_dir, "hr", {"outcome": "completed", "summary": "shortlisted"})})
    git(org_dir, "add", "-A")
    git(org_dir, "commit", "-q", "-m", "hr is a script")
    assert cli(org_dir, "hire", "software-engineer", "--as", "eng-1").exit_code == 0
    tid = cli(org_dir, "task", "new", "Ship login", "--assignee", "eng-1",
              "--reviewer", "none").stdout.strip()
    script = [
        ToolUse("mcp__aoi__propose_hire", {"talent": "security-reviewer", "as": "sec-1",
                                           "reason": "the login flow needs a threat model"}),
        ToolUse("mcp__aoi__report_result", {"outcome": "completed",
                                            "summary": "Proposed a security reviewer"}),
        Text("Finished."),
        Text("Lesson: ask for expertise early."),
    ]
    home = tmp_path / "claude-home"
    home.mkdir()
    with ScriptedMessagesAPI(script) as api:
        for k, v in offline_env(api.base_url, str(home)).items():
            monkeypatch.setenv(k, v)
        run_daemon(org_dir)
    all_tasks = tasks(org_dir)
    assert all_tasks[tid].status is S.FINISHED, all_tasks[tid].feedback_texts()
    [ceo_task] = [t for t in all_tasks.values() if t.kind is Kind.HUMAN]
    assert ceo_task.to_dict()["extra"]["hire"] == {
        "talent": "security-reviewer", "as": "sec-1",
        "reason": "the login flow needs a threat model", "proposed_by": "eng-1",
        "about": tid}
    assert "1. security-reviewer" in ceo_task.description
