"""`aoi daemon` end to end: real git orgs, real agent processes, real signals.

Agents are small Python scripts committed into the org under `agents/` and run through
`backend: {kind: script, command: [python, agents/x.py]}`. They leave evidence (start and
end times, pids, run counters) in a `shared/` folder outside the org, so the org's
`git status` stays clean. The daemon runs in-process (`Daemon.run()` / `Daemon.tick()`
with a fake clock) or as the real `aoi daemon` where signals and kill -9 matter.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pygit2
import pytest
import yaml
from kit import AOI_BIN, PERSON_ACTOR, agent_processes, git, wait_for
from orgkit import TmpOrg

from aoi_git.domain.model import Actor, ActorKind, Kind, Status
from aoi_git.errors import IllegalTransition
from aoi_git.org.organisation import load_org
from aoi_git.runtime import daemon as daemon_mod
from aoi_git.runtime.backends.registry import load_backends
from aoi_git.runtime.clock import Clock
from aoi_git.runtime.daemon import Daemon, DaemonOptions
from aoi_git.runtime.scheduler import parse_time
from aoi_git.store.org_store import Store
from aoi_git.store.txn import commit

pytestmark = pytest.mark.timeout(90)

S = Status

PREAMBLE = '''\
import json, os, signal, subprocess, sys, time, pathlib
TASK_ID = os.environ["AOI_TASK_ID"]
TASK = json.loads(pathlib.Path(os.environ["AOI_TASK_FILE"]).read_text())
RESULT = pathlib.Path(os.environ["AOI_RESULT_FILE"])
SHARED = pathlib.Path({shared!r})

def report(outcome="completed", summary="done", **kw):
    RESULT.write_text(json.dumps({{"outcome": outcome, "summary": summary, **kw}}))

def note(name, *fields):
    with open(SHARED / name, "a") as fh:
        fh.write(" ".join(str(f) for f in (TASK_ID, *fields)) + "\\n")

def bump(name="runs"):
    note(name, os.getpid(), time.time())
    return sum(1 for line in open(SHARED / name) if line.split()[0] == TASK_ID)

'''


# ------------------------------------------------------------------------------ helpers

def max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals],
                    key=lambda x: (x[0], x[1]))  # an end before a start at the same time
    cur = best = 0
    for _, d in events:
        cur += d
        best = max(best, cur)
    return best


class Org(TmpOrg):
    """A real org in tmp_path with script employees; `shared/` holds agents' evidence."""

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.daemons: list[Daemon] = []

    # -- setting up
    def agent(self, name: str, body: str) -> Path:
        path = self.root / "agents" / f"{name}.py"
        path.write_text(PREAMBLE.format(shared=str(self.shared)) + textwrap.dedent(body))
        return path

    def employee(self, eid: str, agent: str | None = None, *, kind: str = "script",
                 role: str = "engineer", concurrency: int = 1, timeout_s: float = 60,
                 memory_mb: int | None = None, command: list[str] | None = None,
                 **backend: Any) -> None:
        be: dict[str, Any] = {"kind": kind, **backend}
        if command is not None:
            be["command"] = command
        elif agent is not None:
            be["command"] = [sys.executable, str(self.root / "agents" / f"{agent}.py")]
        cap: dict[str, Any] = {"concurrency": concurrency, "timeout_s": timeout_s}
        if memory_mb is not None:
            cap["memory_mb"] = memory_mb
        profile = {"id": eid, "name": eid.title(), "role": role, "reports_to": "ceo",
                   "status": "active", "backend": be, "capacity": cap}
        folder = self.root / "employees" / eid
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "profile.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))

    # -- reading
    def lines(self, name: str) -> list[list[str]]:
        path = self.shared / name
        if not path.exists():
            return []
        return [ln.split() for ln in path.read_text().splitlines() if ln.strip()]

    def runs(self, tid: str | None = None, name: str = "runs") -> int:
        return sum(1 for ln in self.lines(name) if tid is None or ln[0] == tid)

    # -- running
    def daemon(self, clock: Callable[[], float] = time.time, **opts: Any) -> Daemon:
        """A daemon driven by `tick()` (no loop, no signals); its agents die with the test."""
        d = Daemon(self.root, DaemonOptions(watch=False, **opts), clock=Clock(wall=clock))
        self.daemons.append(d)
        return d

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        """`aoi daemon ARGS` as a real process; returns once it logged its start."""
        out = open(self.root.parent / f"daemon-{len(self.procs)}.out", "wb")  # noqa: SIM115
        p = subprocess.Popen([str(AOI_BIN), "-C", str(self.root), "daemon", *args],
                             stdout=out, stderr=subprocess.STDOUT)
        out.close()
        self.procs.append(p)
        wait_for(lambda: f"(pid {p.pid})" in self.daemon_log() or p.poll() is not None,
                 what="the daemon to start")
        assert p.poll() is None, self.output(p)
        return p

    def output(self, p: subprocess.Popen[bytes]) -> str:
        i = self.procs.index(p)
        return (self.root.parent / f"daemon-{i}.out").read_text(errors="replace")

    def assert_clean(self) -> None:
        assert git(self.root, "status", "--porcelain") == ""
        fsck = subprocess.run(["git", "fsck", "--strict"], cwd=self.root, capture_output=True,
                              text=True, check=False)
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr
        assert "error" not in fsck.stderr.lower() and "missing" not in fsck.stdout.lower()

    def in_base(self, path: str) -> str | None:
        proc = subprocess.run(["git", "show", f"main:{path}"], cwd=self.root,
                              capture_output=True, text=True, check=False)
        return proc.stdout if proc.returncode == 0 else None


