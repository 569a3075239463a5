"""Failures by kind (issue 15, point 9; issue 16, point 7), through the real daemon and
real agent processes: what no retry can fix escalates at once with its reason, a run past
its task's budget goes to a person and runs again once the budget is raised, a big
result is a result up to its documented limit, a breaker covers one backend command and
says why it is open, and an org without Claude credentials says so instead of burning
attempts. The claude backend's cases run the real SDK against the scripted Messages API.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kit import AOI_BIN, git
from orgkit import PERSON
from test_daemon import Org, drive

from aoi_git.domain.model import Kind, Status, Task
from aoi_git.org.organisation import load_org
from aoi_git.runtime import credentials
from aoi_git.runtime.clock import Clock
from aoi_git.runtime.daemon import Daemon, DaemonOptions
from aoi_git.store.org_store import Store
from aoi_git.store.txn import commit
from aoi_git.testing.fake_messages_api import (
    ApiError,
    ScriptedMessagesAPI,
    ToolUse,
    Turn,
    offline_env,
)

pytestmark = pytest.mark.timeout(300)

S = Status

MODES = """
mode = TASK["description"]
n = bump()
if mode == "cycle":
    report(subtasks=[{"key": "x", "title": "X", "depends_on": ["y"]},
                     {"key": "y", "title": "Y", "depends_on": ["x"]}])
elif mode == "garbage":
    RESULT.write_text("{not json")
elif mode == "outcome":
    report(outcome="finished")
elif mode == "big":  # 50 MB: under the limit
    RESULT.write_text(json.dumps({"outcome": "completed", "summary": "big " + "x" * (50 << 20)}))
elif mode == "too-big":  # 65 MiB: over it
    RESULT.write_text(json.dumps({"outcome": "completed", "summary": "x" * (65 << 20)}))
elif mode == "spender":  # does its work, and reports $5 for it
    pathlib.Path("work.txt").write_text(f"run {n}\\n")
    report(summary=f"did the work, run {n}",
           usage={"usd": 5.0, "input_tokens": 10, "output_tokens": 5})
elif mode == "cheap":
    report(summary="cheap", usage={"usd": 0.25})
else:  # flaky
    print("flaky-error", file=sys.stderr)
    sys.exit(1)
"""


@pytest.fixture
def org(tmp_path: Path) -> Iterator[Org]:
    o = Org(tmp_path)
    o.config(max_attempts=3, backoff_base_s=0.01, backoff_max_s=0.01, breaker_failures=100)
    o.agent("modes", MODES)
    o.employee("eng-1", "modes", concurrency=4)
    yield o


def failed_commit(root: Path, tid: str) -> str:
    """The body of the (latest) commit that made `tid` processing -> failed."""
    raw = git(root, "log", "--format=%B%x01")
    found = [c for c in raw.split("\x01")
             if re.search(rf"Aoi-Task: {tid}\nAoi-Transition: processing->failed\n", c)]
    assert found, f"no processing->failed commit of {tid}"
    return found[0]


def decision_of(org: Org, tid: str) -> Task:
    (h,) = [t for t in org.tasks().values()
            if t.kind is Kind.HUMAN and t.bookkeeping.about == tid]
    return h


def test_failures_no_retry_can_fix_escalate_at_once_with_their_reason(org: Org) -> None:
    org.commit()
    for mode in ("cycle", "garbage", "outcome", "flaky"):
        org.new(mode, description=mode)
    org.run()
    reasons = {"cycle": "the plan was refused: subtask dependencies form a cycle",
               "garbage": "malformed result: the result file is not valid JSON",
               "outcome": "malformed result: unknown outcome 'finished'"}
    for mode, reason in reasons.items():
        t = org.task(mode)
        assert org.runs(mode) == 1, mode  # not retried
        assert t.status is S.FAILED and t.attempts == 1 and t.retry_at is None
        assert any(reason in x for x in t.feedback_texts()), (mode, t.feedback_texts())
        h = decision_of(org, mode)
        assert t.bookkeeping.escalation == h.id and h.assignee == "ceo"
        assert reason in (h.question or "") and "no retry can fix this" in (h.question or "")
        body = failed_commit(org.root, mode)
        assert "Aoi-Failure: permanent" in body and reason in body
        assert f"Aoi-Task: {h.id}\nAoi-Transition: new->pending" in body  # one commit
    # a failure a retry may fix is still retried to the limit, then escalated
    flaky = org.task("flaky")
    assert org.runs("flaky") == 3 and flaky.attempts == 3
    assert "Aoi-Failure: retry" in failed_commit(org.root, "flaky")
    assert decision_of(org, "flaky").bookkeeping.decision_for == "flaky"
    assert {t.title for t in org.tasks().values()}.isdisjoint({"X", "Y"})
    org.assert_clean()


@pytest.mark.timeout(400)
def test_a_big_result_is_a_result_and_only_its_size_limit_fails_it(org: Org) -> None:
    org.commit()
    org.new("big", description="big")
    org.new("too-big", description="too-big")
    org.run()
    big = org.task("big")
    assert big.status is S.FINISHED and org.runs("big") == 1
    assert big.result is not None and big.result["summary"].startswith("big xxx")
    assert len(big.result["summary"]) == 20_000  # cut to the summary's bound
    too_big = org.task("too-big")
    assert too_big.status is S.FAILED and org.runs("too-big") == 1  # not retried
    (fb,) = [x for x in too_big.feedback_texts() if "failed" in x]
    assert "malformed result: the result file is" in fb and "over the 64 MiB limit" in fb
    assert decision_of(org, "too-big").bookkeeping.decision_for == "too-big"
    org.assert_clean()


def raise_budget_in_file(org: Org, tid: str, usd: float) -> None:
    """A person raises the task's budget.usd by editing its file (committed as theirs)."""
    store = Store(org.root)
    commit(store, lambda txn: txn.put(txn.get(tid).with_changes(budget={"usd": usd})), PERSON,
           load_org(store).index.paths)


