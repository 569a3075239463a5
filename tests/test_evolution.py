"""Self-evolution: reflections, retrospectives, SOP proposals, performance
reviews and `aoi stats`, with real git orgs and real (script) agent processes.

Employees are small Python scripts under `agents/`: a `lead` decomposes a root into the
subtasks its description lists (JSON) and reviews its engineers' work, rejecting the first
review of any task whose title holds `[reject-once]` (or every review with
`[reject-always]`) with a fixed reason; an `eng` writes a file and reports a summary, a
lesson naming the task, and usage. One test runs a claude employee through the daemon
against the scripted Messages API.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from kit import PERSON_ACTOR, PERSON_NAME, git
from orgkit import TmpOrg

from aoi_git.domain.graph import TaskLinks
from aoi_git.domain.model import Actor, ActorKind, Status, Task
from aoi_git.evolution import journal, performance_reviews, stats
from aoi_git.org.context import assemble_from_view
from aoi_git.org.create import init_org
from aoi_git.org.organisation import load_org
from aoi_git.org.task_ops import new_task
from aoi_git.store.org_store import Store
from aoi_git.store.trailers import Message, Transition
from aoi_git.store.txn import commit, dump_task

pytestmark = pytest.mark.timeout(240)

S = Status
PERSON = Actor(ActorKind.HUMAN, PERSON_NAME)
REASON = "Add a test for the error path"

PREAMBLE = '''\
import json, os, pathlib, sys
TASK_ID = os.environ["AOI_TASK_ID"]
TASK = json.loads(pathlib.Path(os.environ["AOI_TASK_FILE"]).read_text())
RESULT = pathlib.Path(os.environ["AOI_RESULT_FILE"])
SHARED = pathlib.Path({shared!r})

def report(outcome="completed", summary="done", **kw):
    RESULT.write_text(json.dumps({{"outcome": outcome, "summary": summary, **kw}}))

def count(name):
    path = SHARED / name
    n = int(path.read_text()) if path.exists() else 0
    path.write_text(str(n + 1))
    return n
'''

LEAD = f"""
if TASK.get("kind") == "review":
    n = count("reviews-" + TASK["subject"])
    title = TASK["title"]
    reject = "[reject-always]" in title or ("[reject-once]" in title and n == 0)
    decision = {{"decision": "reject", "feedback": {REASON!r}}} if reject else \\
        {{"decision": "accept", "feedback": ""}}
    report(summary=("rejected: " if reject else "accepted: ") + title, review=decision,
           usage={{"input_tokens": 50, "output_tokens": 5, "usd": 0.1}})
else:
    subs = json.loads(TASK.get("description") or "[]")
    report(summary=f"planned {{len(subs)}} subtasks", subtasks=subs,
           lessons=[f"lead lesson on {{TASK_ID}}: small subtasks review faster"],
           usage={{"input_tokens": 200, "output_tokens": 20, "usd": 0.2}})
"""

ENG = """
pathlib.Path(f"out-{TASK_ID}.txt").write_text(f"made by {TASK_ID}\\n")
report(summary=f"I wrote out-{TASK_ID}.txt for {TASK['title']}",
       lessons=[f"eng lesson on {TASK_ID}: run the error path before reporting"],
       usage={"input_tokens": 100, "output_tokens": 10, "usd": 0.5})