@pytest.fixture
def org(tmp_path: Path) -> Iterator[Org]:
    o = Org(tmp_path)
    yield o
    for p in o.procs:  # only the daemons this test started
        if p.poll() is None:
            p.kill()
            p.wait(10)
    for d in o.daemons:  # and the agents of in-process daemons, should a test fail early
        for a in d.active.values():
            if a.pgid:
                with contextlib.suppress(OSError):
                    os.killpg(a.pgid, signal.SIGKILL)


def drive(d: Daemon, until: Callable[[], Any], *, clock: Callable[[], float] = time.time,
          timeout: float = 20.0, what: str = "the daemon") -> None:
    """Tick an in-process daemon (no run loop, no signals) until `until()` holds."""
    end = time.monotonic() + timeout
    while True:
        d.tick(clock())
        if until():
            return
        if time.monotonic() > end:
            raise AssertionError(f"timed out driving {what}; log:\n{d.root / '.aoi/daemon.log'}")
        d.wake.wait(0.05)
        d.wake.clear()


OK_AGENT = """
bump()
start = time.time()
if TASK.get("description") == "wait":  # until the test says go
    deadline = time.time() + 60
    while not (SHARED / "go").exists() and time.time() < deadline:
        time.sleep(0.02)
else:
    time.sleep(float(TASK.get("description") or 0))
pathlib.Path(f"out-{TASK_ID}.txt").write_text(f"made by {TASK_ID}\\n")
note("intervals", start, time.time())
report(summary=f"wrote out-{TASK_ID}.txt",
       usage={"input_tokens": 120, "output_tokens": 30, "usd": 0.25})
"""


# ------------------------------------------------------------------------- end to end

def test_reviewer_none_runs_merges_and_finishes(org: Org) -> None:
    org.agent("ok", OK_AGENT)
    org.employee("eng-1", "ok")
    org.commit()
    org.new("job-1", "Write the file")
    d = org.run()
    t = org.task("job-1")
    assert t.status is S.FINISHED
    assert t.result and t.result["branch"] == "aoi/job-1"
    assert t.result["summary"] == "wrote out-job-1.txt"
    assert t.cost["input_tokens"] == 120 and t.cost["output_tokens"] == 30
    assert t.cost["usd"] == pytest.approx(0.25)
    # the agent's file is in the base branch and in the person's work tree
    assert org.in_base("out-job-1.txt") == "made by job-1\n"
    assert (org.root / "out-job-1.txt").read_text() == "made by job-1\n"
    # the worktree is gone; only the main checkout is left
    assert not (org.root / ".aoi" / "worktrees" / "job-1").exists()
    assert len(git(org.root, "worktree", "list").splitlines()) == 1
    assert d.idle and not d.active
    org.assert_clean()
    assert org.transitions("job-1") == ["new->pending", "pending->processing",
                                        "processing->completed", "completed->accepted",
                                        "accepted->finished"]
    text = org.aoi("log", "job-1")
    assert text.returncode == 0, text.stderr
    (done,) = [ln for ln in text.stdout.splitlines() if "processing->completed" in ln]
    assert "agent:eng-1" in done and "$0.2500" in done
    rows = json.loads(org.aoi("log", "job-1", "--json").stdout)
    (row,) = [r for r in rows if r["transitions"][0]["transition"] == "processing->completed"]
    assert row["actor"] == "agent:eng-1"
    assert row["cost"]["usd"] == pytest.approx(0.25)
    assert row["cost"]["input_tokens"] == 120 and row["cost"]["output_tokens"] == 30
    assert row["cost"]["seconds"] > 0
    body = git(org.root, "log", "-1", "--format=%B", "--grep=processing -> completed")
    assert "Aoi-Cost-Usd: 0.25" in body and "Aoi-Employee: eng-1" in body
    assert (org.root / ".aoi" / "daemon.log").exists()


def test_the_loaded_org_is_left_out_of_the_garbage_collector_while_the_daemon_runs(
        org: Org) -> None:
    org.agent("ok", OK_AGENT)
    org.employee("eng-1", "ok")
    org.commit()
    org.new("job-1", "Write the file")
    frozen: list[int] = []
    org.run(on_commit=lambda actor, subject: frozen.append(gc.get_freeze_count()))
    assert frozen and min(frozen) > 1000  # the org's objects, frozen once loaded
    assert gc.get_freeze_count() == 0  # and given back when the daemon stops


def test_a_run_that_changed_nothing_leaves_no_branch_or_worktree(org: Org) -> None:
    org.employee("eng-1", command=["/bin/sh", "-c", f"ls -A > {org.shared}/seen.txt"])
    org.commit()
    org.new("quiet", "Look around")
    org.run()
    assert org.task("quiet").status is S.FINISHED
    assert org.task("quiet").result is not None and "branch" not in org.task("quiet").result
    assert git(org.root, "branch", "--list", "aoi/*") == ""
    assert len(git(org.root, "worktree", "list").splitlines()) == 1
    assert not (org.root / ".aoi" / "worktrees" / "quiet").exists()
    assert not any((org.root / ".aoi" / "trash").iterdir())  # deleted, not only moved
    # the worktree held the work product only: no org state (it comes in the context file)
    seen = set((org.shared / "seen.txt").read_text().split())
    assert "aoi.yaml" in seen and ".vscode" in seen
    assert not seen & {"tasks", "employees", "talents", "sops", "schemas", "retros", "reviews"}
    org.assert_clean()


def _loose_objects_past_gc_auto(org: Org, auto: int) -> Path:
    """Set gc.auto to `auto` and make `git gc --auto`, which estimates the loose objects
    from objects/17/, see more than that; returns HEAD's loose object file."""
    git(org.root, "config", "gc.auto", str(auto))
    repo, n = pygit2.Repository(str(org.root)), 0
    while len(list((org.root / ".git" / "objects" / "17").glob("*"))) < 3:
        repo.create_blob(f"filler {n}".encode())
        n += 1
    head = git(org.root, "rev-parse", "HEAD").strip()
    loose_head = org.root / ".git" / "objects" / head[:2] / head[2:]
    assert loose_head.exists()
    return loose_head


