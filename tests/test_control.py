"""Control over running work (issue 16, points 1-3), through the real `aoi daemon` and the
real CLI, with script agents in their sandbox.

- cancel (CLI, a file edit, a cascade) stops the run as a unit, keeps what it wrote on
  its branch as the agent's work, records what it spent and frees the slot;
- a task is paused and resumed by hand, or preempted by one that outranks it and resumed
  by the daemon: it keeps its worktree, is told it resumes, and runs once at a time, also
  across a kill -9 of the daemon between the suspension and the end of its run;
- `aoi task reassign` of pending, running and suspended tasks hands the branch over with
  a note in the new assignee's context.

The agents note what they see in `shared/`; the tests poll for it (no timing asserts
beyond a generous bound) and look for the agents' processes from outside.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import yaml
from kit import PERSON_NAME, git, lines
from test_daemon import Org, save, wait_for
from test_org_loop import commit_of

from aoi_git.domain.model import Status

pytestmark = pytest.mark.timeout(120)
S = Status
STOP_BOUND_S = 10.0  # generous: the run is killed as a unit at once

# Appends a line to work-<id>.txt (committed work) and keeps `cache/` (git-ignored: only
# a kept worktree keeps it); notes
# what it was told; with description "hold" it waits for shared/go-<id>.
WORKER = """
n = bump()
ctx = pathlib.Path(os.environ["AOI_CONTEXT_FILE"]).read_text()
told = ("resuming" if "## You are resuming this task" in ctx else
        "handoff" if "## Handed over to you from" in ctx else "fresh")
note("told", n, os.environ["AOI_EMPLOYEE"], os.environ.get("AOI_RESUMING", "-"), told)
work = pathlib.Path(f"work-{TASK_ID}.txt")
(SHARED / f"seen-{TASK_ID}-{n}.txt").write_text(work.read_text() if work.exists() else "")
cache = pathlib.Path("cache")
(SHARED / f"cache-{TASK_ID}-{n}.txt").write_text(
    (cache / "state").read_text() if (cache / "state").exists() else "")
with open(work, "a") as fh:
    fh.write(f"run {n} by {os.environ['AOI_EMPLOYEE']}\\n")
cache.mkdir(exist_ok=True)
(cache / "state").write_text(f"cache of run {n}\\n")
pathlib.Path(os.environ["AOI_USAGE_FILE"]).write_text(json.dumps({"usd": 0.05,
                                                                  "input_tokens": 7}))
note("wrote", n)
if TASK.get("description") == "hold":
    deadline = time.time() + 60
    while not (SHARED / f"go-{TASK_ID}").exists() and time.time() < deadline:
        time.sleep(0.02)
note("end", n)
report(summary=f"run {n} done", usage={"input_tokens": 10, "output_tokens": 5, "usd": 0.1})
"""


@pytest.fixture
def org(tmp_path: Path) -> Iterator[Org]:
    o = Org(tmp_path)
    o.agent("worker", WORKER)
    yield o
    for p in o.procs:
        if p.poll() is None:
            p.kill()
            p.wait(10)


def agents_of(org: Org, tid: str) -> list[psutil.Process]:
    """The live processes of `tid`'s run (found from outside the sandbox)."""
    out = []
    for p in psutil.process_iter():
        try:
            env = p.environ()
            if (env.get("AOI_ORG_DIR") == str(org.root) and env.get("AOI_TASK_ID") == tid
                    and p.status() != psutil.STATUS_ZOMBIE):
                out.append(p)
        except psutil.Error:
            continue
    return out


def wrote(org: Org, tid: str, n: int = 1) -> bool:
    return any(ln[0] == tid and ln[1:] == [str(n)] for ln in org.lines("wrote"))


def told(org: Org, tid: str) -> list[list[str]]:
    """(run, employee, $AOI_RESUMING, what the context said) of each run of `tid`."""
    return [ln[1:] for ln in org.lines("told") if ln[0] == tid]


def branch_file(org: Org, tid: str, path: str) -> str:
    return git(org.root, "show", f"aoi/{tid}:{path}")


