"""`aoi daemon`: watches the org checkout and runs agents on tasks, within the caps.

The loop sleeps on one event, woken by the file watcher, by an agent process exiting (the
reaper's thread reports each exit), by a signal, or by the next deadline (a timeout, a
retry time, an index flush). With nothing to do it uses no CPU. Each tick reconciles
(finished processes, timeouts, a head moved by someone else, a person's saved files),
asks the pure scheduler what to do, and has the executor commit it; the daemon itself
only starts, watches and stops agent processes. Every state change is one commit.

Nothing one file or one action does stops the loop: an exception while handling one is
logged with its traceback to `.aoi/daemon.log`, listed under `problems` in the status
file (`aoi status` shows it), and everything else goes on; an action that failed so is
tried again after PROBLEM_RETRY_S.

Crash safety: the claim is a commit made before the agent starts; agents die with the
daemon (PR_SET_PDEATHSIG, and the restart kills what is left of their process groups);
on start, every `processing` task is recovered: a result its agent wrote before the crash
is picked up, otherwise the task goes back to pending and runs again (never twice at
once: its task lock and slot lock are flocks the agent inherits).
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from types import FrameType
from typing import Any

from aoi_git.domain.model import Actor, ActorKind, Employee, Status, Task
from aoi_git.errors import AoiError, IllegalTransition
from aoi_git.org.context import assemble_from_view
from aoi_git.org.tool_access import allowed_tools
from aoi_git.runtime import agent_run
from aoi_git.runtime.backends.base import AgentConfig, Backend
from aoi_git.runtime.clock import Clock
from aoi_git.runtime.executor import Executor, RunInfo, freeze_heap
from aoi_git.runtime.locks import DaemonLock, SlotLock, take_slot, take_task_lock
from aoi_git.runtime.person_files import PersonFiles
from aoi_git.runtime.reaper import Reaper
from aoi_git.runtime.scheduler import Action, AskBudget, Dispatch, Running, SchedState, plan
from aoi_git.store import index_journal
from aoi_git.store.git import git
from aoi_git.store.history import records
from aoi_git.store.org_store import Store
from aoi_git.store.trash import Trash
from aoi_git.store.tree_snapshot import Snapshot
from aoi_git.store.txn import now_iso
from aoi_git.store.worktrees import NewWorktree

log = logging.getLogger("aoi.daemon")
S = Status
INDEX_FLUSH_S = 0.5
# `git gc --auto` (see Daemon._pack): a long-running daemon runs it when it goes idle after
# IDLE_GC_COMMITS commits; an --until-idle run at its exit, past EXIT_GC_FACTOR x gc.auto
EXIT_GC_FACTOR = 8
IDLE_GC_COMMITS = 500
LOCK_RETRY_S = 0.05
INDEX_FLUSH_SHARE = 50  # while busy, flush at most every 50x the last flush took (<= 2%)
PROBLEM_RETRY_S = 60.0  # an action that raised is tried again after this long


@dataclass
class Active:
    task_id: str
    employee: str
    backend: str
    files: agent_run.RunFiles
    started: float
    deadline: float
    pgid: int = 0
    proc: subprocess.Popen[bytes] | None = None
    slot: SlotLock | None = None
    task_lock: SlotLock | None = None
    term_at: float | None = None
    kill_at: float | None = None
    timed_out: bool = False
    stopped: bool = False  # killed by a cold stop of the daemon, not by its own failure
    fresh_tip: str | None = None  # the branch was made for this run at this base commit
    before: Snapshot | None = None  # the worktree as the agent got it


@dataclass
class Breaker:
    failures: int = 0
    until: float = 0.0


@dataclass
class Problem:
    """Something the loop could not handle: what (an action, a run, a stage), the error."""

    what: str
    error: str
    at: str
    retry_at: float | None = None  # for an action: when it is tried again


@dataclass
class DaemonOptions:
    max_agents: int | None = None
    until_idle: bool = False
    grace_s: float | None = None
    watch: bool = True
    on_commit: Callable[[str, str], None] | None = None  # (actor, subject line): progress


def load_backends() -> dict[str, Backend]:
    out: dict[str, Backend] = {}
    for ep in entry_points(group="aoi.backends"):
        try:
            out[ep.name] = ep.load()()
        except Exception as exc:  # a broken third-party plugin must not stop the daemon
            log.warning("backend %s failed to load: %s", ep.name, exc)
    if "script" not in out:
        from aoi_git.runtime.backends.script import ScriptBackend

        out["script"] = ScriptBackend()
    if "claude" not in out:
        from aoi_git.runtime.backends.claude import ClaudeBackend

        out["claude"] = ClaudeBackend()
    return out


@dataclass
class _Spending:
    day: str = ""
    by_employee: dict[str, float] = field(default_factory=dict)


class Daemon:
    def __init__(self, root: Path, options: DaemonOptions | None = None,
                 clock: Clock | None = None) -> None:
        self.root = Path(root).resolve()
        self.opts = options or DaemonOptions()
        self.clock = clock or Clock()
        self.aoi = self.root / ".aoi"
        self.runs_dir = self.aoi / "runs"
        self.status_file = self.aoi / "daemon" / "status.json"
        self.index_journal = index_journal.journal_path(self.root)
        self.index_journal.parent.mkdir(parents=True, exist_ok=True)
        self.index_writer = index_journal.Writer(self.index_journal)
        self.trash = Trash(self.aoi / "trash")
        self.actor = Actor(ActorKind.DAEMON, socket.gethostname())
        store = Store(self.root)
        store.defer_index = True
        store.on_notice = self._log
        self.store = store
        self.executor = Executor(self.root, store, self.actor, self.clock, self._log,
                                 self.index_writer, self.trash, self.opts.on_commit)
        self.common_dir = store.common_dir
        self.backends = load_backends()
        self.active: dict[str, Active] = {}
        self.exits: queue.SimpleQueue[tuple[str, int]] = queue.SimpleQueue()  # (task, rc)
        self.reaper = Reaper(self._child_exited)
        self.wake = threading.Event()
        self.breakers: dict[str, Breaker] = {}
        self.stop_level = 0
        self.stop_since: float | None = None  # when the warm stop began
        self.person_files = PersonFiles(
            self.root, git("config", "user.name", cwd=self.root, check=False).strip()
            or "unknown", self._log)
        self.problems: dict[str, Problem] = {}
        self.spending = _Spending()
        self.last_flush = 0.0
        self.flush_every = INDEX_FLUSH_S  # longer in a big org: its index write costs more
        self.observer: Any = None
        self.lock = DaemonLock(self.common_dir, self.root)
        self.started = self.clock.wall()
        self.idle = False
        self.ticks = 0
        self._status_written = ""
        self.lock_busy = False  # a dispatch found its task or slot lock taken

    # ----------------------------------------------------------------- set-up
    def _signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop_level += 1
        self.wake.set()

    def _start_watcher(self) -> None:
        from aoi_git.runtime.watcher import start_watcher

        self.observer = start_watcher(self.root, self._on_fs_event, self._on_overflow)

    def _on_fs_event(self, path: str) -> None:
        self.person_files.saw(path)
        self.wake.set()

    def _on_overflow(self) -> None:
        self.person_files.rescan = True
        self.wake.set()

    # ------------------------------------------------------------------- loop
    def run(self) -> int:
        self.lock.acquire()
        prev = {s: signal.signal(s, self._signal) for s in (signal.SIGTERM, signal.SIGINT)}
        sys.setswitchinterval(0.0005)
        try:
            self._log(f"daemon started on {self.root} (pid {os.getpid()})")
            self.recover()
            freeze_heap()
            if self.opts.watch:
                self._start_watcher()
            while True:
                now = self.clock.wall()
                try:
                    next_wake = self.tick(now)
                except Exception as exc:  # not one action's or file's: the tick's own
                    self._record_problem("the daemon's tick", exc)
                    next_wake = now + 1.0
                else:
                    self.problems.pop("the daemon's tick", None)
                if self.stop_level >= 2:
                    self._cold_stop()
                    break
                if self.stop_level == 1 and not self.active:
                    break
                if self.stop_level == 1 and self._grace_over(now):
                    self._log("grace period over: cold stop")
                    self._cold_stop()
                    break
                if self.opts.until_idle and self.idle:
                    self._pack(at_exit=True)
                    break
                timeout = None if next_wake is None else max(0.0, next_wake - self.clock.wall())
                if self.stop_level == 1:
                    timeout = min(timeout if timeout is not None else 1.0, 1.0)
                self.wake.wait(timeout)
                self.wake.clear()
            return 0
        finally:
            for s, h in prev.items():
                signal.signal(s, h)
            if self.observer is not None:
                self.observer.stop()
            self.reaper.close()
            self.flush_index()
            self.index_writer.close()
            self.store.save_cache()
            self.executor.workspace.drop_pool()
            self.trash.wait()
            gc.unfreeze()  # (the process may go on, e.g. tests running a daemon in-process)
            self._write_status(self.clock.wall(), stopped=True)
            self.lock.release()
            self._log("daemon stopped")

    def _pack(self, at_exit: bool) -> None:
        """Pack loose objects at a quiet moment, never while agents are being started.

        The store runs `git gc --auto` every GC_EVERY_COMMITS commits, in the background,
        for a daemon that is never idle. A long-running daemon also runs it (in the
        background) when it goes idle after IDLE_GC_COMMITS commits. An --until-idle run
        (e.g. from cron) commits too little for either: it checks at its exit, in the
        foreground (so the next run does not compete with it), past EXIT_GC_FACTOR times
        git's threshold, so a series of short runs packs once in a while, not at every exit.
        It never runs at start: there it competes with the first agents for the CPUs."""
        commits = self.store.commits_since_gc
        if at_exit and commits > 0:
            self.store.maintenance(loose_factor=EXIT_GC_FACTOR, wait=True)
        elif not at_exit and commits >= IDLE_GC_COMMITS:
            self.store.maintenance()

    def _grace_over(self, now: float) -> bool:
        if self.stop_since is None:
            self.stop_since = now
            self._log("warm stop: no new agents; waiting for running ones")
        return now - self.stop_since > self._grace_s()

    def _grace_s(self) -> float:
        return self.opts.grace_s if self.opts.grace_s is not None else \
            self.executor.org.config.limits.grace_s

    def _cold_stop(self) -> None:
        for a in list(self.active.values()):
            a.stopped = True
            if a.pgid:
                agent_run.kill_group(a.pgid, signal.SIGKILL)
        deadline = self.clock.monotonic() + 5
        while self.active and self.clock.monotonic() < deadline:
            self._drain_exits(block=0.2)

    def tick(self, now: float) -> float | None:
        """One reconciliation + scheduling step; returns when to wake up next."""
        self.ticks += 1
        self._drain_exits()
        self._check_timeouts(now)
        if self.executor.head_moved():
            self.executor.refresh()
        self.person_files.take(self.executor)
        next_wake = self._schedule(now)
        for a in self.active.values():
            for t in (a.deadline if a.term_at is None else None, a.kill_at):
                if t is not None:
                    next_wake = t if next_wake is None else min(next_wake, t)
        if self.store.pending_moves:
            if now - self.last_flush >= self.flush_every or not self.active:
                self.flush_index()
                self.last_flush = now
            else:
                nxt = self.last_flush + self.flush_every
                next_wake = nxt if next_wake is None else min(next_wake, nxt)
        self._write_status(now)
        return next_wake

    def _schedule(self, now: float) -> float | None:
        ex = self.executor
        for _ in range(200):  # apply actions until the plan is stable (bounded)
            day = dt.date.fromtimestamp(now).isoformat()
            if day != self.spending.day:
                self._load_spent_today(day)
            live = ex.live_set()
            org = ex.org
            state = SchedState(
                tasks=org.tasks, employees=org.employees, config=org.config,
                live=live.live, children=live.children, queue=live.queue,
                running={a.task_id: Running(a.task_id, a.employee, a.backend, a.started)
                         for a in self.active.values()},
                spent_today=self.spending.by_employee,
                breakers={k: b.until for k, b in self.breakers.items() if b.until > now},
                max_agents=self.opts.max_agents, stopping=self.stop_level > 0,
            )
            p = plan(state, now)
            acted = False
            held: list[float] = []  # retry times of actions that raised before
            # agents first: a finished run's remaining commits (accept, merge, finish) are
            # then made while the next agent already runs
            for action in sorted(p.actions, key=lambda a: not isinstance(a, Dispatch)):
                what = f"action {action}"
                earlier = self.problems.get(what)
                if earlier is not None and earlier.retry_at is not None \
                        and earlier.retry_at > now:
                    held.append(earlier.retry_at)
                    continue
                try:
                    with self._surviving(what, retry_at=now + PROBLEM_RETRY_S):
                        acted |= self._act(action, now)
                except (IllegalTransition, AoiError) as exc:
                    self._log(f"skipped {action}: {exc}")
                    ex.refresh()
            if not acted:
                # invalid files and actions that keep failing wait for a person: they do
                # not keep the daemon busy
                was_idle = self.idle
                self.idle = not self.active and p.next_wake is None and all(
                    isinstance(a, AskBudget) or f"action {a}" in self.problems
                    for a in p.actions)
                if self.idle and not was_idle and not self.opts.until_idle:
                    self._pack(at_exit=False)
                next_wake = min([t for t in (p.next_wake, *held) if t is not None],
                                default=None)
                if self.lock_busy:  # no event will say when the lock is free: look again
                    self.lock_busy = False
                    soon = now + LOCK_RETRY_S
                    return soon if next_wake is None else min(next_wake, soon)
                return next_wake
        return now + 0.05

    def _act(self, action: Action, now: float) -> bool:
        if isinstance(action, Dispatch):
            return self.dispatch(action.task_id, action.employee, now)
        return self.executor.execute(action, now, self.spending.by_employee)

    @contextmanager
    def _surviving(self, what: str, retry_at: float | None = None) -> Iterator[None]:
        """Run the block; an unexpected exception in it is logged with its traceback and
        recorded as a problem of `what` instead of stopping the loop. IllegalTransition
        and AoiError (the state moved, or a clear refusal) pass through to the caller."""
        try:
            yield
        except (IllegalTransition, AoiError):
            raise
        except Exception as exc:
            self._record_problem(what, exc, retry_at)
        else:
            self.problems.pop(what, None)

    def _record_problem(self, what: str, exc: Exception, retry_at: float | None = None) -> None:
        error = f"{type(exc).__name__}: {exc}"
        self._log(f"{what} failed: {error}\n{traceback.format_exc().rstrip()}")
        self.problems[what] = Problem(what, error[:500], now_iso(self.clock.wall()), retry_at)

    # --------------------------------------------------------------- dispatch
    def dispatch(self, task_id: str, employee_id: str, now: float) -> bool:
        """Claim `task_id` for `employee_id` and start its agent; False when it cannot
        start now (no backend, or the task's or a slot's lock is taken)."""
        ex = self.executor
        emp = ex.org.employees[employee_id]
        backend = self.backends.get(emp.backend.kind)
        if backend is None:
            self._trip(emp.backend.kind, now, f"no backend {emp.backend.kind!r} installed")
            return False
        task_lock = take_task_lock(self.common_dir, task_id)
        if task_lock is None:
            self.lock_busy = True
            return False  # another process runs it: never twice at once
        slot = take_slot(self.common_dir, emp.id, emp.capacity.concurrency)
        if slot is None:  # e.g. a killed agent's leftover has not exited yet
            task_lock.release()
            self.lock_busy = True
            return False
        try:
            cur = ex.org.tasks.get(task_id)
            if cur is not None and cur.status is S.PENDING:  # ours now: forget earlier runs
                agent_run.RunFiles(self.runs_dir / task_id).clear_outcome()
        except BaseException:
            slot.release()
            task_lock.release()
            raise
        # the worktree's checkout (a git process) runs while the claim is committed; the
        # claim only changes tasks/, which worktrees leave out, so both orders give one tree
        made: NewWorktree | Exception
        try:
            made = ex.workspace.begin_create(task_id)
        except Exception as exc:  # reported as the run's failure once the claim is made
            made = exc
        try:
            ex.claim(task_id, emp)
        except BaseException:
            if isinstance(made, NewWorktree):
                self._drop_worktree(task_id, made)
            slot.release()
            task_lock.release()
            raise
        task = ex.org.tasks[task_id]
        try:
            if isinstance(made, Exception):
                raise made
            self._start_agent(task, emp, backend, slot, task_lock, now, made)
        except Exception as exc:  # could not even start: a failed attempt, not a crash
            slot.release()
            task_lock.release()
            self._log(f"{task_id}: could not start the agent: {exc}")
            self._finish_run(task_id, emp, agent_run.AgentResult(
                "failed", error=f"could not start the agent: {exc}"), now, None)
        return True

    def _drop_worktree(self, task_id: str, made: NewWorktree) -> None:
        try:
            made.ready()
        except AoiError:
            pass
        self.executor.workspace.remove(task_id)
        if made.fresh_tip is not None:
            self.executor.workspace.delete_branch(task_id)

    def _start_agent(self, task: Task, emp: Employee, backend: Backend, slot: SlotLock,
                     task_lock: SlotLock, now: float, made: NewWorktree) -> None:
        ex = self.executor
        view = self.store.head()
        sop_names = self.store.list_dir("sops", view)
        context = assemble_from_view(view, task, emp, ex.org.tasks, sop_names)
        tools = allowed_tools(emp, ex.org.config, ex.org.talents.get(emp.talent or ""))
        budget_usd = task.budget.get("usd")
        timeout = float(task.budget.get("timeout_s") or emp.capacity.timeout_s)
        cfg = AgentConfig(
            employee=emp.id, role=emp.role, model=emp.backend.model, tools=tools,
            max_turns=emp.capacity.max_turns,
            max_budget_usd=(float(budget_usd) - float(task.cost.get("usd", 0.0)))
            if budget_usd is not None else None,
            max_tokens=int(task.budget.get("tokens") or emp.capacity.tokens_per_task or 0) or None,
            reflect=bool(emp.backend.options.get("reflect", emp.backend.kind == "claude")),
            options=dict(emp.backend.options),
        )
        files = agent_run.prepare(self.runs_dir / task.id, {**task.to_dict(), "employee": emp.id},
                                  context, cfg.to_json())
        cwd = made.ready()
        before = ex.workspace.snapshot(task.id)
        env = {**os.environ, **backend.environment(emp),
               "AOI_TASK_ID": task.id, "AOI_TASK_FILE": str(files.task),
               "AOI_CONTEXT_FILE": str(files.context), "AOI_RESULT_FILE": str(files.result),
               "AOI_ORG_DIR": str(self.root), "AOI_AGENT_CONFIG": str(files.config),
               "AOI_EMPLOYEE": emp.id, "AOI_WORKSPACE_BASE": ex.workspace.base}
        proc = agent_run.spawn(backend.command(emp), files=files, cwd=cwd, env=env,
                               memory_mb=emp.capacity.memory_mb if getattr(
                                   backend, "limit_address_space", True) else None,
                               keep_fds=(slot.fd, task_lock.fd))
        a = Active(task.id, emp.id, emp.backend.kind, files, now, now + timeout, proc.pid, proc,
                   slot, task_lock, fresh_tip=made.fresh_tip, before=before)
        self.active[task.id] = a
        self.reaper.watch(task.id, proc)
        self._log(f"{task.id}: started {emp.id} ({emp.backend.kind}) pid {proc.pid}")

    def _child_exited(self, task_id: str, rc: int) -> None:
        """(On the reaper's thread.) The exit status goes to the run's files first: a
        daemon killed right after still knows the agent finished (see `recover`)."""
        try:
            agent_run.RunFiles(self.runs_dir / task_id).exit.write_text(str(rc))
        except OSError:
            pass
        self.exits.put((task_id, rc))
        self.wake.set()

    # ----------------------------------------------------------- finishing runs
    def _drain_exits(self, block: float | None = None) -> None:
        while True:
            try:
                task_id, rc = self.exits.get(timeout=block) if block else \
                    self.exits.get_nowait()
            except queue.Empty:
                return
            block = None
            a = self.active.get(task_id)
            if a is not None:
                try:
                    with self._surviving(f"the end of the run of {task_id}"):
                        self._on_exit(a, rc, self.clock.wall())
                except (IllegalTransition, AoiError) as exc:
                    self._log(f"{task_id}: the end of its run not recorded: {exc}")
                    self.executor.refresh()

    def _on_exit(self, a: Active, rc: int | None, now: float) -> None:
        result = agent_run.read_result(a.files, rc)
        if a.timed_out:
            result = agent_run.AgentResult("failed", usage=result.usage, error=(
                f"timed out after {now - a.started:.0f}s (timeout_s); the whole process group "
                "was killed"))
        emp = self.executor.org.employees.get(a.employee)
        try:
            if a.stopped and not a.files.result.exists():
                # the daemon killed it: not a failed attempt; it runs again after a restart
                self.executor.requeue(a.task_id, "stopped by a cold stop of the daemon")
                self.executor.workspace.remove(a.task_id)
                self._log(f"{a.task_id}: killed by the cold stop; back to pending")
                return
            if emp is None:
                raise AoiError(f"employee {a.employee} is gone")
            self._finish_run(a.task_id, emp, result, now,
                             RunInfo(a.started, a.fresh_tip, a.before))
        finally:
            self.active.pop(a.task_id, None)
            if a.pgid:
                agent_run.kill_group(a.pgid, signal.SIGKILL)  # leftovers of the agent
            if a.slot:
                a.slot.release()
            if a.task_lock:
                a.task_lock.release()

    def _finish_run(self, task_id: str, emp: Employee, result: agent_run.AgentResult,
                    now: float, run: RunInfo | None) -> None:
        done = self.executor.finish_run(task_id, emp, result, now, run)
        if done is None:
            return
        usd = float(result.usage.get("usd", 0.0))
        spent = self.spending.by_employee
        spent[emp.id] = spent.get(emp.id, 0.0) + usd
        kind = emp.backend.kind
        br = self.breakers.setdefault(kind, Breaker())
        if done.outcome == "failed":
            br.failures += 1
            if br.failures >= self.executor.org.config.limits.breaker_failures:
                self._trip(kind, now, f"{br.failures} failures in a row")
        else:
            br.failures = 0
        self._log(f"{task_id}: {emp.id} finished: {done.outcome}"
                  + (f" ({done.error[:200]})" if done.error else ""))

    def _trip(self, kind: str, now: float, why: str) -> None:
        br = self.breakers.setdefault(kind, Breaker())
        br.until = now + self.executor.org.config.limits.breaker_cooldown_s
        br.failures = 0
        self._log(f"backend {kind} paused until {now_iso(br.until)}: {why}")

    def _check_timeouts(self, now: float) -> None:
        grace = self._grace_s()
        for a in self.active.values():
            if a.term_at is None and now >= a.deadline and a.pgid:
                a.timed_out = True
                a.term_at = now
                a.kill_at = now + min(grace, 5.0)
                agent_run.kill_group(a.pgid, signal.SIGTERM)
                self._log(f"{a.task_id}: timeout: SIGTERM to process group {a.pgid}")
            elif a.kill_at is not None and now >= a.kill_at and a.pgid:
                agent_run.kill_group(a.pgid, signal.SIGKILL)
                a.kill_at = None
                self._log(f"{a.task_id}: SIGKILL to process group {a.pgid}")

    # ------------------------------------------------------------- recovery
    def recover(self) -> None:
        """Bring every `processing` task whose agent is gone to a consistent state."""
        ex = self.executor
        self._finish_interrupted_index_flush()
        for task in list(ex.org.tasks.values()):
            if task.status is S.PROCESSING:
                with self._surviving(f"the recovery of {task.id}"):
                    self._recover_run(task)
        self.trash.empty()  # what a crash kept the last daemon from deleting
        ex.workspace.drop_pool()
        # stale worktrees of tasks that are not running
        wt = self.aoi / "worktrees"
        if wt.is_dir():
            for child in wt.iterdir():
                if child.name.startswith("."):
                    continue
                t = ex.org.tasks.get(child.name)
                if t is None or t.status is not S.PROCESSING:
                    ex.workspace.remove(child.name)
        ex.review_performance()  # a cycle a crash cut short (derived from reviews/)

    def _recover_run(self, task: Task) -> None:
        files = agent_run.RunFiles(self.runs_dir / task.id)
        meta = files.read_meta()
        pgid = int(meta.get("pgid") or 0)
        if pgid and agent_run.group_alive(pgid):
            agent_run.kill_group(pgid, signal.SIGKILL)  # agents do not outlive their daemon
            self._log(f"{task.id}: killed the orphaned agent group {pgid}")
        emp_id = task.bookkeeping.routed_to or task.assignee
        emp = self.executor.org.employees.get(str(emp_id))
        # the run files were cleared before the claim was committed: a result or an
        # exit status here is this claim's, even if the daemon died before it wrote
        # meta.json (a fast agent can finish before that)
        has_result = files.result.exists()
        rc = files.read_exit()
        if emp is not None and (has_result or rc is not None):
            result = agent_run.read_result(files, rc)
            self._log(f"{task.id}: picked up the result its agent left before the crash")
            self._finish_run(task.id, emp, result, self.clock.wall(), None)
            return
        self.executor.requeue(task.id)
        self._log(f"{task.id}: recovered to pending (its agent was gone)")

    # ------------------------------------------------------------- index flush
    # Work-tree files and index entries are moved along at most every INDEX_FLUSH_S (one
    # index write for many commits, one file write for a task's several transitions); until
    # then the executor journals the moves (see aoi_git.store.index_journal).
    def flush_index(self) -> None:
        """Bring the checkout's work-tree files and index up to the daemon's commits."""
        started = self.clock.monotonic()
        if not self.store.flush_index():
            self._log("index locked by another git process: updating it later")
            return
        self.index_writer.clear()
        # ~40 ms at 100k tasks (the whole index is rewritten): every 2 s, not every 0.5 s
        took = self.clock.monotonic() - started
        self.flush_every = max(INDEX_FLUSH_S, min(5.0, INDEX_FLUSH_SHARE * took))

    def _finish_interrupted_index_flush(self) -> None:
        moves = index_journal.read(self.index_journal)
        if not moves:
            self.index_writer.clear()
            return
        self.store.resume_moves(moves)
        self.flush_index()
        self._log(f"finished the work-tree and index update of {len(moves)} path(s) a crash "
                  "interrupted")

    # ------------------------------------------------------------------ status
    def _load_spent_today(self, day: str) -> None:
        self.spending = _Spending(day)
        try:
            for rec in records(self.root, since=f"{day} 00:00"):
                usd = rec.cost.get("usd")
                emp = dict(rec.trailers).get("Aoi-Employee")
                if usd and emp:
                    self.spending.by_employee[emp] = \
                        self.spending.by_employee.get(emp, 0.0) + usd
        except Exception as exc:  # history is advisory here
            self._log(f"could not read today's cost: {exc}")

    def _write_status(self, now: float, stopped: bool = False) -> None:
        data = {
            "pid": os.getpid(), "root": str(self.root), "started": self.started,
            "stopped": stopped,
            "running": [{"task": a.task_id, "employee": a.employee, "backend": a.backend,
                         "started": a.started, "pid": a.pgid} for a in self.active.values()],
            "breakers": {k: {"until": b.until, "failures": b.failures}
                         for k, b in self.breakers.items()},
            "invalid": self.person_files.problems,
            "problems": [{"what": p.what, "error": p.error, "at": p.at}
                         for p in self.problems.values()],
            "spent_today": self.spending.by_employee,
            "stopping": self.stop_level > 0,
        }
        text = json.dumps(data, indent=1)
        if text == self._status_written:
            return  # one write per change, not per tick
        self.status_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.status_file.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.status_file)
        self._status_written = text

    def _log(self, msg: str) -> None:
        line = f"{now_iso(self.clock.wall())} {msg}"
        log.info(msg)
        path = self.aoi / "daemon.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as fh:
            fh.write(line + "\n")
