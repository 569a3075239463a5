"""Preemption and resumption in the pure scheduler (issue 16, point 2): `plan(state, now)`
on records built in memory, and the rule of `aoi_git.domain.preemption` alone."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_scheduler import NOW, config, dispatched, emp, of, running, state, task

from aoi_git.domain import preemption
from aoi_git.domain.bookkeeping import Bookkeeping
from aoi_git.domain.model import OrgConfig, Status
from aoi_git.runtime.scheduler import Advance, SchedState, Suspend, plan

S = Status
GAP = 50


def gap_config(gap: int | None = GAP, **limits: int) -> OrgConfig:
    return replace(config(**limits), preempt_gap=gap)


def suspended(p: object) -> list[tuple[str, str]]:
    return [(a.task_id, a.for_task) for a in of(p, Suspend)]  # type: ignore[arg-type]


def full(*, gap: int | None = GAP, waiting: int = 100, **limits: int) -> SchedState:
    """eng-1 runs `low` (priority 0, its one slot, the one agent) while `urgent` waits."""
    limits.setdefault("max_agents", 1)
    return state([task("low", status=S.PROCESSING, priority=0),
                  task("urgent", priority=waiting)],
                 config=gap_config(gap, **limits), running=running(("low", "eng-1")))


def test_preemption_is_off_by_default() -> None:
    assert config().preempt_gap is None
    assert suspended(plan(full(gap=None), NOW)) == []


def test_a_task_that_outranks_a_running_one_by_the_gap_suspends_it() -> None:
    p = plan(full(), NOW)
    assert suspended(p) == [("low", "urgent")]
    assert dispatched(p) == []  # it starts once the suspended run has left its slot
    (a,) = of(p, Suspend)
    assert "preempted by urgent" in a.reason


@pytest.mark.parametrize("waiting", [49, 0, -5])
def test_less_than_the_gap_waits(waiting: int) -> None:
    assert suspended(plan(full(waiting=waiting), NOW)) == []


def test_a_run_already_being_stopped_is_not_joined_by_a_second_suspension() -> None:
    st_ = full()
    tasks = dict(st_.tasks)
    tasks["low"] = tasks["low"].with_changes(
        status=S.SUSPENDED, bookkeeping=Bookkeeping(preempted_by="urgent"))
    assert suspended(plan(replace(st_, tasks=tasks), NOW)) == []


def test_the_lowest_priority_then_the_youngest_run_is_taken() -> None:
    tasks = [task("old0", status=S.PROCESSING, priority=0, age=300),
             task("young0", status=S.PROCESSING, priority=0, age=10),
             task("ten", status=S.PROCESSING, priority=10, age=5),
             task("urgent", priority=100, assignee="eng-4")]
    st_ = state(tasks, [emp("eng-1"), emp("eng-2"), emp("eng-3"), emp("eng-4")],
                config=gap_config(max_agents=3),
                running=running(("old0", "eng-1"), ("young0", "eng-2"), ("ten", "eng-3")))
    assert suspended(plan(st_, NOW)) == [("young0", "urgent")]


def test_a_waiter_whose_employee_is_full_takes_that_employees_run() -> None:
    tasks = [task("mine", status=S.PROCESSING, priority=20, assignee="eng-1"),
             task("theirs", status=S.PROCESSING, priority=0, assignee="eng-2"),
             task("urgent", priority=100, assignee="eng-1")]
    st_ = state(tasks, [emp("eng-1"), emp("eng-2")], config=gap_config(max_agents=8),
                running=running(("mine", "eng-1"), ("theirs", "eng-2")))
    assert suspended(plan(st_, NOW)) == [("mine", "urgent")]


def test_one_run_each_for_as_many_waiters_as_there_are_victims() -> None:
    tasks = [task("a", status=S.PROCESSING, priority=0), task("b", status=S.PROCESSING,
                                                              priority=0, assignee="eng-2"),
             task("u1", priority=100, age=20, assignee="role:engineer"),
             task("u2", priority=90, age=10, assignee="role:engineer"),
             task("u3", priority=80, assignee="role:engineer")]
    st_ = state(tasks, [emp("eng-1"), emp("eng-2")], config=gap_config(max_agents=2),
                running=running(("a", "eng-1"), ("b", "eng-2")))
    got = suspended(plan(st_, NOW))
    assert sorted(v for v, _ in got) == ["a", "b"] and [w for _, w in got] == ["u1", "u2"]


def test_a_preempted_task_resumes_when_a_slot_is_free_and_goes_to_the_same_employee() -> None:
    book = Bookkeeping(preempted_by="urgent", resuming=True, routed_to="eng-2")
    tasks = [task("low", status=S.SUSPENDED, assignee="role:engineer", bookkeeping=book),
             task("urgent", status=S.FINISHED)]
    st_ = state(tasks, [emp("eng-1"), emp("eng-2")], config=gap_config())
    assert dispatched(plan(st_, NOW)) == [("low", "eng-2")]


def test_the_two_do_not_take_turns_suspending_each_other() -> None:
    tasks = [task("urgent", status=S.PROCESSING, priority=100),
             task("low", status=S.SUSPENDED, priority=0,
                  bookkeeping=Bookkeeping(preempted_by="urgent", resuming=True))]
    p = plan(state(tasks, config=gap_config(max_agents=1),
                   running=running(("urgent", "eng-1"))), NOW)
    assert suspended(p) == [] and dispatched(p) == []


def test_a_task_a_person_paused_waits_for_them_and_is_no_deadlock() -> None:
    tasks = [task("paused", status=S.SUSPENDED, bookkeeping=Bookkeeping(resuming=True))]
    p = plan(state(tasks, config=gap_config()), NOW)
    assert dispatched(p) == [] and of(p, Advance) == [] and p.idle


def test_no_preemption_during_a_warm_stop() -> None:
    assert suspended(plan(replace(full(), stopping=True), NOW)) == []


def test_preempt_gap_is_read_from_aoi_yaml_and_checked() -> None:
    assert OrgConfig.from_dict({"scheduling": {"preempt": {"min_priority_gap": 50}}}) \
        .preempt_gap == 50
    assert OrgConfig.from_dict({"scheduling": {"preempt": None}}).preempt_gap is None
    with pytest.raises(ValueError, match="min_priority_gap"):
        OrgConfig.from_dict({"scheduling": {"preempt": {"min_priority_gap": 0}}})


holders = st.lists(st.tuples(st.integers(-100, 100), st.sampled_from(["e1", "e2", "e3"]),
                             st.booleans()), max_size=6)
waiters = st.lists(st.tuples(st.integers(-100, 200), st.sampled_from(["e1", "e2", "e3"]),
                             st.booleans()), max_size=6)


@settings(max_examples=300, deadline=None)
@given(holders, waiters, st.integers(1, 120), st.booleans())
def test_choose_never_takes_a_run_twice_nor_one_the_gap_does_not_allow(
        hs: list[tuple[int, str, bool]], ws: list[tuple[int, str, bool]], gap: int,
        global_full: bool) -> None:
    held = [preemption.Holder(f"h{i}", e, p, f"2025-01-{i + 1:02d}", leaving)
            for i, (p, e, leaving) in enumerate(hs)]
    waiting = [preemption.Waiter(f"w{i}", frozenset({e}), p, e_full)
               for i, (p, e, e_full) in enumerate(ws)]
    out = preemption.choose(waiting, held, gap, global_full)
    by_id = {h.task_id: h for h in held}
    waiter = {w.task_id: w for w in waiting}
    assert len({p.victim for p in out}) == len(out) and len({p.for_task for p in out}) == len(out)
    for p in out:
        h, w = by_id[p.victim], waiter[p.for_task]
        assert not h.leaving and w.priority - h.priority >= gap
        assert w.employee_full or global_full
        if w.employee_full:
            assert h.employee in w.employees
    assert len(out) + sum(h.leaving for h in held) <= len(held)
