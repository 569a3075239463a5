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

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import yaml
from kit import AOI_BIN, PERSON_NAME, git
from test_daemon import Org, save, wait_for

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
    assert tip_author(org, long) == "eng-1 <eng-1@aoi.invalid>"
    assert PERSON_NAME not in git(org.root, "log", "--format=%an %cn", f"main..aoi/{long}")
    # and what it spent (its seconds) is on the task and in the settling commit
    assert t.cost["seconds"] > 0
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
