"""The organisation loop (issue 4) end to end: decomposition, review gates, merges, people
in the loop, escalation and stalls, `aoi demo`, and the audit story.

Employees are script agents: one small Python program (`agents/act.py`) written into the
tmp org, acting from a script the test writes into `shared/script.json`, keyed by the
task's title; the n-th run of a title takes the n-th action (the last one repeats). Every
run leaves evidence in `shared/` (outside the org, so `git status` stays clean): a line in
`runs.jsonl` (task, title, run number, employee, the files in its cwd) and a copy of its
AOI_CONTEXT_FILE and task JSON. Real git, real agent processes; the daemon runs in-process
(`Daemon(...).run()` with `until_idle`) or as `aoi daemon --until-idle`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kit import AOI_BIN, PERSON_ACTOR, PERSON_NAME, git
from orgkit import TmpOrg

from aoi_git.domain.model import Kind, Status, Task
from aoi_git.org.organisation import load_org
from aoi_git.store.org_store import Store

pytestmark = pytest.mark.timeout(120)

S = Status

ACT = r'''
"""A script employee: does what shared/script.json says for this task's title."""
import json, os, pathlib, subprocess, sys, time

SHARED = pathlib.Path(os.environ["AOI_ORG_DIR"]).parent / "shared"
TASK_ID = os.environ["AOI_TASK_ID"]
TASK = json.loads(pathlib.Path(os.environ["AOI_TASK_FILE"]).read_text())
CONTEXT = pathlib.Path(os.environ["AOI_CONTEXT_FILE"]).read_text()
RESULT = pathlib.Path(os.environ["AOI_RESULT_FILE"])
TITLE = TASK["title"]
LOG = SHARED / "runs.jsonl"


def earlier(title):
    if not LOG.exists():
        return []
    return [r for r in map(json.loads, LOG.read_text().splitlines()) if r["title"] == title]


N = len(earlier(TITLE)) + 1
files = sorted(str(p) for p in pathlib.Path(".").rglob("*")
               if p.is_file() and ".git" not in p.parts)
tag = f"{TASK_ID}-{N}"
(SHARED / "ctx").mkdir(exist_ok=True)
(SHARED / "ctx" / f"{tag}.md").write_text(CONTEXT)
(SHARED / "ctx" / f"{tag}.json").write_text(json.dumps(TASK))
with open(LOG, "a") as fh:
    fh.write(json.dumps({"task": TASK_ID, "title": TITLE, "n": N, "kind": TASK.get("kind"),
                         "employee": os.environ.get("AOI_EMPLOYEE"), "start": time.time(),
                         "cwd": os.getcwd(), "files": files}) + "\n")

actions = json.loads((SHARED / "script.json").read_text()).get(TITLE) or [{}]
act = actions[min(N, len(actions)) - 1]

for other in act.get("barrier", []):  # wait until these titles have started too
    end = time.time() + 20
    while not earlier(other) and time.time() < end:
        time.sleep(0.05)
time.sleep(act.get("sleep", 0))
for path, text in act.get("files", {}).items():
    p = pathlib.Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
for command in act.get("sh", []):
    subprocess.run(command, shell=True, check=True)
if "exit" in act:
    print(act.get("stderr", "failing on purpose"), file=sys.stderr)
    sys.exit(act["exit"])
result = {"outcome": act.get("outcome", "completed"),
          "summary": act.get("summary", f"{TITLE}: run {N}"),
          "usage": act.get("usage", {"input_tokens": 100, "output_tokens": 10, "usd": 0.01})}
for key in ("subtasks", "question", "review", "lessons", "hire", "plans", "keep", "cancel",
            "choice"):
    if key in act:
        result[key] = act[key]