"""


class Org(TmpOrg):
    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path)
        self.n = 0

    def evolution(self, **kw: Any) -> None:
        self.edit_config(lambda d: d.setdefault("evolution", {}).update(kw))

    def agent(self, name: str, body: str) -> None:
        (self.root / "agents" / f"{name}.py").write_text(
            PREAMBLE.format(shared=str(self.shared)) + textwrap.dedent(body))

    def employee(self, eid: str, agent: str, role: str, comment: str = "") -> None:
        profile = {"id": eid, "name": eid.title(), "role": role, "reports_to": "ceo",
                   "status": "active",
                   "backend": {"kind": "script", "command": [
                       sys.executable, str(self.root / "agents" / f"{agent}.py")]},
                   "capacity": {"concurrency": 2, "timeout_s": 60}}
        folder = self.root / "employees" / eid
        folder.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(profile, sort_keys=False)
        (folder / "profile.yaml").write_text((comment + "\n" if comment else "") + text)
        (folder / "journal.md").write_text(f"# Journal of {eid}\n")

    def team(self) -> None:
        self.agent("lead", LEAD)
        self.agent("eng", ENG)
        self.employee("lead-1", "lead", "lead")
        self.employee("eng-1", "eng", "engineer")

    def project(self, tid: str, subtasks: list[dict[str, Any]], **fields: Any) -> None:
        """A root for lead-1 that it decomposes into `subtasks` (reviewed by lead-1)."""
        fields.setdefault("assignee", "lead-1")
        fields.setdefault("reviewer", "none")
        store = Store(self.root)
        tasks = load_org(store).tasks
        commit(store, lambda txn: new_task(txn, tasks, f"Project {tid}", task_id=tid,
                                           description=json.dumps(subtasks), **fields), PERSON)

    def kids(self, root: str) -> dict[str, Task]:
        """The subtasks of `root` by title."""
        return {t.title: t for t in self.tasks().values() if t.parent == root}

    def read(self, path: str) -> str | None:
        proc = subprocess.run(["git", "show", f"HEAD:{path}"], cwd=self.root,
                              capture_output=True, text=True, check=False)
        return proc.stdout if proc.returncode == 0 else None

    def aoi(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return super().aoi(*args, timeout=timeout)

    def profile(self, eid: str) -> str:
        return (self.read(f"employees/{eid}/profile.yaml") or "")


@pytest.fixture
def org(tmp_path: Path) -> Iterator[Org]:
    yield Org(tmp_path)


def sub(key: str, title: str, assignee: str = "eng-1", **kw: Any) -> dict[str, Any]:
    return {"key": key, "title": title, "assignee": assignee, **kw}


def commit_of(root: Path, grep: str) -> str:
    shas = git(root, "log", "--format=%H", "-F", f"--grep={grep}").split()
    assert shas, f"no commit matching {grep!r}"
    return shas[0]


# ------------------------------------------------------------------------ reflection

def test_reflection_is_appended_in_the_same_commit_as_the_transition(org: Org) -> None:
    org.team()
    org.commit()
    org.project("p1", [sub("a", "Part A")])
    org.run()
    a = org.kids("p1")["Part A"]
    assert a.status is S.FINISHED
    sha = commit_of(org.root, f"aoi: {a.id} processing -> completed")
    stat = git(org.root, "show", "--stat", "--format=", sha)
    assert "employees/eng-1/journal.md" in stat and f"{a.id}.yaml" in stat
    files = git(org.root, "show", "--name-only", "--format=", sha).split()
    assert "employees/eng-1/journal.md" in files
    assert any(f.endswith(f"{a.id}.yaml") for f in files)
    journal = org.read("employees/eng-1/journal.md") or ""
    assert f"eng lesson on {a.id}: run the error path before reporting" in journal
    assert f"I wrote out-{a.id}.txt for Part A" in journal
    # the decomposition is reflected too, in the lead's journal, in its commit
    sha = git(org.root, "log", "--format=%H", "--all-match", "--grep=Aoi-Task: p1",
              "--grep=Aoi-Transition: processing->waiting").split()[0]
    assert "employees/lead-1/journal.md" in git(org.root, "show", "--name-only", "--format=",
                                                 sha).split()


def test_a_failed_run_with_the_agents_words_is_reflected(org: Org) -> None:
    org.agent("flaky", """
        n = count("flaky")
        if n == 0:
            report(outcome="failed", summary="the build broke",
                   lessons=["pin the compiler version"])
        else:
            report(summary="built it")
    """)
    org.employee("eng-1", "flaky", "engineer")
    path = org.root / "aoi.yaml"
    data = yaml.safe_load(path.read_text())
    data["limits"]["backoff_base_s"] = 0
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    org.commit()
    store = Store(org.root)
    tasks = load_org(store).tasks
    commit(store, lambda txn: new_task(txn, tasks, "Build", task_id="b1", assignee="eng-1",
                                       reviewer="none"), PERSON)
    org.run()
    assert org.tasks()["b1"].status is S.FINISHED
    sha = commit_of(org.root, "aoi: b1 processing -> failed")
    assert "employees/eng-1/journal.md" in git(org.root, "show", "--name-only", "--format=",
                                               sha).split()
    journal = org.read("employees/eng-1/journal.md") or ""
    assert "b1: Build (failed)" in journal and "- Lesson: pin the compiler version" in journal


# --------------------------------------------------------------------- retrospective

def test_retro_when_a_root_finishes(org: Org) -> None:
    org.team()
    org.commit()
    org.project("p1", [sub("a", "Part A [reject-once]"), sub("b", "Part B")])
    org.run()
    tasks = org.tasks()
    assert tasks["p1"].status is S.FINISHED
    kids = org.kids("p1")
    a, b = kids["Part A [reject-once]"], kids["Part B"]
    text = org.read("retros/p/1/p1.md")
    assert text is not None
    # written in the commit of the root's finish (accepted at once: one commit, two moves)
    sha = commit_of(org.root, "aoi: p1 completed -> accepted -> finished")
    assert "retros/p/1/p1.md" in git(org.root, "show", "--name-only", "--format=", sha).split()
    assert "Aoi-Retro: p1" in git(org.root, "show", "-s", "--format=%B", sha)

    out = org.aoi("retro", "p1", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["committed"] is True and data["text"] == text
    sig = {t["id"]: t for t in data["signals"]["tasks"]}
    assert sig[a.id]["runs"] == 2 and sig[b.id]["runs"] == 1
    assert len(sig[a.id]["rejections"]) == 1 and sig[b.id]["rejections"] == []
    (rej,) = sig[a.id]["rejections"]
    assert rej["reason"] == REASON and rej["by"] == "agent:lead-1" and rej["employee"] == "eng-1"
    assert sig[a.id]["usd"] == pytest.approx(1.0) and sig[b.id]["usd"] == pytest.approx(0.5)
    assert sig[a.id]["input_tokens"] == 200 and sig[a.id]["output_tokens"] == 20
    assert sig["p1"]["usd"] == pytest.approx(0.2)
    assert sig[a.id]["seconds"] is not None and sig[a.id]["first_review"] == "reject"
    assert sig[b.id]["first_review"] == "accept"
    reviews = [t for t in sig.values() if t["kind"] == "review"]
    assert len(reviews) == 3 and all(t["root"] == "p1" for t in reviews)
    emps = {e["id"]: e for e in data["signals"]["employees"]}
    eng = emps["eng-1"]
    assert (eng["tasks_done"], eng["runs"], eng["retries"], eng["reviewed"],
            eng["passed_first_review"], eng["rejections"]) == (2, 3, 1, 2, 1, 1)
    assert eng["review_pass_rate"] == 0.5 and eng["usd"] == pytest.approx(1.5)
    lead = emps["lead-1"]
    assert lead["reviews_done"] == 3 and lead["tasks_done"] == 1
    assert lead["usd"] == pytest.approx(0.2 + 3 * 0.1)
    assert data["signals"]["usd"] == pytest.approx(1.5 + 0.5)

    # the text: signals, rejection with its reason, self-assessments verbatim
    assert f"| `{a.id}` | Part A [reject-once] | work | eng-1 | 2 | 0 | 1 |" in text
    assert f"- `{a.id}` (work of eng-1), rejected by agent:lead-1: \"{REASON}\"" in text
    assert "## What went well" in text and "## What went badly" in text
    assert f"`{a.id}` (Part A [reject-once]) was rejected 1 time in review, which cost 1 " \
           "extra run." in text
    assert f"> - Lesson: eng lesson on {a.id}: run the error path before reporting" in text
    assert f"> - Lesson: eng lesson on {b.id}: run the error path before reporting" in text
    assert "> - Lesson: lead lesson on p1: small subtasks review faster" in text
    # nobody's words are invented: no person wrote anything, so none is quoted
    assert "human:" not in text
    assert "No person wrote anything about this project" in text
    # printing it
    shown = org.aoi("retro", "p1")
    assert shown.returncode == 0 and shown.stdout == text
    bad = org.aoi("retro", a.id)
    assert bad.returncode == 1 and "aoi retro p1" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_retro_write_regenerates_in_the_sharded_layout_or_where_an_older_one_is(
        org: Org) -> None:
    org.team()
    org.commit()
    org.project("p1", [sub("a", "Part A")])
    org.run()
    text = org.read("retros/p/1/p1.md")
    assert text is not None
    git(org.root, "rm", "-q", "retros/p/1/p1.md")
    git(org.root, "commit", "-q", "-m", "drop it")
    out = org.aoi("retro", "p1", "--write")
    assert out.returncode == 0 and "wrote retros/p/1/p1.md" in out.stdout, out.stderr
    assert "## What went well" in (org.read("retros/p/1/p1.md") or "")
    # an earlier aoi wrote retros/<root>.md: it is read and regenerated where it is
    git(org.root, "mv", "retros/p/1/p1.md", "retros/p1.md")
    git(org.root, "commit", "-q", "-m", "as an earlier aoi laid it out")
    shown = org.aoi("retro", "p1")
    assert shown.returncode == 0 and shown.stdout == org.read("retros/p1.md")
    (org.root / "retros" / "p1.md").write_text("a person's note\n")
    git(org.root, "commit", "-q", "-am", "a note")
    out = org.aoi("retro", "p1", "--write")
    assert out.returncode == 0 and "wrote retros/p1.md" in out.stdout, out.stderr
    assert "## What went well" in (org.read("retros/p1.md") or "")
    assert org.read("retros/p/1/p1.md") is None
    assert "a person's note" in git(org.root, "show", "HEAD~1:retros/p1.md")


def test_a_rotated_journal_still_feeds_retros_reviews_and_contexts(
        org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal, "ROTATE_BYTES", 700)
    monkeypatch.setattr(journal, "KEEP", 3)
    org.team()
    org.evolution(review_every=2)
    org.commit()
    org.project("p1", [sub(k, f"Part {k}") for k in "abcdefghij"])
    org.project("p2", [sub("m", "Part m")])
    org.run()
    archives = sorted((org.root / "employees" / "eng-1" / "journal").iterdir())
    assert archives, "the journal did not rotate"
    assert all(git(org.root, "log", "--format=%h", "--", f"employees/eng-1/journal/{a.name}")
               .count("\n") == 1 for a in archives)  # each written once
    kids = org.kids("p1")
    assert len(org.read("employees/eng-1/journal.md") or "") < 700 + 400
    # p1's retrospective quotes every part's entry, most of them from the archives
    text = org.read("retros/p/1/p1.md") or ""
    for k in "abcdefghij":
        assert f"> - Lesson: eng lesson on {kids[f'Part {k}'].id}: run the error path" in text
    # the review quotes its last six entries: more than journal.md keeps
    review = org.read("reviews/eng-1/1.md") or ""
    assert review.count("\n> ## 20") == 6
    # the next run's context has the latest lessons, from journal.md
    latest = journal.last_journal_entries(org.read("employees/eng-1/journal.md") or "", 1)
    lesson = latest[0].splitlines()[-1]
    assert lesson.startswith("- Lesson: eng lesson on ")
    org.project("p3", [sub("n", "Part n")])
    org.run()
    n = org.kids("p3")["Part n"]
    context = (org.root / ".aoi" / "runs" / n.id / "context.md").read_text()
    assert lesson in context


def test_sop_from_a_rejection_is_committed_and_reaches_a_later_context(org: Org) -> None:
    org.team()
    org.commit()
    org.project("p1", [sub("a", "Part A [reject-once]")])
    org.run()
    sop = org.read("sops/retro-engineer.md")
    assert sop is not None
    sha = commit_of(org.root, "aoi: p1 completed -> accepted -> finished")
    assert "sops/retro-engineer.md" in git(org.root, "show", "--name-only", "--format=",
                                           sha).split()
    meta = yaml.safe_load(sop.split("---")[1])
    assert meta == {"title": "Lessons from retrospectives: engineer",
                    "applies_to": {"roles": ["engineer"]}}
    assert REASON in sop and "## From p1: Project p1" in sop
    assert "sops/retro-engineer.md" in (org.read("retros/p/1/p1.md") or "")
    # the SOP reaches the context of a later engineer task, not a lead's
    store = Store(org.root)
    o = load_org(store)
    view = store.head()
    later = Task(id="later", title="Another engineering task", assignee="eng-1")
    ctx = assemble_from_view(view, later, o.employees["eng-1"], o.tasks,
                             store.list_dir("sops", view))
    assert "## SOP: Lessons from retrospectives: engineer" in ctx and REASON in ctx
    ctx_lead = assemble_from_view(view, later, o.employees["lead-1"], o.tasks,
                                  store.list_dir("sops", view))
    assert REASON not in ctx_lead.split("## Your task")[0]
    # and the daemon gives it to the next engineer run
    org.project("p2", [sub("a", "Part C [reject-once]")])
    org.run()
    c = org.kids("p2")["Part C [reject-once]"]
    context = (org.root / ".aoi" / "runs" / c.id / "context.md").read_text()
    assert "Lessons from retrospectives: engineer" in context and REASON in context
    # the same reason in a second project is not added again
    assert (org.read("sops/retro-engineer.md") or "").count(REASON) == 1
    assert "## Proposed SOP changes\n\nNone" in (org.read("retros/p/2/p2.md") or "")


def test_sop_approval_puts_the_change_on_a_branch(org: Org) -> None:
    org.team()
    org.evolution(sop_approval=True)
    org.commit()
    org.project("p1", [sub("a", "Part A [reject-once]")])
    org.run()
    assert org.read("retros/p/1/p1.md") is not None
    assert org.read("sops/retro-engineer.md") is None  # not applied without a person
    branch = "aoi/sop-p1"
    on_branch = git(org.root, "show", f"{branch}:sops/retro-engineer.md")
    assert REASON in on_branch
    diff = git(org.root, "diff", "--name-only", f"HEAD...{branch}").split()
    assert diff == ["sops/retro-engineer.md"]
    (ask,) = [t for t in org.tasks().values() if t.bookkeeping.sop_branch == branch]
    assert ask.kind.value == "human" and ask.assignee == "ceo" and ask.status is S.PENDING
    assert f"git merge {branch}" in ask.description
    text = org.read("retros/p/1/p1.md") or ""
    assert f"on branch `{branch}`, waiting for ceo's approval" in text
    # a person merges it: then it applies
    git(org.root, "merge", "-q", "--no-edit", branch)
    assert REASON in (org.read("sops/retro-engineer.md") or "")


def test_what_a_person_wrote_is_quoted_and_attributed(org: Org) -> None:
    org.team()
    org.commit()
    org.project("p1", [sub("a", "Part A", reviewer="ceo")])
    org.run()
    a = org.kids("p1")["Part A"]
    assert org.tasks()[a.id].status is S.COMPLETED  # waits for the person
    out = org.aoi("review", a.id, "--accept", "-m", "Nice, and well tested")
    assert out.returncode == 0, out.stderr
    org.run()
    assert org.tasks()["p1"].status is S.FINISHED
    text = org.read("retros/p/1/p1.md") or ""
    assert f"- {PERSON_ACTOR} (accept, `{a.id}`): \"Nice, and well tested\"" in text
    assert "No person wrote anything" not in text


# ---------------------------------------------------------------- performance reviews

def test_performance_reviews_every_n_roots(org: Org) -> None:
    org.team()
    org.evolution(review_every=2)
    org.commit()
    org.project("p1", [sub("a", "Part A [reject-once]"), sub("b", "Part B")])
    org.run()
    assert org.read("reviews/eng-1/1.md") is None  # one root: not yet
    org.project("p2", [sub("c", "Part C")])
    org.run()
    text = org.read("reviews/eng-1/1.md")
    assert text is not None and org.read("reviews/lead-1/1.md") is not None
    meta = performance_reviews.front_matter(text.encode())
    assert meta["result"] == "pass" and meta["cycle"] == 1
    assert sorted(meta["roots"]) == ["p1", "p2"]
    # 3 tasks, 1 rejected at its first review: pass rate 67%, 1 retry over 3 tasks
    assert "| 3 | 0 | 4 | 3 | 1 | 0.33 | 0 | 3 | 2 | 67% | 1 |" in text
    assert "Fail when the review pass rate is below 50%" in text
    sha = commit_of(org.root, "aoi: performance reviews, cycle 1")
    log = git(org.root, "show", "-s", "--format=%an%n%B", sha)
    assert "Aoi-Actor: agent:hr" in log and "Aoi-Review-Cycle: 1" in log
    assert f"> - Lesson: eng lesson on {org.kids('p2')['Part C'].id}" in text
    # the next cycle needs two more roots
    org.project("p3", [sub("d", "Part D")])
    org.run()
    assert org.read("reviews/eng-1/2.md") is None


def write_review(org: Org, eid: str, n: int, result: str) -> None:
    folder = org.root / "reviews" / eid
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{n}.md").write_text(
        f"---\nemployee: {eid}\nreview: {n}\ncycle: {n}\nresult: {result}\nroots: []\n---\n"
        f"# Performance review {n} of {eid}: {result.upper()}\n")


def test_three_failed_reviews_pip_then_offboarded(org: Org) -> None:
    org.agent("lead", LEAD)
    org.agent("eng", ENG)
    org.employee("lead-1", "lead", "lead")
    org.employee("eng-bad", "eng", "engineer", comment="# a comment a person wrote")
    org.evolution(review_every=1)
    # two earlier periods, both failed (simulated); the third is a real run
    write_review(org, "eng-bad", 1, "fail")
    write_review(org, "eng-bad", 2, "fail")
    org.commit()
    org.project("p1", [sub("a", "Part A [reject-once]", assignee="eng-bad")])
    org.run()
    text = org.read("reviews/eng-bad/3.md") or ""
    assert performance_reviews.front_matter(text.encode())["result"] == "fail"
    assert "review pass rate 0% < 50%" in text
    assert "Failed reviews in a row: 3 (reviews 1, 2, 3)." in text
    assert "Status: active -> pip (3 failed reviews in a row)." in text
    prof = org.profile("eng-bad")
    assert "status: pip" in prof and "# a comment a person wrote" in prof
    assert load_org(Store(org.root)).employees["eng-bad"].status.value == "pip"
    # one more failed review -> offboarded, and the CEO is told to hire
    org.project("p2", [sub("a", "Part B [reject-once]", assignee="eng-bad")])
    org.run()
    text4 = org.read("reviews/eng-bad/4.md") or ""
    assert performance_reviews.front_matter(text4.encode())["result"] == "fail", text4
    assert "Status: pip -> offboarded" in text4
    prof = org.profile("eng-bad")
    assert "status: offboarded" in prof and "# a comment a person wrote" in prof
    hires = [t for t in org.tasks().values() if t.bookkeeping.hiring_need]
    assert len(hires) == 1
    (h,) = hires
    assert h.assignee == "ceo" and h.kind.value == "human" and h.bookkeeping.offboarded == "eng-bad"
    assert "aoi market search engineer" in h.description


def _import_finished_projects(root: Path, n: int) -> list[str]:
    """`n` finished root tasks no agent ever ran (as if imported), in one plain commit."""
    ids = [f"imp-{i}" for i in range(n)]
    for i, tid in enumerate(ids):
        t = Task(id=tid, title=f"Imported {i}", status=S.FINISHED, assignee="coo",
                 created=f"2026-01-01T00:00:0{i}Z")
        (root / "tasks" / f"{tid}.yaml").write_bytes(dump_task(t))
    git(root, "add", "tasks")
    git(root, "commit", "-q", "--no-verify", "-m", "import finished projects")
    return ids


def test_a_cycle_with_no_one_to_review_passes_its_roots_over(org_dir: Path) -> None:
    # a cycle over them writes nothing; the daemon must not read all their history again
    # at every later root finish
    imported = _import_finished_projects(org_dir, 3)
    store = Store(org_dir)
    org = load_org(store)
    passed: set[str] = set()
    oid, _ = commit(store, lambda txn: performance_reviews.run_cycle(
        txn, store=store, tasks=org.tasks, employees=org.employees, config=org.config,
        org=org, passed_over=passed), PERSON)
    assert oid is None and passed == set(imported)
    reviews = performance_reviews.read_reviews(store.head(), store)
    assert performance_reviews.due_roots(org.tasks, reviews, 3) == imported
    assert performance_reviews.due_roots(org.tasks, reviews, 3, passed_over=passed) is None


def test_passed_over_projects_are_listed_by_the_next_written_cycle(org: Org) -> None:
    imported = _import_finished_projects(org.root, 3)
    org.team()
    org.evolution(review_every=2)
    org.commit()
    org.project("p1", [sub("a", "Part A")])
    org.project("p2", [sub("b", "Part B")])
    org.run()  # one daemon: its first cycle passes the imports over, p1 + p2 make the next
    meta = performance_reviews.front_matter((org.read("reviews/eng-1/1.md") or "").encode())
    assert meta["cycle"] == 1 and sorted(meta["roots"]) == sorted([*imported, "p1", "p2"])
    assert org.read("reviews/eng-1/2.md") is None


def test_passed_over_projects_are_remembered_across_restarts_while_unchanged(
        org: Org) -> None:
    """A restarted daemon does not collect the history of projects an earlier one found
    no one to review in (seconds at each start with 100 such projects of 1,000 tasks),
    unless a project's root changed since."""
    from aoi_git.runtime.daemon import Daemon, DaemonOptions

    imported = _import_finished_projects(org.root, 3)
    org.team()
    org.evolution(review_every=2)
    org.commit()
    first = org.run()
    assert first.executor.unreviewable_roots == set(imported)
    assert set(json.loads((org.root / ".aoi" / "cache" / "passed-over.json").read_text())) \
        == set(imported)
    path = org.root / "tasks" / "imp-0.yaml"
    path.write_text(path.read_text().replace("Imported 0", "Imported 0, retitled"))
    git(org.root, "commit", "-q", "--no-verify", "-am", "a person retitles a project")
    again = Daemon(org.root, DaemonOptions(until_idle=True, watch=False))
    assert again.executor.unreviewable_roots == {"imp-1", "imp-2"}