@pytest.mark.parametrize("how", ["answer", "file"])
def test_a_run_past_its_budget_goes_to_a_person_and_runs_again_once_raised(
        org: Org, how: str) -> None:
    org.commit()
    org.new("spend", description="spender", budget={"usd": 1.0})
    org.run()
    t = org.task("spend")
    assert org.runs("spend") == 1
    # its result arrived with $5.00 against a $1.00 budget: not finished, not retried
    assert t.status is S.FAILED and t.attempts == 0 and t.retry_at is None
    assert t.cost["usd"] == pytest.approx(5.0)
    h = decision_of(org, "spend")
    assert t.bookkeeping.budget_request == h.id and h.assignee == "ceo" and not t.result
    assert "budget exhausted" in (h.question or "") and "$5.00" in (h.question or "")
    assert "was stopped on task spend" in h.description
    body = failed_commit(org.root, "spend")
    assert "Aoi-Failure: budget" in body and "budget.usd is $1.00" in body
    status = org.aoi("status")
    assert h.id in status.stdout and "spend" in status.stdout
    org.run()  # nothing happens until a person raises it
    assert org.runs("spend") == 1 and org.task("spend").status is S.FAILED
    if how == "answer":
        answered = org.aoi("answer", h.id, "20")
        assert answered.returncode == 0, answered.stderr
    else:
        raise_budget_in_file(org, "spend", 20.0)
    org.run()
    t = org.task("spend")
    assert org.runs("spend") == 2
    assert t.status is S.FINISHED and t.budget["usd"] == 20.0
    assert t.cost["usd"] == pytest.approx(10.0)
    assert org.in_base("work.txt") == "run 2\n"
    h = org.task(h.id)
    assert h.status is (S.FINISHED if how == "answer" else S.CANCELLED)
    moves = org.transitions("spend")
    i = moves.index("processing->failed")
    assert moves[i:i + 3] == ["processing->failed", "failed->pending", "pending->processing"]
    org.assert_clean()


