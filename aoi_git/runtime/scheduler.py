"""The scheduler: a pure function from org state and the time to the actions to take.

No git, no processes, no clock of its own: `plan(state, now)` decides, the daemon acts.
Every action is re-checked against the transition table when the daemon commits it, so
a plan made on slightly stale state can never make an illegal move.
"""

from __future__ import annotations

import bisect
import datetime as dt
import heapq
import itertools
import math
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from aoi_git.domain import budget, preemption
from aoi_git.domain.graph import TaskLinks
from aoi_git.domain.lifecycle import reviewer_of
from aoi_git.domain.model import Employee, EmployeeStatus, Kind, OrgConfig, Status, Task
from aoi_git.domain.task_rows import TaskMap, keeps_record, open_tasks

S = Status


@dataclass(frozen=True)
class Running:
    task_id: str
    employee: str
    backend: str
    started: float


@dataclass(frozen=True)
class SchedState:
    tasks: Mapping[str, Task]
    employees: Mapping[str, Employee]
    config: OrgConfig
    running: Mapping[str, Running] = field(default_factory=dict)
    held_elsewhere: Mapping[str, int] = field(default_factory=dict)  # slots taken by others
    spent_today: Mapping[str, float] = field(default_factory=dict)  # employee -> usd
    # `Backend.breaker_key` -> paused until then (math.inf: held until a person acts)
    breakers: Mapping[str, float] = field(default_factory=dict)
    max_agents: int | None = None
    stopping: bool = False
    # The tasks not finished or cancelled (the only ones a plan acts on) and every parent's
    # subtask ids, kept up to date by the daemon (`LiveSet`) so a plan costs O(open tasks)
    # in an org of 100k mostly finished ones. None: derived from `tasks` on every plan.
    live: Collection[str] | None = None
    children: Mapping[str, Collection[str]] | None = None
    # With `live` (ignored without): the open tasks that only wait to be dispatched
    # (`is_queued`), in dispatch order and left out of `live`. A plan then looks at them
    # only until the free slots are filled, so a queue of 10k tasks costs a plan what one
    # of 10 does.
    queue: Collection[str] | None = None
    # A multi-host org: true for a pending task this host leaves to another host for now
    # (that host's share of the queue, see runtime.hosts); None: one host.
    elsewhere: Callable[[str], bool] | None = None


def dispatch_key(task: Task) -> tuple[int, str, str]:
    """Dispatch order: priority, then age (then id, so the order is total)."""
    return (-task.priority, task.created or "", task.id)


def is_queued(task: Task) -> bool:
    """Pending with nothing but its dispatch to decide: no lifecycle move of `plan` applies
    to it (no budget request or escalation to apply, never rejected in review) and no
    retry time has to be watched (an unassigned one is routed first)."""
    return (task.status is S.PENDING and task.kind is not Kind.HUMAN and not task.retry_at
            and task.review_rounds == 0 and not task.bookkeeping.budget_request
            and not task.bookkeeping.escalation and task.assignee is not None)


class LiveSet:
    """Open tasks and the links of a task map, updated one written task at a time.

    `live`: the open tasks but the queued ones; `queue`: those, in dispatch order."""

    def __init__(self, tasks: Mapping[str, Task]) -> None:
        self.source = tasks  # the map this describes (a new map needs a new LiveSet)
        self.live: dict[str, None] = {}
        self._keys: dict[str, tuple[int, str, str]] = {}  # queued id -> its dispatch key
        self._order: list[tuple[int, str, str]] = []  # the keys, sorted
        self.links = TaskLinks(tasks)  # (from a TaskMap's rows: no finished task parsed)
        for t in open_tasks(tasks):
            self._place(t)

    @property
    def children(self) -> dict[str, dict[str, None]]:
        return self.links.children

    @property
    def queue(self) -> Collection[str]:
        return _Queue(self._keys, self._order)

    def update(self, task: Task) -> None:
        self.links.update(task)
        self._place(task)

    def _place(self, task: Task) -> None:
        old = self._keys.pop(task.id, None)
        if old is not None:
            del self._order[bisect.bisect_left(self._order, old)]
        if not needs_plan(task):
            self.live.pop(task.id, None)
        elif is_queued(task):
            self.live.pop(task.id, None)
            key = self._keys[task.id] = dispatch_key(task)
            bisect.insort(self._order, key)
        else:
            self.live[task.id] = None