def tip_author(org: Org, tid: str) -> str:
    return git(org.root, "log", "-1", "--format=%an <%ae>", f"aoi/{tid}").strip()


def status(org: Org, tid: str) -> S | None:
    t = org.tasks().get(tid)
    return t.status if t is not None else None


def go(org: Org, tid: str) -> None:
    (org.shared / f"go-{tid}").write_text("go")


def ok(org: Org, *args: str) -> str:
    out = org.aoi(*args)
    assert out.returncode == 0, out.stderr
    return out.stdout


def setup(org: Org, *employees: str, max_agents: int = 1, **config: object) -> None:
    for eid in employees:
        org.employee(eid, "worker")
    org.config(max_agents=max_agents)
    with open(org.root / ".gitignore", "a") as fh:
        fh.write("cache/\n")  # what only a kept worktree keeps
    if config:
        org.edit_config(lambda d: d.update(config))
    org.commit()


# ----------------------------------------------------------------------- 1. cancel

@pytest.mark.parametrize("how", ["cli", "file", "cascade"])
def test_cancelling_a_running_task_stops_its_run_keeps_its_work_and_frees_the_slot(
        org: Org, how: str) -> None:
    setup(org, "eng-1")
    long = "long"
    if how == "cascade":  # a subtask of a person's task runs; the person cancels the parent
        org.new("root", "The project", assignee="ceo")
        org.new(long, description="hold", priority=5, parent="root")
    else:
        org.new(long, description="hold", priority=5)
    org.new("next")
    daemon = org.start()
    wait_for(lambda: wrote(org, long), what="the agent to write")
    assert agents_of(org, long)
    if how == "cli":
        ok(org, "task", "cancel", long, "-m", "not needed")
    elif how == "file":
        path = org.root / "tasks" / f"{long}.yaml"
        data = yaml.safe_load(path.read_text())
        data["status"] = "cancelled"
        save(path, yaml.safe_dump(data, sort_keys=False))
    else:
        ok(org, "task", "cancel", "root")  # the cascade takes the subtask with it
    # the run ends as a unit, and its slot goes to the next task (max_agents: 1)
    wait_for(lambda: not agents_of(org, long), timeout=STOP_BOUND_S,
             what="the cancelled run to end")
    wait_for(lambda: org.runs("next") == 1, what="the freed slot to be used")
    go(org, "next")
    wait_for(lambda: org.task("next").status is S.FINISHED, what="the next task")
    t = org.task(long)
    assert t.status is S.CANCELLED and t.attempts == 0
    assert org.runs(long) == 1 and not any(ln[0] == long for ln in org.lines("end"))
    # what it wrote is on its branch, committed as the agent's work, not a person's
    assert branch_file(org, long, f"work-{long}.txt") == "run 1 by eng-1\n"
    assert tip_author(org, long) == "eng-1 (agent) <eng-1@aoi.invalid>"
    assert PERSON_NAME not in git(org.root, "log", "--format=%an %cn", f"main..aoi/{long}")
    # and what it spent (its seconds) is on the task and in the settling commit
    assert t.cost["seconds"] > 0 and t.cost["usd"] == pytest.approx(0.05)
    assert t.cost["input_tokens"] == 7
    body = git(org.root, "log", "-1", "--format=%B", "--grep", "was stopped", "--", "tasks")
    assert f"Aoi-Task: {long}" in body and "Aoi-Cost-Seconds" in body \
        and "Aoi-Employee: eng-1" in body
    assert f"{long}: stopped the run of eng-1" in org.daemon_log()
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(30) == 0, org.output(daemon)
    org.assert_clean()


