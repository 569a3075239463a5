"""The executor: turns the scheduler's actions and the agents' results into commits.

It holds the organisation as of its last commit (`org`, with the task index kept up to
date commit by commit, and `workspace`) and is the one writer of the daemon's commits:
every change goes through `commit`, which brings the index along, or reloads the org
when someone else moved the branch or an employee or the config changed. What each move
means is decided by the flow rules in `aoi_git.org`; the executor only applies them.
"""

from __future__ import annotations

import datetime as dt
import gc
from collections import ChainMap
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from aoi_git.domain.budget import over_budget, run_past_budget
from aoi_git.domain.control import Stop, stop_for
from aoi_git.domain.model import Actor, Employee, Kind, Status, Task
from aoi_git.domain.result import AgentResult, Failure
from aoi_git.domain.task_rows import open_tasks
from aoi_git.errors import AoiError, IllegalTransition
from aoi_git.evolution import hiring, passed_over, performance_reviews, retrospectives
from aoi_git.evolution.journal import is_journal_file
from aoi_git.org import branch_policy, control, flow, progress, routing
from aoi_git.org.organisation import Org, load_org
from aoi_git.org.validate import full_task_problems
from aoi_git.runtime.clock import Clock
from aoi_git.runtime.scheduler import (
    Action,
    Advance,
    ApplyDecision,
    AskBudget,
    Escalate,
    LiveSet,
    RequestReview,
    Route,
    Suspend,
)
from aoi_git.store import agent_git, index_journal, signing
from aoi_git.store.branch_merge import archive_branch, merge_branch
from aoi_git.store.head_view import HeadView
from aoi_git.store.org_store import Store
from aoi_git.store.trailers import agent_work_message, merge_message
from aoi_git.store.trash import Trash
from aoi_git.store.tree_snapshot import Snapshot
from aoi_git.store.txn import Txn, commit
from aoi_git.store.worktrees import Workspace, branch_name, open_workspace

S = Status
POOL_SIZE = 8  # finished worktrees kept for the next tasks (see Workspace._reuse)


@dataclass
class RunInfo:
    """What the daemon knew of a run when it started it (None for a recovered run)."""

    started: float
    fresh_tip: str | None = None  # the branch was made for this run at this base commit
    before: Snapshot | None = None  # the worktree as the agent got it


@dataclass
class RunOutcome:
    outcome: str  # what the result did to the task (e.g. "completed", "failed")
    error: str  # the run's error, if any
    failure: Failure = Failure.RETRY  # with outcome failed: of what kind


