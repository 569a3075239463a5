"""Re-planning keeps what was done, and exploring alternative plans before executing
(issue 16, points 4 and 5): real daemon, real git, script agents (`agents/act.py` of
test_org_loop), the CLI as a person uses it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from kit import git
from test_org_loop import LoopOrg, answer_in_file, commit_of
from test_writer_schema import assert_written_files_fit_their_schemas

from aoi_git.domain.model import Kind, Status, Task
from aoi_git.domain.result import PlanChoice
from aoi_git.evolution import plan_history
from aoi_git.org import plan_choice
from aoi_git.store.org_store import Store

pytestmark = pytest.mark.timeout(120)

S = Status
PARTS = [{"key": k, "title": f"Part {k.upper()}", "assignee": "eng-1", "reviewer": "none",
          "description": f"Write {k}.txt"} for k in ("a", "b", "c")]


@pytest.fixture
def org(tmp_path: Path) -> Iterator[LoopOrg]:
    o = LoopOrg(tmp_path)
    o.employee("eng-1", concurrency=2)
    o.employee("lead", role="lead")
    o.employee("qa", role="reviewer")
    yield o


def test_a_rejected_decomposed_root_keeps_its_accepted_subtasks(org: LoopOrg) -> None:
    """The found bug: a rejected root planned again from scratch ran Part A, B and C twice.
    Now the planner sees its plan, the same titles are the same subtasks, and only what
    is added runs."""
    org.act("Build the app", {"summary": "three parts", "subtasks": PARTS},
            {"summary": "keep A-C, add D", "subtasks": [*PARTS, {
                "key": "d", "title": "Part D", "assignee": "eng-1", "reviewer": "none",
                "depends_on": ["a"]}]})
    for k in "abcd":
        org.act(f"Part {k.upper()}", {"files": {f"{k}.txt": f"{k}\n"}})
    org.act("Review: Build the app",
            {"review": {"decision": "reject", "feedback": "Part D is missing (marker-d)"}},
            {"review": {"decision": "accept", "feedback": "complete"}})
    org.commit()
    org.new("app", "Build the app", assignee="lead", reviewer="qa")
    org.run()
    app = org.task("app")
    assert app.status is S.FINISHED, app.feedback_texts()
    work = [t for t in org.tasks().values() if t.parent == "app"]
    assert sorted(t.title for t in work) == ["Part A", "Part B", "Part C", "Part D"]
    for k in "ABC":  # accepted work is never redone
        assert len(org.runs(f"Part {k}")) == 1
    a, d = org.by_title("Part A"), org.by_title("Part D")
    assert app.bookkeeping.subtasks == (*(org.by_title(f"Part {k}").id for k in "ABC"), d.id)
    assert app.bookkeeping.superseded == () and d.depends_on == (a.id,)
    assert org.in_base("d.txt") == "d\n"
    # the planner's second context showed the plan: every subtask, merged, and why
    ctx = org.context("Build the app", 2)
    assert "## Your plan so far" in ctx and "marker-d" in ctx
    for k in "ABC":
        assert f"{org.by_title(f'Part {k}').id} [finished, merged] @eng-1 Part {k}" in ctx
    assert "## Your plan so far" not in org.context("Build the app", 1)
    log = git(org.root, "log", "--format=%B%x01")
    (replan,) = [c for c in log.split("\x01") if "re-planned:" in c]
    assert f"re-planned: kept 3 ({', '.join(app.bookkeeping.subtasks[:3])}), added 1 ({d.id})" \
        in replan and "Aoi-Actor: agent:lead" in replan
    tree = org.ok("tree", "app")
    assert tree.count("Part A") == 1 and "superseded" not in tree
    org.assert_story()


@pytest.mark.parametrize("how", ["cancel", "keep"])
def test_a_failed_plan_is_revised_keeping_or_cancelling_subtasks(org: LoopOrg, how: str,
                                                                 tmp_path: Path) -> None:
    org.config(max_attempts=1, breaker_failures=100)
    org.act("Ship", {"subtasks": [
        {"key": "ok", "title": "Easy part", "assignee": "eng-1", "reviewer": "none"},
        {"key": "hard", "title": "Hard part", "assignee": "eng-1", "reviewer": "none"}]})
    org.act("Easy part", {"files": {"easy.txt": "easy\n"}})
    org.act("Hard part", {"exit": 3, "stderr": "it broke (marker-hard)"},
            {"files": {"hard.txt": "hard at last\n"}})
    org.act("Hard part, simpler", {"files": {"hard.txt": "simple\n"}})
    org.commit()
    org.new("ship", "Ship", assignee="lead")
    org.run()
    ship, hard = org.task("ship"), org.by_title("Hard part")
    assert ship.status is S.FAILED and hard.status is S.FAILED
    (h,) = [x for x in org.humans("ship") if not x.is_terminal]
    if how == "cancel":
        org.act("Ship", {"cancel": [hard.id], "subtasks": [
            {"key": "redo", "title": "Hard part, simpler", "assignee": "eng-1",
             "reviewer": "none"}]})
    else:
        org.act("Ship", {"keep": [hard.id]})
    org.ok("answer", h.id, "retry")
    org.run()
    ship = org.task("ship")
    assert ship.status is S.FINISHED, ship.feedback_texts()
    easy = org.by_title("Easy part")
    assert len(org.runs("Easy part")) == 1 and easy.status is S.FINISHED
    ctx = org.context("Ship", 2)
    assert f"{hard.id} [failed] @eng-1 Hard part" in ctx and "marker-hard" in ctx
    hard = org.task(hard.id)
    if how == "cancel":
        simpler = org.by_title("Hard part, simpler")
        assert ship.bookkeeping.subtasks == (easy.id, simpler.id)
        assert ship.bookkeeping.superseded == (hard.id,)
        assert hard.status is S.CANCELLED and org.in_base("hard.txt") == "simple\n"
        assert "superseded by the re-plan of ship" in commit_of(org, hard.id,
                                                                 "failed->cancelled")
        tree = org.ok("tree", "ship")
        assert f"{hard.id} [cancelled, superseded]" in tree
        assert "Daemon" not in tree
    else:
        assert ship.bookkeeping.subtasks == (easy.id, hard.id)
        assert hard.status is S.FINISHED and org.in_base("hard.txt") == "hard at last\n"
        assert len(org.runs("Hard part")) == 2
    org.assert_story()
    assert_written_files_fit_their_schemas(org.root, tmp_path)  # and the pre-receive hook


def test_a_revision_naming_no_subtask_of_the_plan_is_refused(org: LoopOrg) -> None:
    org.config(max_attempts=1)
    org.act("Plan it", {"keep": ["t-nope"]})
    org.commit()
    org.new("plan", "Plan it", assignee="lead")
    org.run()
    t = org.task("plan")
    assert t.status is S.FAILED
    assert "'t-nope' is not a subtask of plan's current plan" in " ".join(t.feedback_texts())
    org.assert_story()


PLANS = [
    {"title": "one piece", "summary": "one engineer does it all",
     "subtasks": [{"key": "all", "title": "Site in one go", "assignee": "eng-1",
                   "reviewer": "none"}]},
    {"title": "two pieces", "summary": "pages and styles in parallel",
     "subtasks": [{"key": "pages", "title": "Pages", "assignee": "eng-1", "reviewer": "none"},
                  {"key": "styles", "title": "Styles", "assignee": "eng-1",
                   "reviewer": "none"}]},
]


def test_an_employee_reviewer_chooses_a_plan_before_any_subtask_starts(
        org: LoopOrg, tmp_path: Path) -> None:
    org.act("Build the site", {"summary": "two ways to do it", "plans": PLANS})
    org.act("Build the site again", {"summary": "as before", "plans": PLANS})
    org.act("Choose a plan: Build the site",
            {"summary": "two pieces", "choice": {"plan": 2, "reason": "parallel (marker-c)"}})
    org.act("Choose a plan: Build the site again",
            {"choice": {"plan": 1, "reason": "small"}})
    org.act("Review: Build the site", {"review": {"decision": "accept", "feedback": "ok"}})
    org.act("Review: Build the site again", {"review": {"decision": "accept"}})
    for title in ("Pages", "Styles", "Site in one go"):
        org.act(title, {"files": {f"{title[:4].lower()}.txt": "x\n"}})
    org.commit()
    org.new("site", "Build the site", assignee="lead", reviewer="qa", labels=["web"])
    org.run()
    site = org.task("site")
    assert site.status is S.FINISHED, site.feedback_texts()
    titles = sorted(t.title for t in org.tasks().values() if t.parent == "site")
    assert titles == ["Pages", "Styles"]
    (choice,) = [t for t in org.tasks().values()
                 if t.bookkeeping.choice_for == "site"]
    assert choice.kind is Kind.REVIEW and choice.assignee == "qa"
    assert "Plan 2: two pieces" in choice.description
    assert site.result is not None
    assert site.result["chosen"] == {"plan": 2, "title": "two pieces",
                                     "reason": "parallel (marker-c)", "by": "agent:qa"}
    assert [p["title"] for p in site.result["plans"]] == ["one piece", "two pieces"]
    # the choice and its reason are one commit, the reviewer's, creating the subtasks;
    # nothing started before it
    body = commit_of(org, choice.id, "processing->completed")
    assert "Aoi-Actor: agent:qa" in body and "Aoi-Plan: site 2" in body
    assert "marker-c" in body and "Aoi-Transition: new->pending" in body
    rows = org.log("site")

    def row_of(tid: str, transition: str) -> int:
        return next(i for i, row in enumerate(rows) for tr in row["transitions"]
                    if (tr["task"], tr["transition"]) == (tid, transition))

    chose = row_of(choice.id, "processing->completed")
    pages = org.by_title("Pages").id
    assert row_of(pages, "new->pending") == chose
    assert row_of(pages, "pending->processing") > chose
    # the retrospective records the choice and how it went
    retro = next((org.root / "retros").rglob("site.md")).read_text()
    head = retro.split("\n---", 1)[0]
    plan_line = next(x for x in head.splitlines() if x.startswith("plan: "))
    rec = json.loads(plan_line[6:])
    assert rec["plan"] == "two pieces" and rec["alternatives"] == 2
    assert rec["subtasks"] == 2 and rec["status"] == "finished" and rec["rounds"] == 1
    assert "## The plan" in retro and "marker-c" in retro
    # a similar later project: its planner's context tells how the past plan went
    org.new("again", "Build the site again", assignee="lead", reviewer="qa", labels=["web"])
    org.run()
    assert org.task("again").status is S.FINISHED
    ctx = org.context("Build the site again", 1)
    assert "## How similar past plans went" in ctx
    assert 'site "Build the site": finished, 2 subtasks; plan "two pieces" chosen of 2' in ctx
    assert "## How similar past plans went" not in org.context("Build the site", 1)
    stats = org.ok("stats")
    assert "plan shapes" in stats and "2 subtasks, chosen of several" in stats
    assert "1 subtasks, chosen of several" in stats
    shapes = json.loads(org.ok("stats", "--json"))["plan_shapes"]
    assert {s["shape"] for s in shapes} == {"1 subtasks, chosen of several",
                                            "2 subtasks, chosen of several"}
    org.assert_story()
    assert_written_files_fit_their_schemas(org.root, tmp_path)


@pytest.mark.parametrize("how", ["answer", "review-choose", "bad-answer", "file-edit"])
def test_a_person_chooses_a_plan(org: LoopOrg, how: str, tmp_path: Path) -> None:
    org.act("Build the site", {"plans": PLANS})
    for title in ("Pages", "Styles", "Site in one go"):
        org.act(title, {"files": {f"{title[:4].lower()}.txt": "x\n"}})
    org.commit()
    org.new("site", "Build the site", assignee="lead", reviewer="ceo")
    org.run()
    site = org.task("site")
    assert site.status is S.WAITING and site.bookkeeping.plan_choice
    (h,) = org.humans("site")
    assert h.assignee == "ceo" and h.bookkeeping.choice_for == "site"
    assert not [t for t in org.tasks().values() if t.parent == "site"]
    shown = org.ok("review", "site")
    assert "Plan 1: one piece" in shown and "--choose" in shown
    bad = org.aoi("review", "site", "--choose", "5")
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1
    assert "plan 5 does not exist" in bad.stderr
    if how == "answer":
        org.ok("answer", h.id, "1: smaller (marker-p)")
    elif how == "bad-answer":
        org.ok("answer", h.id, "whichever")
        org.run()
        again = [x for x in org.humans("site") if not x.is_terminal]
        assert len(again) == 1 and "names no plan" in again[0].description
        org.ok("answer", again[0].id, "one piece, smaller (marker-p)")
    elif how == "file-edit":  # the person writes the answer into the task file
        answer_in_file(org, h.id, "1 - smaller (marker-p)")
    else:
        org.ok("review", "site", "--choose", "1", "-m", "smaller (marker-p)")
        assert org.task(h.id).status is S.FINISHED
    org.run()
    site = org.task("site")
    assert site.status is S.COMPLETED, site.feedback_texts()  # now the CEO reviews it
    (only,) = [t for t in org.tasks().values() if t.parent == "site"]
    assert only.title == "Site in one go" and only.status is S.FINISHED
    assert site.result is not None and site.result["chosen"]["plan"] == 1
    assert "marker-p" in site.result["chosen"]["reason"]
    assert site.result["chosen"]["by"].startswith("human:")
    org.assert_story()
    assert_written_files_fit_their_schemas(org.root, tmp_path)


@pytest.mark.parametrize(("text", "plan", "reason"), [
    ("2: fewer hand-offs", 2, "fewer hand-offs"),
    ("plan 1 - smaller", 1, "smaller"),
    ("#2", 2, ""),
    ("Two pieces, because parallel", 2, "because parallel"),
    ("3: there is no third", None, None),
    ("whichever", None, None),
    ("", None, None),
])
def test_a_persons_answer_names_a_plan_by_number_or_title(text: str, plan: int | None,
                                                        reason: str | None) -> None:
    choice = plan_choice.parse_answer(text, PLANS)
    if plan is None:
        assert choice is None
    else:
        assert choice == PlanChoice(plan, reason or "")


def test_plan_records_are_read_from_retrospectives_and_bad_ones_skipped(org: LoopOrg) -> None:
    good = plan_history.PlanRecord(root="t-good", title="Build the site", labels=("web",),
                                   plan="two pieces", alternatives=2, subtasks=2, rounds=1,
                                   usd=0.5, lead_time_s=90.0, status="finished")
    retros = org.root / "retros"
    (retros / "g" / "o").mkdir(parents=True)
    (retros / "g" / "o" / "t-good.md").write_text(
        f"---\nroot: t-good\n{plan_history.front_matter_value(good)}\n---\n\n# Retro\n")
    (retros / "b" / "a").mkdir(parents=True)
    (retros / "b" / "a" / "t-bad.md").write_text("---\nroot: t-bad\nplan: {not json\n---\n")
    (retros / "t-flat.md").write_text("# no front matter\nplan: {}\n")
    org.commit()
    records = plan_history.read_records(Store(org.root).head())
    assert records == [good]
    mine = Task(id="t-new", title="Build the site again", labels=("web",))
    assert plan_history.similar(records, mine) == [good]
    assert plan_history.similar(records, Task(id="t-x", title="Unrelated work")) == []
    (shape,) = plan_history.shapes(records)
    assert (shape.shape, shape.plans, shape.finished, shape.mean_usd) == \
        ("2 subtasks, chosen of several", 1, 1, 0.5)


@pytest.mark.parametrize("coo", ["active", "offboarded"])
def test_with_no_reviewer_the_coo_chooses_or_else_the_first_plan_is_carried_out(
        org: LoopOrg, coo: str) -> None:
    org.employee("coo", role="coo", status=coo)
    org.act("Build the site", {"plans": PLANS})
    org.act("Choose a plan: Build the site", {"choice": {"plan": 2, "reason": "parallel"}})
    for title in ("Pages", "Styles", "Site in one go"):
        org.act(title, {"files": {f"{title[:4].lower()}.txt": "x\n"}})
    org.commit()
    org.new("site", "Build the site", assignee="lead", reviewer="none")
    org.run()
    site = org.task("site")
    assert site.status is S.FINISHED, site.feedback_texts()
    choices = [t for t in org.tasks().values() if t.bookkeeping.choice_for]
    kids = sorted(t.title for t in org.tasks().values() if t.parent == "site")
    assert site.result is not None
    body = commit_of(org, "site", "processing->waiting")
    assert "offered 2 alternative plans" in body
    if coo == "active":
        assert [t.assignee for t in choices] == ["coo"] and kids == ["Pages", "Styles"]
        assert site.result["chosen"]["by"] == "agent:coo"
    else:
        assert choices == [] and kids == ["Site in one go"]
        assert site.result["chosen"] == {"plan": 1, "title": "one piece",
                                         "reason": plan_choice.FIRST_PLAN, "by": "agent:lead"}
        assert "Aoi-Plan: site 1" in body
    org.assert_story()