def test_an_until_idle_run_packs_loose_objects_at_exit(org: Org) -> None:
    # one run commits far fewer than GC_EVERY_COMMITS: without a check at exit, loose
    # objects piled up over many short runs (78k after 7 benchmark runs)
    org.employee("eng-1", command=["/bin/sh", "-c", "true"])
    org.commit()
    org.new("t-11", "Nothing to do")
    loose_head = _loose_objects_past_gc_auto(org, 20)  # at exit: 8x that, 160
    org.run()
    assert not loose_head.exists()  # packed before the run returned
    subprocess.run(["git", "fsck", "--no-progress"], cwd=org.root, check=True,
                   capture_output=True)
    # a run past gc.auto but under 8x it leaves them loose
    org.new("t-12", "Nothing either")
    loose_head = _loose_objects_past_gc_auto(org, 2_000)
    org.run()
    assert loose_head.exists()


def test_a_long_running_daemon_packs_when_it_goes_idle(
        org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(daemon_mod, "IDLE_GC_COMMITS", 3)
    org.employee("eng-1", command=["/bin/sh", "-c", "true"])
    org.commit()
    org.new("t-11", "Nothing to do")
    loose_head = _loose_objects_past_gc_auto(org, 20)
    d = org.daemon()
    drive(d, lambda: d.idle, what="t-11 to finish")
    assert org.task("t-11").status is S.FINISHED
    wait_for(lambda: not loose_head.exists(), what="the background gc to pack")
    subprocess.run(["git", "fsck", "--no-progress"], cwd=org.root, check=True,
                   capture_output=True)


# ------------------------------------------------------------------ mutual exclusion

@pytest.mark.parametrize(("staff", "concurrency", "max_agents", "cap"), [
    (1, 1, 4, 1),   # concurrency 1 = mutual exclusion
    (1, 2, 4, 2),   # concurrency 2: at most two at once
    (2, 3, 2, 2),   # max_agents caps the total across employees
], ids=["concurrency-1", "concurrency-2", "max-agents-2"])
def test_concurrency_and_max_agents(org: Org, staff: int, concurrency: int, max_agents: int,
                                    cap: int) -> None:
    org.config(max_agents=max_agents)
    org.agent("ok", OK_AGENT)
    for i in range(1, staff + 1):
        org.employee(f"eng-{i}", "ok", concurrency=concurrency)
    org.commit()
    n = 5 if staff == 1 else 6
    for i in range(n):
        # long enough that agents started together overlap even on a loaded machine
        org.new(f"job-{i}", assignee=f"eng-{i % staff + 1}",
                description="0.25" if cap == 1 else "0.6")
    org.run()
    assert all(t.status is S.FINISHED for t in org.tasks().values() if t.id.startswith("job-"))
    intervals = [(float(s), float(e)) for _, s, e in org.lines("intervals")]
    assert len(intervals) == n and org.runs() == n  # each ran exactly once
    assert max_overlap(intervals) <= cap
    if cap > 1:
        assert max_overlap(intervals) >= 2  # the slots are really used in parallel
    org.assert_clean()


# --------------------------------------------------------------- idempotent dispatch

def test_a_second_daemon_on_the_same_checkout_refuses(org: Org) -> None:
    org.employee("eng-1", "ok")
    org.agent("ok", OK_AGENT)
    org.commit()
    first = org.start()
    second = org.aoi("daemon", "--until-idle", timeout=30)
    assert second.returncode == 1
    err = second.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert "already running" in err and str(first.pid) in err
    assert "Traceback" not in second.stderr + second.stdout
    first.send_signal(signal.SIGTERM)
    assert first.wait(20) == 0, org.output(first)


def test_dispatching_a_running_task_again_is_a_no_op(org: Org) -> None:
    org.agent("ok", OK_AGENT)
    org.employee("eng-1", "ok", concurrency=2)
    org.commit()
    org.new("job-1", description="1.0")
    d = org.daemon()
    drive(d, lambda: "job-1" in d.active and org.runs("job-1") == 1, what="the first start")
    head = git(org.root, "rev-parse", "HEAD")
    # the same daemon, a stale plan: its own task lock refuses
    with contextlib.suppress(IllegalTransition):
        assert not d.dispatch("job-1", "eng-1", time.time())
    # another daemon object (as after a restart, or a second process): the claim refuses
    other = org.daemon()
    with contextlib.suppress(IllegalTransition):
        assert not other.dispatch("job-1", "eng-1", time.time())
    assert git(org.root, "rev-parse", "HEAD") == head
    assert len(d.active) == 1 and not other.active
    drive(d, lambda: org.task("job-1").status is S.FINISHED, what="job-1 to finish")
    assert org.runs("job-1") == 1
    assert org.transitions("job-1").count("pending->processing") == 1


def test_claiming_a_task_that_is_already_processing_starts_nothing(org: Org) -> None:
    """After a crash the task is `processing` and no lock is held: dispatching it again
    must not start a second agent (recovery decides what to do with it)."""
    org.agent("ok", OK_AGENT)
    org.employee("eng-1", "ok")
    org.commit()
    org.new("job-1")
    store = Store(org.root)
    commit(store, lambda txn: txn.move("job-1", S.PROCESSING), Actor(ActorKind.DAEMON, "h"),
           load_org(store).index.paths)
    head = git(org.root, "rev-parse", "HEAD")
    d = org.daemon()
    started = False
    with contextlib.suppress(IllegalTransition):
        started = d.dispatch("job-1", "eng-1", time.time())
    assert not started and not d.active
    time.sleep(0.3)
    assert org.runs() == 0
    assert git(org.root, "rev-parse", "HEAD") == head


# ----------------------------------------------------------------------------- caps

def test_timeout_kills_the_whole_process_group(org: Org) -> None:
    org.config(backoff_base_s=30, max_attempts=3)
    org.agent("hang", """
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the child inherits it: KILL is needed
        child = subprocess.Popen(["sleep", "1000"])
        note("pids", os.getpid(), child.pid)
        time.sleep(1000)
    """)
    org.employee("eng-1", "hang", timeout_s=1)
    org.commit()
    org.new("job-1")
    d = org.daemon(grace_s=1)
    t0 = time.time()
    drive(d, lambda: org.lines("pids"), what="the agent to start")
    drive(d, lambda: not d.active and org.task("job-1").attempts == 1, what="the timeout")
    assert time.time() - t0 < 10
    assert len(org.lines("pids")) == 1
    wait_for(lambda: not agent_processes(org.root), timeout=5, what="agent and child to die")
    t = org.task("job-1")
    assert t.status in (S.FAILED, S.PENDING)
    assert t.attempts == 1
    assert any("timed out" in x for x in t.feedback_texts())
    retry_at = parse_time(t.retry_at)
    assert retry_at is not None and retry_at > time.time() + 10  # backoff, not at once
    assert "processing->failed" in org.transitions("job-1")
    # the SIGTERM ends the sandbox's bwrap and with it every process of the run; a run
    # without the sandbox is killed with SIGKILL after the grace period
    assert "timeout: SIGTERM" in org.daemon_log()


def test_memory_cap_fails_the_run_not_the_daemon(org: Org) -> None:
    org.config(max_attempts=1)
    org.agent("hog", """
        bump()
        hog = bytearray(1 << 30)
        report(summary="allocated 1 GB")
    """)
    org.agent("ok", OK_AGENT)
    org.employee("eng-1", "hog", memory_mb=200)
    org.employee("eng-2", "ok", memory_mb=200)
    org.commit()
    org.new("hog-1")
    org.new("fine-1", assignee="eng-2")
    org.run()
    t = org.task("hog-1")
    assert org.runs("hog-1") == 1
    assert t.status is S.FAILED and t.attempts == 1
    assert any("MemoryError" in x for x in t.feedback_texts()), t.feedback_texts()
    assert org.task("fine-1").status is S.FINISHED  # the daemon carried on


BAD_RESULTS = """
mode = TASK["description"]
bump()
if mode == "garbage":
    RESULT.write_bytes(b"{this is not json\\x00\\xff")
elif mode == "huge":
    RESULT.write_text(json.dumps({"outcome": "completed", "summary": "x" * (5 << 20)}))
elif mode == "silent-ok":
    print("stdout-line-1")
    print("the-stdout-tail-marker")
    sys.exit(0)
elif mode == "silent-fail":
    print("to stdout", flush=True)
    print("the-stderr-tail-marker", file=sys.stderr)
    sys.exit(3)
elif mode == "chatty":
    line = "y" * 1023 + "\\n"
    for _ in range(20 * 1024):
        sys.stdout.write(line)
    sys.stdout.flush()
    report(summary="printed 20 MB")
"""


def test_bad_results_are_handled(org: Org) -> None:
    org.config(max_attempts=1, breaker_failures=100)
    org.agent("modes", BAD_RESULTS)
    org.employee("eng-1", "modes", concurrency=5)
    org.commit()
    for mode in ("garbage", "huge", "silent-ok", "silent-fail", "chatty"):
        org.new(mode, description=mode)
    t0 = time.time()
    org.run()
    assert time.time() - t0 < 30
    tasks = org.tasks()
    for mode in ("garbage", "huge", "silent-ok", "silent-fail", "chatty"):
        assert org.runs(mode) == 1, mode

    garbage = tasks["garbage"]
    assert garbage.status is S.FAILED
    assert any("not valid JSON" in x for x in garbage.feedback_texts())

    huge = tasks["huge"]  # a big result is a result: its summary is cut to its bound
    assert huge.status is S.FINISHED and huge.result is not None
    assert len(huge.result["summary"]) == 20_000
    assert len(json.dumps(huge.to_dict())) < 100_000  # the 5 MB never reached the task

    ok = tasks["silent-ok"]
    assert ok.status is S.FINISHED
    assert ok.result and "the-stdout-tail-marker" in ok.result["summary"]

    failed = tasks["silent-fail"]
    assert failed.status is S.FAILED
    (fbk,) = [x for x in failed.feedback_texts() if "attempt 1 failed" in x]
    assert "exit status 3" in fbk and "the-stderr-tail-marker" in fbk

    chatty = tasks["chatty"]
    assert chatty.status is S.FINISHED and chatty.result["summary"] == "printed 20 MB"
    # the failures were escalated to the CEO, each once
    decisions = [t for t in tasks.values() if t.kind is Kind.HUMAN]
    assert sorted(t.bookkeeping.decision_for for t in decisions) == ["garbage", "silent-fail"]
    org.assert_clean()


# ---------------------------------------------------------------------------- retries

class FakeClock:
    def __init__(self) -> None:
        self.t = time.time()

    def __call__(self) -> float:
        return self.t


def test_retries_respect_retry_at_then_escalate_to_the_supervisor(org: Org) -> None:
    org.config(max_attempts=2, backoff_base_s=100, breaker_failures=100)
    org.agent("fail", """
        n = bump()
        seen = " | ".join(fb["text"] for fb in TASK.get("feedback", []))
        (SHARED / f"seen-{n}.json").write_text(json.dumps([TASK.get("attempts", 0), seen]))
        print(f"error-of-run-{n}", file=sys.stderr)
        sys.exit(1)
    """)
    org.employee("eng-1", "fail")
    org.commit()
    org.new("job-1", "Flaky job")
    clock = FakeClock()
    d = org.daemon(clock=clock)
    drive(d, lambda: org.task("job-1").attempts == 1 and not d.active, clock=clock,
          what="the first failure")
    t = org.task("job-1")
    assert t.status is S.PENDING  # retried, but not before retry_at
    retry_at = parse_time(t.retry_at)
    assert retry_at is not None and clock.t + 90 <= retry_at <= clock.t + 101
    clock.t += 50
    for _ in range(5):
        d.tick(clock())
        time.sleep(0.05)
    assert org.runs() == 1 and not d.active
    clock.t = retry_at + 1
    drive(d, lambda: org.task("job-1").attempts == 2 and not d.active, clock=clock,
          what="the second failure")
    drive(d, lambda: any(x.kind is Kind.HUMAN for x in org.tasks().values()), clock=clock,
          what="the escalation")
    assert org.runs() == 2
    t = org.task("job-1")
    assert t.status is S.FAILED and t.attempts == 2
    texts = " ".join(t.feedback_texts())
    assert "error-of-run-1" in texts and "error-of-run-2" in texts
    # the second run saw the first error in its feedback
    a1, _ = json.loads((org.shared / "seen-1.json").read_text())
    a2, seen2 = json.loads((org.shared / "seen-2.json").read_text())
    assert (a1, a2) == (0, 1)
    assert "error-of-run-1" in seen2 and "error-of-run-2" not in seen2
    (h,) = [x for x in org.tasks().values() if x.kind is Kind.HUMAN]
    assert h.assignee == "ceo" and h.bookkeeping.decision_for == "job-1"
    assert t.bookkeeping.escalation == h.id
    assert "error-of-run-1" in h.description and "error-of-run-2" in h.description
    # nothing more happens until the CEO decides
    clock.t += 10_000
    d.tick(clock())
    assert org.runs() == 2 and d.idle


def test_circuit_breaker_pauses_the_backend(org: Org) -> None:
    org.config(breaker_failures=2, breaker_cooldown_s=3600, max_attempts=5,
               backoff_base_s=3600)
    org.agent("fail", """
        bump()
        sys.exit(1)
    """)
    org.employee("eng-1", "fail")
    org.employee("eng-2", "fail", concurrency=3)
    org.commit()
    for i in range(3):
        org.new(f"job-{i}", priority=10 - i)  # eng-1 runs them one by one
    d = org.daemon()
    key = "script: " + " ".join([sys.executable, str(org.root / "agents" / "fail.py")])
    drive(d, lambda: d.breakers.get(key) and d.breakers[key].until > time.time()
          and not d.active, what="the breaker to trip")
    assert org.runs() == 2
    # more work for another employee running the same command: paused as well
    org.new("late-1", assignee="eng-2")
    org.new("late-2", assignee="eng-2")
    for _ in range(10):
        d.tick(time.time())
        time.sleep(0.05)
    assert org.runs() == 2 and not d.active
    tasks = org.tasks()
    waiting = [t for t in tasks.values() if t.kind is Kind.WORK and t.attempts == 0]
    assert sorted(t.id for t in waiting) == ["job-2", "late-1", "late-2"]
    assert all(t.status is S.PENDING for t in waiting)
    status = json.loads(org.aoi("status", "--json").stdout)
    breaker = status["daemon"]["breakers"][key]
    assert breaker["until"] > time.time() + 3000
    assert "2 failures in a row" in breaker["why"] and "exit status 1" in breaker["why"]
    assert "paused until" in org.daemon_log()
    text = org.aoi("status").stdout
    assert f"backend {key} paused" in text and "exit status 1" in text


# ----------------------------------------------------------------------------- budget

def test_over_budget_asks_a_person_and_runs_once_raised(org: Org) -> None:
    org.agent("ok", OK_AGENT)
    org.employee("eng-1", "ok")
    org.commit()
    org.new("job-1", budget={"usd": 1.0}, cost={"usd": 1.0})
    org.run()
    assert org.runs() == 0
    t = org.task("job-1")
    assert t.status is S.PENDING
    (h,) = [x for x in org.tasks().values() if x.kind is Kind.HUMAN]
    assert t.bookkeeping.budget_request == h.id and h.assignee == "ceo" and h.status is S.PENDING
    assert "budget" in (h.question or "")
    answered = org.aoi("answer", h.id, "5")
    assert answered.returncode == 0, answered.stderr
    org.run()
    t = org.task("job-1")
    assert org.runs() == 1
    assert t.status is S.FINISHED and t.budget["usd"] == 5.0
    assert t.cost["usd"] == pytest.approx(1.25)


def test_daily_budget_pauses_the_employee_with_one_request(org: Org) -> None:
    org.agent("ok", OK_AGENT)  # each run costs $0.25
    org.employee("eng-1", "ok")
    profile = org.root / "employees" / "eng-1" / "profile.yaml"
    data = yaml.safe_load(profile.read_text())
    data["capacity"]["usd_per_day"] = 0.5
    profile.write_text(yaml.safe_dump(data, sort_keys=False))
    org.commit()
    for i in range(4):
        org.new(f"job-{i}", priority=10 - i)
    org.run()  # --until-idle exits while a person is asked
    tasks = org.tasks()
    assert org.runs() == 2
    assert [tasks[f"job-{i}"].status for i in range(4)] == [S.FINISHED, S.FINISHED,
                                                            S.PENDING, S.PENDING]
    asks = [t for t in tasks.values() if t.kind is Kind.HUMAN]
    assert len(asks) == 1 and asks[0].bookkeeping.daily and asks[0].assignee == "ceo"
    assert not any(t.bookkeeping.escalation for t in tasks.values())  # not a "deadlock"
    assert org.aoi("answer", asks[0].id, "10").returncode == 0
    org.run()
    assert org.runs() == 4
    assert all(org.task(f"job-{i}").status is S.FINISHED for i in range(4))
    assert yaml.safe_load(profile.read_text())["capacity"]["usd_per_day"] == 10


# ------------------------------------------------------------------------ crash safety

CRASH_AGENT = """
note("runs", "start", os.getpid(), time.time())
time.sleep(2)
pathlib.Path("crash.txt").write_text("survived\\n")
note("runs", "end", os.getpid(), time.time())
report(summary="slept 2 s")
"""


def test_kill_9_while_an_agent_runs_recovers_and_runs_it_again(org: Org) -> None:
    org.agent("slow", CRASH_AGENT)
    org.employee("eng-1", "slow")
    org.commit()
    org.new("job-1")
    daemon = org.start()
    wait_for(lambda: org.lines("runs"), what="the agent to start")
    assert agent_processes(org.root)
    daemon.send_signal(signal.SIGKILL)
    daemon.wait(10)
    killed_at = time.time()
    # the agent dies with its daemon (PR_SET_PDEATHSIG)
    wait_for(lambda: not agent_processes(org.root), timeout=5, what="the orphaned agent to die")
    assert org.task("job-1").status is S.PROCESSING  # the claim was committed
    again = org.aoi("daemon", "--until-idle")
    assert again.returncode == 0, again.stderr
    t = org.task("job-1")
    assert t.status is S.FINISHED
    starts = [ln for ln in org.lines("runs") if ln[1] == "start"]
    ends = [ln for ln in org.lines("runs") if ln[1] == "end"]
    assert len(starts) == 2 and len(ends) == 1
    assert float(ends[0][3]) > killed_at  # the second run finished, the first never did
    assert float(starts[1][3]) > killed_at  # never two at once
    assert org.in_base("crash.txt") == "survived\n"
    assert org.transitions("job-1") == [
        "new->pending", "pending->processing", "processing->pending", "pending->processing",
        "processing->completed", "completed->accepted", "accepted->finished"]
    assert "recovered to pending" in org.daemon_log()
    org.assert_clean()


@pytest.mark.parametrize("shell", [False, True], ids=["python-agent", "sh-agent"])
def test_a_result_written_before_the_crash_is_picked_up(org: Org, shell: bool) -> None:
    # an agent that kills its daemon: possible only unconfined (in the sandbox it sees
    # no process outside its own run)
    org.edit_config(lambda d: d["sandbox"].update(enabled=False))
    if shell:  # as fast as an agent gets: write the result and kill the daemon at once
        command = ["/bin/sh", "-c",
                   f"echo \"$AOI_TASK_ID $$\" >> {org.shared}/runs; echo made > picked.txt; "
                   "printf '%s' '{\"outcome\": \"completed\", \"summary\": \"done before "
                   "the crash\", \"usage\": {\"usd\": 0.5}}' > \"$AOI_RESULT_FILE\"; "
                   "kill -9 $PPID; sleep 5"]
        org.employee("eng-1", command=command)
    else:
        org.agent("killer", """
            bump()
            pathlib.Path("picked.txt").write_text("made\\n")
            report(summary="done before the crash", usage={"usd": 0.5})
            os.kill(os.getppid(), signal.SIGKILL)
            time.sleep(5)
        """)
        org.employee("eng-1", "killer")
    org.commit()
    org.new("job-1")
    first = subprocess.run([str(AOI_BIN), "-C", str(org.root), "daemon", "--until-idle"],
                           capture_output=True, text=True, timeout=30, check=False)
    assert first.returncode == -signal.SIGKILL, first.stderr
    assert org.task("job-1").status is S.PROCESSING
    again = org.aoi("daemon", "--until-idle", timeout=30)
    assert again.returncode == 0, again.stderr
    assert org.runs() == 1  # picked up, not run again
    t = org.task("job-1")
    assert t.status is S.FINISHED
    assert t.result and t.result["summary"] == "done before the crash"
    assert t.cost["usd"] == pytest.approx(0.5)
    assert org.in_base("picked.txt") == "made\n"
    assert org.transitions("job-1").count("pending->processing") == 1
    assert "picked up the result" in org.daemon_log()
    org.assert_clean()


def test_sigterm_is_a_warm_stop_and_a_second_one_is_cold(org: Org) -> None:
    org.agent("ok", OK_AGENT)
    org.employee("eng-1", "ok")
    org.commit()
    org.new("job-1", description="1.5", priority=1)
    org.new("job-2", description="60")
    # warm: the running agent finishes and its result is committed; nothing new starts
    daemon = org.start()
    wait_for(lambda: org.runs("job-1") == 1, what="job-1 to start")
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(30) == 0, org.output(daemon)
    assert org.lines("intervals") and org.lines("intervals")[0][0] == "job-1"
    assert org.task("job-1").status is S.FINISHED
    assert org.runs("job-2") == 0 and org.task("job-2").status is S.PENDING
    assert "warm stop" in org.daemon_log()
    # cold: a second signal kills the running agent
    daemon = org.start()
    wait_for(lambda: org.runs("job-2") == 1, what="job-2 to start")
    assert len([ln for ln in org.lines("runs") if ln[0] == "job-2"]) == 1
    daemon.send_signal(signal.SIGTERM)
    wait_for(lambda: org.daemon_log().count("warm stop") == 2, what="the warm stop")
    time.sleep(0.3)
    assert daemon.poll() is None and agent_processes(org.root)  # still waiting for the agent
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(15) == 0, org.output(daemon)
    assert not agent_processes(org.root)
    # killed by the operator, not failed: back in the queue without burning an attempt
    t = org.task("job-2")
    assert t.status is S.PENDING and t.attempts == 0
    assert "cold stop" in t.feedback_texts()[-1]
    assert org.transitions("job-2")[-2:] == ["pending->processing", "processing->pending"]
    org.assert_clean()


# ------------------------------------------------------------------- a person's edits

def save(path: Path, text: str) -> None:
    """Save like an editor: write a temporary file, rename it over the target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.swp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _daemon_given_my_task(org: Org) -> subprocess.Popen[bytes]:
    """A real daemon (watcher on) with one script employee, and a person's saved task
    file for it (`my-task`, no reviewer)."""
    org.agent("ok", OK_AGENT)
    org.employee("eng-1", "ok")
    org.commit()
    daemon = org.start()
    save(org.root / "tasks" / "my-task.yaml",
         "title: My task\nassignee: eng-1\nreviewer: none\n")
    return daemon


def test_a_persons_saved_task_files_with_the_watcher(org: Org) -> None:
    daemon = _daemon_given_my_task(org)
    wait_for(lambda: org.tasks().get("my-task") and org.task("my-task").status is S.FINISHED,
             what="my-task to run")
    first = git(org.root, "log", "--reverse", "--format=%B%x00", "--", "tasks/my-task.yaml")
    created = first.split("\0")[0]
    assert f"Aoi-Actor: {PERSON_ACTOR}" in created
    assert "Aoi-Transition: new->pending" in created
    assert org.runs("my-task") == 1

    bad = "title: Bad task\nassignee: eng-1\ncolour: red\n"
    bad_path = org.root / "tasks" / "bad-task.yaml"
    save(bad_path, bad)
    wait_for(lambda: "bad-task.yaml" in org.daemon_log(), what="the daemon to log the error")
    time.sleep(0.3)
    assert "colour" in org.daemon_log()
    assert git(org.root, "log", "--format=%H", "--", "tasks/bad-task.yaml") == ""
    assert bad_path.read_bytes() == bad.encode()
    assert "bad-task" not in org.tasks()
    status = org.aoi("status")
    assert "bad-task.yaml" in status.stdout and "colour" in status.stdout
    assert any("bad-task.yaml" in line for line in json.loads(
        org.aoi("status", "--json").stdout)["invalid"])
    check = org.aoi("validate")
    assert check.returncode == 1 and "bad-task.yaml" in check.stderr
    assert "Traceback" not in check.stderr

    save(bad_path, "title: Bad task, fixed\nassignee: eng-1\nreviewer: none\n")
    wait_for(lambda: org.tasks().get("bad-task") and org.task("bad-task").status is S.FINISHED,
             what="the fixed task to run")
    assert org.aoi("validate").returncode == 0
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(20) == 0
    org.assert_clean()


def test_a_running_daemon_keeps_the_task_cache_at_head_for_one_shot_commands(
        org: Org) -> None:
    """While the daemon commits, its task cache's delta follows within a few seconds, so
    `aoi task list --status pending` beside it reads the cache, not the whole org."""
    from aoi_git.store.task_cache_file import read_index

    daemon = _daemon_given_my_task(org)
    cache = org.root / ".aoi" / "cache"

    def at_head() -> bool:
        head = git(org.root, "show", "HEAD:tasks/my-task.yaml", check=False)
        if "status: finished" not in head:
            return False
        read = read_index(cache / "tasks.pickle", cache / "tasks.delta.pickle")
        tree = git(org.root, "rev-parse", "HEAD:tasks").strip()
        return read is not None and read.root_tree == tree

    wait_for(at_head, timeout=30, what="the cache to be HEAD's while the daemon runs")
    assert daemon.poll() is None
    read = read_index(cache / "tasks.pickle", cache / "tasks.delta.pickle")
    assert read is not None and read.rows.status_of("my-task") == "finished"
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(20) == 0


# ------------------------------------------------------------- until-idle and status

def test_until_idle_and_status(org: Org) -> None:
    org.agent("ok", OK_AGENT)
    org.employee("eng-1", "ok")
    org.commit()
    org.new("ask", "What colour?", kind="human", assignee="ceo", question="Red or blue?")
    org.new("job-1", description="wait", priority=1)
    org.new("job-2", description="0")
    daemon = org.start("--until-idle")
    wait_for(lambda: org.runs("job-1") == 1, what="job-1 to start")
    time.sleep(0.1)
    info = json.loads(org.aoi("status", "--json").stdout)
    assert info["daemon"]["running"] is True
    (run,) = info["running"]
    assert run["task"] == "job-1" and run["employee"] == "eng-1" and run["elapsed_s"] > 0
    (eng,) = [e for e in info["employees"] if e["id"] == "eng-1"]
    assert eng["slots"] == 1 and eng["busy"] == 1 and eng["queue"] == ["job-2"]
    text = org.aoi("status").stdout
    assert "running:" in text and "job-1" in text and "slots 1/1" in text
    (org.shared / "go").touch()
    assert daemon.wait(30) == 0, org.output(daemon)  # exits with the question still open
    tasks = org.tasks()
    assert tasks["job-1"].status is S.FINISHED and tasks["job-2"].status is S.FINISHED
    assert tasks["ask"].status is S.PENDING
    save(org.root / "tasks" / "oops.yaml", "title: [unclosed\n")
    info = json.loads(org.aoi("status", "--json").stdout)
    assert info["daemon"]["running"] is False and info["running"] == []
    assert [t["id"] for t in info["needs_person"]] == ["ask"]
    assert any("oops.yaml" in line for line in info["invalid"])
    assert info["cost_today_usd"] == pytest.approx(0.5)
    text = org.aoi("status").stdout
    assert "needs a person" in text and "oops.yaml" in text and "cost today: $0.5000" in text
    assert (org.root / ".aoi" / "daemon.log").exists()


def test_an_action_that_raises_is_a_problem_in_status_not_the_end_of_the_daemon(
        org: Org) -> None:
    org.agent("ok", OK_AGENT)
    org.employee("eng-1", "ok", concurrency=2)
    org.commit()
    org.new("job-1", description="0", priority=1)
    org.new("job-2", description="0")
    # a file where job-1's run folder goes: starting job-1 raises NotADirectoryError
    (org.root / ".aoi" / "runs").mkdir(parents=True, exist_ok=True)
    (org.root / ".aoi" / "runs" / "job-1").write_text("in the way\n")
    daemon = org.start("--until-idle")
    assert daemon.wait(30) == 0, org.output(daemon)
    tasks = org.tasks()
    assert tasks["job-2"].status is S.FINISHED  # everything else went on
    assert tasks["job-1"].status is S.PENDING and org.runs("job-1") == 0
    log = (org.root / ".aoi" / "daemon.log").read_text()
    assert "Traceback" in log and "NotADirectoryError" in log
    info = json.loads(org.aoi("status", "--json").stdout)
    (problem,) = info["problems"]
    assert "job-1" in problem["what"] and "NotADirectoryError" in problem["error"]
    text = org.aoi("status").stdout
    assert "daemon problems" in text and "job-1" in text
    # a restart is no crash loop; once the file is out of the way, job-1 runs
    again = org.start("--until-idle")
    assert again.wait(30) == 0, org.output(again)
    (org.root / ".aoi" / "runs" / "job-1").unlink()
    last = org.start("--until-idle")
    assert last.wait(30) == 0, org.output(last)
    assert org.task("job-1").status is S.FINISHED and org.runs("job-1") == 1
    assert json.loads(org.aoi("status", "--json").stdout)["problems"] == []
    org.assert_clean()


# ------------------------------------------------------------------- claude backend

def test_claude_backend_through_the_daemon(org: Org, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from aoi_git.testing.fake_messages_api import ScriptedMessagesAPI, Text, ToolUse, offline_env

    org.employee("eng-1", kind="claude", model="claude-sonnet-4-5", memory_mb=4096)
    profile = org.root / "employees" / "eng-1" / "profile.yaml"
    data = yaml.safe_load(profile.read_text())
    data["tools"] = ["Read", "Write"]
    profile.write_text(yaml.safe_dump(data, sort_keys=False))
    org.commit()
    org.new("job-1", "Say hello", description="Create hello.txt saying hello.")
    target = org.root / ".aoi" / "worktrees" / "job-1" / "hello.txt"
    script = [
        ToolUse("Write", {"file_path": str(target), "content": "hello from claude\n"}),
        ToolUse("mcp__aoi__report_result", {"outcome": "completed",
                                            "summary": "Wrote hello.txt"}),
        Text("Finished."),
        Text("Lesson: small files are easy to review."),
    ]
    home = tmp_path / "claude-home"
    home.mkdir()
    with ScriptedMessagesAPI(script) as api:
        for k, v in offline_env(api.base_url, str(home)).items():
            monkeypatch.setenv(k, v)
        org.run()
        requests = api.requests
    t = org.task("job-1")
    log = (org.root / ".aoi" / "runs" / "job-1" / "stderr.log").read_text(errors="replace")
    assert t.status is S.FINISHED, (t.feedback_texts(), log[-3000:])
    assert t.result and t.result["summary"] == "Wrote hello.txt"
    assert org.in_base("hello.txt") == "hello from claude\n"
    assert (org.root / "hello.txt").read_text() == "hello from claude\n"
    assert t.cost["usd"] > 0
    assert t.cost["input_tokens"] >= 300 and t.cost["output_tokens"] >= 60
    assert len(requests) >= 3
    assert "Say hello" in json.dumps(requests[0])  # the task reached the model
    rows = json.loads(org.aoi("log", "job-1", "--json").stdout)
    (row,) = [r for r in rows if r["transitions"][0]["transition"] == "processing->completed"]
    assert row["actor"] == "agent:eng-1"
    assert row["cost"]["usd"] == pytest.approx(t.cost["usd"])
    assert row["cost"]["input_tokens"] == t.cost["input_tokens"]
    assert row["cost"]["output_tokens"] == t.cost["output_tokens"]
    org.assert_clean()


# ---------------------------------------------------------- third-party backends

PLUGIN = '''
import sys


class EchoBackend:
    kind = "echo"

    def command(self, employee):
        code = ("import json, os; open(os.environ['AOI_RESULT_FILE'], 'w').write("
                "json.dumps({'outcome': 'completed', 'summary': 'echo ' + os.environ['ECHO']}))")
        return [sys.executable, "-c", code]

    def environment(self, employee):
        return {"ECHO": str(employee.backend.options.get("word", "?"))}


def broken():
    raise RuntimeError("this plugin is broken")
'''


def test_a_backend_registered_through_the_entry_point_group(
        org: Org, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    (site / "aoi_echo_plugin-0.1.dist-info").mkdir(parents=True)
    (site / "aoi_echo_plugin.py").write_text(PLUGIN)
    dist = site / "aoi_echo_plugin-0.1.dist-info"
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: aoi-echo-plugin\n"
                                   "Version: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[aoi.backends]\necho = aoi_echo_plugin:EchoBackend\n"
        "broken = aoi_echo_plugin:broken\n")
    monkeypatch.syspath_prepend(str(site))
    backends = load_backends()
    assert type(backends["echo"]).__name__ == "EchoBackend"
    assert "broken" not in backends  # a broken plugin is skipped, not fatal
    assert {"script", "claude"} <= set(backends)
    org.employee("eng-1", kind="echo", word="marco")
    org.commit()
    org.new("job-1")
    org.run()
    t = org.task("job-1")
    assert t.status is S.FINISHED and t.result and t.result["summary"] == "echo marco"