def test_editing_a_running_tasks_assignee_hands_it_over_and_the_old_agent_never_completes(
        org: Org) -> None:
    setup(org, "eng-1", "eng-2", max_agents=2)
    org.new("job", description="hold")
    daemon = org.start()
    wait_for(lambda: wrote(org, "job"), what="eng-1 to write")
    path = org.root / "tasks" / "job.yaml"
    data = yaml.safe_load(path.read_text())
    data["assignee"] = "eng-2"
    save(path, yaml.safe_dump(data, sort_keys=False))
    wait_for(lambda: wrote(org, "job", 2), what="eng-2 to take over")
    go(org, "job")
    wait_for(lambda: org.task("job").status is S.FINISHED, what="the task to finish")
    # eng-1's run never ended on its own; eng-2 started from its work, told of the handoff
    assert [ln[1] for ln in org.lines("end") if ln[0] == "job"] == ["2"]
    assert told(org, "job") == [["1", "eng-1", "-", "fresh"], ["2", "eng-2", "-", "handoff"]]
    assert (org.shared / "seen-job-2.txt").read_text() == "run 1 by eng-1\n"
    assert org.in_base("work-job.txt") == "run 1 by eng-1\nrun 2 by eng-2\n"
    t = org.task("job")
    assert t.attempts == 0 and t.assignee == "eng-2"
    assert any("handed over from eng-1 to eng-2" in x for x in t.feedback_texts())
    assert org.transitions("job")[:4] == [
        "new->pending", "pending->processing", "processing->pending", "pending->processing"]
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(30) == 0, org.output(daemon)
    org.assert_clean()


# ---------------------------------------------------------- 2. pause, resume, preempt

def test_a_paused_task_keeps_its_worktree_and_resumes_where_it_was(org: Org) -> None:
    setup(org, "eng-1")
    org.new("job", description="hold", priority=5)
    org.new("other")
    daemon = org.start()
    wait_for(lambda: wrote(org, "job"), what="the agent to write")
    assert ok(org, "task", "pause", "job", "-m", "the design changes").strip() == "paused job"
    wait_for(lambda: not agents_of(org, "job"), timeout=STOP_BOUND_S,
             what="the paused run to end")
    wait_for(lambda: status(org, "other") is S.FINISHED, what="the freed slot to be used")
    t = org.task("job")
    assert t.status is S.SUSPENDED and t.attempts == 0
    assert t.bookkeeping.resuming and t.bookkeeping.preempted_by is None
    assert t.cost["seconds"] > 0
    # its worktree stays as it was (ignored files too); its work is on its branch as well
    worktree = org.root / ".aoi" / "worktrees" / "job"
    assert (worktree / "cache" / "state").read_text() == "cache of run 1\n"
    assert branch_file(org, "job", "work-job.txt") == "run 1 by eng-1\n"
    assert tip_author(org, "job") == "eng-1 (agent) <eng-1@aoi.invalid>"
    assert "Aoi-Actor: human:" in commit_of(org, "job", "processing->suspended")
    # it waits for a person, who sees it in `aoi status`
    needs = ok(org, "status").split("needs a person:")[1]
    assert any("job" in ln and "suspended" in ln for ln in needs.splitlines())
    ok(org, "task", "resume", "job")
    wait_for(lambda: wrote(org, "job", 2), what="the resumed run")
    assert told(org, "job") == [["1", "eng-1", "-", "fresh"], ["2", "eng-1", "1", "resuming"]]
    assert (org.shared / "seen-job-2.txt").read_text() == "run 1 by eng-1\n"
    assert (org.shared / "cache-job-2.txt").read_text() == "cache of run 1\n"
    go(org, "job")
    wait_for(lambda: status(org, "job") is S.FINISHED, what="the resumed task to finish")
    assert org.in_base("work-job.txt") == "run 1 by eng-1\nrun 2 by eng-1\n"
    t = org.task("job")
    assert t.attempts == 0 and not t.bookkeeping.resuming
    assert org.transitions("job")[:6] == [
        "new->pending", "pending->processing", "processing->suspended", "suspended->pending",
        "pending->processing", "processing->completed"]
    # what a person cannot pause or resume: one line, status 1
    for args, says in ((("pause", "job"), "only a running"),
                       (("resume", "other"), "only a suspended")):
        out = org.aoi("task", *args)
        assert out.returncode == 1 and says in out.stderr and len(lines(out.stderr)) == 1
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(30) == 0, org.output(daemon)
    org.assert_clean()