def test_a_review_file_a_person_garbled_still_counts(org_dir: Path) -> None:
    folder = org_dir / "reviews" / "coo"
    folder.mkdir(parents=True)
    (folder / "1.md").write_text("---\ncycle: soon\nresult: fail\nroots: [p1]\n---\n")
    (folder / "2.md").write_text("no front matter at all\n")
    git(org_dir, "add", "reviews")
    git(org_dir, "commit", "-q", "--no-verify", "-m", "hand-written reviews")
    store = Store(org_dir)
    reviews = performance_reviews.read_reviews(store.head(), store)
    assert [(f.n, f.cycle, f.result, f.roots) for f in reviews["coo"]] == [
        (1, 0, "fail", ["p1"]), (2, 0, "pass", [])]
    assert reviews.covered == {"p1"}


_STEPS = st.lists(st.tuples(st.sampled_from(["finish", "reopen", "review", "relink"]),
                            st.sampled_from([f"r{i}" for i in range(8)] + ["s1"])),
                  max_size=40)


@given(_STEPS)
@settings(max_examples=200, deadline=None)
def test_the_uncovered_tracker_agrees_with_a_scan_of_every_project(
        steps: list[tuple[str, str]]) -> None:
    """Roots finish and reopen, cycles cover some (a new Reviews each time), the links are
    rebuilt: the daemon's tracker answers what a scan of every finished root answers."""
    tasks = {f"r{i}": Task(id=f"r{i}", title="root", created=f"2026-01-0{i + 1}T00:00:00Z")
             for i in range(8)}
    tasks["s1"] = Task(id="s1", title="sub", parent="r0")
    links = TaskLinks(tasks)
    reviews, tracker = performance_reviews.Reviews(), performance_reviews.Uncovered()
    for op, tid in steps:
        if op in ("finish", "reopen"):
            status = S.FINISHED if op == "finish" else S.PENDING
            tasks[tid] = tasks[tid].with_changes(status=status)
            links.update(tasks[tid])
        elif op == "review":
            done = performance_reviews.ReviewFile("eng-1", 1, 1, "pass", [tid])
            files = [*reviews.get("eng-1", []), done]
            reviews = performance_reviews.Reviews({"eng-1": files})
        else:
            links = TaskLinks(tasks)
        for every in (1, 2):
            due = performance_reviews.due_roots(tasks, reviews, every, links, uncovered=tracker)
            assert due == performance_reviews.due_roots(tasks, reviews, every)


