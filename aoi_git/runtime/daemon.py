"""`aoi daemon`: watches the org checkout and runs agents on tasks, within the caps.

The loop sleeps on one event, woken by the file watcher, by an agent process exiting (the
reaper's thread reports each exit), by a signal, or by the next deadline (a timeout, a
retry time, an index flush). With nothing to do it uses no CPU. Each tick reconciles
(finished processes, timeouts, a head moved by someone else, a person's saved files),
asks the pure scheduler what to do, and has the executor commit it; the daemon itself
only starts, watches and stops agent processes. A run its task no longer wants
(cancelled, paused, preempted or reassigned: `domain.control`) is stopped at once, as a
unit, and settled by the executor. Every state change is one commit.

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
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, TextIO

from aoi_git.domain.budget import org_day_spent
from aoi_git.domain.control import stop_for
from aoi_git.domain.model import Actor, ActorKind, Employee, Status, Task
from aoi_git.domain.result import AgentResult, Failure
from aoi_git.domain.task_rows import open_tasks
from aoi_git.errors import AoiError, IllegalTransition
from aoi_git.runtime import agent_run, credentials, hosts, run_unit, sandbox
from aoi_git.runtime.agent_launch import launch
from aoi_git.runtime.backends.base import Backend
from aoi_git.runtime.backends.registry import load_backends
from aoi_git.runtime.breakers import Breakers
from aoi_git.runtime.clock import Clock
from aoi_git.runtime.daemon_log import DaemonLog
from aoi_git.runtime.executor import Executor, RunInfo, freeze_heap, keeps_worktree
from aoi_git.runtime.index_flush import IndexFlush
from aoi_git.runtime.locks import DaemonLock, SlotLock, take_slot, take_task_lock
from aoi_git.runtime.person_files import PersonFiles
from aoi_git.runtime.problems import Problems
from aoi_git.runtime.runs import Active, Runs
from aoi_git.runtime.scheduler import Action, AskBudget, Dispatch, Running, SchedState, plan
from aoi_git.runtime.spending import DailySpend
from aoi_git.runtime.status_file import StatusFile
from aoi_git.store import index_journal
from aoi_git.store.branch_base import BaseUpdate, bring_to_base
from aoi_git.store.org_store import Store
from aoi_git.store.trash import Trash
from aoi_git.store.txn import now_iso
from aoi_git.store.worktrees import NewWorktree

if TYPE_CHECKING:
    from aoi_git.runtime.watcher import WatcherStart

S = Status
CACHE_SAVE_EVERY_S = 2.0  # the task cache's delta while the daemon commits (see tick loop)
# `git gc --auto` (see Daemon._pack): a long-running daemon runs it when it goes idle after
# IDLE_GC_COMMITS commits; an --until-idle run at its exit, past EXIT_GC_FACTOR x gc.auto
EXIT_GC_FACTOR = 8
IDLE_GC_COMMITS = 500
LOCK_RETRY_S = 0.05
PROBLEM_RETRY_S = 60.0  # an action that raised is tried again after this long
CLAUDE = "claude"  # the breaker key of the claude backend (`Backend.breaker_key`)
CREDENTIALS_RECHECK_S = 30.0  # a held claude backend looks for a new login this often


@dataclass
class DaemonOptions:
    max_agents: int | None = None
    until_idle: bool = False
    grace_s: float | None = None
    watch: bool = True
    on_commit: Callable[[str, str], None] | None = None  # (actor, subject line): progress
    remote: str | None = None  # the shared remote of a multi-host org (else hosts.remote)
    host_id: str | None = None  # this host's id (else $AOI_HOST_ID, else the host name)
    echo: TextIO | None = None  # where the log's lines are echoed too (stderr for a service)


class Daemon:
    def __init__(self, root: Path, options: DaemonOptions | None = None,
                 clock: Clock | None = None) -> None:
        self.root = Path(root).resolve()
        self.opts = options or DaemonOptions()
        self.clock = clock or Clock()
        self.aoi = self.root / ".aoi"
        self.log_file = DaemonLog(self.aoi / "daemon.log", self.clock.wall, self.opts.echo)
        self.runs_dir = self.aoi / "runs"
        self.status = StatusFile(self.aoi / "daemon" / "status.json")
        self.index_journal = index_journal.journal_path(self.root)
        self.trash = Trash(self.aoi / "trash")
        self.actor = Actor(ActorKind.DAEMON, hosts.host_id(self.opts.host_id))
        store = Store(self.root)
        store.defer_index = True
        store.on_notice = self._log
        self.store = store
        self.index = IndexFlush(store, self.index_journal, self.clock, self._log)
        self.executor = Executor(self.root, store, self.actor, self.clock, self._log,
                                 self.index.writer, self.trash, self.opts.on_commit)
        self.common_dir = store.common_dir
        self.backends = load_backends()
        self.wake = threading.Event()
        self.runs = Runs(self.runs_dir, self.wake, self._log)
        self.active = self.runs.active  # task id -> its run
        # a multi-host org (docs/hosts.md): claims pushed before their agents start
        self.hosts = hosts.open_hosts(store, self.executor.org.config.hosts, self.opts.remote,
                                      self.actor.name, self.clock.wall, self._log, self.wake,
                                      self.executor.journal_index)
        self.claims: list[tuple[str, Callable[[set[str]], None]]] = []  # agents wait for the push
        self.breakers = Breakers()
        self.stop_level = 0
        self.stop_since: float | None = None  # when the warm stop began
        self.person_files = PersonFiles(
            self.root, store.user_name() or "unknown", store.user_email(), self._log)
        self.problems = Problems(self._log, self.clock.wall)
        self.spending = DailySpend(self.root, self._log)
        self.observer: WatcherStart | None = None  # (the file watcher, once started)
        self._cache_saved_at = 0.0  # (see _save_task_cache)
        self.lock = DaemonLock(self.common_dir, self.root)
        self.started = self.clock.wall()
        self.idle = False
        self.ticks = 0
        self.lock_busy = False  # a dispatch found its task or slot lock taken
        self.reload_asked = False
        # the Claude credentials the claude backend was held on (see _check_claude)
        self.claude_hold: credentials.Found | None = None
        self.claude_said = False  # the hold was said on stderr (once there was work for it)
        self.claude_missing: list[str] = []  # the Claude employees without credentials
        self.claude_checked = 0.0  # (monotonic) when the credentials were last looked for
        self.day_cap_said: str | None = None  # limits.usd_per_day reached, as last logged

    # ----------------------------------------------------------------- set-up
    def _signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop_level += 1
        self.wake.set()

    def _hangup(self, signum: int, frame: FrameType | None) -> None:
        self.reload_asked = True  # (SIGHUP: `systemctl reload`) acted on by the loop
        self.wake.set()

    def _reload(self) -> None:
        """Read the org again from HEAD (aoi.yaml included) and rescan people's files."""
        self.reload_asked = False
        self.executor.refresh()
        self.person_files.rescan = True
        self._log("reloaded: aoi.yaml and the org read again (SIGHUP)")

    def _start_watcher(self) -> None:
        from aoi_git.runtime.watcher import WatcherStart

        self.observer = WatcherStart(self.root, self._on_fs_event, self._on_overflow)

    def _on_fs_event(self, path: str) -> None:
        self.person_files.saw(path)
        self.wake.set()

    def _on_overflow(self) -> None:
        self.person_files.rescan = True
        self.wake.set()

    # ------------------------------------------------------------------- loop
    def run(self) -> int:
        sandbox.require(self.executor.org.config.sandbox)  # no agent runs unconfined by accident
        self.lock.acquire()
        prev = {s: signal.signal(s, self._signal) for s in (signal.SIGTERM, signal.SIGINT)}
        prev[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._hangup)
        sys.setswitchinterval(0.0005)
        try:
            self._log(f"daemon started on {self.root} (pid {os.getpid()})")
            if self.hosts is not None:
                self.hosts.start()
                self.executor.refresh()
            if self.opts.watch:
                self._start_watcher()  # (on a thread: ready before the first tick)
            self._check_claude(at_start=True)
            self.recover()
            freeze_heap()
            if self.observer is not None:
                self.observer.observer()
            while True:
                now = self.clock.wall()
                try:
                    if self.reload_asked:
                        self._reload()
                    next_wake = self.tick(now)
                except Exception as exc:  # not one action's or file's: the tick's own
                    self.problems.record("the daemon's tick", exc)
                    next_wake = now + 1.0
                else:
                    self.problems.solved("the daemon's tick")
                self._save_task_cache(now)
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
            if self.hosts is not None:
                self.hosts.stop()
            self.runs.close()
            self.index.finish()
            self.index.writer.close()
            self._log_index_share()
            self.store.save_cache()
            self.executor.workspace.drop_pool()
            self.trash.wait()
            gc.unfreeze()  # (the process may go on, e.g. tests running a daemon in-process)
            self._write_status(self.clock.wall(), stopped=True)
            self.lock.release()
            self._log("daemon stopped")

    def _save_task_cache(self, now: float) -> None:
        """The task cache written at most every CACHE_SAVE_EVERY_S while the daemon
        commits, so one-shot commands beside it (`aoi task list`, `aoi status`) find it at
        HEAD instead of bringing it along themselves (~0.5 s at 100k tasks): a delta while
        agents run, the whole index (after a cold build, or past `DELTA_MAX` changes)
        only when none does."""
        if now - self._cache_saved_at < CACHE_SAVE_EVERY_S:
            return
        self._cache_saved_at = now
        try:
            self.store.save_cache(whole=not self.active)
        except OSError as exc:  # only a cache: the exit writes it, a load rebuilds it
            self.problems.record("writing the task cache", exc)
        else:
            self.problems.solved("writing the task cache")

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
        self.runs.kill_all()
        deadline = self.clock.monotonic() + 5
        while self.active and self.clock.monotonic() < deadline:
            self._drain_exits(block=0.2)

    def tick(self, now: float) -> float | None:
        """One reconciliation + scheduling step; returns when to wake up next."""
        self.ticks += 1
        self._drain_exits()
        self.runs.check_timeouts(now, self._grace_s())
        if self.hosts is not None:
            hosts.before_tick(self.hosts, self.executor, self.runs, now)
        if self.executor.head_moved():
            self.executor.refresh()
        self.person_files.take(self.executor)
        if (self.claude_hold is not None or not self.claude_checked) and \
                self.clock.monotonic() >= self.claude_checked + CREDENTIALS_RECHECK_S:
            self._check_claude()
        self._stop_unwanted_runs()
        next_wake = self._schedule(now)
        self._stop_unwanted_runs()  # (a plan's preemption, a cascade of its moves)
        kill_at = self.runs.next_deadline()
        if kill_at is not None:
            next_wake = kill_at if next_wake is None else min(next_wake, kill_at)
        nxt = self.index.when_due(now, busy=bool(self.active))
        for due in (nxt, *self._held_wakes(now)):
            if due is not None:
                next_wake = due if next_wake is None else min(next_wake, due)
        if self.hosts is not None:
            next_wake = hosts.after_tick(self.hosts, self.executor, now, next_wake)
        self._write_status(now)
        return next_wake

    def _held_wakes(self, now: float) -> list[float]:
        """When a long-running daemon looks again at what holds work without an event to
        wake it: a Claude login made meanwhile, the next day for the daily cap. (An
        --until-idle run exits instead.)"""
        cap = org_day_spent(self.executor.org.config, self.spending.by_employee)
        if cap is not None and cap != self.day_cap_said:
            self._log(cap)
        self.day_cap_said = cap
        if self.opts.until_idle:
            return []
        out = []
        if self.claude_hold is not None:
            out.append(now + CREDENTIALS_RECHECK_S)
        if cap is not None:
            tomorrow = dt.date.fromtimestamp(now) + dt.timedelta(days=1)
            out.append(dt.datetime.combine(tomorrow, dt.time()).timestamp() + 1)
        return out

    def _schedule(self, now: float) -> float | None:
        ex = self.executor
        for _ in range(200):  # apply actions until the plan is stable (bounded)
            self.spending.on(dt.date.fromtimestamp(now).isoformat())
            live = ex.live_set()
            org = ex.org
            state = SchedState(
                tasks=org.tasks, employees=org.employees, config=org.config,
                live=live.live, children=live.children, queue=live.queue,
                running={a.task_id: Running(a.task_id, a.employee, a.backend, a.started)
                         for a in self.active.values()},
                spent_today=self.spending.by_employee,
                breakers=self.breakers.paused(now),
                max_agents=self.opts.max_agents, stopping=self.stop_level > 0,
                elsewhere=self.hosts.share(now) if self.hosts is not None else None,
            )
            p = plan(state, now)
            if self.hosts is not None:
                p = hosts.filter_plan(self.hosts, p, now)
            self.problems.forget_all_but("action ", {f"action {a}" for a in p.actions})
            acted = False
            held: list[float] = []  # retry times of actions that raised before
            # agents first: a finished run's remaining commits (accept, merge, finish) are
            # then made while the next agent already runs
            for action in sorted(p.actions, key=lambda a: not isinstance(a, Dispatch)):
                what = f"action {action}"
                until = self.problems.held_until(what, now)
                if until is not None:
                    held.append(until)
                    continue
                try:
                    with self.problems.guard(what, retry_at=now + PROBLEM_RETRY_S):
                        acted |= self._act(action, now)
                except (IllegalTransition, AoiError) as exc:
                    self._log(f"skipped {action}: {exc}")
                    ex.refresh()
            if self.claims:
                self._push_claims()
                # the tick ends here with more hosts: claims another host won count as
                # acted, and a loop of lost claims (each a push) would hold back the
                # exits of runs and the push of their results; the next tick plans again
                return now
            if not acted:
                # invalid files and actions that keep failing wait for a person: they do
                # not keep the daemon busy
                was_idle = self.idle
                self.idle = not self.active and p.next_wake is None and all(
                    isinstance(a, AskBudget) or f"action {a}" in self.problems.open
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

    # --------------------------------------------------------------- dispatch
    def dispatch(self, task_id: str, employee_id: str, now: float) -> bool:
        """Claim `task_id` for `employee_id` and start its agent; False when it cannot
        start now (no backend, or the task's or a slot's lock is taken)."""
        ex = self.executor
        emp = ex.org.employees[employee_id]
        backend = self.backends.get(emp.backend.kind)
        if backend is None:
            self._trip(emp.backend.breaker_key, now,
                       f"no backend {emp.backend.kind!r} installed")
            return False
        try:
            sandbox.require(ex.org.config.sandbox)
        except AoiError as exc:  # (aoi.yaml turned it on while running) no agent unconfined
            self._trip(emp.backend.breaker_key, now, str(exc))
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
        based = BaseUpdate()
        try:
            based = bring_to_base(ex.workspace, task_id)  # a retry starts from the base
            made = ex.workspace.begin_create(task_id)
        except Exception as exc:  # reported as the run's failure once the claim is made
            made = exc
        if based.action != "none":
            self._log(f"{task_id}: its branch {based.action} on the current {based.base}"
                      + (f" (earlier work kept on {based.archived})" if based.archived else ""))
        try:
            ex.claim(task_id, emp, based.feedback())
        except BaseException:
            if isinstance(made, NewWorktree):
                self._drop_worktree(task_id, made)
            slot.release()
            task_lock.release()
            raise
        if self.hosts is None:
            self._start_claimed(task_id, emp, backend, slot, task_lock, now, made)
            return True

        def start(pushed: set[str]) -> None:  # once the claim is pushed (or lost)
            if task_id in pushed:
                self._start_claimed(task_id, emp, backend, slot, task_lock, now, made)
                return
            if isinstance(made, NewWorktree):
                self._drop_worktree(task_id, made)
            slot.release()
            task_lock.release()
            self._log(f"{task_id}: claimed by another host first")

        self.claims.append((task_id, start))
        return True

    def _push_claims(self) -> None:
        """Push the claims made in this round, then start the agents of those the remote
        took (a host whose claim another host beat starts nothing)."""
        assert self.hosts is not None
        claims, self.claims = self.claims, []
        pushed = self.hosts.push_claims({task_id for task_id, _ in claims})
        if self.executor.head_moved():
            self.executor.refresh()
        for _, start in claims:
            start(pushed)

    def _start_claimed(self, task_id: str, emp: Employee, backend: Backend, slot: SlotLock,
                       task_lock: SlotLock, now: float, made: NewWorktree | Exception) -> None:
        task = self.executor.org.tasks[task_id]
        try:
            if isinstance(made, Exception):
                raise made
            self._start_agent(task, emp, backend, slot, task_lock, now, made)
        except Exception as exc:  # could not even start: a failed attempt, not a crash
            slot.release()
            task_lock.release()
            self._log(f"{task_id}: could not start the agent: {exc}")
            self._finish_run(task_id, emp, AgentResult(
                "failed", error=f"could not start the agent: {exc}"), now, None)

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
        run = launch(task, emp, backend, store=self.store, org=ex.org, workspace=ex.workspace,
                     made=made, run_dir=self.runs_dir / task.id, org_root=self.root,
                     keep_fds=(slot.fd, task_lock.fd))
        pid = run.proc.pid
        self.runs.watch(Active(
            task.id, emp.id, emp.backend.kind, run.files, now, now + run.timeout_s, pid,
            run.proc, slot, task_lock, fresh_tip=made.fresh_tip, before=run.before))
        self._log(f"{task.id}: started {emp.id} ({emp.backend.kind}) pid {pid}")

    def _stop_unwanted_runs(self) -> None:
        """Stop each run whose task no longer wants it: cancelled, paused, preempted or
        reassigned (`domain.control`). Its exit settles it (`_on_exit`)."""
        org = self.executor.org
        for a in list(self.active.values()):
            if a.stop is None and not a.stopped:
                stop = stop_for(org.tasks.get(a.task_id), a.employee, org.employees)
                if stop is not None:
                    self.runs.stop(a, *stop)

    # ----------------------------------------------------------- finishing runs
    def _drain_exits(self, block: float | None = None) -> None:
        for a, rc in self.runs.exits(block):
            try:
                with self.problems.guard(f"the end of the run of {a.task_id}"):
                    self._on_exit(a, rc, self.clock.wall())
            except (IllegalTransition, AoiError) as exc:
                self._log(f"{a.task_id}: the end of its run not recorded: {exc}")
                self.executor.refresh()

    def _on_exit(self, a: Active, rc: int | None, now: float) -> None:
        result = agent_run.read_result(a.files, rc)
        if a.timed_out:
            result = AgentResult("failed", usage=result.usage, error=(
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
            if a.stop is None and self.executor.head_moved():  # a person's last word
                self.executor.refresh()
            org = self.executor.org
            stop = a.stop or stop_for(org.tasks.get(a.task_id), a.employee, org.employees)
            if stop is not None:  # (also one that ended by itself as it was stopped)
                usage = result.usage or a.files.read_usage()
                self.executor.end_stopped_run(
                    a.task_id, a.employee, stop[0], stop[1], usage, now,
                    RunInfo(a.started, a.fresh_tip, a.before), a.files.read_session())
                self.spending.add(a.employee, float(usage.get("usd", 0.0)))
                return
            if emp is None:
                raise AoiError(f"employee {a.employee} is gone")
            self._finish_run(a.task_id, emp, result, now,
                             RunInfo(a.started, a.fresh_tip, a.before))
        finally:
            self.runs.ended(a)

    def _finish_run(self, task_id: str, emp: Employee, result: AgentResult,
                    now: float, run: RunInfo | None) -> None:
        done = self.executor.finish_run(task_id, emp, result, now, run)
        if self.hosts is not None:
            self.hosts.ran(task_id)
        if done is None:
            return
        usd = float(result.usage.get("usd", 0.0))
        self.spending.add(emp.id, usd)
        key = emp.backend.breaker_key
        error = done.error.strip()
        self._log(f"{task_id}: {emp.id} finished: {done.outcome}"
                  + (f" ({done.failure.value}: {error})" if error else ""))
        if done.outcome == "failed" and done.failure is Failure.CREDENTIALS:
            self._hold_claude(key, f"{task_id} failed: {done.error[:300]}",
                              credentials.find(os.environ), say=True)
            return
        # a plan refused or a budget spent says nothing about the backend
        counted = done.outcome == "failed" and done.failure is Failure.RETRY
        failures = self.breakers.count(key, counted, done.error)
        if counted and failures >= self.executor.org.config.limits.breaker_failures:
            self._trip(key, now, f"{failures} failures in a row; the last: {done.error[:300]}",
                       f"see .aoi/runs/{task_id}/stderr.log; fix {emp.id}'s backend in "
                       f"employees/{emp.id}/profile.yaml")

    def _trip(self, key: str, now: float, why: str, fix: str = "") -> None:
        until = now + self.executor.org.config.limits.breaker_cooldown_s
        self.breakers.trip(key, until, why, fix)
        self._log(f"backend {key} paused until {now_iso(until)}: {why}")

    # ---------------------------------------------------------- credentials
    def _check_claude(self, at_start: bool = False) -> None:
        """Hold the claude backend while its employees have no credentials (said once on
        stderr and in the log, and in `aoi status`); release it once credentials appear
        or change."""
        self.claude_checked = self.clock.monotonic()
        found = credentials.find(os.environ)
        org = self.executor.org
        if self.claude_hold is not None:
            if found.source is not None and found.fingerprint != self.claude_hold.fingerprint:
                self.claude_hold = None
                self.breakers.release(CLAUDE)
                self._log(f"Claude credentials found ({found.source}): the claude backend "
                          "runs again")
            elif not self.claude_said:
                self._say_claude_hold()
            return
        missing = credentials.needing_claude(org.employees.values(), os.environ)
        if missing:
            self.claude_missing = missing
            self._hold_claude(CLAUDE, credentials.missing_message(missing, os.environ), found)

    def _hold_claude(self, key: str, why: str, found: credentials.Found,
                     say: bool = False) -> None:
        self.claude_hold = found
        self.claude_said = False
        self.breakers.hold(key, why, credentials.FIX)
        self._log(f"backend {key} held: {why}; fix: {credentials.FIX}")
        self._say_claude_hold(force=say)

    def _say_claude_hold(self, force: bool = False) -> None:
        """Say the hold on stderr, once, when there is work it holds (an org whose Claude
        employees have nothing to do runs its other employees without a word)."""
        br = self.breakers.get(CLAUDE)
        if br is None:
            return
        live = self.executor.live_set()
        tasks = self.executor.org.tasks
        open_tasks = (tasks[i] for i in (*live.live, *live.queue) if i in tasks)
        if force or credentials.work_for(self.claude_missing, self.executor.org.employees,
                                         open_tasks):
            self.claude_said = True
            if self.opts.echo is not sys.stderr:  # (echoed, its log line is there already)
                print(f"aoi daemon: backend {CLAUDE} held: {br.why}; fix: {br.fix}",
                      file=sys.stderr, flush=True)

    # ------------------------------------------------------------- recovery
    def recover(self) -> None:
        """Bring every `processing` task whose agent is gone to a consistent state."""
        ex = self.executor
        self.index.finish_interrupted()
        for task in open_tasks(ex.org.tasks):
            if (task.status is S.PROCESSING or keeps_worktree(task)) and \
                    (self.hosts is None or self.hosts.mine(task.id)):
                with self.problems.guard(f"the recovery of {task.id}"):
                    self._recover_run(task)
        run_unit.sweep()  # run cgroups a killed daemon left
        self.trash.empty()  # what a crash kept the last daemon from deleting
        ex.drop_stale_worktrees()
        ex.review_performance()  # a cycle a crash cut short (derived from reviews/)

    def _recover_run(self, task: Task) -> None:
        files, rc = self.runs.lost(task.id)
        emp_id = task.bookkeeping.routed_to or task.assignee
        org = self.executor.org
        # (task.json is this claim's once meta.json is: both are cleared before a claim)
        ran = (files.read_employee() if files.read_meta() else None) or str(emp_id)
        stop = stop_for(task, ran, org.employees)
        if task.status is not S.PROCESSING and task.bookkeeping.resuming:
            self.executor.keep_work(task.id, ran, "stopped")  # settled before the restart
            return
        if stop is not None:  # stopped while the daemon was down, or as it died
            self.executor.end_stopped_run(task.id, ran, stop[0], stop[1], files.read_usage(),
                                          self.clock.wall(), None, files.read_session())
            self._log(f"{task.id}: the run of {ran} was stopped ({stop[1]}); settled")
            return
        emp = org.employees.get(str(emp_id))
        # the run files were cleared before the claim was committed: a result or an
        # exit status here is this claim's, even if the daemon died before it wrote
        # meta.json (a fast agent can finish before that)
        if emp is not None and (files.result.exists() or rc is not None):
            result = agent_run.read_result(files, rc)
            self._log(f"{task.id}: picked up the result its agent left before the crash")
            self._finish_run(task.id, emp, result, self.clock.wall(), None)
            return
        self.executor.requeue(task.id)
        self._log(f"{task.id}: recovered to pending (its agent was gone)")

    def flush_index(self) -> None:
        """Bring the checkout's work-tree files and index up to the daemon's commits."""
        self.index.flush()

    def _log_index_share(self) -> None:
        """How long the daemon held the person's `index.lock` (a `git add` of theirs that
        starts meanwhile fails), as a share of its run."""
        ran = max(self.clock.wall() - self.started, 1e-9)
        held = self.store.index_lock_s
        self._log(f"index: {self.store.index_writes} write(s), index.lock held "
                  f"{held * 1000:.0f} ms in {ran:.0f} s ({100 * held / ran:.3f}%)")

    # ------------------------------------------------------------------ status
    def _write_status(self, now: float, stopped: bool = False) -> None:
        data = {
            "pid": os.getpid(), "root": str(self.root), "started": self.started,
            "stopped": stopped,
            "running": [{"task": a.task_id, "employee": a.employee, "backend": a.backend,
                         "started": a.started, "pid": a.pgid} for a in self.active.values()],
            "breakers": self.breakers.for_status(),
            "invalid": self.person_files.problems,
            "problems": self.problems.for_status(),
            "spent_today": self.spending.by_employee,
            "day_cap": org_day_spent(self.executor.org.config, self.spending.by_employee),
            "stopping": self.stop_level > 0,
        }
        if self.hosts is not None:
            data["hosts"] = self.hosts.status()
        self.status.write(data)

    def _log(self, msg: str) -> None:
        self.log_file(msg)
