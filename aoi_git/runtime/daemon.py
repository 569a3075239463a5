"""`aoi daemon`: watches the org checkout and runs agents on tasks, within the caps.

The loop sleeps on one event, woken by the file watcher, by an agent process exiting
(one waiter thread per child, blocked in `wait()`), by a signal, or by the next deadline
(a timeout or a retry time). With nothing to do it uses no CPU. Each tick reconciles
(finished processes, timeouts, a person's saved files, a head moved by someone else),
asks the pure scheduler what to do, and does it. Every state change is one commit.

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
import sys
import threading
import time
from collections import ChainMap
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pygit2

from aoi_git.domain.model import Actor, ActorKind, Employee, Kind, Status, Task
from aoi_git.errors import AoiError, IllegalTransition
from aoi_git.evolution import hiring, performance_reviews, retrospectives
from aoi_git.evolution.journal import is_journal_file
from aoi_git.org import branch_policy, flow
from aoi_git.org.context import assemble_from_view
from aoi_git.org.organisation import Org, load_org
from aoi_git.org.tool_access import allowed_tools
from aoi_git.org.validate import Validator, is_task_path
from aoi_git.runtime import agent_run
from aoi_git.runtime.backends.base import AgentConfig, Backend
from aoi_git.runtime.locks import DaemonLock, SlotLock, take_slot, take_task_lock
from aoi_git.runtime.reaper import Reaper
from aoi_git.runtime.scheduler import (
    Advance,
    ApplyDecision,
    AskBudget,
    Dispatch,
    Escalate,
    LiveSet,
    RequestReview,
    Running,
    SchedState,
    plan,
)
from aoi_git.runtime.scheduler import _over_budget as over_budget
from aoi_git.store import index_journal
from aoi_git.store.git import git
from aoi_git.store.history import records
from aoi_git.store.org_store import Change, HeadView, Store
from aoi_git.store.tree_snapshot import Snapshot
from aoi_git.store.txn import Txn, commit, now_iso
from aoi_git.store.worktrees import (
    NewWorktree,
    Trash,
    Workspace,
    branch_name,
    open_workspace,
    update_ref,
)

log = logging.getLogger("aoi.daemon")
S = Status
INDEX_FLUSH_S = 0.5
# `git gc --auto` (see Daemon._pack): a long-running daemon runs it when it goes idle after
# IDLE_GC_COMMITS commits; an --until-idle run at its exit, past EXIT_GC_FACTOR x gc.auto
EXIT_GC_FACTOR = 8
IDLE_GC_COMMITS = 500
LOCK_RETRY_S = 0.05
POOL_SIZE = 8  # finished worktrees kept for the next tasks (see Workspace._reuse)
INDEX_FLUSH_SHARE = 50  # while busy, flush at most every 50x the last flush took (<= 2%)


@dataclass
class Active:
    task_id: str
    employee: str
    backend: str
    files: agent_run.RunFiles
    started: float
    deadline: float
    pgid: int = 0
    proc: Any = None
    slot: SlotLock | None = None
    task_lock: SlotLock | None = None
    term_at: float | None = None
    kill_at: float | None = None
    timed_out: bool = False
    adopted: bool = False
    stopped: bool = False  # killed by a cold stop of the daemon, not by its own failure
    fresh_tip: str | None = None  # the branch was made for this run at this base commit
    before: Snapshot | None = None  # the worktree as the agent got it


@dataclass
class Breaker:
    failures: int = 0
    until: float = 0.0


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


class Daemon:
    def __init__(self, root: Path, options: DaemonOptions | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.root = Path(root).resolve()
        self.opts = options or DaemonOptions()
        self.clock = clock
        self.store = Store(self.root)
        self.store.defer_index = True
        self.common_dir = Path(self.store.repo.path).resolve()
        common = self.common_dir / "commondir"
        if common.exists():
            self.common_dir = (self.common_dir / common.read_text().strip()).resolve()
        self.aoi = self.root / ".aoi"
        self.runs_dir = self.aoi / "runs"
        self.status_file = self.aoi / "daemon" / "status.json"
        self.index_journal = index_journal.journal_path(self.root)
        self.index_journal.parent.mkdir(parents=True, exist_ok=True)
        self.index_writer = index_journal.Writer(self.index_journal)
        self.store.on_notice = self._log
        self.actor = Actor(ActorKind.DAEMON, socket.gethostname())
        self.backends = load_backends()
        self.active: dict[str, Active] = {}
        self.events: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self.reaper = Reaper(self._child_exited)
        self.wake = threading.Event()
        self.breakers: dict[str, Breaker] = {}
        self.stop_level = 0
        self.dirty: set[str] = set()
        self.dirty_lock = threading.Lock()
        self.rescan = True
        self.file_problems: dict[str, list[str]] = {}
        self.spent_today: dict[str, float] = {}
        self.spent_day = ""
        self.org: Org = load_org(self.store)
        self._live: LiveSet | None = None  # open tasks for the scheduler (see _live_set)
        self.known_head = self.org.commit
        self.trash = Trash(self.aoi / "trash")
        self.workspace = self._workspace()
        self.last_flush = 0.0
        self.flush_every = INDEX_FLUSH_S  # longer in a big org: its index write costs more
        self.observer: Any = None
        self.lock = DaemonLock(self.common_dir, self.root)
        self.started = self.clock()
        self.idle = False
        self.person = git("config", "user.name", cwd=self.root, check=False).strip() or "unknown"
        self.ticks = 0
        self._status_written = ""
        self.lock_busy = False  # a dispatch found its task or slot lock taken
        self.unreviewable_roots: set[str] = set()  # see performance_reviews.run_cycle(passed_over=)
        self.unreviewed_roots = performance_reviews.Uncovered()

    # ----------------------------------------------------------------- set-up
    def _workspace(self) -> Workspace:
        return open_workspace(self.store, self.org.config, trash=self.trash,
                              pool_size=POOL_SIZE)

    def _signal(self, signum: int, frame: Any) -> None:
        self.stop_level += 1
        self.wake.set()

    def _start_watcher(self) -> None:
        from aoi_git.runtime.watcher import start_watcher

        self.observer = start_watcher(self.root, self._on_fs_event, self._on_overflow)

    def _on_fs_event(self, path: str) -> None:
        with self.dirty_lock:
            self.dirty.add(path)
        self.wake.set()

    def _on_overflow(self) -> None:
        self.rescan = True
        self.wake.set()

    # ------------------------------------------------------------------- loop
    def run(self) -> int:
        self.lock.acquire()
        prev = {s: signal.signal(s, self._signal) for s in (signal.SIGTERM, signal.SIGINT)}
        sys.setswitchinterval(0.0005)
        try:
            self._log(f"daemon started on {self.root} (pid {os.getpid()})")
            self.recover()
            _freeze_heap()
            if self.opts.watch:
                self._start_watcher()
            while True:
                now = self.clock()
                next_wake = self.tick(now)
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
                timeout = None if next_wake is None else max(0.0, next_wake - self.clock())
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
            self._flush_index()
            self.index_writer.close()
            self.store.save_cache()
            self.workspace.drop_pool()
            self.trash.wait()
            gc.unfreeze()  # (the process may go on, e.g. tests running a daemon in-process)
            self._write_status(self.clock(), stopped=True)
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
        (It ran at start, in the background, until a benchmark run that overlapped with it
        took 24.7 instead of 17.0 ms per task: both competing for two CPUs.)"""
        commits = self.store.commits_since_gc
        if at_exit and commits > 0:
            self.store.maintenance(loose_factor=EXIT_GC_FACTOR, wait=True)
        elif not at_exit and commits >= IDLE_GC_COMMITS:
            self.store.maintenance()

    def _grace_over(self, now: float) -> bool:
        if not hasattr(self, "_stop_since"):
            self._stop_since = now
            self._log("warm stop: no new agents; waiting for running ones")
        grace = self.opts.grace_s if self.opts.grace_s is not None else \
            self.org.config.limits.grace_s
        return now - self._stop_since > grace

    def _cold_stop(self) -> None:
        for a in list(self.active.values()):
            a.stopped = True
            if a.pgid:
                agent_run.kill_group(a.pgid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while self.active and time.monotonic() < deadline:
            self._drain_events(self.clock(), block=0.2)

    def tick(self, now: float) -> float | None:
        """One reconciliation + scheduling step; returns when to wake up next."""
        self.ticks += 1
        self._drain_events(now)
        self._check_timeouts(now)
        self._refresh_if_moved()
        self._take_human_edits()
        next_wake = self._schedule(now)
        for a in self.active.values():
            for t in (a.deadline if a.term_at is None else None, a.kill_at):
                if t is not None:
                    next_wake = t if next_wake is None else min(next_wake, t)
        if self.store.pending_moves:
            if now - self.last_flush >= self.flush_every or not self.active:
                self._flush_index()
                self.last_flush = now
            else:
                nxt = self.last_flush + self.flush_every
                next_wake = nxt if next_wake is None else min(next_wake, nxt)
        self._write_status(now)
        return next_wake

    def _schedule(self, now: float) -> float | None:
        for _ in range(200):  # apply actions until the plan is stable (bounded)
            day = dt.date.fromtimestamp(now).isoformat()
            if day != self.spent_day:
                self._load_spent_today(day)
            live = self._live_set()
            state = SchedState(
                tasks=self.org.tasks, employees=self.org.employees, config=self.org.config,
                live=live.live, children=live.children, queue=live.queue,
                running={a.task_id: Running(a.task_id, a.employee, a.backend, a.started)
                         for a in self.active.values()},
                spent_today=self.spent_today,
                breakers={k: b.until for k, b in self.breakers.items() if b.until > now},
                max_agents=self.opts.max_agents, stopping=self.stop_level > 0,
            )
            p = plan(state, now)
            acted = False
            # agents first: a finished run's remaining commits (accept, merge, finish) are
            # then made while the next agent already runs
            for action in sorted(p.actions, key=lambda a: not isinstance(a, Dispatch)):
                try:
                    acted |= self._execute(action, now)
                except (IllegalTransition, AoiError) as exc:
                    self._log(f"skipped {action}: {exc}")
                    self._refresh()
            if not acted:
                # invalid files wait for a person: they do not keep the daemon busy
                was_idle, self.idle = self.idle, p.idle and not self.active
                if self.idle and not was_idle and not self.opts.until_idle:
                    self._pack(at_exit=False)
                if self.lock_busy:  # no event will say when the lock is free: look again
                    self.lock_busy = False
                    soon = now + LOCK_RETRY_S
                    return soon if p.next_wake is None else min(p.next_wake, soon)
                return p.next_wake
        return now + 0.05

    def _live_set(self) -> LiveSet:
        """Open tasks and subtask links, rebuilt only when the task map was reloaded."""
        live = self._live
        if live is None or live.source is not self.org.tasks:
            live = self._live = LiveSet(self.org.tasks)
        return live

    # ------------------------------------------------------------- commit helpers
    def _commit(self, fn: Callable[[Txn], Any], actor: Actor | None = None) -> Txn | None:
        oid, txn = commit(self.store, fn, actor or self.actor, self.org.index.paths)
        if oid is None:
            return None
        head = self.store.head()
        moved_by_other = self.store.head_commit() is not None and \
            self.known_head not in (None, *[str(p) for p in head.commit.parent_ids])  # type: ignore[union-attr]
        if moved_by_other:
            self._refresh()
        else:
            self._apply_written(txn, head)
        self.known_head = head.oid
        self._journal_index(txn.files)
        self._announce(str(txn.actor))
        return txn

    # Work-tree files and index entries are moved along at most every INDEX_FLUSH_S (one
    # index write for many commits, one file write for a task's several transitions). Until
    # then the moves are journaled in .aoi/ (see aoi_git.store.index_journal): a restart after a
    # kill -9 finishes them, and a person's commit or `aoi validate` meanwhile is not misled.
    def _journal_index(self, paths: Any) -> None:
        moves = self.store.pending_moves
        self.index_writer.append((p, moves[p]) for p in paths if p in moves)

    def _flush_index(self) -> None:
        started = time.monotonic()
        if not self.store.flush_index():
            self._log("index locked by another git process: updating it later")
            return
        self.index_writer.clear()
        # ~40 ms at 100k tasks (the whole index is rewritten): every 2 s, not every 0.5 s
        took = time.monotonic() - started
        self.flush_every = max(INDEX_FLUSH_S, min(5.0, INDEX_FLUSH_SHARE * took))

    def _finish_interrupted_index_flush(self) -> None:
        moves = index_journal.read(self.index_journal)
        if not moves:
            self.index_writer.clear()
            return
        self.store.resume_moves(moves)
        self._flush_index()
        self._log(f"finished the work-tree and index update of {len(moves)} path(s) a crash "
                  "interrupted")

    def _announce(self, actor: str) -> None:
        if self.opts.on_commit is not None:
            head = self.store.head_commit()
            if head is not None:
                self.opts.on_commit(actor, head.message.splitlines()[0])

    def _apply_written(self, txn: Txn, head: HeadView) -> None:
        index = self.org.index
        for tid, task in txn.written.items():
            path = txn.path_of(tid)
            index.paths[tid] = path
            index.tasks[tid] = task
            if self._live is not None and self._live.source is index.tasks:
                self._live.update(task)
            blob = head.blob_id(path)
            if blob:
                index.blobs[path] = blob
        index.root_tree = head.blob_id("tasks")
        self.org._sorted_ids = None
        self.org.commit = head.oid
        self.store._task_cache = index
        self.store._cache_dirty = True
        if any(p.startswith(("employees/", "aoi.yaml", "talents/"))
               and not is_journal_file(p) for p in txn.files):
            self._refresh()

    def _refresh_if_moved(self) -> None:
        head = self.store.head_commit()
        oid = str(head.id) if head is not None else None
        if oid != self.known_head:
            self._refresh()

    def _refresh(self) -> None:
        self.org = load_org(self.store)
        _freeze_heap()
        self.known_head = self.org.commit
        ws = self._workspace()
        self.workspace = ws

    # --------------------------------------------------------------- actions
    def _execute(self, action: Any, now: float) -> bool:
        if isinstance(action, Dispatch):
            return self._dispatch(action.task_id, action.employee, now)
        if isinstance(action, Advance):
            return self._advance(action, now)
        if isinstance(action, RequestReview):
            return self._request_review(action.task_id, action.reviewer)
        if isinstance(action, Escalate):
            self._commit(lambda txn: flow.escalate(txn, action.task_id, action.reason,
                                                   self.org.employees, self.org.config,
                                                   self.org.tasks))
            return True
        if isinstance(action, ApplyDecision):
            if action.human_task_id == action.subject_id:  # the CEO decided a proposed hire
                return hiring.apply_hire_decision(self.root, self.org, action.human_task_id,
                                                  self._commit)
            self._commit(lambda txn: flow.apply_decision(txn, action.human_task_id,
                                                         action.subject_id, self.org.tasks,
                                                         self.org.employees))
            return True
        if isinstance(action, AskBudget):
            return self._ask_budget(action, now)
        raise AssertionError(action)  # pragma: no cover

    def _advance(self, a: Advance, now: float) -> bool:
        t = self.org.tasks.get(a.task_id)
        if t is None:
            return False
        if a.to is S.FINISHED:  # (after an accept in the same plan: if that was made)
            return t.status is S.ACCEPTED and self._merge_and_finish(t)
        if a.to is S.FAILED:  # deadlock or a failed subtask: straight to a person
            def fail(txn: Txn) -> None:
                h = flow.escalate(txn, a.task_id, a.reason, self.org.employees,
                                  self.org.config, self.org.tasks, fail=True)
                if t.status is S.WAITING:
                    flow.fold_child_escalations(txn, a.task_id, h.id, self.org.tasks)

            self._commit(fail)
            return True
        if t.status is S.BLOCKED and a.to is S.PENDING:
            self._commit(lambda txn: flow.unblock(txn, a.task_id, self.org.tasks))
            return True

        def build(txn: Txn) -> None:
            cur = txn.get(a.task_id)
            changes: dict[str, Any] = {"status": a.to}
            if a.to is S.ACCEPTED:  # no reviewer: the daemon's own authority, recorded
                flow.record_authority(txn, txn.actor, cur, tasks=self.org.tasks,
                                      employees=self.org.employees, config=self.org.config)
            if a.to is S.COMPLETED and cur.status is S.WAITING:
                kids = [self.org.tasks[k] for k in cur.extra.get("subtasks", [])
                        if k in self.org.tasks]
                summary = "\n".join(f"- {k.id} {k.title}: "
                                    f"{((k.result or {}).get('summary') or '')[:300]}"
                                    for k in kids)
                changes["result"] = {**(cur.result or {}), "summary":
                                     f"All {len(kids)} subtasks finished.\n{summary}"}
            txn.put(cur.with_changes(**changes))
            txn.body_lines.append(a.reason)

        self._commit(build)
        return True

    def _request_review(self, task_id: str, reviewer: str) -> bool:
        refused = self._branch_refusals(task_id)
        diff = self.workspace.diff(task_id, 30_000)
        self._commit(lambda txn: flow.request_review(txn, task_id, reviewer, self.org.tasks,
                                                     diff, refused))
        return True

    def _ask_budget(self, a: AskBudget, now: float) -> bool:
        emp = self.org.employees.get(a.employee)
        task = self.org.tasks.get(a.task_id)
        if emp is None or task is None or task.extra.get("budget_request"):
            return False
        # the plan may be stale: an action before this one (a person's answer to another
        # budget request) may have raised the cap
        fresh = SchedState(self.org.tasks, self.org.employees, self.org.config,
                           spent_today=self.spent_today)
        if not over_budget(task, emp, fresh):
            return False
        day = dt.date.fromtimestamp(now).isoformat()
        if a.reason.startswith("daily"):
            for t in self.org.tasks.values():  # one open request per employee and day
                if (t.kind is Kind.HUMAN and not t.is_terminal
                        and t.extra.get("budget_for") == emp.id and t.extra.get("day") == day):
                    return False
        self._commit(lambda txn: flow.budget_request(txn, a.task_id, emp, a.reason,
                                                     self.org.employees, self.org.config,
                                                     self.org.tasks))
        return True

    def _branch_refusals(self, task_id: str) -> list[branch_policy.Refusal]:
        """What the branch of `task_id` changes that agents may not (`org.branch_policy`)."""
        return branch_policy.refusals(self.workspace.changes(task_id),
                                      org_state=self.workspace.is_org,
                                      protected=self.org.config.workspace_protected)

    def _merge_and_finish(self, task: Task) -> bool:
        ws = self.workspace
        tip = ws.branch_tip(task.id)
        merged_sha: str | None = None
        if tip is not None and not ws.is_merged(task.id):
            refused = self._branch_refusals(task.id)
            if refused:
                text = branch_policy.feedback(refused)
                # counts as a rejection, so a stubborn agent escalates instead of looping
                self._commit(lambda txn: txn.put(txn.get(task.id).with_changes(
                    status=S.PENDING, review_rounds=txn.get(task.id).review_rounds + 1,
                    feedback=(*txn.get(task.id).feedback,
                              flow.fb(self.actor, "review", text)))))
                return True
            conflict = self._merge_branch(task, tip)
            if conflict:
                self._commit(lambda txn: txn.put(txn.get(task.id).with_changes(
                    status=S.PENDING, feedback=(*txn.get(task.id).feedback,
                                                flow.fb(self.actor, "conflict", conflict)))))
                ws.remove(task.id)
                self._archive_branch(task.id)
                return True
            merged_sha = self.known_head if ws.is_org else None

        def build(txn: Txn) -> None:
            cur = txn.get(task.id)
            res = dict(cur.result or {})
            if merged_sha:
                res["merged"] = merged_sha
            txn.put(cur.with_changes(status=S.FINISHED, result=res or None))
            if cur.parent is None and cur.kind is Kind.WORK:  # a root: its retrospective
                self._retro_into(txn, cur.id)

        self._commit(build)
        ws.remove(task.id)
        if task.parent is None and task.kind is Kind.WORK:
            self._review_performance()
        return True

    # ---------------------------------------------------------- self-evolution
    def _retro_into(self, txn: Txn, root_id: str) -> None:
        """`retros/<root>.md` (and SOP changes) in the commit that finishes the root."""
        try:
            # the links are the head's: the finish being built changes no parent or subject
            tasks = ChainMap(txn.written, self.org.tasks)
            retrospectives.finish_root(txn, self.store, tasks, self.org.employees,
                              self.org.config, root_id, self.clock(),
                              links=self._live_set().links)
        except Exception as exc:  # a retrospective never keeps a project from finishing
            self._log(f"{root_id}: retrospective not written: {exc!r}")

    def _review_performance(self) -> None:
        """HR's review cycle when `evolution.review_every` roots finished since the last."""
        try:
            self._commit(lambda txn: performance_reviews.run_cycle(
                txn, store=self.store, tasks=self.org.tasks,
                employees=self.org.employees, config=self.org.config, org=self.org,
                now=self.clock(), links=self._live_set().links,
                passed_over=self.unreviewable_roots, uncovered=self.unreviewed_roots),
                performance_reviews.reviewer(self.org.employees, self.actor))
        except Exception as exc:
            self._log(f"performance reviews not written: {exc!r}")

    def _merge_branch(self, task: Task, tip: str) -> str | None:
        """Merge `aoi/<id>` into the workspace base as one commit; a conflict's text or None."""
        ws = self.workspace
        ws_store = self.store if ws.is_org else Store(ws.repo_dir)
        repo = ws_store.repo
        conflict: list[str] = []
        changed: list[str] = []

        def build(view: HeadView) -> Change | None:
            head = view.commit
            assert head is not None
            idx = repo.merge_commits(head.id, pygit2.Oid(hex=tip))
            if idx.conflicts is not None:
                paths = sorted({e.path for c in idx.conflicts for e in c if e is not None})
                conflict[:] = [f"merging {branch_name(task.id)} into {ws.base} conflicts in: "
                               + ", ".join(paths) + ". Rebase your work on the current base."]
                return None
            tree = idx.write_tree(repo)
            diff = head.tree.diff_to_tree(repo.get(tree))  # type: ignore[arg-type]
            changed[:] = [d.new_file.path for d in diff.deltas]
            msg = (f"aoi: merge {branch_name(task.id)}: {task.title}\n\n"
                   f"Aoi-Task: {task.id}\nAoi-Merge: {branch_name(task.id)}\n"
                   f"Aoi-Actor: {self.actor}\n")
            return Change({}, msg, extra_parents=(tip,), base_tree=str(tree))

        old = ws_store.head()
        oid = ws_store.transact(build, actor=str(self.actor))
        if conflict:
            return conflict[0]
        if oid is not None:
            ws_store.sync_paths(old, ws_store.head(), changed)
            self._journal_index(changed)
            if ws.is_org:
                self.known_head = oid
                self.org.commit = oid
                self._announce(str(self.actor))
        return None

    def _archive_branch(self, task_id: str) -> None:
        """Move a conflicting branch aside (`aoi/<id>.conflict-N`): the rework starts from
        the current base, and the earlier work stays reachable for a person."""
        repo = self.workspace.repo
        br = repo.lookup_branch(branch_name(task_id))
        if br is not None:
            n = 1
            while repo.lookup_branch(f"{branch_name(task_id)}.conflict-{n}") is not None:
                n += 1
            tip = repo.get(br.target)
            update_ref(lambda: repo.create_branch(f"{branch_name(task_id)}.conflict-{n}",
                                                  tip))  # type: ignore[arg-type]
            try:
                update_ref(br.delete)
            except (pygit2.GitError, OSError):
                pass

    # --------------------------------------------------------------- dispatch
    def _dispatch(self, task_id: str, employee_id: str, now: float) -> bool:
        emp = self.org.employees[employee_id]
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
        cur = self.org.tasks.get(task_id)
        if cur is not None and cur.status is S.PENDING:  # ours now: forget earlier runs
            agent_run.RunFiles(self.runs_dir / task_id).clear_outcome()

        def claim(txn: Txn) -> None:
            cur = txn.get(task_id)
            changes: dict[str, Any] = {}
            if cur.assignee and cur.assignee.startswith("role:"):
                changes["extra"] = {**cur.extra, "routed_to": emp.id}
            # move, not put: a task that is already processing is claimed by someone else
            # (processing -> processing would be a legal no-op and start a second agent)
            txn.move(task_id, S.PROCESSING, **changes)
            txn.trailers.append(("Aoi-Employee", emp.id))

        # the worktree's checkout (a git process) runs while the claim is committed; the
        # claim only changes tasks/, which worktrees leave out, so both orders give one tree
        made: NewWorktree | Exception
        try:
            made = self.workspace.begin_create(task_id)
        except Exception as exc:  # reported as the run's failure once the claim is made
            made = exc
        try:
            self._commit(claim)
        except (IllegalTransition, AoiError):
            if isinstance(made, NewWorktree):
                self._drop_worktree(task_id, made)
            slot.release()
            task_lock.release()
            raise
        task = self.org.tasks[task_id]
        try:
            if isinstance(made, Exception):
                raise made
            self._start_agent(task, emp, backend, slot, task_lock, now, made)
        except Exception as exc:  # could not even start: a failed attempt, not a crash
            slot.release()
            task_lock.release()
            self._log(f"{task_id}: could not start the agent: {exc}")
            self._finish_run(task_id, emp, agent_run.AgentResult("failed", error=f"could not start "
                                                            f"the agent: {exc}"), now, None)
        return True

    def _drop_worktree(self, task_id: str, made: NewWorktree) -> None:
        try:
            made.ready()
        except AoiError:
            pass
        self.workspace.remove(task_id)
        if made.fresh_tip is not None:
            self.workspace.delete_branch(task_id)

    def _start_agent(self, task: Task, emp: Employee, backend: Backend, slot: SlotLock,
                     task_lock: SlotLock, now: float, made: NewWorktree) -> None:
        view = self.store.head()
        sop_names = self.store.list_dir("sops", view)
        context = assemble_from_view(view, task, emp, self.org.tasks, sop_names)
        tools = self._allowed_tools(emp)
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
        before = self.workspace.snapshot(task.id)
        env = {**os.environ, **backend.environment(emp),
               "AOI_TASK_ID": task.id, "AOI_TASK_FILE": str(files.task),
               "AOI_CONTEXT_FILE": str(files.context), "AOI_RESULT_FILE": str(files.result),
               "AOI_ORG_DIR": str(self.root), "AOI_AGENT_CONFIG": str(files.config),
               "AOI_EMPLOYEE": emp.id, "AOI_WORKSPACE_BASE": self.workspace.base}
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
        self.events.put(("exit", (task_id, rc)))
        self.wake.set()

    def _allowed_tools(self, emp: Employee) -> list[str]:
        return allowed_tools(emp, self.org.config, self.org.talents.get(emp.talent or ""))

    # ----------------------------------------------------------- finishing runs
    def _drain_events(self, now: float, block: float | None = None) -> None:
        while True:
            try:
                kind, payload = self.events.get(timeout=block) if block else \
                    self.events.get_nowait()
            except queue.Empty:
                return
            block = None
            if kind == "exit":
                task_id, rc = payload
                a = self.active.get(task_id)
                if a is None:
                    continue
                self._on_exit(a, rc, self.clock())

    def _on_exit(self, a: Active, rc: int | None, now: float) -> None:
        result = agent_run.read_result(a.files, rc)
        if a.timed_out:
            result = agent_run.AgentResult("failed", usage=result.usage, error=(
                f"timed out after {now - a.started:.0f}s (timeout_s); the whole process group "
                "was killed"))
        emp = self.org.employees.get(a.employee)
        try:
            if a.stopped and not a.files.result.exists():
                # the daemon killed it: not a failed attempt; it runs again after a restart
                self._commit(lambda txn: _requeue(txn, a.task_id, self.actor,
                                                  "stopped by a cold stop of the daemon"))
                self.workspace.remove(a.task_id)
                self._log(f"{a.task_id}: killed by the cold stop; back to pending")
                return
            if emp is None:
                raise AoiError(f"employee {a.employee} is gone")
            self._finish_run(a.task_id, emp, result, now, a)
        finally:
            self.active.pop(a.task_id, None)
            if a.pgid:
                agent_run.kill_group(a.pgid, signal.SIGKILL)  # leftovers of the agent
            if a.slot:
                a.slot.release()
            if a.task_lock:
                a.task_lock.release()

    def _finish_run(self, task_id: str, emp: Employee, result: agent_run.AgentResult, now: float,
                    a: Active | None) -> None:
        branch = commit_sha = None
        task = self.org.tasks.get(task_id)
        if task is None:
            return
        if result.outcome == "completed" and not result.subtasks:
            try:
                commit_sha = self.workspace.commit_changes(
                    task_id, f"{task.title}\n\n{result.summary[:2000]}\n\nAoi-Task: {task_id}\n"
                    f"Aoi-Actor: agent:{emp.id}\n", emp.id, a.before if a is not None else None)
            except AoiError as exc:
                result = agent_run.AgentResult("failed", usage=result.usage,
                                          error=f"could not commit the agent's changes: {exc}")
        # what the run left is on its branch now; and git refuses to delete a branch that
        # a worktree still has checked out
        self.workspace.remove(task_id)
        tip = self.workspace.branch_tip(task_id)
        if (tip is not None and commit_sha is None and result.outcome == "completed"
                and not result.subtasks
                and ((a is not None and tip == a.fresh_tip) or self.workspace.is_merged(task_id))):
            self.workspace.delete_branch(task_id)  # no work of its own: nothing to merge
            tip = None
        if tip is not None and result.outcome == "completed":
            branch = branch_name(task_id)
            commit_sha = commit_sha or tip
        seconds = (now - a.started) if a is not None else 0.0
        outcome = [""]

        def build(txn: Txn) -> None:
            outcome[0] = flow.apply_result(
                txn, task_id=task_id, result=result, employee=emp, tasks=self.org.tasks,
                employees=self.org.employees, config=self.org.config, branch=branch,
                commit=commit_sha if branch else None, seconds=seconds, now=now)

        try:
            self._commit(build)
        except IllegalTransition as exc:
            self._log(f"{task_id}: result not applied: {exc}")
        if outcome[0] == "completed" and branch is not None:  # before any reviewer looks
            refused = self._branch_refusals(task_id)
            if refused:
                self._commit(lambda txn: flow.refuse_branch(txn, task_id, refused))
        usd = float(result.usage.get("usd", 0.0))
        self.spent_today[emp.id] = self.spent_today.get(emp.id, 0.0) + usd
        kind = emp.backend.kind
        br = self.breakers.setdefault(kind, Breaker())
        if outcome[0] == "failed":
            br.failures += 1
            lim = self.org.config.limits
            if br.failures >= lim.breaker_failures:
                self._trip(kind, now, f"{br.failures} failures in a row")
        else:
            br.failures = 0
        self._log(f"{task_id}: {emp.id} finished: {outcome[0]}"
                  + (f" ({result.error[:200]})" if result.error else ""))

    def _trip(self, kind: str, now: float, why: str) -> None:
        br = self.breakers.setdefault(kind, Breaker())
        br.until = now + self.org.config.limits.breaker_cooldown_s
        br.failures = 0
        self._log(f"backend {kind} paused until {now_iso(br.until)}: {why}")

    def _check_timeouts(self, now: float) -> None:
        grace = self.opts.grace_s if self.opts.grace_s is not None else \
            self.org.config.limits.grace_s
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
        self._finish_interrupted_index_flush()
        for task in list(self.org.tasks.values()):
            if task.status is not S.PROCESSING:
                continue
            files = agent_run.RunFiles(self.runs_dir / task.id)
            meta = files.read_meta()
            pgid = int(meta.get("pgid") or 0)
            if pgid and agent_run.group_alive(pgid):
                agent_run.kill_group(pgid, signal.SIGKILL)  # agents do not outlive their daemon
                self._log(f"{task.id}: killed the orphaned agent group {pgid}")
            emp_id = task.extra.get("routed_to") or task.assignee
            emp = self.org.employees.get(str(emp_id))
            # the run files were cleared before the claim was committed: a result or an
            # exit status here is this claim's, even if the daemon died before it wrote
            # meta.json (a fast agent can finish before that)
            has_result = files.result.exists()
            rc = files.read_exit()
            if emp is not None and (has_result or rc is not None):
                result = agent_run.read_result(files, rc)
                self._log(f"{task.id}: picked up the result its agent left before the crash")
                self._finish_run(task.id, emp, result, self.clock(), None)
                continue
            tid: str = task.id
            self._commit(lambda txn: _requeue(txn, tid, self.actor))  # noqa: B023
            self._log(f"{task.id}: recovered to pending (its agent was gone)")
        self.trash.empty()  # what a crash kept the last daemon from deleting
        self.workspace.drop_pool()
        # stale worktrees of tasks that are not running
        wt = self.aoi / "worktrees"
        if wt.is_dir():
            for child in wt.iterdir():
                if child.name.startswith("."):
                    continue
                t = self.org.tasks.get(child.name)
                if t is None or t.status is not S.PROCESSING:
                    self.workspace.remove(child.name)
        self._review_performance()  # a cycle a crash cut short (derived from reviews/)

    # ------------------------------------------------------------ person's edits
    def _take_human_edits(self) -> None:
        with self.dirty_lock:
            paths, self.dirty = self.dirty, set()
        if self.rescan:
            self.rescan = False
            from aoi_git.org.person_edits import changed_org_files

            paths |= {str(self.root / p) for p in changed_org_files(self.root)}
            paths |= {str(self.root / p) for p in self.file_problems}
        rel = []
        for p in paths:
            try:
                r = str(Path(p).resolve().relative_to(self.root))
            except ValueError:
                continue
            if is_task_path(r):
                rel.append(r)
        if not rel:
            return
        head = self.store.head()
        files: dict[str, bytes | None] = {}
        for r in sorted(set(rel)):
            full = self.root / r
            try:
                data: bytes | None = full.read_bytes()
            except (FileNotFoundError, IsADirectoryError):
                data = None
            blob = str(pygit2.hash(data)) if data is not None else None
            at_head = head.blob_id(r)  # None for both: gone from disk and from HEAD
            if blob == at_head or index_journal.stale_file(self.store.pending_moves, r, blob,
                                                     at_head):
                self.file_problems.pop(r, None)  # at HEAD, or our own write still to come
                continue
            files[r] = data
        if not files:
            return
        person = Actor(ActorKind.HUMAN, self.person)
        validator = Validator.for_org(self.org)
        for r, data in files.items():
            problems = validator.check({r: data}, person)
            if problems:
                if self.file_problems.get(r) != problems:
                    for line in problems:
                        self._log(f"invalid: {line}")
                self.file_problems[r] = problems
                continue
            self.file_problems.pop(r, None)
            if not self.org.config.commit_human_edits:
                continue
            self._commit_person_file(r, data, person)

    def _commit_person_file(self, path: str, data: bytes | None, person: Actor) -> None:
        from aoi_git.org.validate import full_task_problems

        assert data is not None
        task, _ = full_task_problems(data, path)
        if task is None:
            return
        new = task.id not in self.org.tasks

        def build(txn: Txn) -> None:
            if new and task.created is None:
                txn.put(task, new=True, path=path)
            else:
                txn.put(task, new=new, path=path)
            txn.files[path] = data  # the person's bytes exactly
            txn.in_work_tree.append(path)

        try:
            self._commit(build, person)
            self._log(f"committed {path} as {person}")
        except (IllegalTransition, AoiError) as exc:
            self.file_problems[path] = [f"{path}:1: {exc}"]

    # ------------------------------------------------------------------ status
    def _load_spent_today(self, day: str) -> None:
        self.spent_day = day
        self.spent_today = {}
        try:
            for rec in records(self.root, since=f"{day} 00:00"):
                usd = rec.cost.get("usd")
                emp = dict(rec.trailers).get("Aoi-Employee")
                if usd and emp:
                    self.spent_today[emp] = self.spent_today.get(emp, 0.0) + usd
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
            "invalid": self.file_problems,
            "spent_today": self.spent_today,
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
        line = f"{now_iso()} {msg}"
        log.info(msg)
        path = self.aoi / "daemon.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as fh:
            fh.write(line + "\n")


def _freeze_heap() -> None:
    """Leave what is loaded now (the org's tasks: ~85 ms of every full collection at 100k)
    out of Python's cyclic garbage collector, so its occasional full passes do not stall
    the loop. Those objects are still freed by reference counting when an org is reloaded
    (a dropped org holds no reference cycles: measured, 0 unreachable objects)."""
    gc.freeze()


def _requeue(txn: Txn, task_id: str, actor: Actor,
             why: str = "recovered after a daemon restart") -> None:
    t = txn.get(task_id)
    txn.put(t.with_changes(status=S.PENDING, feedback=(
        *t.feedback, flow.fb(actor, "note", f"{why}: run again"))))