def test_review_counters_come_from_the_files() -> None:
    assert performance_reviews.fails_in_a_row(["fail", "pass", "fail", "fail"]) == 2
    assert performance_reviews.fails_in_a_row(["pass"]) == 0
    rule = performance_reviews.Rule(0.5, 1.0)
    from aoi_git.evolution.project_metrics import EmployeeSignals

    ok, why = rule.verdict(EmployeeSignals("x", reviewed=4, passed_first=1, tasks_run=2,
                                           retries=3))
    assert not ok and len(why) == 2
    ok, why = rule.verdict(EmployeeSignals("x", reviewed=2, passed_first=1, tasks_run=2,
                                           retries=2))
    assert ok and why == []
    ok, _ = rule.verdict(EmployeeSignals("x"))  # nothing reviewed, nothing run: no failure
    assert ok


# ------------------------------------------------------------------------------ stats

T0 = 1_735_725_600  # 2025-01-01T10:00:00Z
DAY2 = 1_735_808_400  # 2025-01-02T09:00:00Z


def _history(root: Path) -> None:
    """A small known history, written as the daemon would, at fixed times."""
    def c(at: int, trans: list[tuple[str, str | None, str]], actor: str, *,
          employee: str | None = None, cost: dict[str, float] | None = None,
          body: str = "", edits: tuple[str, ...] = ()) -> None:
        extra = [("Aoi-Employee", employee)] if employee else []
        msg = Message([Transition(t, o, n, t.upper()) for t, o, n in trans], actor, body,
                      cost or {}, extra).render()
        if edits:
            lines = msg.splitlines()
            i = next(k for k, ln in enumerate(lines) if ln.startswith("Aoi-Actor:"))
            lines[i:i] = [f"Aoi-Task: {e}" for e in edits]
            msg = "\n".join(lines) + "\n"
        stamp = f"@{at} +0000"
        git(root, "commit", "-q", "--allow-empty", "--no-verify", "-m", msg,
            env={"GIT_COMMITTER_DATE": stamp, "GIT_AUTHOR_DATE": stamp})

    m = 60
    d = "daemon:h"
    c(T0, [("r1", None, "pending")], "human:ceo")
    c(T0 + 1 * m, [("r1", "pending", "processing")], d, employee="coo")
    c(T0 + 2 * m, [("s1", None, "pending"), ("s2", None, "pending"),
                   ("r1", "processing", "waiting")], "agent:coo", employee="coo",
      cost={"usd": 0.1, "input_tokens": 100, "output_tokens": 10})
    c(T0 + 3 * m, [("s1", "pending", "processing")], d, employee="eng-1")
    c(T0 + 4 * m, [("s1", "processing", "completed")], "agent:eng-1", employee="eng-1",
      cost={"usd": 1.0, "input_tokens": 1000, "output_tokens": 100})
    c(T0 + 5 * m, [("rv1", None, "pending")], d, edits=("s1",))
    c(T0 + 6 * m, [("rv1", "pending", "processing")], d, employee="coo")
    c(T0 + 7 * m, [("rv1", "processing", "completed"), ("s1", "completed", "pending")],
      "agent:coo", employee="coo", cost={"usd": 0.05},
      body="agent:coo rejected s1: add tests")
    c(T0 + 8 * m, [("rv1", "completed", "accepted")], d)
    c(T0 + 9 * m, [("rv1", "accepted", "finished")], d)
    c(T0 + 10 * m, [("s1", "pending", "processing")], d, employee="eng-1")
    c(T0 + 11 * m, [("s1", "processing", "completed")], "agent:eng-1", employee="eng-1",
      cost={"usd": 1.0, "input_tokens": 1000, "output_tokens": 100})
    c(T0 + 12 * m, [("rv2", None, "pending")], d, edits=("s1",))
    c(T0 + 13 * m, [("rv2", "pending", "processing")], d, employee="coo")
    c(T0 + 14 * m, [("rv2", "processing", "completed"), ("s1", "completed", "accepted")],
      "agent:coo", employee="coo", cost={"usd": 0.05})
    c(T0 + 15 * m, [("rv2", "completed", "accepted")], d)
    c(T0 + 16 * m, [("rv2", "accepted", "finished")], d)
    c(T0 + 20 * m, [("s1", "accepted", "finished")], d)
    c(T0 + 21 * m, [("s2", "pending", "processing")], d, employee="eng-2")
    c(T0 + 22 * m, [("s2", "processing", "failed")], d, employee="eng-2", cost={"usd": 0.2})
    c(T0 + 23 * m, [("s2", "failed", "pending")], d)
    c(T0 + 24 * m, [("s2", "pending", "processing")], d, employee="eng-2")
    c(T0 + 25 * m, [("s2", "processing", "completed")], "agent:eng-2", employee="eng-2",
      cost={"usd": 0.3})
    c(T0 + 26 * m, [("s2", "completed", "accepted")], "human:ceo")
    c(T0 + 30 * m, [("s2", "accepted", "finished")], d)
    c(DAY2, [("r1", "waiting", "completed")], d)
    c(DAY2 + 1 * m, [("r1", "completed", "accepted")], d)
    c(DAY2 + 2 * m, [("r1", "accepted", "finished")], d)
    c(DAY2 + 10 * m, [("r2", None, "pending")], "human:ceo")
    c(DAY2 + 11 * m, [("r2", "pending", "processing")], d, employee="eng-1")
    c(DAY2 + 12 * m, [("r2", "processing", "completed")], "agent:eng-1", employee="eng-1",
      cost={"usd": 0.5})
    c(DAY2 + 13 * m, [("r2", "completed", "accepted")], "human:ceo")
    c(DAY2 + 14 * m, [("r2", "accepted", "finished")], d)