def test_a_task_that_outranks_a_running_one_preempts_it_and_it_resumes_after(
        org: Org) -> None:
    setup(org, "eng-1", scheduling={"preempt": {"min_priority_gap": 50}})
    org.new("low", description="hold", priority=0)
    daemon = org.start()
    wait_for(lambda: wrote(org, "low"), what="the low-priority agent to write")
    org.new("urgent", priority=100)
    wait_for(lambda: not agents_of(org, "low"), timeout=STOP_BOUND_S,
             what="the preempted run to end")
    wait_for(lambda: status(org, "urgent") is S.FINISHED, what="the urgent task")
    # then the preempted task resumes by itself, where it was, in the same worktree
    wait_for(lambda: wrote(org, "low", 2), what="the preempted task to resume")
    assert told(org, "low") == [["1", "eng-1", "-", "fresh"], ["2", "eng-1", "1", "resuming"]]
    assert (org.shared / "cache-low-2.txt").read_text() == "cache of run 1\n"
    go(org, "low")
    wait_for(lambda: status(org, "low") is S.FINISHED, what="the resumed task to finish")
    low = org.task("low")
    assert low.attempts == 0 and low.bookkeeping.preempted_by is None
    assert org.in_base("work-low.txt") == "run 1 by eng-1\nrun 2 by eng-1\n"
    assert org.transitions("low")[:5] == [
        "new->pending", "pending->processing", "processing->suspended",
        "suspended->processing", "processing->completed"]
    body = commit_of(org, "low", "processing->suspended")
    assert "Aoi-Actor: daemon:" in body and "preempted by urgent" in body
    # one run at a time: urgent ran between low's two runs, never beside them
    order = [(ln[0], ln[1]) for ln in org.lines("told")]
    assert order == [("low", "1"), ("urgent", "1"), ("low", "2")]
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(30) == 0, org.output(daemon)
    org.assert_clean()


def test_kill_9_between_a_suspension_and_the_end_of_its_run_recovers_it_to_resume(
        org: Org) -> None:
    setup(org, "eng-1")
    org.new("job", description="hold")
    daemon = org.start()
    wait_for(lambda: wrote(org, "job"), what="the agent to write")
    daemon.send_signal(signal.SIGKILL)
    daemon.wait(10)
    wait_for(lambda: not agents_of(org, "job"), timeout=STOP_BOUND_S,
             what="the agent to die with its daemon")
    # the suspension is committed, its run never settled: what a kill -9 right after the
    # daemon's (or a person's) suspending commit leaves
    ok(org, "task", "pause", "job")
    assert org.task("job").status is S.SUSPENDED and not org.task("job").bookkeeping.resuming
    daemon = org.start()
    wait_for(lambda: org.task("job").bookkeeping.resuming, what="the recovery to settle it")
    t = org.task("job")
    assert t.status is S.SUSPENDED and t.attempts == 0 and org.runs("job") == 1
    assert t.cost["input_tokens"] == 7  # what the killed agent noted it had spent
    assert branch_file(org, "job", "work-job.txt") == "run 1 by eng-1\n"
    assert tip_author(org, "job") == "eng-1 (agent) <eng-1@aoi.invalid>"
    assert "the run of eng-1 was stopped" in org.daemon_log()
    ok(org, "task", "resume", "job")
    wait_for(lambda: wrote(org, "job", 2), what="the resumed run")
    assert len(agents_of(org, "job")) >= 1
    assert told(org, "job")[-1] == ["2", "eng-1", "1", "resuming"]
    assert (org.shared / "cache-job-2.txt").read_text() == "cache of run 1\n"
    go(org, "job")
    wait_for(lambda: status(org, "job") is S.FINISHED, what="the task to finish")
    assert org.runs("job") == 2
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(30) == 0, org.output(daemon)
    org.assert_clean()


# ------------------------------------------------------------------ 3. reassign