class Executor:
    def __init__(self, root: Path, store: Store, actor: Actor, clock: Clock,
                 log: Callable[[str], None], index_writer: index_journal.Writer,
                 trash: Trash, on_commit: Callable[[str, str], None] | None = None) -> None:
        self.root = root
        self.store = store
        self.actor = actor
        self.clock = clock
        self.log = log
        self.index_writer = index_writer
        self.trash = trash
        self.on_commit = on_commit  # (actor, subject line) after each commit
        self.org: Org = load_org(store)
        self.known_head = self.org.commit
        self.workspace = self._open_workspace()
        self._live: LiveSet | None = None  # open tasks for the scheduler (see live_set)
        self.passed_over_file = store.aoi_dir / "cache" / "passed-over.json"
        # see performance_reviews.run_cycle; kept across restarts (`passed_over`)
        self.unreviewable_roots = passed_over.load(self.passed_over_file, self.org.rows)
        self.unreviewed_roots = performance_reviews.Uncovered()

    # ------------------------------------------------------------ the org state
    def _open_workspace(self) -> Workspace:
        return open_workspace(self.store, self.org.config, trash=self.trash,
                              pool_size=POOL_SIZE)

    def refresh(self) -> None:
        """Reload the org (and its workspace) from HEAD."""
        self.org = load_org(self.store)
        freeze_heap()
        self.known_head = self.org.commit
        self.workspace = self._open_workspace()

    def drop_stale_worktrees(self) -> None:
        """Remove the kept worktrees, and those of tasks that are not processing."""
        self.workspace.drop_pool()
        wt = self.workspace.worktrees
        if wt.is_dir():
            for child in wt.iterdir():
                if child.name.startswith("."):
                    continue
                t = self.org.tasks.get(child.name)
                if t is None or not keeps_worktree(t):
                    self.workspace.remove(child.name)

    def head_moved(self) -> bool:
        """Someone else committed since the org was loaded or last committed."""
        head = self.store.head_commit()
        oid = str(head.id) if head is not None else None
        return oid != self.known_head

    def live_set(self) -> LiveSet:
        """Open tasks and subtask links, rebuilt only when the task map was reloaded."""
        live = self._live
        if live is None or live.source is not self.org.tasks:
            live = self._live = LiveSet(self.org.tasks)
        return live

    # ------------------------------------------------------------------ commits
    def commit(self, fn: Callable[[Txn], Any], actor: Actor | None = None) -> Txn | None:
        """Build one commit with `fn` (again if the head moves) and make it; the org is
        then brought along. None when `fn` changed nothing."""
        oid, txn = commit(self.store, fn, actor or self.actor, self.org.index.paths)
        if oid is None:
            return None
        head = self.store.head()
        moved_by_other = self.store.head_commit() is not None and \
            self.known_head not in (None, *[str(p) for p in head.commit.parent_ids])  # type: ignore[union-attr]
        if moved_by_other:
            self.refresh()
        else:
            self._apply_written(txn, head)
        self.known_head = head.oid
        self.journal_index(txn.files)
        self._announce(str(txn.actor))
        return txn

    # Work-tree files and index entries are moved along by the daemon's index flush, once
    # for many commits. Until then the moves are journaled in .aoi/ (see
    # aoi_git.store.index_journal): a restart after a kill -9 finishes them, and a person's
    # commit or `aoi validate` meanwhile is not misled.
    def journal_index(self, paths: Iterable[str]) -> None:
        moves = self.store.pending_moves
        self.index_writer.append((p, moves[p]) for p in paths if p in moves)

    def _announce(self, actor: str) -> None:
        if self.on_commit is not None:
            head = self.store.head_commit()
            if head is not None:
                self.on_commit(actor, head.message.splitlines()[0])

    def _apply_written(self, txn: Txn, head: HeadView) -> None:
        index = self.org.index
        for tid, task in txn.written.items():
            path = txn.path_of(tid)
            index.record(task, path, head.blob_id(path))
            if self._live is not None and self._live.source is index.tasks:
                self._live.update(task)
        index.root_tree = head.blob_id("tasks")
        self.org.tasks_changed(head.oid)
        self.store.task_cache.adopt(index)
        if any(p.startswith(("employees/", "aoi.yaml", "talents/"))
               and not is_journal_file(p) for p in txn.files):
            self.refresh()

    # ------------------------------------------------------------------ actions
    def execute(self, action: Action, now: float, spent_today: Mapping[str, float]) -> bool:
        """Commit what `action` (any but a dispatch) means; False when it turned out to
        be moot. Raises IllegalTransition or AoiError when the state moved under it."""
        if isinstance(action, Advance):
            return self._advance(action, now)
        if isinstance(action, RequestReview):
            return self._request_review(action.task_id, action.reviewer)
        if isinstance(action, Route):
            return self._route(action)
        if isinstance(action, Escalate):
            self.commit(lambda txn: flow.escalate(txn, action.task_id, action.reason,
                                                  self.org.employees, self.org.config,
                                                  self.org.tasks))
            return True
        if isinstance(action, ApplyDecision):
            if action.human_task_id == action.subject_id:  # the CEO decided a proposed hire
                return hiring.apply_hire_decision(self.root, self.org, action.human_task_id,
                                                  self.commit)
            self.commit(lambda txn: flow.apply_decision(txn, action.human_task_id,
                                                        action.subject_id, self.org.tasks,
                                                        self.org.employees))
            return True
        if isinstance(action, AskBudget):
            return self._ask_budget(action, now, spent_today)
        if isinstance(action, Suspend):  # the daemon then stops its run (domain.control)
            return self.commit(lambda txn: control.preempt(
                txn, action.task_id, action.for_task, action.reason)) is not None
        raise AssertionError(action)  # pragma: no cover

    def _advance(self, a: Advance, now: float) -> bool:
        t = self.org.tasks.get(a.task_id)
        if t is None:
            return False
        if a.to is S.FINISHED:  # (after an accept in the same plan: if that was made)
            return t.status is S.ACCEPTED and self._merge_and_finish(t, now)
        if a.to is S.ACCEPTED and t.status is S.COMPLETED and self._nothing_to_merge(t):
            # accepted at once and nothing to merge: nobody can act between the accept and
            # the finish, so one commit makes both moves (the plan's finish is then moot)
            self._finish(t, None, accept=a.reason)
            return True
        if a.to is S.FAILED:  # deadlock or a failed subtask: straight to a person
            was_waiting = t.status is S.WAITING
            self.commit(lambda txn: progress.fail_for_good(
                txn, a.task_id, a.reason, self.org.employees, self.org.config,
                self.org.tasks, was_waiting))
            return True
        if t.status is S.BLOCKED and a.to is S.PENDING:
            self.commit(lambda txn: flow.unblock(txn, a.task_id, self.org.tasks))
            return True
        self.commit(lambda txn: progress.advance(txn, a.task_id, a.to, a.reason,
                                                 self.org.tasks, self.org.employees,
                                                 self.org.config))
        return True

    def _route(self, a: Route) -> bool:
        router = self.org.employees.get(a.router)
        task = self.org.tasks.get(a.task_id)
        if router is None or task is None or task.assignee is not None:
            return False
        live = self.live_set()
        tasks = self.org.tasks
        load = routing.open_load(tasks[i] for i in (*live.live, *live.queue) if i in tasks)
        choice = routing.choose(task, self.org.employees, self.org.talents, load,
                                self.org.config, router)
        self.commit(lambda txn: routing.route(txn, a.task_id, choice, router))
        self.log(f"{a.task_id}: routed by {router.id} to {choice.employee}: {choice.why}")
        return True

    def _request_review(self, task_id: str, reviewer: str) -> bool:
        refused = self.branch_refusals(task_id)
        diff = self.workspace.diff(task_id, 30_000)
        self.commit(lambda txn: flow.request_review(txn, task_id, reviewer, self.org.tasks,
                                                    diff, refused))
        return True

    def branch_refusals(self, task_id: str) -> list[branch_policy.Refusal]:
        """What the branch of `task_id` changes that agents may not (`org.branch_policy`),
        and its commits that forge aoi's trailers."""
        refused = branch_policy.refusals(self.workspace.changes(task_id),
                                         org_state=self.workspace.is_org,
                                         protected=self.org.config.workspace_protected)
        host = signing.host_signer()
        if host is None:  # this host signs nothing: its own commits could not be told
            return refused
        allowed = [*signing.allowed_signers(self.store.head()), signing.listing(host)]
        return [*refused, *branch_policy.trailer_refusals(
            self.workspace.commits(task_id),
            lambda c: signing.signer_of(c.signature, c.payload, allowed).is_host)]

    def _ask_budget(self, a: AskBudget, now: float, spent_today: Mapping[str, float]) -> bool:
        emp = self.org.employees.get(a.employee)
        task = self.org.tasks.get(a.task_id)
        if emp is None or task is None or task.bookkeeping.budget_request:
            return False
        # the plan may be stale: an action before this one (a person's answer to another
        # budget request) may have raised the cap
        if not over_budget(task, emp, spent_today):
            return False
        day = dt.date.fromtimestamp(now).isoformat()
        if a.reason.startswith("daily"):
            for t in open_tasks(self.org.tasks):  # one open request per employee and day
                if (t.kind is Kind.HUMAN and not t.is_terminal
                        and t.bookkeeping.budget_for == emp.id and t.bookkeeping.day == day):
                    return False
        self.commit(lambda txn: flow.budget_request(txn, a.task_id, emp, a.reason,
                                                    self.org.employees, self.org.config,
                                                    self.org.tasks))
        return True

    def _merge_and_finish(self, task: Task, now: float) -> bool:
        ws = self.workspace
        tip = ws.branch_tip(task.id)
        merged_sha: str | None = None
        if tip is not None and not ws.is_merged(task.id):
            refused = self.branch_refusals(task.id)
            if refused:
                self.commit(lambda txn: flow.refuse_branch(txn, task.id, refused, now))
                return True
            conflict = self._merge_branch(task, tip)
            if conflict:
                self.commit(lambda txn: progress.send_back_for_conflict(
                    txn, task.id, conflict, self.actor, now))
                ws.remove(task.id)
                archive_branch(ws, task.id)
                return True
            merged_sha = self.known_head if ws.is_org else None
        self._finish(task, merged_sha)
        return True

    def _nothing_to_merge(self, task: Task) -> bool:
        """The task has no branch, or its branch is in the workspace base already."""
        return self.workspace.is_merged(task.id)

    def _finish(self, task: Task, merged_sha: str | None, accept: str | None = None) -> None:
        """Commit the finish of `task` (with its retrospective if it is a root); `accept`:
        the reason it is accepted first, in the same commit (a transition of its own)."""

        def build(txn: Txn) -> None:
            if accept is not None:
                progress.advance(txn, task.id, S.ACCEPTED, accept, self.org.tasks,
                                 self.org.employees, self.org.config)
            cur = progress.finish(txn, task.id, merged_sha, then=accept is not None)
            if cur.parent is None and cur.kind is Kind.WORK:  # a root: its retrospective
                self._retro_into(txn, cur.id)

        self.commit(build)
        self.workspace.remove(task.id)
        if task.parent is None and task.kind is Kind.WORK:
            self.review_performance()

    def _merge_branch(self, task: Task, tip: str) -> str | None:
        """Merge `aoi/<id>` into the workspace base as one commit; a conflict's text or None."""
        ws = self.workspace
        ws_store = self.store if ws.is_org else Store(ws.repo_dir)
        branch = branch_name(task.id)
        merged = merge_branch(ws_store, tip, merge_message(branch, task.title, task.id,
                                                           str(self.actor)), str(self.actor))
        if merged.conflicts:
            return progress.conflict_feedback(branch, ws.base, merged.conflicts)
        if merged.commit is not None:
            self.journal_index(merged.changed)
            if ws.is_org:
                self.known_head = merged.commit
                self.org.commit = merged.commit
                self._announce(str(self.actor))
        return None

    # ---------------------------------------------------------- self-evolution
    def _retro_into(self, txn: Txn, root_id: str) -> None:
        """`retros/<root>.md` (and SOP changes) in the commit that finishes the root."""
        try:
            # the links are the head's: the finish being built changes no parent or subject
            tasks = ChainMap(txn.written, self.org.tasks)  # type: ignore[arg-type]
            retrospectives.finish_root(txn, self.store, tasks, self.org.employees,
                                       self.org.config, root_id, self.clock.wall(),
                                       links=self.live_set().links)
        except Exception as exc:  # a retrospective never keeps a project from finishing
            self.log(f"{root_id}: retrospective not written: {exc!r}")

    def review_performance(self) -> None:
        """HR's review cycle when `evolution.review_every` roots finished since the last."""
        known = len(self.unreviewable_roots)
        try:
            self.commit(lambda txn: performance_reviews.run_cycle(
                txn, store=self.store, tasks=self.org.tasks,
                employees=self.org.employees, config=self.org.config, org=self.org,
                now=self.clock.wall(), links=self.live_set().links,
                passed_over=self.unreviewable_roots, uncovered=self.unreviewed_roots),
                performance_reviews.reviewer(self.org.employees, self.actor))
        except Exception as exc:
            self.log(f"performance reviews not written: {exc!r}")
        if len(self.unreviewable_roots) != known:
            passed_over.save(self.passed_over_file, self.unreviewable_roots, self.org.rows)

    # --------------------------------------------------------------------- runs
    def claim(self, task_id: str, emp: Employee, note: str | None = None) -> None:
        """Commit `task_id` as processing by `emp` (with `note`, the conflict of its
        earlier work with the base, in its feedback); raises IllegalTransition when
        another writer claimed it first."""
        def build(txn: Txn) -> None:
            cur = txn.get(task_id)
            changes: dict[str, Any] = {}
            book = replace(cur.bookkeeping, preempted_by=None)  # (a resumed suspension)
            if cur.assignee and cur.assignee.startswith("role:"):
                book = replace(book, routed_to=emp.id)
            if book != cur.bookkeeping:
                changes["bookkeeping"] = book
            if note:
                changes["feedback"] = (*cur.feedback, flow.fb(self.actor, "conflict", note,
                                                              self.clock.wall()))
            # move, not put: a task that is already processing is claimed by someone else
            # (processing -> processing would be a legal no-op and start a second agent)
            txn.move(task_id, S.PROCESSING, **changes)
            txn.trailers.append(("Aoi-Employee", emp.id))

        self.commit(build)

    def requeue(self, task_id: str, why: str = progress.RECOVERED) -> None:
        """Back to pending: its run was lost (a restart) or stopped by the daemon."""
        self.commit(lambda txn: progress.requeue(txn, task_id, self.actor, why,
                                                 self.clock.wall()))

    def finish_run(self, task_id: str, emp: Employee, result: AgentResult, now: float,
                   run: RunInfo | None) -> RunOutcome | None:
        """Commit the agent's work on its branch and apply its result to the task (None:
        the task is gone)."""
        branch = commit_sha = None
        task = self.org.tasks.get(task_id)
        if task is None:
            return None
        # what the agent's own git wrote in its sandbox (its commits) onto its real branch
        agent_git.take_commits(self.workspace.repo, self.workspace.path_for(task_id),
                               self.root / ".aoi" / "runs" / task_id)
        # a run past its budget does not complete: its changes are not committed as work
        past = run_past_budget(task.with_changes(cost=flow.add_cost(task, result.usage, 0.0)),
                               emp)
        if result.outcome == "completed" and not result.subtasks and not past:
            try:
                commit_sha = self.workspace.commit_changes(
                    task_id, agent_work_message(task.title, result.summary, task_id, emp.id),
                    emp.id, run.before if run is not None else None)
            except AoiError as exc:
                result = AgentResult("failed", usage=result.usage,
                                     error=f"could not commit the agent's changes: {exc}")
        # what the run left is on its branch now; and git refuses to delete a branch that
        # a worktree still has checked out
        self.workspace.remove(task_id)
        tip = self.workspace.branch_tip(task_id)
        if (tip is not None and commit_sha is None and result.outcome == "completed"
                and not result.subtasks
                and ((run is not None and tip == run.fresh_tip)
                     or self.workspace.is_merged(task_id))):
            self.workspace.delete_branch(task_id)  # no work of its own: nothing to merge
            tip = None
        if tip is not None and result.outcome == "completed":
            branch = branch_name(task_id)
            commit_sha = commit_sha or tip
        seconds = (now - run.started) if run is not None else 0.0
        outcome = [""]

        def build(txn: Txn) -> None:
            # (checked at the head the commit is built on: a cancel, pause or reassignment
            # committed as the run ended wins, and the agent does not complete the task)
            stop = stop_for(txn.get(task_id), emp.id, self.org.employees)
            if stop is not None:
                control.settle_stopped(txn, task_id, employee=emp.id, stop=stop[0],
                                       why=stop[1], usage=result.usage, seconds=seconds,
                                       session=None, now=now)
                outcome[0] = "stopped"
                return
            outcome[0] = flow.apply_result(
                txn, task_id=task_id, result=result, employee=emp, tasks=self.org.tasks,
                employees=self.org.employees, config=self.org.config, branch=branch,
                commit=commit_sha if branch else None, seconds=seconds, now=now)
            control.clear_continuation(txn, task_id)

        try:
            self.commit(build)
        except IllegalTransition as exc:
            self.log(f"{task_id}: result not applied: {exc}")
        if outcome[0] == "completed" and branch is not None:  # before any reviewer looks
            refused = self.branch_refusals(task_id)
            if refused:
                self.commit(lambda txn: flow.refuse_branch(txn, task_id, refused, now))
        return RunOutcome(outcome[0], result.error or "", result.failure)

    def keep_work(self, task_id: str, employee: str, why: str) -> None:
        """Commit what a stopped run left uncommitted in its kept worktree (a restart
        after a crash between the stop and its commit)."""
        ws = self.workspace
        if not (ws.path_for(task_id) / ".git").exists():
            return
        agent_git.take_commits(ws.repo, ws.path_for(task_id),
                               self.root / ".aoi" / "runs" / task_id)
        task = self.org.tasks.get(task_id)
        try:
            ws.commit_changes(task_id, wip_message(task.title if task else task_id, employee,
                                                   why), employee)
        except AoiError as exc:
            self.log(f"{task_id}: the stopped run's changes were not committed: {exc}")

    def end_stopped_run(self, task_id: str, employee: str, stop: Stop, why: str,
                        usage: Mapping[str, float], now: float, run: RunInfo | None,
                        session: str | None) -> None:
        """A run the daemon stopped (`domain.control`): what it wrote is committed on its
        branch as its agent's work; a suspended task keeps its worktree; the task is
        settled (`org.control.settle_stopped`)."""
        task = self.org.tasks.get(task_id)
        ws = self.workspace
        agent_git.take_commits(ws.repo, ws.path_for(task_id),
                               self.root / ".aoi" / "runs" / task_id)
        title = task.title if task is not None else task_id
        try:
            ws.commit_changes(task_id, wip_message(title, employee, why), employee,
                              run.before if run is not None else None)
        except AoiError as exc:
            self.log(f"{task_id}: the stopped run's changes were not committed: {exc}")
        if task is None:
            ws.remove(task_id)
            return
        if stop is not Stop.SUSPEND or task.is_terminal:
            ws.remove(task_id)  # the branch stays: a handover or a person starts from it
            if run is not None and run.fresh_tip is not None \
                    and ws.branch_tip(task_id) == run.fresh_tip:
                ws.delete_branch(task_id)  # nothing of its own on it
        seconds = (now - run.started) if run is not None else 0.0
        self.commit(lambda txn: control.settle_stopped(
            txn, task_id, employee=employee, stop=stop, why=why, usage=usage,
            seconds=seconds, session=session, now=now))

    # ---------------------------------------------------------- a person's files
    def commit_person_file(self, path: str, data: bytes, person: Actor) -> list[str]:
        """Commit a valid task file a person saved, their bytes exactly; the problems
        that kept it from being committed (empty when it was)."""
        task, _ = full_task_problems(data, path)
        if task is None:
            return []
        new = task.id not in self.org.tasks

        def build(txn: Txn) -> None:
            if new and task.created is None:
                txn.put(task, new=True, path=path)
            else:
                txn.put(task, new=new, path=path)
            txn.files[path] = data  # the person's bytes exactly
            txn.in_work_tree.append(path)

        try:
            self.commit(build, person)
            self.log(f"committed {path} as {person}")
        except (IllegalTransition, AoiError) as exc:
            return [f"{path}:1: {exc}"]
        return []


def wip_message(title: str, employee: str, why: str) -> str:
    """The message of a stopped run's work on its branch: no Aoi-* trailers (the branch
    may be rebased onto a new base before its next run, and such commits would then pass
    for forgeries; the settling commit on the org's branch carries them)."""
    return f"{title}\n\nWork in progress of {employee}, stopped: {why}.\n"


def keeps_worktree(task: Task) -> bool:
    """Whether a task's worktree outlives its run: running, or suspended (or resumed) to
    go on in it."""
    return task.status is S.PROCESSING or (not task.is_terminal and (
        task.status is S.SUSPENDED or bool(task.bookkeeping.resuming)))


def freeze_heap() -> None:
    """Leave what is loaded now (the org's tasks: ~85 ms of every full collection at 100k)
    out of Python's cyclic garbage collector, so its occasional full passes do not stall
    the loop. Those objects are still freed by reference counting when an org is reloaded
    (a dropped org holds no reference cycles: measured, 0 unreachable objects)."""
    gc.freeze()