@pytest.fixture
def history(tmp_path: Path) -> Path:
    root = tmp_path / "org"
    init_org(root)
    _history(root)
    return root


def test_stats_exact_numbers(history: Path) -> None:
    st = stats.compute(history).to_dict()
    assert st["transitions"] == 37
    assert st["throughput"] == {"finished": 4, "days": 2, "per_day": 2.0,
                                "first_day": "2025-01-01", "last_day": "2025-01-02",
                                "by_day": {"2025-01-01": 2, "2025-01-02": 2}}
    # lead times: s1 18m, s2 28m, r1 23h02m, r2 4m
    assert st["lead_time"] == {"count": 4, "median_s": 1380.0, "p90_s": 82920.0}
    assert st["review"] == {"reviewed": 3, "passed_first_review": 2,
                            "review_pass_rate": 0.6667, "rejections": 1}
    assert (st["runs"], st["retries"], st["failed_runs"]) == (8, 2, 1)
    assert st["cost"] == {"usd": pytest.approx(3.2), "input_tokens": 2100,
                          "output_tokens": 210}
    e = st["employees"]
    assert set(e) == {"coo", "eng-1", "eng-2"}
    assert (e["coo"]["tasks_done"], e["coo"]["reviews_done"], e["coo"]["runs"],
            e["coo"]["usd"]) == (1, 2, 3, pytest.approx(0.2))
    assert (e["eng-1"]["tasks_done"], e["eng-1"]["runs"], e["eng-1"]["retries"],
            e["eng-1"]["reviewed"], e["eng-1"]["passed_first_review"],
            e["eng-1"]["review_pass_rate"], e["eng-1"]["usd"]) == \
        (2, 3, 1, 2, 1, 0.5, pytest.approx(2.5))
    assert (e["eng-2"]["tasks_done"], e["eng-2"]["runs"], e["eng-2"]["retries"],
            e["eng-2"]["failed_runs"], e["eng-2"]["review_pass_rate"], e["eng-2"]["usd"]) == \
        (1, 2, 1, 1, 1.0, pytest.approx(0.5))
    roots = {r["root"]: r for r in st["roots"]}
    assert set(roots) == {"r1", "r2"}
    assert (roots["r1"]["runs"], roots["r1"]["retries"], roots["r1"]["rejections"],
            roots["r1"]["lead_time_s"], roots["r1"]["usd"]) == \
        (7, 2, 1, 82920, pytest.approx(2.7))
    assert roots["r1"]["finished"] == "2025-01-02T09:02:00Z"
    assert (roots["r2"]["runs"], roots["r2"]["lead_time_s"], roots["r2"]["usd"]) == \
        (1, 240, pytest.approx(0.5))