def test_the_organisations_daily_cap_stops_new_agents_for_the_day(org: Org) -> None:
    org.config(usd_per_day=0.5)
    org.employee("eng-1", "modes", concurrency=1)
    org.commit()
    for i in range(4):
        org.new(f"c{i}", description="cheap")
    org.run()
    tasks = org.tasks()
    done = [t for t in tasks.values() if t.id.startswith("c") and t.status is S.FINISHED]
    assert len(done) == 2 and org.runs() == 2
    waiting = [t for t in tasks.values() if t.id.startswith("c") and t.status is S.PENDING]
    assert len(waiting) == 2 and all(t.attempts == 0 for t in waiting)  # no deadlock failure
    assert "limits.usd_per_day" in org.daemon_log()
    text = org.aoi("status").stdout
    assert "no new agents today" in text and "$0.50 of $0.50" in text


def test_a_breaker_covers_one_employee_command_and_says_why(org: Org) -> None:
    org.config(breaker_failures=2, breaker_cooldown_s=3600, max_attempts=5)
    org.agent("good", MODES)
    org.employee("eng-2", "good")
    org.commit()
    org.new("f1", description="flaky", assignee="eng-1")
    org.new("g1", description="cheap", assignee="eng-2")
    d = org.daemon()
    bad_key = "script: " + " ".join([sys.executable, str(org.root / "agents" / "modes.py")])
    drive(d, lambda: d.breakers.get(bad_key) and d.breakers[bad_key].until > time.time()
          and not d.active, what="eng-1's breaker to trip")
    # eng-2 runs another command: its work goes on while eng-1's is paused
    org.new("g2", description="cheap", assignee="eng-2")
    drive(d, lambda: org.task("g1").status is S.FINISHED
          and org.task("g2").status is S.FINISHED, what="eng-2's work")
    assert org.runs("f1") == 2 and org.task("f1").status is S.PENDING
    status = json.loads(org.aoi("status", "--json").stdout)["daemon"]["breakers"]
    assert "2 failures in a row" in status[bad_key]["why"]
    assert "flaky-error" in status[bad_key]["why"]
    good_key = "script: " + " ".join([sys.executable, str(org.root / "agents" / "good.py")])
    assert not status[good_key]["held"] and (status[good_key]["until"] or 0) < time.time()
    assert status[good_key]["failures"] == 0
    text = org.aoi("status").stdout
    assert f"backend {bad_key} paused (circuit breaker)" in text and "flaky-error" in text


# ------------------------------------------------------------------ Claude credentials

def without_claude_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("ANTHROPIC_", "CLAUDE_CODE_", "CLAUDE_CONFIG_DIR"))}