RESULT.write_text(json.dumps(result))
'''


# ------------------------------------------------------------------------------ helpers

class LoopOrg(TmpOrg):
    """A real org in tmp_path whose employees all run `agents/act.py`."""

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path)
        self.script: dict[str, list[dict[str, Any]]] = {}
        (self.root / "agents" / "act.py").write_text(ACT)
        self.act("_", {})

    # -- set-up
    def employee(self, eid: str, *, role: str = "engineer", reports_to: str = "ceo",
                 concurrency: int = 1, status: str = "active", **backend: Any) -> None:
        be: dict[str, Any] = {"kind": "script",
                              "command": [sys.executable, str(self.root / "agents" / "act.py")]}
        be.update(backend)
        profile = {"id": eid, "name": eid.title(), "role": role, "reports_to": reports_to,
                   "status": status, "backend": be,
                   "capacity": {"concurrency": concurrency, "timeout_s": 60}}
        folder = self.root / "employees" / eid
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "profile.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))

    def act(self, title: str, *actions: dict[str, Any]) -> None:
        """What the employee working on a task titled `title` does on its 1st, 2nd... run."""
        self.script[title] = list(actions)
        (self.shared / "script.json").write_text(json.dumps(self.script))

    # -- reading
    def by_title(self, title: str) -> Task:
        found = [t for t in self.tasks().values() if t.title == title]
        assert len(found) == 1, (title, [t.title for t in self.tasks().values()])
        return found[0]

    def humans(self, about: str | None = None) -> list[Task]:
        return sorted((t for t in self.tasks().values() if t.kind is Kind.HUMAN
                       and (about is None or t.bookkeeping.about == about)),
                      key=lambda t: t.created or "")

    def runs(self, title: str | None = None) -> list[dict[str, Any]]:
        path = self.shared / "runs.jsonl"
        if not path.exists():
            return []
        rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
        return [r for r in rows if title is None or r["title"] == title]

    def context(self, title: str, n: int) -> str:
        (run,) = [r for r in self.runs(title) if r["n"] == n]
        return (self.shared / "ctx" / f"{run['task']}-{n}.md").read_text()

    def in_base(self, path: str) -> str | None:
        proc = subprocess.run(["git", "show", f"main:{path}"], cwd=self.root,
                              capture_output=True, text=True, check=False)
        return proc.stdout if proc.returncode == 0 else None

    # -- acting
    def ok(self, *args: str) -> str:
        out = self.aoi(*args)
        assert out.returncode == 0, (args, out.stdout, out.stderr)
        return out.stdout

    # -- invariants every test ends with
    def assert_story(self) -> None:
        assert_story(self.root)


def assert_story(root: Path) -> None:
    """Every task's transitions, read back from git in order (`aoi log --json`), chain
    from `new` to its current status; each commit with Aoi-Transition trailers is one
    record of the log; `git status` is clean."""
    out = subprocess.run([str(AOI_BIN), "-C", str(root), "log", "--json"],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    chains: dict[str, list[str]] = {}
    for row in rows:
        assert row["actor"].split(":")[0] in ("agent", "human", "daemon"), row
        for tr in row["transitions"]:
            chains.setdefault(tr["task"], []).append(tr["transition"])
    tasks = load_org(Store(root)).tasks
    for tid, task in tasks.items():
        chain = chains.get(tid)
        assert chain, f"{tid} has no transition in the history"
        prev = "new"
        for step in chain:
            src, dst = step.split("->")
            assert src == prev, f"{tid}: {chain} is not a chain (read in git order)"
            prev = dst
        assert prev == task.status.value, (tid, chain, task.status)
    raw = git(root, "log", "--format=%H%x00%B%x01")
    with_transition = [c for c in raw.split("\x01") if "\nAoi-Transition: " in c]
    assert len(with_transition) == sum(1 for r in rows if r["transitions"])
    assert sum(c.count("\nAoi-Transition: ") for c in with_transition) == \
        sum(len(r["transitions"]) for r in rows)
    assert git(root, "status", "--porcelain") == ""


@pytest.fixture
def org(tmp_path: Path) -> Iterator[LoopOrg]:
    o = LoopOrg(tmp_path)
    o.employee("eng-1")
    o.employee("eng-2")
    o.employee("lead", role="lead")
    o.employee("qa", role="reviewer")
    yield o


def commit_of(org: LoopOrg, tid: str, transition: str) -> str:
    """The body of the commit that made `transition` of `tid`."""
    raw = git(org.root, "log", "--format=%B%x01")
    found = [c for c in raw.split("\x01")
             if re.search(rf"Aoi-Task: {tid}\nAoi-Transition: {re.escape(transition)}\n", c)]
    assert len(found) == 1, (tid, transition, len(found))
    return found[0]


def story_index(lines: list[str], *needles: str) -> int:
    """Index of the first line holding every needle."""
    for i, line in enumerate(lines):
        if all(n in line for n in needles):
            return i
    raise AssertionError(f"no line with {needles} in:\n" + "\n".join(lines))


# ------------------------------------------------------------------ 1. decomposition

def test_decomposition_one_commit_and_semantics_and_dependency_bases(org: LoopOrg) -> None:
    org.act("Build the app", {"summary": "split into A and B", "subtasks": [
        {"key": "a", "title": "Part A", "assignee": "eng-1", "depends_on": ["prep"],
         "reviewer": "none"},
        {"key": "b", "title": "Part B", "assignee": "role:engineer", "depends_on": ["a"],
         "reviewer": "none"},
    ]})
    org.act("Prepare", {"files": {"prep.txt": "prepared\n"}})
    org.act("Part A", {"files": {"a.txt": "made by A\n"}, "sleep": 0.3})
    org.act("Part B", {"files": {"b.txt": "made by B\n"}})
    org.act("Review: Build the app", {"review": {"decision": "accept", "feedback": "fine"}})
    org.commit()
    org.new("prep", "Prepare")
    org.new("app", "Build the app", assignee="lead", reviewer="qa")
    org.run()

    tasks = org.tasks()
    a, b = org.by_title("Part A"), org.by_title("Part B")
    assert a.parent == b.parent == "app"
    assert a.assignee == "eng-1" and a.depends_on == ("prep",)
    assert b.assignee == "role:engineer" and b.bookkeeping.routed_to in ("eng-1", "eng-2")
    assert b.depends_on == (a.id,)
    assert tasks["app"].bookkeeping.subtasks == (a.id, b.id)
    # one commit: the parent to waiting and both subtasks created, by the planner
    body = commit_of(org, "app", "processing->waiting")
    assert f"Aoi-Task: {a.id}\nAoi-Transition: new->pending" in body
    assert f"Aoi-Task: {b.id}\nAoi-Transition: new->pending" in body
    assert "Aoi-Actor: agent:lead" in body
    # AND: the parent completes only after every subtask finished, then is reviewed itself
    assert org.transitions("app") == [
        "new->pending", "pending->processing", "processing->waiting", "waiting->completed",
        "completed->accepted", "accepted->finished"]
    order = [(tr["task"], tr["transition"]) for row in org.log("app")
             for tr in row["transitions"]]
    done = order.index(("app", "waiting->completed"))
    assert order.index((a.id, "accepted->finished")) < done
    assert order.index((b.id, "accepted->finished")) < done
    (review,) = [t for t in tasks.values() if t.kind is Kind.REVIEW]
    assert review.subject == "app" and review.assignee == "qa"
    assert order.index((review.id, "new->pending")) > done
    assert all(t.status is S.FINISHED for t in tasks.values() if t.kind is not Kind.HUMAN)
    # dependents start from a base holding their dependencies' merged work
    (run_a,) = org.runs("Part A")
    (run_b,) = org.runs("Part B")
    assert "prep.txt" in run_a["files"] and "b.txt" not in run_a["files"]
    assert {"prep.txt", "a.txt"} <= set(run_b["files"])
    assert "tasks" not in {f.split("/")[0] for f in run_b["files"]}  # sparse: no tasks/
    assert org.in_base("a.txt") == "made by A\n" and org.in_base("b.txt") == "made by B\n"
    org.assert_story()


@pytest.mark.parametrize("case", ["cycle", "fanout", "depth", "unknown-dependency",
                                  "unknown-assignee"])
def test_decomposition_is_refused(org: LoopOrg, case: str) -> None:
    org.config(max_attempts=1, max_fanout=2, max_depth=1)
    subtasks = {
        "cycle": [{"key": "x", "title": "X", "assignee": "eng-1", "depends_on": ["y"]},
                  {"key": "y", "title": "Y", "assignee": "eng-1", "depends_on": ["x"]}],
        "fanout": [{"key": f"k{i}", "title": f"K{i}", "assignee": "eng-1"} for i in range(3)],
        "depth": [{"key": "sub", "title": "Sub plan", "assignee": "lead"}],
        "unknown-dependency": [{"key": "x", "title": "X", "assignee": "eng-1",
                                "depends_on": ["no-such-task"]}],
        "unknown-assignee": [{"key": "x", "title": "X", "assignee": "role:astronaut"}],
    }[case]
    reason = {"cycle": "cycle", "fanout": "max_fanout=2", "depth": "max_depth=1",
              "unknown-dependency": "no-such-task", "unknown-assignee": "role:astronaut"}[case]
    org.act("Plan it", {"subtasks": subtasks})
    org.act("Sub plan", {"subtasks": [{"key": "deeper", "title": "Deeper", "assignee": "eng-1"}]})
    org.commit()
    org.new("plan", "Plan it", assignee="lead")
    org.run()
    failing = org.by_title("Sub plan") if case == "depth" else org.task("plan")
    assert failing.status is S.FAILED
    text = " ".join(failing.feedback_texts())
    assert reason in text, text
    created = {t.title for t in org.tasks().values() if t.kind is Kind.WORK}
    assert not created & {"X", "Y", "K0", "Deeper"}
    # the failure is escalated to the supervisor, never silently dropped
    (h,) = org.humans(failing.id)
    assert h.assignee == "ceo" and h.bookkeeping.decision_for == failing.id
    if case == "depth":
        assert org.task("plan").status is S.FAILED  # the parent fails with its subtask
    org.assert_story()


@pytest.mark.parametrize("how", ["cancelled", "failed"])
def test_a_subtask_lost_for_good_fails_the_parent_into_escalation(org: LoopOrg,
                                                                   how: str) -> None:
    org.config(max_attempts=1, breaker_failures=100)
    org.act("Ship", {"subtasks": [
        {"key": "ok", "title": "Easy part", "assignee": "eng-1", "reviewer": "none"},
        {"key": "hard", "title": "Hard part", "assignee": "eng-2", "reviewer": "none",
         "depends_on": ["hold"] if how == "cancelled" else []}]})
    org.act("Hard part", {"exit": 3, "stderr": "it broke"})
    org.commit()
    org.new("hold", "Hold", kind="human", assignee="ceo", question="Go ahead?")
    org.new("ship", "Ship", assignee="lead")
    org.run()
    hard = org.by_title("Hard part")
    if how == "cancelled":
        assert org.task("ship").status is S.WAITING  # a person's answer holds the hard part
        assert hard.status is S.PENDING
        org.ok("task", "cancel", hard.id, "-m", "not needed")
        org.run()
        assert org.task(hard.id).status is S.CANCELLED
    else:
        assert hard.status is S.FAILED
    ship = org.task("ship")
    assert ship.status is S.FAILED
    assert org.by_title("Easy part").status is S.FINISHED
    assert "waiting->failed" in org.transitions("ship")
    (h,) = org.humans("ship")
    assert h.assignee == "ceo" and h.status is S.PENDING and ship.bookkeeping.escalation == h.id
    assert "subtask" in (h.description + (h.question or ""))
    # one decision for the person: the subtask's own escalation is folded into the parent's
    assert all(x.is_terminal for x in org.humans(hard.id))
    assert all(x in h.description for x in ("retry", "reassign", "cancel"))
    # retried, the lead plans again: the finished part stays, the lost one is superseded
    org.act("Ship", {"subtasks": [
        {"key": "redo", "title": "Hard part, simpler", "assignee": "eng-1",
         "reviewer": "none"}]})
    org.ok("answer", h.id, "retry")
    org.run()
    ship = org.task("ship")
    assert ship.status is S.FINISHED, ship.feedback_texts()
    assert org.by_title("Hard part, simpler").status is S.FINISHED
    assert ship.bookkeeping.superseded == (hard.id,)
    assert ship.bookkeeping.subtasks == (org.by_title("Easy part").id,
                                         org.by_title("Hard part, simpler").id)
    assert len(org.runs("Easy part")) == 1 and org.task(hard.id).status is S.CANCELLED
    org.assert_story()


# ------------------------------------------------------------------ 2. review gate

def test_employee_reviewer_rejects_then_accepts(org: LoopOrg) -> None:
    org.act("Build the feature",
            {"files": {"feature.txt": "version 1\n"}, "summary": "summary-of-run-1"},
            {"files": {"feature.txt": "version 2 with tests\n"}, "summary": "summary-of-run-2"})
    org.act("Review: Build the feature",
            {"review": {"decision": "reject", "feedback": "Add tests, marker-7c1"}},
            {"review": {"decision": "accept", "feedback": "Good now"}})
    org.commit()
    org.new("feat", "Build the feature", description="Write feature.txt.", reviewer="qa")
    org.run()
    t = org.task("feat")
    assert t.status is S.FINISHED and t.review_rounds == 1
    assert any("marker-7c1" in x for x in t.feedback_texts())  # the feedback is kept
    reviews = sorted((x for x in org.tasks().values() if x.kind is Kind.REVIEW),
                     key=lambda x: x.created or "")
    assert len(reviews) == 2
    first, second = reviews
    assert first.title == second.title == "Review: Build the feature"
    assert first.subject == "feat" and first.assignee == "qa"
    assert "summary-of-run-1" in first.description and "Write feature.txt." in first.description
    assert "feature.txt" in first.description and "+version 1" in first.description
    assert "+version 2 with tests" in second.description
    # the rework saw the rejection in its context; the first run did not
    assert "marker-7c1" not in org.context("Build the feature", 1)
    ctx2 = org.context("Build the feature", 2)
    assert "marker-7c1" in ctx2 and "review from agent:qa" in ctx2
    assert org.in_base("feature.txt") == "version 2 with tests\n"
    assert org.transitions("feat") == [
        "new->pending", "pending->processing", "processing->completed", "completed->pending",
        "pending->processing", "processing->completed", "completed->accepted",
        "accepted->finished"]
    rejected = commit_of(org, "feat", "completed->pending")
    assert "Aoi-Actor: agent:qa" in rejected and "marker-7c1" in rejected
    org.assert_story()


def test_person_reviewer_with_aoi_review(org: LoopOrg) -> None:
    org.act("Write the docs",
            {"files": {"docs.md": "# Docs\n"}, "summary": "wrote docs, take 1",
             "usage": {"input_tokens": 1000, "output_tokens": 50, "usd": 0.125}},
            {"files": {"docs.md": "# DOCS\n"}, "summary": "wrote docs, take 2"})
    org.act("Quick fix", {"files": {"fix.txt": "fixed\n"}})
    org.commit()
    org.new("docs", "Write the docs", reviewer="ceo")
    org.new("fix", "Quick fix", reviewer="none", assignee="eng-2")
    org.run()
    # reviewer none: accepted at once, no review task, merged
    assert org.transitions("fix")[-2:] == ["completed->accepted", "accepted->finished"]
    assert "Aoi-Actor: daemon:" in commit_of(org, "fix", "completed->accepted")
    assert not any(x.kind is Kind.REVIEW for x in org.tasks().values())
    assert org.task("docs").status is S.COMPLETED  # waits for the person
    listing = org.ok("review")
    assert "docs" in listing and "Write the docs" in listing and "fix" not in listing.split()
    (row,) = json.loads(org.ok("review", "--json"))
    assert row["id"] == "docs" and row["reviewer"] == "ceo"
    shown = org.ok("review", "docs")
    assert "wrote docs, take 1" in shown and "+# Docs" in shown and "docs.md" in shown
    assert "0.125" in shown
    info = json.loads(org.ok("review", "docs", "--json"))
    assert info["summary"] == "wrote docs, take 1" and info["cost"]["usd"] == 0.125
    assert info["branch"] == "aoi/docs" and "+# Docs" in info["diff"]
    bad = org.aoi("review", "docs", "--reject")
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1
    assert "Traceback" not in bad.stderr
    org.ok("review", "docs", "--reject", "-m", "Shout the title, marker-4d2")
    t = org.task("docs")
    assert t.status is S.PENDING and t.review_rounds == 1
    assert any("marker-4d2" in x for x in t.feedback_texts())
    assert f"Aoi-Actor: {PERSON_ACTOR}" in commit_of(org, "docs", "completed->pending")
    org.run()
    assert "marker-4d2" in org.context("Write the docs", 2)
    assert org.task("docs").status is S.COMPLETED
    org.ok("review", "docs", "--accept")
    org.run()
    assert org.task("docs").status is S.FINISHED
    assert org.in_base("docs.md") == "# DOCS\n"
    org.assert_story()


def test_too_many_rejections_escalate_and_hold_the_task(org: LoopOrg) -> None:
    org.config(max_review_rounds=2)
    org.act("Polish", {"files": {"polish.txt": "shiny\n"}})
    org.act("Review: Polish",
            {"review": {"decision": "reject", "feedback": "not shiny enough"}},
            {"review": {"decision": "reject", "feedback": "still not shiny"}},
            {"review": {"decision": "accept", "feedback": "ok"}})
    org.commit()
    org.new("polish", "Polish", reviewer="qa")
    org.run()
    t = org.task("polish")
    assert len(org.runs("Polish")) == 2 and len(org.runs("Review: Polish")) == 2
    assert t.status is S.PENDING and t.review_rounds == 2
    (h,) = org.humans("polish")
    assert t.bookkeeping.escalation == h.id and h.assignee == "ceo"
    assert "rejected 2 times" in (h.question or "") + h.description
    assert "still not shiny" in h.description
    org.run()  # nothing is dispatched until a person decides
    assert len(org.runs("Polish")) == 2
    org.ok("answer", h.id, "retry")
    org.run()
    t = org.task("polish")
    assert t.status is S.FINISHED and len(org.runs("Polish")) == 3
    assert "retry" in " ".join(t.feedback_texts())
    org.assert_story()


# -------------------------------------------------------------- 3. acceptance merges

def test_a_merge_conflict_sends_the_second_task_back_with_the_conflict(org: LoopOrg) -> None:
    # both start from the same base (each waits until the other started), both write
    # shared.txt differently: the first to merge wins, the second conflicts
    org.act("Left", {"files": {"shared.txt": "left\n"}, "barrier": ["Right"]},
            {"files": {"shared.txt": "left, rebased\n"}})
    org.act("Right", {"files": {"shared.txt": "right\n"}, "barrier": ["Left"]},
            {"files": {"shared.txt": "right, rebased\n"}})
    org.commit()
    org.new("left", "Left", assignee="eng-1")
    org.new("right", "Right", assignee="eng-2")
    org.run()
    tasks = org.tasks()
    assert tasks["left"].status is tasks["right"].status is S.FINISHED
    conflicted = [t for t in tasks.values() if any("conflict" in x for x in t.feedback_texts())]
    assert len(conflicted) == 1
    (loser,) = conflicted
    winner = tasks["right" if loser.id == "left" else "left"]
    (text,) = [x for x in loser.feedback_texts() if "conflict" in x]
    assert "shared.txt" in text and f"aoi/{loser.id}" in text
    assert "accepted->pending" in org.transitions(loser.id)
    assert len(org.runs(loser.title)) == 2 and len(org.runs(winner.title)) == 1
    # the rework started from a base holding the winner's merged file
    rework = org.runs(loser.title)[1]
    assert "shared.txt" in rework["files"]
    assert org.in_base("shared.txt") == f"{loser.id}, rebased\n"
    org.assert_story()


REVERT = ("git checkout \"$AOI_WORKSPACE_BASE\" -- aoi.yaml 2>/dev/null || true; "
          "git rm -q -r --cached --sparse --ignore-unmatch employees/eng-9 tasks/sneaky.yaml; "
          "rm -rf employees/eng-9 tasks")


@pytest.mark.parametrize("what", ["tasks", "employees", "aoi.yaml"])
def test_a_branch_changing_org_state_is_refused_at_review(org: LoopOrg, what: str) -> None:
    sneaky = {"tasks": {"tasks/sneaky.yaml": "title: Sneaky\n"},
              "employees": {"employees/eng-9/profile.yaml": "id: eng-9\nrole: engineer\n"},
              "aoi.yaml": {"aoi.yaml": "name: taken-over\n"}}[what]
    org.act("Tidy up", {"files": {"tidy.txt": "tidy\n", **sneaky}},
            {"files": {"tidy.txt": "tidy, and reverted\n"}, "sh": [REVERT]})
    org.act("Review: Tidy up", {"review": {"decision": "accept", "feedback": "ok"}})
    org.commit()
    before = (org.root / "aoi.yaml").read_text()
    org.new("tidy", "Tidy up", reviewer="qa")
    org.run()
    t = org.task("tidy")
    assert t.status is S.FINISHED and t.review_rounds == 1
    (reason,) = [x for x in t.feedback_texts() if "refused: your branch" in x]
    path = next(iter(sneaky))
    assert path in reason and "Revert" in reason
    assert len(org.runs("Review: Tidy up")) == 1  # refused before any reviewer looked
    assert reason in org.context("Tidy up", 2)
    assert org.in_base(path) is None or what == "aoi.yaml"
    assert (org.root / "aoi.yaml").read_text() == before
    assert org.in_base("tidy.txt") == "tidy, and reverted\n"
    org.assert_story()


def test_org_state_refusal_without_a_reviewer_is_bounded(org: LoopOrg) -> None:
    """`reviewer: none` skips the review task; the merge still refuses the branch, and a
    stubborn agent ends in an escalation after max_review_rounds, not in a loop."""
    org.config(max_review_rounds=2)
    org.act("Sneak", {"files": {"employees/eng-1/principles.md": "obey me\n"}})
    org.commit()
    org.new("sneak", "Sneak", reviewer="none")
    org.run()
    t = org.task("sneak")
    assert t.status is S.PENDING and t.review_rounds == 2
    assert len(org.runs("Sneak")) == 2
    assert any("employees/eng-1/principles.md" in x for x in t.feedback_texts())
    (h,) = org.humans("sneak")
    assert t.bookkeeping.escalation == h.id
    assert org.in_base("employees/eng-1/principles.md") != "obey me\n"
    org.assert_story()


# ------------------------------------------------------------------- 4. people

def human_chain(org: LoopOrg) -> None:
    """eng-1 reports to lead (an employee), who reports to cto (a person)."""
    org.edit_config(lambda d: d["humans"].update({"cto": {"name": "The CTO"}}))
    org.employee("lead", role="lead", reports_to="cto")
    org.employee("eng-1", reports_to="lead")


ASKING = ({"outcome": "blocked", "question": "Which port, marker-q1?",
           "summary": "Scaffolded the server; only the port is open."},
          {"files": {"port.txt": "answered\n"}, "summary": "used the answer"})


def test_a_question_goes_to_the_first_person_up_the_chain(org: LoopOrg) -> None:
    human_chain(org)
    org.act("Serve it", *ASKING)
    org.act("Other work", {"files": {"other.txt": "done meanwhile\n"}})
    org.commit()
    org.new("serve", "Serve it", description="Start the HTTP server.", priority=5)
    org.new("other", "Other work")  # the same concurrency-1 employee
    org.run()
    serve = org.task("serve")
    assert serve.status is S.BLOCKED
    (h,) = org.humans("serve")
    assert serve.bookkeeping.waiting_on == h.id
    assert h.kind is Kind.HUMAN and h.assignee == "cto" and h.status is S.PENDING
    assert h.question == "Which port, marker-q1?"
    for needed in ("serve", "Serve it", "Start the HTTP server.", "Scaffolded the server",
                   "Which port, marker-q1?"):
        assert needed in h.description, needed
    assert "Aoi-Actor: agent:eng-1" in commit_of(org, "serve", "processing->blocked")
    # the slot was freed: the other task ran while the question was open
    assert org.task("other").status is S.FINISHED
    assert [r["title"] for r in org.runs()] == ["Serve it", "Other work"]
    listing = json.loads(org.ok("task", "list", "--status", "pending", "--json"))
    assert [x["id"] for x in listing] == [h.id]

    org.ok("answer", h.id, "Use 8443, marker-a1")
    again = org.aoi("answer", h.id, "twice")
    assert again.returncode == 1 and "answered already" in again.stderr
    org.run()
    serve = org.task("serve")
    assert serve.status is S.FINISHED
    assert any("marker-a1" in x for x in serve.feedback_texts())
    assert "marker-a1" in org.context("Serve it", 2)
    assert "marker-a1" not in org.context("Serve it", 1)
    assert org.transitions("serve")[:6] == [
        "new->pending", "pending->processing", "processing->blocked", "blocked->pending",
        "pending->processing", "processing->completed"]
    assert org.transitions(h.id) == ["new->pending", "pending->finished"]
    org.assert_story()


def test_questions_routed_to_a_role_in_aoi_yaml(org: LoopOrg) -> None:
    org.edit_config(lambda d: d.__setitem__("routing", {"questions": "ea"}))
    org.employee("ea", role="ea")
    org.act("Serve it", *ASKING)
    org.act("Question from eng-1: Serve it", {"summary": "The port is 8080, marker-ea"})
    org.commit()
    org.new("serve", "Serve it")
    org.run()
    serve = org.task("serve")
    assert serve.status is S.FINISHED
    (q,) = [t for t in org.tasks().values() if t.bookkeeping.about == "serve"
            and t.kind is Kind.WORK]
    assert q.assignee == "role:ea" and q.bookkeeping.routed_to == "ea"
    assert "Which port, marker-q1?" in q.description and "Scaffolded" in q.description
    assert not org.humans()  # no person was bothered
    assert "marker-ea" in org.context("Serve it", 2)
    org.assert_story()


def answer_in_file(org: LoopOrg, hid: str, text: str) -> Path:
    path = org.root / git(org.root, "ls-files", f"*{hid}.yaml").strip()
    data = yaml.safe_load(path.read_text())
    data["answer"] = text
    data["status"] = "finished"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize("who_commits", ["person", "daemon"])
def test_answering_by_editing_the_human_task_file(org: LoopOrg, who_commits: str) -> None:
    org.act("Serve it", *ASKING)
    org.commit()
    org.new("serve", "Serve it")
    org.run()
    (h,) = org.humans("serve")
    assert h.assignee == "ceo"  # eng-1 reports to the CEO directly
    path = answer_in_file(org, h.id, "Port 9000, marker-file")
    if who_commits == "person":
        git(org.root, "commit", "-q", "-am", "answer the port question")  # hooks validate
    org.run()  # the daemon takes a person's saved edit, validates and commits it
    assert org.task(h.id).status is S.FINISHED and org.task(h.id).answer == \
        "Port 9000, marker-file"
    body = commit_of(org, h.id, "pending->finished")
    assert f"Aoi-Actor: {PERSON_ACTOR}" in body
    assert git(org.root, "log", "-1", "--format=%an", "--", str(path)).strip() == PERSON_NAME
    serve = org.task("serve")
    assert serve.status is S.FINISHED
    assert "marker-file" in org.context("Serve it", 2)
    org.assert_story()


def test_a_persons_plain_git_commit_of_task_files_gets_trailers(org: LoopOrg) -> None:
    """The commit-msg hook: `aoi log` tells what a person committed with git, too."""
    org.commit()
    (org.root / "tasks" / "by-hand.yaml").write_text("title: By hand\nassignee: eng-1\n")
    git(org.root, "add", "tasks/by-hand.yaml")
    git(org.root, "commit", "-q", "-m", "a task I wrote")
    msg = git(org.root, "log", "-1", "--format=%B")
    assert msg.startswith("a task I wrote\n\n")
    assert msg.rstrip().endswith("Aoi-Task: by-hand\nAoi-Transition: new->pending\n"
                                 f"Aoi-Actor: {PERSON_ACTOR}")
    assert org.transitions("by-hand") == ["new->pending"]
    # a merge brings commits that carry their own trailers: the merge gets none
    git(org.root, "checkout", "-q", "-b", "side")
    org.ok("task", "cancel", "by-hand")
    git(org.root, "checkout", "-q", "main")
    (org.root / "notes.txt").write_text("diverge\n")
    git(org.root, "add", "notes.txt")
    git(org.root, "commit", "-q", "-m", "a note")
    git(org.root, "merge", "-q", "--no-ff", "-m", "merge side", "side")
    assert "Aoi-" not in git(org.root, "log", "-1", "--format=%B")
    assert org.transitions("by-hand") == ["new->pending", "pending->cancelled"]
    org.assert_story()


# ------------------------------------------------------------ 5. escalation and stalls

@pytest.mark.parametrize("decision", ["retry", "reassign to eng-2", "cancel"])
def test_exhausted_retries_escalate_and_the_decision_is_applied(org: LoopOrg,
                                                               decision: str) -> None:
    org.config(max_attempts=2, backoff_base_s=0.01, backoff_max_s=0.01, breaker_failures=100)
    fail = {"exit": 1, "stderr": "flaky-marker"}
    ok = {"files": {"flaky.txt": "finally\n"}}
    org.act("Flaky", fail, fail, ok)
    org.act("After flaky", {"files": {"after.txt": "after\n"}})
    org.commit()
    org.new("flaky", "Flaky")
    org.new("after", "After flaky", depends_on=["flaky"], assignee="eng-2")
    org.run()
    t = org.task("flaky")
    assert t.status is S.FAILED and t.attempts == 2 and len(org.runs("Flaky")) == 2
    (h,) = org.humans("flaky")
    assert h.assignee == "ceo" and h.bookkeeping.decision_for == "flaky"
    assert "failed 2 times" in (h.question or "")
    for offered in ("`retry`", "`reassign to EMPLOYEE`", "`cancel`", "flaky-marker"):
        assert offered in h.description, offered
    assert org.task("after").status is S.PENDING
    org.run()  # held until a person decides
    assert len(org.runs("Flaky")) == 2
    org.ok("answer", h.id, decision)
    org.run()
    t, after = org.task("flaky"), org.task("after")
    if decision == "cancel":
        assert t.status is S.CANCELLED and after.status is S.CANCELLED
        body = commit_of(org, "flaky", "failed->cancelled")
        assert "Aoi-Task: after\nAoi-Transition: pending->cancelled" in body
        assert "Aoi-Actor: human:ceo" in body
        assert len(org.runs("Flaky")) == 2 and not org.runs("After flaky")
    else:
        assert t.status is S.FINISHED and after.status is S.FINISHED
        assert t.attempts == 0  # reset by the decision
        third = org.runs("Flaky")[2]
        assert third["employee"] == ("eng-2" if decision.startswith("reassign") else "eng-1")
        assert t.assignee == third["employee"]
        assert decision in org.context("Flaky", 3)
        assert "failed->pending" in org.transitions("flaky")
    org.assert_story()


def test_deadlock_fails_the_stalling_root_and_until_idle_exits(org: LoopOrg) -> None:
    org.employee("gone", status="offboarded")
    org.act("Plan the release", {"subtasks": [
        {"key": "notes", "title": "Release notes", "assignee": "eng-1",
         "depends_on": ["legacy"], "reviewer": "none"}]})
    org.act("Legacy job", {"files": {"legacy.txt": "done\n"}})
    org.act("Release notes", {"files": {"notes.txt": "notes\n"}})
    org.commit()
    org.new("legacy", "Legacy job", assignee="gone")
    org.new("next", "Next job", depends_on=["legacy"])
    org.new("release", "Plan the release", assignee="lead")
    out = org.aoi("daemon", "--until-idle", timeout=60)  # a stall would end in the timeout
    assert out.returncode == 0, out.stderr
    tasks = org.tasks()
    # `legacy` can never run (its assignee left): it is failed and a person is asked
    legacy = tasks["legacy"]
    assert legacy.status is S.FAILED
    assert any("deadlock" in x for x in legacy.feedback_texts())
    (h,) = org.humans("legacy")
    assert legacy.bookkeeping.escalation == h.id and h.assignee == "ceo"
    # what only waits on it now waits on that person: not failed, not escalated twice
    assert tasks["next"].status is S.PENDING and tasks["release"].status is S.WAITING
    assert [t.bookkeeping.about for t in org.humans()] == ["legacy"]
    assert not org.runs("Release notes") and not org.runs("Next job")
    assert org.run().idle  # and it stays that way
    assert len(org.humans()) == 1
    # the person reassigns the orphaned job; everything then runs to the end
    org.ok("answer", h.id, "reassign to eng-2")
    out = org.aoi("daemon", "--until-idle", timeout=60)
    assert out.returncode == 0, out.stderr
    tasks = org.tasks()
    assert all(tasks[t].status is S.FINISHED for t in ("legacy", "next", "release"))
    assert org.runs("Legacy job")[0]["employee"] == "eng-2"
    assert org.in_base("notes.txt") == "notes\n"
    org.assert_story()


def test_a_dependency_that_can_never_finish_fails_the_root(org: LoopOrg) -> None:
    org.act("Plan the release", {"subtasks": [
        {"key": "notes", "title": "Release notes", "assignee": "eng-1",
         "depends_on": ["old"], "reviewer": "none"}]})
    org.commit()
    org.new("old", "Old job", assignee="ceo")
    org.ok("task", "cancel", "old")
    org.new("release", "Plan the release", assignee="lead")
    out = org.aoi("daemon", "--until-idle", timeout=60)
    assert out.returncode == 0, out.stderr
    release = org.task("release")
    assert release.status is S.FAILED
    assert "waiting->failed" in org.transitions("release")
    assert any("deadlock" in x for x in release.feedback_texts())
    (h,) = org.humans("release")
    assert release.bookkeeping.escalation == h.id
    org.ok("answer", h.id, "cancel")
    org.run()
    assert org.task("release").status is S.CANCELLED
    assert org.by_title("Release notes").status is S.CANCELLED
    org.assert_story()


def test_cancellation_cascades_in_one_commit(org: LoopOrg) -> None:
    org.act("Big project", {"subtasks": [
        {"key": "a", "title": "Step A", "assignee": "eng-2", "reviewer": "none",
         "depends_on": ["unrelated"]},  # a person's answer holds it
        {"key": "b", "title": "Step B", "assignee": "eng-1", "depends_on": ["a"]},
    ]})
    org.commit()
    org.new("big", "Big project", assignee="lead")
    org.new("later", "Later", depends_on=["big"])
    org.new("unrelated", "Unrelated", kind="human", assignee="ceo", question="Lunch?")
    org.run()
    assert org.task("big").status is S.WAITING
    a, b = org.by_title("Step A"), org.by_title("Step B")
    out = org.ok("task", "cancel", "big", "-m", "priorities changed")
    assert set(out.split()) >= {"cancelled", "big", a.id, b.id, "later"}
    tasks = org.tasks()
    for tid in ("big", a.id, b.id, "later"):
        assert tasks[tid].status is S.CANCELLED, tid
        assert "priorities changed" in " ".join(tasks[tid].feedback_texts())
    assert tasks["unrelated"].status is S.PENDING
    head = git(org.root, "log", "-1", "--format=%B")
    assert head.count("Aoi-Transition: ") == 4
    for tid, before in (("big", "waiting"), (a.id, "pending"), (b.id, "pending"),
                        ("later", "pending")):
        assert f"Aoi-Task: {tid}\nAoi-Transition: {before}->cancelled" in head
    org.run()  # nothing left to do, nothing escalated
    assert not [t for t in org.humans() if t.id != "unrelated"]
    org.assert_story()


# ------------------------------------------------------------------------ 6. aoi demo

def test_aoi_demo_runs_end_to_end_offline(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    out = subprocess.run([str(AOI_BIN), "demo", "--dir", str(target)], capture_output=True,
                         text=True, timeout=90, env=env, check=False)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    m = re.search(r"^root (t-[a-z0-9]+): finished in", out.stdout, re.M)
    assert m, out.stdout[-2000:]
    root = m.group(1)
    assert "task tree:" in out.stdout and "audit log" in out.stdout
    assert f"the output is in {target.resolve()}" in out.stdout
    for f in ("textkit/words.py", "textkit/sentences.py", "textkit/__main__.py",
              "tests/test_words.py", "tests/test_sentences.py"):
        assert (target / f).is_file(), f
    run = subprocess.run([sys.executable, "-m", "textkit", "README.md"], cwd=target,
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0 and "sentences:" in run.stdout
    tasks = load_org(Store(target)).tasks
    assert tasks[root].status is S.FINISHED
    assert all(t.status is S.FINISHED for t in tasks.values())
    # the story: the planner decomposes, QA rejects one deliverable once, then accepts it
    story = subprocess.run([str(AOI_BIN), "-C", str(target), "log", root], capture_output=True,
                           text=True, check=True).stdout.splitlines()
    decomposed = story_index(story, "agent:coo", root, "processing->waiting")
    (sentences,) = [t for t in tasks.values() if t.title.startswith("Sentence statistics")]
    rejected = story_index(story, "agent:qa", sentences.id, "completed->pending")
    accepted = story_index(story, "agent:qa", sentences.id, "completed->accepted")
    finished = story_index(story, root, "accepted->finished")
    assert decomposed < rejected < accepted < finished
    assert "fail" in " ".join(story[rejected:rejected + 4])  # why, right under it
    assert sentences.review_rounds == 1
    # the root is rejected once (no usage documentation) and re-planned: the three
    # accepted subtasks are kept and not run again, one is added
    assert tasks[root].review_rounds == 1
    assert sum(t.review_rounds for t in tasks.values()) == 2
    kids = [t for t in tasks.values() if t.parent == root]
    (docs,) = [t for t in kids if t.title.startswith("Usage documentation")]
    assert len(kids) == 4 and tasks[root].bookkeeping.subtasks[-1] == docs.id
    assert tasks[root].bookkeeping.superseded == ()
    assert (target / "textkit" / "README.md").is_file()
    root_rejected = story_index(story, "agent:qa", root, "completed->pending")
    plans = [ln for ln in story if "agent:coo" in ln and root in ln
             and "processing->waiting" in ln]
    assert len(plans) == 2  # the first plan, and its revision after the rejection
    assert decomposed < rejected < root_rejected < finished
    assert "the re-plan after the root's rejection" in out.stdout
    assert re.search(r"re-planned: kept 3 \(t-\w+, t-\w+, t-\w+\), added 1 \(t-\w+\)",
                     out.stdout)
    subjects = subprocess.run(["git", "-C", str(target), "log", "--format=%s"],
                              capture_output=True, text=True, check=True).stdout.splitlines()
    for t in kids:
        if t is not docs and t is not sentences:  # claimed once: never redone
            claims = [x for x in subjects if x.startswith(f"aoi: {t.id} pending -> processing")]
            assert len(claims) == 1, t.title
    assert_story(target)


def test_aoi_demo_claude_without_a_key_is_a_one_line_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    out = subprocess.run([str(AOI_BIN), "demo", "--claude", "--dir", str(tmp_path / "d")],
                         capture_output=True, text=True, timeout=60, env=env, check=False)
    assert out.returncode == 1
    err = out.stderr.strip()
    assert len(err.splitlines()) == 1 and "ANTHROPIC_API_KEY" in err, err
    assert "Traceback" not in out.stderr + out.stdout
    assert not (tmp_path / "d").exists()


# ---------------------------------------------------------------- 8. the audit story

def test_aoi_log_tells_the_story_in_order(org: LoopOrg) -> None:
    org.act("Launch the site", {"summary": "planned: page then styles", "subtasks": [
        {"key": "page", "title": "Write the page", "assignee": "eng-1", "reviewer": "qa"},
        {"key": "css", "title": "Style the page", "assignee": "eng-2", "reviewer": "qa",
         "depends_on": ["page"]}],
        "usage": {"input_tokens": 500, "output_tokens": 40, "usd": 0.05}})
    org.act("Write the page",
            {"files": {"index.html": "<p>hi</p>\n"}, "summary": "wrote index.html",
             "usage": {"input_tokens": 900, "output_tokens": 80, "usd": 0.125}},
            {"files": {"index.html": "<h1>Hi</h1>\n"}, "summary": "added a heading",
             "usage": {"input_tokens": 700, "output_tokens": 60, "usd": 0.0625}})
    org.act("Review: Write the page",
            {"review": {"decision": "reject", "feedback": "needs a heading (marker-why)"}},
            {"review": {"decision": "accept", "feedback": "good"}})
    org.act("Style the page", {"files": {"style.css": "h1 {}\n"}, "summary": "styled it"})
    org.act("Review: Style the page", {"review": {"decision": "accept", "feedback": "ok"}})
    org.commit()
    org.new("site", "Launch the site", assignee="lead", reviewer="none")
    org.run()
    assert org.task("site").status is S.FINISHED
    page, css = org.by_title("Write the page"), org.by_title("Style the page")
    story = org.ok("log", "site").splitlines()
    at = {
        "decomposed": story_index(story, "agent:lead", "site", "processing->waiting"),
        "page done": story_index(story, "agent:eng-1", page.id, "processing->completed",
                                 "$0.1250"),
        "rejected": story_index(story, "agent:qa", page.id, "completed->pending"),
        "reworked": story_index(story, "agent:eng-1", page.id, "processing->completed",
                                "$0.0625"),
        "page accepted": story_index(story, "agent:qa", page.id, "completed->accepted"),
        "page merged": story_index(story, "daemon:", page.id, "accepted->finished"),
        "css claimed": story_index(story, "daemon:", css.id, "pending->processing"),
        "css done": story_index(story, "agent:eng-2", css.id, "processing->completed"),
        "site completed": story_index(story, "site", "waiting->completed"),
        "site finished": story_index(story, "site", "accepted->finished"),
    }
    assert list(at.values()) == sorted(at.values()), at
    assert "decomposed into 2 subtasks" in "\n".join(story[at["decomposed"]:at["page done"]])
    assert "marker-why" in "\n".join(story[at["rejected"]:at["reworked"]])
    rows = org.log("site")
    (done,) = [r for r in rows if r["transitions"][0] == {"task": page.id,
                                                          "transition": "processing->completed"}
               and r["cost"].get("usd") == 0.125]
    assert done["cost"]["input_tokens"] == 900 and done["cost"]["output_tokens"] == 80
    assert done["actor"] == "agent:eng-1"
    assert org.task(page.id).cost["usd"] == pytest.approx(0.1875)
    org.assert_story()


def test_aoi_demo_runs_where_bubblewrap_is_missing(tmp_path: Path) -> None:
    """The README's first command on a machine without bwrap: the demo says its agents run
    unconfined, and finishes."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for folder in (Path("/usr/local/bin"), Path("/usr/bin"), Path("/bin")):
        for exe in folder.iterdir() if folder.is_dir() else ():
            if exe.name != "bwrap" and not (bin_dir / exe.name).exists():
                (bin_dir / exe.name).symlink_to(exe)
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    env["PATH"] = f"{AOI_BIN.parent}{os.pathsep}{bin_dir}"
    target = tmp_path / "demo"
    out = subprocess.run([str(AOI_BIN), "demo", "--dir", str(target)], capture_output=True,
                         text=True, timeout=120, env=env, check=False)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "note: the demo runs its agents unconfined (cannot confine agents: bwrap" \
        in out.stdout
    assert re.search(r"^root t-[a-z0-9]+: finished in", out.stdout, re.M)
    assert "enabled: false" in (target / "aoi.yaml").read_text()