class _Queue(Collection[str]):
    """The queued ids of a `LiveSet` in dispatch order (a view: it can be read again)."""

    def __init__(self, keys: Mapping[str, object], order: list[tuple[int, str, str]]):
        self._keys, self._order = keys, order

    def __iter__(self) -> Iterator[str]:
        return (key[2] for key in self._order)

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, tid: object) -> bool:
        return tid in self._keys


needs_plan = keeps_record
"""Whether a plan must look at this task: it is open, or it is a person's decision on a
proposed hire that has not been applied yet (the tasks a `TaskMap` holds parsed)."""


class _Kids(Mapping[str, list[Task]]):
    """parent id -> its subtasks, looked up when asked (from `SchedState.children`)."""

    def __init__(self, tasks: Mapping[str, Task], children: Mapping[str, Collection[str]]):
        self._tasks, self._children = tasks, children

    def __getitem__(self, parent: str) -> list[Task]:
        return [self._tasks[c] for c in self._children[parent] if c in self._tasks]

    def __iter__(self) -> Iterator[str]:
        return iter(self._children)

    def __len__(self) -> int:
        return len(self._children)


def _open_tasks(state: SchedState) -> Iterable[Task]:
    """The tasks a plan looks at: those that `needs_plan` (the rest need no move)."""
    if state.live is None:
        return state.tasks.values()
    tasks = state.tasks
    return [tasks[i] for i in itertools.chain(state.live, state.queue or ()) if i in tasks]


def _unqueued(state: SchedState) -> list[Task] | None:
    """The open tasks a plan looks at one by one (None: all of `state.tasks`); queued ones
    (`SchedState.queue`) are looked at in dispatch order, as far as needed."""
    if state.live is None:
        return None
    tasks = state.tasks
    return [tasks[i] for i in state.live if i in tasks]


def _queued_ready(state: SchedState, escalating: Collection[str]) -> Iterator[Task]:
    """The queued tasks that could start now, in dispatch order."""
    tasks = state.tasks
    for tid in state.queue or ():
        t = tasks.get(tid)
        if t is None or not is_queued(t) or t.id in state.running or t.id in escalating:
            continue
        if state.elsewhere is not None and state.elsewhere(t.id):
            continue
        if t.assignee is None or t.assignee in state.config.humans:
            continue
        if _deps_finished(t, tasks):
            yield t


@dataclass(frozen=True)
class Dispatch:
    task_id: str
    employee: str


@dataclass(frozen=True)
class Advance:
    """A daemon-made lifecycle move."""

    task_id: str
    to: Status
    reason: str


@dataclass(frozen=True)
class RequestReview:
    task_id: str
    reviewer: str


@dataclass(frozen=True)
class Route:
    """Give an unassigned pending work task an assignee: `router` (the employee of
    `routing.tasks`) chooses whom (`aoi_git.org.routing`)."""

    task_id: str
    router: str


@dataclass(frozen=True)
class Escalate:
    task_id: str
    reason: str


@dataclass(frozen=True)
class ApplyDecision:
    """A person answered an escalation or a budget request, or a choice among a task's
    alternative plans was decided or cancelled: apply it. For a proposed hire
    (`human_task_id == subject_id`) the CEO's answer is applied by `aoi_git.evolution.hiring`."""

    human_task_id: str
    subject_id: str


@dataclass(frozen=True)
class AskBudget:
    task_id: str
    employee: str
    reason: str