def test_no_claude_key_or_login_is_said_at_start_and_burns_no_attempt(
        org_dir: Path, isolated_env: Path) -> None:
    """A fresh `aoi init` org: the founding team runs on Claude; HOME is the test's own."""
    env = without_claude_env()
    out = subprocess.run(
        [str(AOI_BIN), "-C", str(org_dir), "task", "new", "Plan the launch", "--assignee",
         "coo", "--id", "launch"], capture_output=True, text=True, env=env, check=False)
    assert out.returncode == 0, out.stderr
    before = subprocess.run([str(AOI_BIN), "-C", str(org_dir), "status"],
                            capture_output=True, text=True, env=env, check=False)
    assert "Claude, as seen from this shell: employees coo, cso, ea, hr run on Claude" in \
        before.stdout and "fix: set ANTHROPIC_API_KEY" in before.stdout
    run = subprocess.run(
        [str(AOI_BIN), "-C", str(org_dir), "daemon", "--until-idle"], capture_output=True,
        text=True, env=env, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    # one line (echoed from the log when stderr is not a terminal, else said by itself)
    (line,) = [x for x in run.stderr.splitlines() if "backend claude held: employees " in x]
    assert "coo" in line and "ANTHROPIC_API_KEY" in line and "claude login" in line
    assert str(isolated_env / ".claude" / ".credentials.json") in line
    task = load_org(Store(org_dir)).tasks["launch"]
    assert task.status is S.PENDING and task.attempts == 0 and not task.feedback
    assert not (org_dir / ".aoi" / "runs" / "launch").exists()  # no agent was started
    status = subprocess.run(
        [str(AOI_BIN), "-C", str(org_dir), "status"], capture_output=True, text=True,
        env=env, check=False)
    assert "backend claude held until a person acts (at the daemon's last run)" in \
        status.stdout
    assert "fix: set ANTHROPIC_API_KEY" in status.stdout and "claude login" in status.stdout


def test_what_counts_as_claude_credentials(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert credentials.find({"HOME": str(home)}).source is None
    assert credentials.find({"HOME": str(home), "ANTHROPIC_API_KEY": "k"}).source == \
        "ANTHROPIC_API_KEY"
    assert credentials.find({"CLAUDE_CODE_OAUTH_TOKEN": "t"}).source == \
        "CLAUDE_CODE_OAUTH_TOKEN"
    login = home / ".claude" / ".credentials.json"
    login.parent.mkdir(parents=True)
    login.write_text("{}")  # what the CLI answers "Not logged in" to
    assert credentials.find({"HOME": str(home)}).source is None
    login.write_text(json.dumps({"claudeAiOauth": {"accessToken": "sk-ant-oat01-x"}}))
    found = credentials.find({"HOME": str(home)})
    assert found.source == str(login) and found.fingerprint
    other = tmp_path / "config"
    other.mkdir()
    assert credentials.find({"HOME": str(home), "CLAUDE_CONFIG_DIR": str(other)}).source \
        is None


# ------------------------------------------------------------------ the claude backend

MODEL = "claude-sonnet-4-5"


def claude_employee(org: Org, eid: str) -> None:
    profile = {"id": eid, "name": eid, "role": "engineer", "reports_to": "ceo",
               "status": "active", "backend": {"kind": "claude", "model": MODEL,
                                               "reflect": False},
               "capacity": {"concurrency": 1, "timeout_s": 90, "max_turns": 30},
               "tools": ["Read"]}
    folder = org.root / "employees" / eid
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "profile.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))


@pytest.fixture
def scripted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[
        ScriptedMessagesAPI]:
    home = tmp_path / "claude-home"
    home.mkdir()
    with ScriptedMessagesAPI() as api:
        for k, v in offline_env(api.base_url, str(home)).items():
            monkeypatch.setenv(k, v)  # the daemon passes its environment to the runner
        yield api


def reads_forever(request: dict[str, Any]) -> Turn:
    return ToolUse("Read", {"file_path": "/etc/hostname"})


def test_the_claude_backend_stops_at_the_tasks_budget(
        org: Org, scripted: ScriptedMessagesAPI) -> None:
    claude_employee(org, "cl-1")
    org.commit()
    scripted.add(*[reads_forever] * 40)
    # each call costs ~$0.0006 at the model's prices: the SDK stops after a few
    org.new("cheap", "Read a lot", assignee="cl-1", budget={"usd": 0.001})
    org.run()
    t = org.task("cheap")
    config = json.loads((org.root / ".aoi" / "runs" / "cheap" / "agent-config.json")
                        .read_text())
    assert config["max_budget_usd"] == pytest.approx(0.001) and config["max_turns"] == 30
    assert len(scripted.requests) < 10  # stopped by the SDK, not by the turn cap
    assert t.status is S.FAILED and t.attempts == 0, t.feedback_texts()
    assert t.cost["usd"] >= 0.001
    h = decision_of(org, "cheap")
    assert t.bookkeeping.budget_request == h.id
    assert "error_max_budget_usd" in (h.question or "")
    assert "Aoi-Failure: budget" in failed_commit(org.root, "cheap")


def test_a_rejected_claude_key_escalates_at_once_and_holds_the_backend(
        org: Org, scripted: ScriptedMessagesAPI) -> None:
    claude_employee(org, "cl-1")
    org.commit()
    scripted.add(*[ApiError(401, "invalid x-api-key")] * 5)
    org.new("k1", "First", assignee="cl-1", priority=2)
    org.new("k2", "Second", assignee="cl-1", priority=1)
    d = org.run()
    first, second = org.task("k1"), org.task("k2")
    assert len(scripted.requests) == 1  # one call, refused: nothing more is tried
    assert first.status is S.FAILED and first.attempts == 1 and first.retry_at is None
    assert "Invalid API key" in " ".join(first.feedback_texts())
    assert "Aoi-Failure: credentials" in failed_commit(org.root, "k1")
    assert decision_of(org, "k1").bookkeeping.decision_for == "k1"
    assert second.status is S.PENDING and second.attempts == 0  # held, not burnt
    assert d.breakers.held("claude")
    status = json.loads(org.aoi("status", "--json").stdout)["daemon"]["breakers"]["claude"]
    assert status["held"] and "Invalid API key" in status["why"]
    assert "claude login" in status["fix"]


def test_the_claude_turn_cap_escalates_at_once(
        org: Org, scripted: ScriptedMessagesAPI) -> None:
    claude_employee(org, "cl-1")
    profile = org.root / "employees" / "cl-1" / "profile.yaml"
    data = yaml.safe_load(profile.read_text())
    data["capacity"]["max_turns"] = 2
    profile.write_text(yaml.safe_dump(data, sort_keys=False))
    org.commit()
    scripted.add(*[reads_forever] * 40)
    org.new("long", "Read a lot", assignee="cl-1")
    org.run()
    t = org.task("long")
    assert len(scripted.requests) <= 3  # one run, stopped at its turns
    assert t.status is S.FAILED and t.attempts == 1 and t.retry_at is None
    h = decision_of(org, "long")
    assert t.bookkeeping.escalation == h.id
    assert "error_max_turns" in (h.question or "") and "capacity.max_turns" in h.description
    assert "Aoi-Failure: permanent" in failed_commit(org.root, "long")


def test_the_claude_runner_reports_not_logged_in_as_a_credentials_failure(
        tmp_path: Path) -> None:
    """The CLI without any key or login ("Not logged in · Please run /login")."""
    (tmp_path / "task.json").write_text(json.dumps({"id": "t-1", "title": "Hello"}))
    (tmp_path / "context.md").write_text("You are eng-1.")
    (tmp_path / "config.json").write_text(json.dumps(
        {"employee": "eng-1", "role": "engineer", "model": MODEL, "tools": ["Read"]}))
    home = tmp_path / "home"
    home.mkdir()
    env = {**without_claude_env(), "HOME": str(home),
           "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "CLAUDE_CODE_MAX_RETRIES": "0",
           "AOI_TASK_FILE": str(tmp_path / "task.json"),
           "AOI_CONTEXT_FILE": str(tmp_path / "context.md"),
           "AOI_AGENT_CONFIG": str(tmp_path / "config.json"),
           "AOI_RESULT_FILE": str(tmp_path / "result.json")}
    run = subprocess.run([sys.executable, "-m", "aoi_git.runtime.backends.claude_runner"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=200,
                         check=False)
    assert run.returncode == 0, run.stderr
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["outcome"] == "failed" and result["failure"] == "credentials", result
    assert "Not logged in" in result["error"]


def test_a_held_claude_backend_runs_again_once_a_login_appears(
        org: Org, monkeypatch: pytest.MonkeyPatch, isolated_env: Path) -> None:
    for name in [k for k in os.environ if k.startswith(("ANTHROPIC_", "CLAUDE_CODE_"))]:
        monkeypatch.delenv(name)
    claude_employee(org, "cl-1")
    org.commit()
    org.new("ask", "Go?", kind="human", assignee="ceo", question="Go?")
    org.new("later", "Later", assignee="cl-1", depends_on=["ask"])  # never dispatched here
    mono = [1000.0]
    d = Daemon(org.root, DaemonOptions(watch=False),
               clock=Clock(wall=time.time, monotonic=lambda: mono[0]))
    org.daemons.append(d)
    d.tick(time.time())
    assert d.breakers.held("claude") and "cl-1" in d.breakers["claude"].why
    login = isolated_env / ".claude" / ".credentials.json"
    login.parent.mkdir()
    login.write_text(json.dumps({"claudeAiOauth": {"accessToken": "sk-ant-oat01-test"}}))
    d.tick(time.time())
    assert d.breakers.held("claude")  # looked for again only every 30 s
    mono[0] += 31
    d.tick(time.time())
    assert not d.breakers.held("claude")
    assert f"Claude credentials found ({login})" in org.daemon_log()
    assert org.task("later").attempts == 0