def test_reassigning_a_running_task_hands_its_branch_to_the_new_assignee(org: Org) -> None:
    setup(org, "eng-1", "eng-2", max_agents=2)
    org.new("job", description="hold")
    daemon = org.start()
    wait_for(lambda: wrote(org, "job"), what="eng-1 to write")
    ok(org, "task", "reassign", "job", "eng-2", "-m", "eng-1 is needed elsewhere")
    wait_for(lambda: wrote(org, "job", 2), what="eng-2 to take over")
    assert told(org, "job") == [["1", "eng-1", "-", "fresh"], ["2", "eng-2", "-", "handoff"]]
    assert (org.shared / "seen-job-2.txt").read_text() == "run 1 by eng-1\n"
    context = (org.root / ".aoi" / "runs" / "job" / "context.md").read_text()
    assert "## Handed over to you from eng-1" in context
    assert "eng-1 is needed elsewhere" in context and "aoi/job" in context
    go(org, "job")
    wait_for(lambda: status(org, "job") is S.FINISHED, what="the task to finish")
    assert [ln[1] for ln in org.lines("end") if ln[0] == "job"] == ["2"]
    assert org.in_base("work-job.txt") == "run 1 by eng-1\nrun 2 by eng-2\n"
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(30) == 0, org.output(daemon)
    org.assert_clean()


def test_reassigning_suspended_and_pending_tasks_and_what_cannot_be(org: Org) -> None:
    setup(org, "eng-1", "eng-2")
    org.new("job", description="hold")
    org.new("later", depends_on=["job"])  # pending until job is finished
    daemon = org.start()
    wait_for(lambda: wrote(org, "job"), what="eng-1 to write")
    ok(org, "task", "pause", "job")
    wait_for(lambda: org.task("job").bookkeeping.resuming, what="the pause to settle")
    ok(org, "task", "reassign", "later", "eng-2")  # pending, never ran: no handover
    for args, says in ((("later", "nobody-here"), "no active employee"),
                       (("later", "ceo"), "is a person"),
                       (("later", "eng-2"), "already assigned to eng-2")):
        out = org.aoi("task", "reassign", *args)
        assert out.returncode == 1 and says in out.stderr and len(lines(out.stderr)) == 1
    ok(org, "task", "reassign", "job", "eng-2")  # suspended: handed over, back in the queue
    wait_for(lambda: wrote(org, "job", 2), what="eng-2 to take over")
    go(org, "job")
    wait_for(lambda: status(org, "job") is S.FINISHED and status(org, "later") is S.FINISHED,
             what="both tasks to finish")
    assert told(org, "job") == [["1", "eng-1", "-", "fresh"], ["2", "eng-2", "1", "handoff"]]
    assert (org.shared / "cache-job-2.txt").read_text() == "cache of run 1\n"
    assert told(org, "later") == [["1", "eng-2", "-", "fresh"]]
    assert org.transitions("job")[:5] == [
        "new->pending", "pending->processing", "processing->suspended", "suspended->pending",
        "pending->processing"]
    out = org.aoi("task", "reassign", "job", "eng-1")
    assert out.returncode == 1 and "only pending, processing or suspended" in out.stderr
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(30) == 0, org.output(daemon)
    org.assert_clean()


def test_the_context_says_a_run_resumes_or_is_handed_over() -> None:
    from test_scheduler import emp, task

    from aoi_git.domain.bookkeeping import Bookkeeping
    from aoi_git.org.context import assemble

    def context_of(book: Bookkeeping, feedback: tuple[dict[str, str], ...] = ()) -> str:
        t = task("job", bookkeeping=book, feedback=feedback)
        return assemble(task=t, employee=emp("eng-2"), talent_prompt="", principles="",
                        sops=[], journal="", tasks={"job": t}, max_chars=2000)

    fresh = context_of(Bookkeeping())
    assert "## You are resuming" not in fresh and "## Handed over" not in fresh
    resumed = context_of(Bookkeeping(resuming=True))
    assert "## You are resuming this task" in resumed and "do not start over" in resumed
    note = {"from": "human:Test Person", "kind": "handoff", "text": "reassigned: marker-h1"}
    handed = context_of(Bookkeeping(handoff_from="eng-1", resuming=True), (note,))
    assert "## Handed over to you from eng-1" in handed and "aoi/job" in handed
    assert "marker-h1" in handed and "## You are resuming" not in handed