@dataclass(frozen=True)
class Suspend:
    """Preemption (`aoi_git.domain.preemption`): suspend the running `task_id` so that
    `for_task`, which outranks it, gets its slot."""

    task_id: str
    for_task: str
    reason: str


Action = (Dispatch | Advance | RequestReview | Route | Escalate | ApplyDecision | AskBudget
          | Suspend)


@dataclass
class Plan:
    actions: list[Action]
    next_wake: float | None  # earliest future time something becomes dispatchable
    idle: bool  # nothing running, nothing to do now, nothing scheduled


def parse_time(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def waits_on_person(task: Task, state: SchedState) -> bool:
    """A task whose next move is a person's (so its stillness is not a deadlock)."""
    cfg = state.config
    if task.kind is Kind.HUMAN and task.status is S.PENDING:
        return True
    if task.status is S.BLOCKED:
        return True
    if task.status is S.SUSPENDED and not task.bookkeeping.preempted_by:
        return True  # paused by a person: `aoi task resume`
    if task.bookkeeping.escalation and not task.is_terminal:
        return True  # a person decides: retry, reassign or cancel
    if task.bookkeeping.budget_request and not task.is_terminal:
        return True
    if task.status is S.WAITING and task.bookkeeping.plan_choice:
        return True  # its plans wait for a choice (a choice task, a person's or not)
    if task.status is S.COMPLETED:
        rv = reviewer_of(task, state.tasks, cfg)
        return rv in cfg.humans
    return task.assignee is not None and task.assignee in cfg.humans


def _route(task: Task, state: SchedState, load: Mapping[str, int],
           now: float | None = None) -> Employee | None:
    who = task.assignee
    if who is None:
        return None
    if who.startswith("role:"):
        role = who[5:]
        kept = state.employees.get(task.bookkeeping.routed_to or "")
        if (task.bookkeeping.resuming and kept is not None and kept.role == role
                and kept.status is not EmployeeStatus.OFFBOARDED):
            return kept  # a resumed run goes on where it was: same employee, same session
        candidates = [e for e in state.employees.values()
                      if e.role == role and e.status is not EmployeeStatus.OFFBOARDED]
        if not candidates:
            return None
        if now is not None:  # prefer those who can start now: a free slot, a backend not paused
            free = [e for e in candidates
                    if load.get(e.id, 0) < e.capacity.concurrency
                    and state.breakers.get(e.backend.breaker_key, 0.0) <= now]
            candidates = free or candidates
        return min(candidates, key=lambda e: (load.get(e.id, 0) / max(1, e.capacity.concurrency),
                                              e.id))
    emp = state.employees.get(who)
    if emp is None or emp.status is EmployeeStatus.OFFBOARDED:
        return None
    return emp


def resumable(task: Task) -> bool:
    """Suspended for a task that outranked it: the daemon resumes it (a person's pause
    waits for `aoi task resume`)."""
    return task.status is S.SUSPENDED and bool(task.bookkeeping.preempted_by)


def _deps_finished(task: Task, tasks: Mapping[str, Task]) -> bool:
    if isinstance(tasks, TaskMap):  # the rows know a finished task's status: none parsed
        status_of = tasks.rows.status_of
        return all(status_of(d) == S.FINISHED for d in task.depends_on)
    return all(tasks.get(d) is not None and tasks[d].status is S.FINISHED for d in task.depends_on)


def plan(state: SchedState, now: float) -> Plan:
    tasks, cfg = state.tasks, state.config
    limits = cfg.limits
    actions: list[Action] = []
    next_wake: float | None = None
    kids: Mapping[str, list[Task]]
    if state.children is not None:
        kids = _Kids(tasks, state.children)
    else:
        built: dict[str, list[Task]] = {}
        for t in tasks.values():
            if t.parent:
                built.setdefault(t.parent, []).append(t)
        kids = built
    unqueued = _unqueued(state)
    looked_at: Iterable[Task] = unqueued if unqueued is not None else tasks.values()
    # (queued tasks have had no review round; with no round allowed, all can escalate)
    moving = _open_tasks(state) if limits.max_review_rounds < 1 else looked_at

    router = _router(state)

    # 1. lifecycle moves that need no agent
    for t in moving:
        st = t.status
        if t.id in state.running:
            continue
        if st is S.WAITING:
            gone = t.bookkeeping.superseded  # subtasks a re-plan took out of its plan
            for c in kids.get(t.id, []):
                if c.id in gone and not c.is_terminal and c.id not in state.running:
                    actions.append(Advance(c.id, S.CANCELLED, f"superseded by the re-plan "
                                           f"of {t.id}"))
            choice = t.bookkeeping.plan_choice  # a choice among alternative plans is open
            if choice is not None:
                h = tasks.get(choice)
                if h is not None and h.is_terminal:
                    actions.append(ApplyDecision(choice, t.id))
                continue
            children = [c for c in kids.get(t.id, []) if c.id not in gone]
            if any(c.status is S.CANCELLED or (c.status is S.FAILED and _failed_for_good(c, cfg))
                   for c in children):
                actions.append(Advance(t.id, S.FAILED, "a subtask failed for good or was "
                                       "cancelled"))
            elif children and all(c.status is S.FINISHED for c in children):
                actions.append(Advance(t.id, S.COMPLETED, "all subtasks finished"))
        elif st is S.COMPLETED:
            rv = reviewer_of(t, tasks, cfg)
            if rv == "none":  # accepted, then merged: two moves (commits), one plan
                actions.append(Advance(t.id, S.ACCEPTED, "no reviewer: accepted at once"))
                actions.append(Advance(t.id, S.FINISHED, "merge its branch"))
            elif rv in state.employees and not _has_open_review(t, tasks):
                actions.append(RequestReview(t.id, rv))
        elif st is S.ACCEPTED:
            actions.append(Advance(t.id, S.FINISHED, "merge its branch"))
        elif st is S.BLOCKED:
            hid = t.bookkeeping.waiting_on
            h = tasks.get(hid) if hid is not None else None
            if h is not None and h.is_terminal:
                actions.append(Advance(t.id, S.PENDING, "the question was answered"))
        elif st is S.FAILED:
            if t.bookkeeping.budget_request:  # stopped at its budget: a person raises it
                decided = _budget_decided(t, state)
                if decided is not None:
                    actions.append(decided)
            elif t.bookkeeping.escalation:
                h = tasks.get(t.bookkeeping.escalation)
                if h is not None and h.is_terminal:
                    actions.append(ApplyDecision(h.id, t.id))
            elif t.bookkeeping.folded_into:
                pass  # decided with its parent's escalation
            elif t.attempts < limits.max_attempts and t.kind is not Kind.HUMAN:
                actions.append(Advance(t.id, S.PENDING, "retry"))
            else:
                actions.append(Escalate(t.id, f"failed {t.attempts} times"))
        elif st is S.PENDING and t.bookkeeping.budget_request:
            decided = _budget_decided(t, state)  # a budget request was answered
            if decided is not None:
                actions.append(decided)
        elif st is S.PENDING and t.bookkeeping.escalation:
            # an escalation after too many rejections was answered
            h = tasks.get(t.bookkeeping.escalation)
            if h is not None and h.is_terminal:
                actions.append(ApplyDecision(h.id, t.id))
        elif (st is S.PENDING and t.kind is Kind.WORK and t.assignee is None
              and router is not None):
            actions.append(Route(t.id, router))
        elif (st is S.PENDING and t.kind is Kind.WORK
              and t.review_rounds >= limits.max_review_rounds
              and not t.bookkeeping.escalation):
            actions.append(Escalate(t.id, f"rejected {t.review_rounds} times in review"))
        elif (t.kind is Kind.HUMAN and t.is_terminal and t.bookkeeping.hire is not None
              and not t.bookkeeping.applied):
            actions.append(ApplyDecision(t.id, t.id))  # the CEO decided a proposed hire

    # 2. dispatch
    escalating = {a.task_id for a in actions if isinstance(a, Escalate)
                  or (isinstance(a, Advance) and a.to is S.CANCELLED)}
    load: dict[str, int] = {}
    for r in state.running.values():
        load[r.employee] = load.get(r.employee, 0) + 1
    for emp_id, n in state.held_elsewhere.items():
        load[emp_id] = load.get(emp_id, 0) + n
    total = len(state.running)
    max_agents = state.max_agents if state.max_agents is not None else limits.max_agents
    ready: list[Task] = []
    # with every slot taken nothing can start: the next agent exit plans again
    for t in (looked_at if total < max_agents and not state.stopping else ()):
        if (not (t.status is S.PENDING or resumable(t)) or t.kind is Kind.HUMAN
                or t.id in state.running
                or t.id in escalating or t.bookkeeping.budget_request
                or t.bookkeeping.escalation):
            continue
        if t.assignee is None or t.assignee in cfg.humans:
            continue
        if state.elsewhere is not None and state.elsewhere(t.id):
            continue
        if not _deps_finished(t, tasks):
            continue
        at = parse_time(t.retry_at)
        if at is not None and at > now:
            next_wake = at if next_wake is None else min(next_wake, at)
            continue
        ready.append(t)
    ready.sort(key=dispatch_key)
    if unqueued is not None and state.queue is not None and total < max_agents \
            and not state.stopping:
        # read lazily: the loop below stops once the free slots are taken
        ready_iter: Iterable[Task] = heapq.merge(ready, _queued_ready(state, escalating),
                                                 key=dispatch_key)
    else:
        ready_iter = ready
    asked_budget: set[str] = set()
    # held until a person acts: raises a budget or the daily cap, fixes a backend's login
    over_budget: set[str] = set()
    day_spent = budget.org_day_spent(cfg, state.spent_today)  # no new agent today
    for t in ready_iter if not day_spent else ():
        if state.stopping or total >= max_agents:
            break
        emp = _route(t, state, load, now)
        if emp is None or emp.status is EmployeeStatus.OFFBOARDED:
            continue
        until = state.breakers.get(emp.backend.breaker_key)
        if until is not None and math.isinf(until):
            over_budget.add(t.id)
            continue
        if until is not None and until > now:
            next_wake = until if next_wake is None else min(next_wake, until)
            continue
        if load.get(emp.id, 0) >= emp.capacity.concurrency:
            continue
        over = budget.over_budget(t, emp, state.spent_today)
        if over:
            over_budget.add(t.id)
            key = emp.id if over.startswith("daily") else t.id
            if key not in asked_budget:
                asked_budget.add(key)
                actions.append(AskBudget(t.id, emp.id, over))
            continue
        actions.append(Dispatch(t.id, emp.id))
        load[emp.id] = load.get(emp.id, 0) + 1
        total += 1

    if cfg.preempt_gap is not None and state.running and not state.stopping:
        dispatched = {a.task_id for a in actions if isinstance(a, Dispatch)}
        actions += _preemptions(state, now, load, total >= max_agents, looked_at,
                                escalating | dispatched | over_budget)

    busy = bool(state.running) or any(not isinstance(a, AskBudget) for a in actions)

    # 3. deadlock: nothing running or possible, yet a project is neither done nor with a person
    #    (a task over its budget is with a person: one is being asked for more)
    if not busy and state.elsewhere is not None:  # with other hosts: their work counts
        busy = _elsewhere_busy(state)
    if not busy and next_wake is None and not state.stopping and not day_spent:
        for root in _deadlocked_roots(state, kids, over_budget):
            why = "nothing is running or can run, and no person is asked"
            if root in tasks and tasks[root].assignee is None:
                why = "it has no assignee and no employee routes unassigned work " \
                      "(routing.tasks in aoi.yaml)"
            actions.append(Advance(root, S.FAILED, f"deadlock: {why}"))
    # A budget request is made once (per task, or per employee and day): one that is
    # already open does not keep the daemon busy.
    idle = not state.running and next_wake is None \
        and all(isinstance(a, AskBudget) for a in actions)
    return Plan(actions, next_wake, idle)


def _elsewhere_busy(state: SchedState) -> bool:
    """A task processing on another host, or pending in another host's share."""
    elsewhere = state.elsewhere
    assert elsewhere is not None
    return any(t.status is S.PROCESSING or (t.status is S.PENDING and elsewhere(t.id))
               for t in _open_tasks(state))


def _budget_decided(t: Task, state: SchedState) -> ApplyDecision | None:
    """The budget request of `t` to apply: answered by a person, or made moot because a
    person raised the task's budget in its file (a request about a daily cap is answered
    in the profile or by `aoi answer`)."""
    h = state.tasks.get(t.bookkeeping.budget_request or "")
    if h is None:
        return None
    if h.is_terminal:
        return ApplyDecision(h.id, t.id)
    emp = state.employees.get(t.bookkeeping.routed_to or t.assignee or "")
    if emp is not None and not h.bookkeeping.daily \
            and budget.over_budget(t, emp, state.spent_today) is None:
        return ApplyDecision(h.id, t.id)
    return None
PREEMPT_SCAN = 1000  # ready tasks a plan looks at for preemption, at most


def _preemptions(state: SchedState, now: float, load: Mapping[str, int], global_full: bool,
                 looked_at: Iterable[Task], skip: Collection[str]) -> list[Action]:
    """Suspensions of running tasks for ready ones that outrank them and find no slot
    (`aoi_git.domain.preemption`); `skip`: tasks dispatched, escalating or over budget."""
    tasks = state.tasks
    gap = state.config.preempt_gap or 0
    lowest = min((tasks[r].priority for r in state.running if r in tasks), default=0)
    ready = sorted((t for t in looked_at if t.priority - lowest >= gap and t.id not in skip
                    and _startable(t, state, now)), key=dispatch_key)
    candidates: Iterable[Task] = ready
    if state.queue is not None and state.live is not None:
        candidates = heapq.merge(ready, _queued_ready(state, skip), key=dispatch_key)
    waiters: list[preemption.Waiter] = []
    for t in itertools.islice(candidates, PREEMPT_SCAN):
        if len(waiters) >= len(state.running) or t.priority - lowest < gap:
            break  # (dispatch order: no later task outranks the lowest running one either)
        if t.id in skip or not _startable(t, state, now):
            continue
        options = _route_options(t, state, now)
        if options:
            waiters.append(preemption.Waiter(
                t.id, frozenset(e.id for e in options), t.priority,
                all(load.get(e.id, 0) >= e.capacity.concurrency for e in options)))
    holders = [preemption.Holder(r.task_id, r.employee, tasks[r.task_id].priority,
                                 tasks[r.task_id].created or "",
                                 leaving=tasks[r.task_id].status is not S.PROCESSING)
               for r in state.running.values() if r.task_id in tasks]
    return [Suspend(p.victim, p.for_task, p.reason) for p in
            preemption.choose(waiters, holders, state.config.preempt_gap, global_full)]


def _route_options(t: Task, state: SchedState, now: float) -> list[Employee]:
    """Every employee `_route` could give `t` to (its backend not paused)."""
    who = t.assignee or ""
    if who.startswith("role:") and not t.bookkeeping.resuming:
        pool = [e for e in state.employees.values()
                if e.role == who[5:] and e.status is not EmployeeStatus.OFFBOARDED]
    else:
        kept = _route(t, state, {}, now)
        pool = [kept] if kept is not None else []
    return [e for e in pool if state.breakers.get(e.backend.breaker_key, 0.0) <= now]


def _startable(t: Task, state: SchedState, now: float) -> bool:
    """Pending (or resumable), not running, with nothing but a slot to wait for."""
    if not (t.status is S.PENDING or resumable(t)) or t.kind is Kind.HUMAN \
            or t.id in state.running or t.bookkeeping.budget_request \
            or t.bookkeeping.escalation:
        return False
    if t.assignee is None or t.assignee in state.config.humans:
        return False
    at = parse_time(t.retry_at)
    return (at is None or at <= now) and _deps_finished(t, state.tasks)


def _router(state: SchedState) -> str | None:
    """The employee who routes unassigned work (`routing.tasks`): the first active one
    of that role by id, or None."""
    role = state.config.router_role
    if not role:
        return None
    ids = [e.id for e in state.employees.values()
           if e.role == role and e.status is not EmployeeStatus.OFFBOARDED]
    return min(ids) if ids else None


def _failed_for_good(t: Task, cfg: OrgConfig) -> bool:
    """Failed and escalated to a person (the parent then fails and takes over the question)."""
    return bool(t.bookkeeping.escalation or t.bookkeeping.folded_into)


def _has_open_review(t: Task, tasks: Mapping[str, Task]) -> bool:
    rid = t.bookkeeping.review_task
    if rid is None:
        return False
    r = tasks.get(rid)
    return r is not None and not r.is_terminal


def _deadlocked_roots(state: SchedState, kids: Mapping[str, list[Task]],
                     over_budget: Collection[str] = ()) -> list[str]:
    """Roots that nothing can move on: no person is asked anywhere in their subtree, nor
    in the subtree of any project they (transitively) wait on through a dependency.

    A project that only waits on another stuck project is not failed itself: the one
    that stalls the others is, and once a person is asked about it, the others wait on
    that person. Only when stuck projects all wait on each other are they all failed."""
    tasks = state.tasks
    info: dict[str, tuple[bool, set[str]]] = {}  # root -> (a person moves it, roots waited on)

    def root_of(tid: str) -> str:
        seen: set[str] = set()
        cur = tid
        while cur not in seen:
            seen.add(cur)
            parent = tasks[cur].parent if cur in tasks else None
            if not parent or parent not in tasks:
                return cur
            cur = parent
        return cur

    def examine(rid: str) -> tuple[bool, set[str]]:
        if rid not in info:
            subtree = [t for t in _subtree(rid, tasks, kids) if not t.is_terminal]
            alive = any(waits_on_person(t, state) or t.id in over_budget for t in subtree) \
                or any(_has_open_review(t, tasks) for t in subtree)  # a review of it is open
            # a dependency that ended without finishing (cancelled) is waited on in vain
            waits = {root_of(d) for t in subtree for d in t.depends_on
                     if d in tasks and not tasks[d].is_terminal}
            info[rid] = (alive, waits - {rid})
        return info[rid]

    stuck: dict[str, set[str]] = {}
    for root in [t for t in _open_tasks(state) if not t.parent or t.parent not in tasks]:
        if root.is_terminal or root.kind is not Kind.WORK:
            continue
        if root.status is S.FAILED:
            continue  # already failing: the escalation path handles it
        seen, stack, alive = {root.id}, [root.id], False
        while stack and not alive:
            alive, waits = examine(stack.pop())
            for r in waits - seen:
                seen.add(r)
                stack.append(r)
        if not alive:
            stuck[root.id] = seen - {root.id}
    primary = [r for r, waits in stuck.items() if not waits & stuck.keys()]
    return primary or list(stuck)


def _subtree(root: str, tasks: Mapping[str, Task], kids: Mapping[str, list[Task]]) -> list[Task]:
    """`root` and the tasks below it, each once (parent links that form a cycle end)."""
    out, stack, seen = [], [root], {root}
    while stack:
        cur = stack.pop()
        t = tasks.get(cur)
        if t is None:
            continue
        out.append(t)
        for k in kids.get(cur, []):
            if k.id not in seen:
                seen.add(k.id)
                stack.append(k.id)
    return out
