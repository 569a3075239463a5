"""The scheduler as a pure function: `plan(state, now)` on records built in memory.

No git, no processes, no clock: every test builds Task/Employee/OrgConfig records and
checks the actions the planner returns.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aoi_git.domain.bookkeeping import Bookkeeping
from aoi_git.domain.model import (
    Backend,
    Capacity,
    Employee,
    EmployeeStatus,
    Human,
    Kind,
    Limits,
    OrgConfig,
    Status,
    Task,
)
from aoi_git.runtime.scheduler import (
    Advance,
    ApplyDecision,
    AskBudget,
    Dispatch,
    Escalate,
    Plan,
    RequestReview,
    Running,
    SchedState,
    plan,
)

pytestmark = pytest.mark.timeout(120)

S = Status
NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC).timestamp()


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).replace(microsecond=0).isoformat() \
        .replace("+00:00", "Z")


SCRIPT = "script: true"  # the breaker key of `emp`'s command


def task(tid: str, *, age: int = 0, **kw: Any) -> Task:
    """A work task; `age` seconds old (older = created earlier)."""
    kw.setdefault("assignee", "eng-1")
    kw.setdefault("reviewer", "none")
    kw.setdefault("created", iso(NOW - 1000 - age))
    return Task(id=tid, title=tid.upper(), **kw)


def emp(eid: str, *, role: str = "engineer", concurrency: int = 1, kind: str = "script",
        status: EmployeeStatus = EmployeeStatus.ACTIVE, usd_per_day: float | None = None,
        tokens_per_task: int | None = None) -> Employee:
    return Employee(id=eid, role=role, reports_to="ceo", status=status,
                    backend=Backend(kind=kind, command=("true",)),
                    capacity=Capacity(concurrency=concurrency, usd_per_day=usd_per_day,
                                      tokens_per_task=tokens_per_task))


def config(**limits: Any) -> OrgConfig:
    return OrgConfig(ceo="ceo", humans={"ceo": Human("ceo", "CEO")}, limits=Limits(**limits))


def state(tasks: list[Task], employees: list[Employee] | None = None, **kw: Any) -> SchedState:
    employees = employees if employees is not None else [emp("eng-1")]
    kw.setdefault("config", config())
    return SchedState(tasks={t.id: t for t in tasks}, employees={e.id: e for e in employees},
                      **kw)


def running(*pairs: tuple[str, str], kind: str = "script") -> dict[str, Running]:
    return {tid: Running(tid, eid, kind, NOW - 5) for tid, eid in pairs}


def dispatched(p: Plan) -> list[tuple[str, str]]:
    return [(a.task_id, a.employee) for a in p.actions if isinstance(a, Dispatch)]


def of(p: Plan, cls: type) -> list[Any]:
    return [a for a in p.actions if isinstance(a, cls)]


# --------------------------------------------------------------------------- readiness

def test_a_pending_task_with_no_deps_is_dispatched() -> None:
    p = plan(state([task("a")]), NOW)
    assert dispatched(p) == [("a", "eng-1")]
    assert not p.idle


@pytest.mark.parametrize("status", [s for s in Status if s is not S.PENDING])
def test_only_pending_tasks_are_dispatched(status: Status) -> None:
    book = Bookkeeping(escalation="h-x") if status is S.FAILED else Bookkeeping()
    p = plan(state([task("a", status=status, bookkeeping=book)]), NOW)
    assert dispatched(p) == []


@pytest.mark.parametrize("dep_status", [s for s in Status if s is not S.FINISHED])
def test_a_task_waits_until_every_dependency_is_finished(dep_status: Status) -> None:
    dep = task("dep", status=dep_status, assignee="eng-2")
    p = plan(state([dep, task("a", depends_on=("dep",))]), NOW)
    assert ("a", "eng-1") not in dispatched(p)


def test_a_task_whose_dependencies_are_all_finished_is_dispatched() -> None:
    deps = [task("d1", status=S.FINISHED), task("d2", status=S.FINISHED)]
    p = plan(state([*deps, task("a", depends_on=("d1", "d2"))]), NOW)
    assert dispatched(p) == [("a", "eng-1")]


def test_a_missing_dependency_is_not_finished() -> None:
    p = plan(state([task("a", depends_on=("ghost",))]), NOW)
    assert dispatched(p) == []


def test_retry_at_in_the_future_holds_the_task_and_sets_next_wake() -> None:
    p = plan(state([task("a", retry_at=iso(NOW + 30))]), NOW)
    assert dispatched(p) == []
    assert p.next_wake == pytest.approx(NOW + 30)
    assert not p.idle  # a retry is scheduled: --until-idle must not exit
    later = plan(state([task("a", retry_at=iso(NOW + 30))]), NOW + 30)
    assert dispatched(later) == [("a", "eng-1")]


def test_retry_at_in_the_past_is_ready() -> None:
    p = plan(state([task("a", retry_at=iso(NOW - 1))]), NOW)
    assert dispatched(p) == [("a", "eng-1")]


def test_next_wake_is_the_earliest_future_retry() -> None:
    tasks = [task("a", retry_at=iso(NOW + 90)), task("b", retry_at=iso(NOW + 20)),
             task("c", retry_at=iso(NOW + 45)), task("d", retry_at=iso(NOW - 10),
                                                      assignee="eng-2")]
    p = plan(state(tasks, [emp("eng-1"), emp("eng-2")]), NOW)
    assert p.next_wake == pytest.approx(NOW + 20)
    assert dispatched(p) == [("d", "eng-2")]


def test_nothing_to_do_is_idle_with_no_wake() -> None:
    p = plan(state([task("a", status=S.FINISHED)]), NOW)
    assert p.actions == [] and p.next_wake is None and p.idle


def test_human_tasks_and_tasks_for_people_are_never_dispatched() -> None:
    tasks = [task("h", kind=Kind.HUMAN, assignee="ceo"), task("w", assignee="ceo"),
             task("u", assignee=None)]
    p = plan(state(tasks), NOW)
    assert dispatched(p) == []


def test_an_offboarded_or_unknown_assignee_gets_nothing() -> None:
    tasks = [task("a", assignee="gone"), task("b", assignee="ghost")]
    p = plan(state(tasks, [emp("gone", status=EmployeeStatus.OFFBOARDED)]), NOW)
    assert dispatched(p) == []


# ------------------------------------------------------------------------------ order

def test_order_is_priority_then_age() -> None:
    tasks = [task("low-old", priority=0, age=500), task("high-new", priority=5, age=1),
             task("high-old", priority=5, age=100), task("mid", priority=2, age=50)]
    seen = []
    st_tasks = {t.id: t for t in tasks}
    for _ in range(4):  # concurrency 1: one dispatch per plan, in order
        p = plan(SchedState(st_tasks, {"eng-1": emp("eng-1")}, config()), NOW)
        (tid, _), = dispatched(p)
        seen.append(tid)
        st_tasks[tid] = st_tasks[tid].with_changes(status=S.FINISHED)
    assert seen == ["high-old", "high-new", "mid", "low-old"]


def test_with_many_slots_all_are_dispatched_in_order() -> None:
    tasks = [task("a", priority=1, age=1), task("b", priority=3), task("c", age=9)]
    p = plan(state(tasks, [emp("eng-1", concurrency=3)]), NOW)
    assert [t for t, _ in dispatched(p)] == ["b", "a", "c"]


# ---------------------------------------------------------------------------- routing

def test_role_routes_to_the_least_loaded_employee_of_that_role() -> None:
    staff = [emp("eng-1", concurrency=2), emp("eng-2", concurrency=2),
             emp("writer", role="writer", concurrency=5)]
    tasks = [task("busy", status=S.PROCESSING), task("r", assignee="role:engineer")]
    p = plan(state(tasks, staff, running=running(("busy", "eng-1"))), NOW)
    assert dispatched(p) == [("r", "eng-2")]


def test_role_routing_spreads_a_batch_over_the_role() -> None:
    staff = [emp("eng-1", concurrency=2), emp("eng-2", concurrency=2)]
    tasks = [task(f"r{i}", assignee="role:engineer", age=i) for i in range(4)]
    p = plan(state(tasks, staff), NOW)
    per = Counter(e for _, e in dispatched(p))
    assert per == {"eng-1": 2, "eng-2": 2}


def test_role_routing_skips_offboarded_employees_and_unknown_roles() -> None:
    staff = [emp("eng-1", status=EmployeeStatus.OFFBOARDED), emp("eng-2", concurrency=1)]
    tasks = [task("a", assignee="role:engineer"), task("b", assignee="role:astronaut")]
    p = plan(state(tasks, staff), NOW)
    assert dispatched(p) == [("a", "eng-2")]


def test_role_routing_passes_over_a_paused_or_full_employee() -> None:
    staff = [emp("eng-1", kind="script"), emp("eng-2", kind="claude")]
    tasks = [task("r", assignee="role:engineer")]
    p = plan(state(tasks, staff, breakers={SCRIPT: NOW + 60}), NOW)
    assert dispatched(p) == [("r", "eng-2")]
    staff = [emp("eng-1", concurrency=1), emp("eng-2", concurrency=4)]
    tasks = [task("busy", status=S.PROCESSING), task("r", assignee="role:engineer")]
    p = plan(state(tasks, staff, running=running(("busy", "eng-1"))), NOW)
    assert dispatched(p) == [("r", "eng-2")]


def test_held_elsewhere_counts_against_the_employee() -> None:
    p = plan(state([task("a"), task("b")], [emp("eng-1", concurrency=2)],
                   held_elsewhere={"eng-1": 1}), NOW)
    assert len(dispatched(p)) == 1


# ------------------------------------------------------------------------------- caps

def test_employee_concurrency_counts_running_tasks() -> None:
    tasks = [task("run", status=S.PROCESSING), task("a"), task("b")]
    p = plan(state(tasks, [emp("eng-1", concurrency=2)], running=running(("run", "eng-1"))), NOW)
    assert len(dispatched(p)) == 1


def test_max_agents_caps_the_total() -> None:
    staff = [emp(f"eng-{i}", concurrency=3) for i in range(3)]
    tasks = [task(f"t{i}", assignee=f"eng-{i % 3}") for i in range(9)]
    p = plan(state(tasks, staff, config=config(max_agents=4)), NOW)
    assert len(dispatched(p)) == 4
    p = plan(state(tasks, staff, config=config(max_agents=4), max_agents=2), NOW)
    assert len(dispatched(p)) == 2  # --max-agents overrides aoi.yaml


def test_stopping_dispatches_nothing() -> None:
    p = plan(state([task("a")], stopping=True), NOW)
    assert dispatched(p) == []


def test_an_open_breaker_blocks_only_its_backend() -> None:
    staff = [emp("eng-1"), emp("claude-1", kind="claude")]
    tasks = [task("s"), task("c", assignee="claude-1")]
    p = plan(state(tasks, staff, breakers={SCRIPT: NOW + 60}), NOW)
    assert dispatched(p) == [("c", "claude-1")]
    assert p.next_wake == pytest.approx(NOW + 60)
    after = plan(state(tasks, staff, breakers={SCRIPT: NOW + 60}), NOW + 61)
    assert ("s", "eng-1") in dispatched(after)


def test_a_task_over_its_budget_asks_for_more_instead_of_running() -> None:
    t = task("a", budget={"usd": 1.0}, cost={"usd": 1.0})
    p = plan(state([t]), NOW)
    assert dispatched(p) == []
    (ask,) = of(p, AskBudget)
    assert ask.task_id == "a" and ask.employee == "eng-1" and "budget" in ask.reason
    assert p.actions == [ask]  # a person is asked: not a deadlock
    under = plan(state([t.with_changes(cost={"usd": 0.99})]), NOW)
    assert dispatched(under) == [("a", "eng-1")]


def test_token_budget_and_daily_budget() -> None:
    t = task("a", cost={"input_tokens": 900, "output_tokens": 100})
    p = plan(state([t], [emp("eng-1", tokens_per_task=1000)]), NOW)
    assert dispatched(p) == [] and of(p, AskBudget)
    staff = [emp("eng-1", usd_per_day=5.0, concurrency=3)]
    tasks = [task("x"), task("y"), task("z")]
    p = plan(state(tasks, staff, spent_today={"eng-1": 5.0}), NOW)
    asks = of(p, AskBudget)
    assert dispatched(p) == []
    assert len(asks) == 1 and asks[0].reason.startswith("daily")  # one request per employee
    assert p.actions == asks  # the other two wait for the same answer: no deadlock
    # once the request is open, the others wait quietly: --until-idle may exit
    tasks[0] = tasks[0].with_changes(bookkeeping=Bookkeeping(budget_request="h"))
    h = task("h", kind=Kind.HUMAN, assignee="ceo")
    p = plan(state([*tasks, h], staff, spent_today={"eng-1": 5.0}), NOW)
    assert _failed_roots(p) == [] and dispatched(p) == []
    assert p.idle


def test_a_pending_budget_request_holds_the_task() -> None:
    t = task("a", budget={"usd": 1.0}, cost={"usd": 2.0},
             bookkeeping=Bookkeeping(budget_request="h-1"))
    h = task("h-1", kind=Kind.HUMAN, assignee="ceo")
    p = plan(state([t, h]), NOW)
    assert p.actions == []
    assert p.idle  # waiting on a person does not keep --until-idle alive


# -------------------------------------------------------------------- lifecycle moves

def test_reviewer_none_is_accepted_at_once_then_merged() -> None:
    p = plan(state([task("a", status=S.COMPLETED)]), NOW)
    assert of(p, Advance) == [Advance("a", S.ACCEPTED, "no reviewer: accepted at once"),
                              Advance("a", S.FINISHED, "merge its branch")]  # in this order
    p = plan(state([task("a", status=S.ACCEPTED)]), NOW)
    assert [(a.task_id, a.to) for a in of(p, Advance)] == [("a", S.FINISHED)]


def test_an_employee_reviewer_gets_a_review_once() -> None:
    staff = [emp("eng-1"), emp("coo", role="coo")]
    p = plan(state([task("a", status=S.COMPLETED, reviewer="coo")], staff), NOW)
    assert of(p, RequestReview) == [RequestReview("a", "coo")]
    open_review = task("r", kind=Kind.REVIEW, assignee="coo", subject="a")
    p = plan(state([task("a", status=S.COMPLETED, reviewer="coo",
                         bookkeeping=Bookkeeping(review_task="r")), open_review], staff), NOW)
    assert of(p, RequestReview) == []


def test_a_failed_task_is_retried_until_max_attempts_then_escalated() -> None:
    cfg = config(max_attempts=2)
    p = plan(state([task("a", status=S.FAILED, attempts=1)], config=cfg), NOW)
    assert [(a.task_id, a.to) for a in of(p, Advance)] == [("a", S.PENDING)]
    p = plan(state([task("a", status=S.FAILED, attempts=2)], config=cfg), NOW)
    assert [a.task_id for a in of(p, Escalate)] == ["a"]
    p = plan(state([task("a", status=S.FAILED, attempts=2, bookkeeping=Bookkeeping(escalation="h")),
                    task("h", kind=Kind.HUMAN, assignee="ceo")], config=cfg), NOW)
    assert p.actions == [] and p.idle


def test_waiting_completes_when_all_subtasks_finish_and_fails_on_a_cancelled_one() -> None:
    parent = task("p", status=S.WAITING)
    kids = [task("k1", parent="p", status=S.FINISHED), task("k2", parent="p", status=S.FINISHED)]
    p = plan(state([parent, *kids]), NOW)
    assert [(a.task_id, a.to) for a in of(p, Advance)] == [("p", S.COMPLETED)]
    kids[1] = kids[1].with_changes(status=S.CANCELLED)
    p = plan(state([parent, *kids]), NOW)
    assert [(a.task_id, a.to) for a in of(p, Advance)] == [("p", S.FAILED)]


# ------------------------------------------------------------------------- deadlock

def _failed_roots(p: Plan) -> list[str]:
    return [a.task_id for a in of(p, Advance) if a.to is S.FAILED]


def test_deadlock_fails_a_stuck_root() -> None:
    # a root waits on a subtask that depends on a cancelled task: nothing can ever run
    tasks = [task("root", status=S.WAITING), task("gone", status=S.CANCELLED, reviewer=None),
             task("kid", parent="root", depends_on=("gone",))]
    p = plan(state(tasks), NOW)
    assert dispatched(p) == []
    assert _failed_roots(p) == ["root"]
    assert "deadlock" in of(p, Advance)[0].reason


def test_deadlock_for_a_root_with_an_unroutable_assignee() -> None:
    p = plan(state([task("root", assignee="role:astronaut")]), NOW)
    assert _failed_roots(p) == ["root"]


@pytest.mark.parametrize("case", ["blocked", "human-task-pending", "human-reviewer",
                                  "escalated", "budget-request"])
def test_no_deadlock_while_a_person_is_asked(case: str) -> None:
    if case == "blocked":
        tasks = [task("root", status=S.WAITING),
                 task("kid", parent="root", status=S.BLOCKED,
                      bookkeeping=Bookkeeping(waiting_on="q")),
                 task("q", kind=Kind.HUMAN, assignee="ceo", parent="kid")]
    elif case == "human-task-pending":
        tasks = [task("root", status=S.WAITING),
                 task("kid", parent="root", depends_on=("q",)),
                 task("q", kind=Kind.HUMAN, assignee="ceo", parent="root")]
    elif case == "human-reviewer":
        tasks = [task("root", status=S.COMPLETED, reviewer="ceo")]
    elif case == "escalated":
        tasks = [task("root", status=S.FAILED, attempts=3, bookkeeping=Bookkeeping(escalation="h")),
                 task("h", kind=Kind.HUMAN, assignee="ceo")]
    else:
        tasks = [task("root", budget={"usd": 1}, cost={"usd": 1},
                      bookkeeping=Bookkeeping(budget_request="h")),
                 task("h", kind=Kind.HUMAN, assignee="ceo")]
    p = plan(state(tasks), NOW)
    assert _failed_roots(p) == []
    assert p.idle


def test_no_deadlock_while_something_runs_or_a_retry_is_due() -> None:
    tasks = [task("root", assignee="role:astronaut"), task("run", status=S.PROCESSING)]
    p = plan(state(tasks, running=running(("run", "eng-1"))), NOW)
    assert _failed_roots(p) == []
    tasks = [task("root", assignee="role:astronaut"), task("later", retry_at=iso(NOW + 5))]
    p = plan(state(tasks), NOW)
    assert _failed_roots(p) == []


# ----------------------------------------------------------- property: caps never exceeded

STATUSES = list(Status)


@st.composite
def random_states(draw: st.DrawFn) -> SchedState:
    n_emp = draw(st.integers(1, 4))
    kinds = ["script", "claude"]
    staff = [emp(f"e{i}", role=draw(st.sampled_from(["eng", "ops"])),
                 concurrency=draw(st.integers(1, 3)), kind=draw(st.sampled_from(kinds)),
                 status=draw(st.sampled_from(list(EmployeeStatus))),
                 usd_per_day=draw(st.sampled_from([None, 1.0])))
             for i in range(n_emp)]
    assignees = [e.id for e in staff] + ["role:eng", "role:ops", "ceo", "ghost"]
    n_tasks = draw(st.integers(0, 14))
    tasks: list[Task] = []
    for i in range(n_tasks):
        deps = tuple(draw(st.lists(st.sampled_from([t.id for t in tasks]), max_size=2,
                                   unique=True))) if tasks else ()
        tasks.append(task(
            f"t{i}", status=draw(st.sampled_from(STATUSES)),
            kind=draw(st.sampled_from([Kind.WORK, Kind.WORK, Kind.WORK, Kind.HUMAN])),
            assignee=draw(st.sampled_from(assignees)), depends_on=deps,
            priority=draw(st.integers(0, 3)), age=draw(st.integers(0, 100)),
            retry_at=draw(st.sampled_from([None, iso(NOW - 10), iso(NOW + 10)])),
            budget=draw(st.sampled_from([{}, {"usd": 1.0}])),
            cost=draw(st.sampled_from([{}, {"usd": 2.0}])),
        ))
    # some processing tasks are running on some employee
    run: dict[str, Running] = {}
    for t in tasks:
        if t.status is S.PROCESSING and draw(st.booleans()):
            e = draw(st.sampled_from(staff))
            run[t.id] = Running(t.id, e.id, e.backend.kind, NOW - 1)
    held = {e.id: draw(st.integers(0, 2)) for e in staff if draw(st.booleans())}
    return SchedState(
        tasks={t.id: t for t in tasks}, employees={e.id: e for e in staff},
        config=config(max_agents=draw(st.integers(1, 6))), running=run, held_elsewhere=held,
        spent_today={e.id: draw(st.sampled_from([0.0, 2.0])) for e in staff},
        breakers=draw(st.sampled_from([{}, {SCRIPT: NOW + 100}, {"claude: true": NOW - 1}])),
        max_agents=draw(st.sampled_from([None, 1, 3])),
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_states())
def test_caps_are_never_exceeded(s: SchedState) -> None:
    p = plan(s, NOW)
    ds = [a for a in p.actions if isinstance(a, Dispatch)]
    ids = [d.task_id for d in ds]
    assert len(ids) == len(set(ids)), "a task was dispatched twice"
    max_agents = s.max_agents if s.max_agents is not None else s.config.limits.max_agents
    assert len(ds) <= max(0, max_agents - len(s.running))
    per = Counter(d.employee for d in ds)
    for eid, n in per.items():
        e = s.employees[eid]
        load = sum(1 for r in s.running.values() if r.employee == eid) \
            + s.held_elsewhere.get(eid, 0)
        assert n <= max(0, e.capacity.concurrency - load), f"{eid} over its concurrency"
        assert e.status is not EmployeeStatus.OFFBOARDED
        assert s.breakers.get(e.backend.breaker_key, 0) <= NOW, "dispatched to a paused backend"
    for d in ds:
        t = s.tasks[d.task_id]
        assert t.status is S.PENDING and t.kind is not Kind.HUMAN
        assert d.task_id not in s.running
        assert all(s.tasks[x].status is S.FINISHED for x in t.depends_on)
        at = t.retry_at
        assert at is None or at <= iso(NOW)
        assert not (t.budget.get("usd") is not None
                    and t.cost.get("usd", 0) >= t.budget["usd"]), "over budget dispatched"
        a = t.assignee or ""
        assert a == d.employee or (a.startswith("role:")
                                   and s.employees[d.employee].role == a[5:])
    # no action twice for one task of the same kind (two moves of one task: to different
    # states, e.g. accepted then finished)
    keyed = Counter((type(a).__name__, getattr(a, "task_id", None), getattr(a, "to", None))
                    for a in p.actions)
    assert all(n == 1 for n in keyed.values())


# ------------------------------------------- breakers per command, holds, budgets, daily cap

def test_a_breaker_pauses_only_the_employees_running_the_same_command() -> None:
    bad = Employee(id="bad", role="engineer", reports_to="ceo",
                   backend=Backend(kind="script", command=("python", "bad.py")))
    good = Employee(id="good", role="engineer", reports_to="ceo",
                    backend=Backend(kind="script", command=("python", "good.py")))
    tasks = [task("a", assignee="bad"), task("b", assignee="good")]
    p = plan(state(tasks, [bad, good], breakers={"script: python bad.py": NOW + 60}), NOW)
    assert dispatched(p) == [("b", "good")]


def test_a_held_backend_neither_wakes_the_daemon_nor_deadlocks_its_work() -> None:
    staff = [emp("c-1", kind="claude")]
    p = plan(state([task("a", assignee="c-1")], staff,
                   breakers={"claude: true": math.inf}), NOW)
    assert dispatched(p) == [] and p.next_wake is None
    assert _failed_roots(p) == [] and p.idle


def test_a_task_stopped_at_its_budget_waits_for_the_person_then_runs_again() -> None:
    stopped = task("a", status=S.FAILED, budget={"usd": 1.0}, cost={"usd": 5.0},
                   bookkeeping=Bookkeeping(budget_request="h"))
    h = task("h", kind=Kind.HUMAN, assignee="ceo")
    p = plan(state([stopped, h]), NOW)
    assert p.actions == [] and p.idle  # no retry, no escalation, no deadlock
    answered = h.with_changes(status=S.FINISHED, answer="10")
    assert plan(state([stopped, answered]), NOW).actions == [ApplyDecision("h", "a")]
    # a budget raised in the task's file makes the open request moot
    raised = stopped.with_changes(budget={"usd": 10.0})
    assert plan(state([raised, h]), NOW).actions == [ApplyDecision("h", "a")]


def test_the_organisations_daily_cap_stops_new_agents_without_a_deadlock() -> None:
    staff = [emp("eng-1", concurrency=3)]
    tasks = [task("a"), task("b")]
    capped = config(usd_per_day=5.0)
    p = plan(state(tasks, staff, config=capped, spent_today={"eng-1": 5.0}), NOW)
    assert dispatched(p) == [] and _failed_roots(p) == [] and p.idle
    p = plan(state(tasks, staff, config=capped, spent_today={"eng-1": 4.0}), NOW)
    assert len(dispatched(p)) == 2