def test_stats_cli_json_employee_since(history: Path, run_aoi: Any) -> None:
    out = run_aoi("-C", history, "stats", "--json")
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    assert shown.pop("plan_shapes") == []  # no retrospective records a plan
    assert shown == json.loads(json.dumps(stats.compute(history).to_dict()))
    out = run_aoi("-C", history, "stats", "--employee", "eng-1", "--json")
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["employee"] == "eng-1" and set(d["employees"]) == {"eng-1"}
    assert d["throughput"]["finished"] == 2 and d["throughput"]["by_day"] == {
        "2025-01-01": 1, "2025-01-02": 1}
    assert d["lead_time"] == {"count": 2, "median_s": 660.0, "p90_s": 1080.0}
    assert d["review"]["review_pass_rate"] == 0.5
    assert (d["runs"], d["retries"], d["cost"]["usd"]) == (3, 1, pytest.approx(2.5))
    assert {r["root"]: r["usd"] for r in d["roots"]} == {"r1": pytest.approx(2.0),
                                                         "r2": pytest.approx(0.5)}
    out = run_aoi("-C", history, "stats", "--since", "2025-01-02", "--json")
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["since"] == "2025-01-02T00:00:00Z"
    assert d["throughput"]["by_day"] == {"2025-01-02": 2}
    assert d["lead_time"]["count"] == 2 and d["lead_time"]["p90_s"] == 82920.0
    assert d["review"] == {"reviewed": 1, "passed_first_review": 1, "review_pass_rate": 1.0,
                           "rejections": 0}
    assert (d["runs"], d["cost"]["usd"]) == (1, pytest.approx(0.5))
    text = run_aoi("-C", history, "stats")
    assert text.returncode == 0, text.stderr
    assert "4 tasks finished in 2 day(s): 2.00 per day" in text.stdout
    assert "median 23.0m, p90 23.0h" in text.stdout
    assert "pass rate 67% (2 of 3 accepted at first review), 1 rejections" in text.stdout
    assert "eng-1" in text.stdout and "r1" in text.stdout
    bad = run_aoi("-C", history, "stats", "--since", "someday")
    assert bad.returncode == 1 and "--since" in bad.stderr and "Traceback" not in bad.stderr


# ---------------------------------------------------------------------- claude backend

def test_claude_reflection_lands_in_the_journal(org: Org, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from aoi_git.testing.fake_messages_api import ScriptedMessagesAPI, Text, ToolUse, offline_env

    lesson = "Next time I would read the existing files before writing."
    profile = {"id": "eng-c", "name": "Claude", "role": "engineer", "reports_to": "ceo",
               "status": "active",
               "backend": {"kind": "claude", "model": "claude-sonnet-4-5"},
               "capacity": {"concurrency": 1, "timeout_s": 120, "memory_mb": 4096},
               "tools": ["Read", "Write"]}
    folder = org.root / "employees" / "eng-c"
    folder.mkdir(parents=True)
    (folder / "profile.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    org.commit()
    store = Store(org.root)
    tasks = load_org(store).tasks
    commit(store, lambda txn: new_task(txn, tasks, "Say hello", task_id="job-c",
                                       assignee="eng-c", reviewer="none",
                                       description="Create hello.txt."), PERSON)
    target = org.root / ".aoi" / "worktrees" / "job-c" / "hello.txt"

    def reflection(request: dict[str, Any]) -> Any:
        assert "what did you learn" in json.dumps(request["messages"][-1])
        return Text(lesson)

    script = [
        ToolUse("Write", {"file_path": str(target), "content": "hello\n"}),
        ToolUse("mcp__aoi__report_result", {"outcome": "completed",
                                            "summary": "Wrote hello.txt"}),
        Text("Finished."),
        reflection,
    ]
    home = tmp_path / "claude-home"
    home.mkdir()
    with ScriptedMessagesAPI(script) as api:
        for k, v in offline_env(api.base_url, str(home)).items():
            monkeypatch.setenv(k, v)
        org.run()
        assert api.exhausted or len(api.requests) >= 4
    t = org.tasks()["job-c"]
    log = (org.root / ".aoi" / "runs" / "job-c" / "stderr.log").read_text(errors="replace")
    assert t.status is S.FINISHED, (t.feedback_texts(), log[-3000:])
    journal = org.read("employees/eng-c/journal.md") or ""
    assert "job-c: Say hello (completed)" in journal
    assert f"- Lesson: {lesson}" in journal
    sha = commit_of(org.root, "aoi: job-c processing -> completed")
    files = git(org.root, "show", "--name-only", "--format=", sha).split()
    assert "employees/eng-c/journal.md" in files and any(f.endswith("job-c.yaml") for f in files)
