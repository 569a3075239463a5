"""`LiveSet`: the daemon hands the planner only the open tasks and the subtask links, so a
plan in an org of 100k finished tasks costs O(open tasks). The plan must be the same."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_scheduler import NOW, config, emp, iso, task

from aoi_git.domain.bookkeeping import Bookkeeping
from aoi_git.domain.model import Kind, Status, Task
from aoi_git.runtime.scheduler import Dispatch, LiveSet, Plan, Running, SchedState, plan

pytestmark = pytest.mark.timeout(120)

S = Status


@st.composite
def forests(draw: st.DrawFn) -> SchedState:
    staff = [emp("e0"), emp("e1", role="ops", concurrency=2)]
    n = draw(st.integers(0, 16))
    tasks: list[Task] = []
    for i in range(n):
        earlier = [t.id for t in tasks]
        parent = draw(st.sampled_from([None, *earlier])) if earlier else None
        deps = tuple(draw(st.lists(st.sampled_from(earlier), max_size=2, unique=True))) \
            if earlier else ()
        book = draw(st.sampled_from([
            Bookkeeping(), Bookkeeping(escalation="t0"), Bookkeeping(waiting_on="t1"),
            Bookkeeping(budget_request="t2"), Bookkeeping(review_task="t3")]))
        tasks.append(task(
            f"t{i}", status=draw(st.sampled_from([*Status, S.PENDING, S.PENDING])),
            parent=parent, priority=draw(st.integers(0, 2)), age=draw(st.integers(0, 3)),
            review_rounds=draw(st.sampled_from([0, 0, 1, 3])),
            budget=draw(st.sampled_from([{}, {}, {"usd": 1.0}])),
            cost=draw(st.sampled_from([{}, {"usd": 2.0}])),
            kind=draw(st.sampled_from([Kind.WORK, Kind.WORK, Kind.HUMAN, Kind.REVIEW])),
            assignee=draw(st.sampled_from(["e0", "e1", "role:ops", "ceo", None])),
            reviewer=draw(st.sampled_from(["none", "e0", "ceo", None])),
            depends_on=deps, bookkeeping=book, attempts=draw(st.integers(0, 3)),
            retry_at=draw(st.sampled_from([None, None, iso(NOW + 10), iso(NOW - 10)])),
        ))
    run = {t.id: Running(t.id, "e0", "script", NOW - 1) for t in tasks
           if t.status is S.PROCESSING and draw(st.booleans())}
    return SchedState(tasks={t.id: t for t in tasks}, employees={e.id: e for e in staff},
                      config=config(max_agents=draw(st.integers(1, 4)),
                                    max_review_rounds=draw(st.sampled_from([3, 1, 0]))),
                      running=run, stopping=draw(st.booleans()) and draw(st.booleans()),
                      breakers=draw(st.sampled_from([{}, {"script": NOW + 5},
                                                     {"script: true": NOW + 5}])))


def _fast(s: SchedState, live: LiveSet) -> SchedState:
    return dataclasses.replace(s, live=live.live, children=live.children, queue=live.queue)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(forests())
def test_a_plan_on_the_live_set_is_the_plan_on_all_tasks(s: SchedState) -> None:
    live = LiveSet(s.tasks)
    _same(plan(_fast(s, live), NOW), plan(s, NOW))
    # a queue without the live set is ignored: every task is looked at once
    _same(plan(dataclasses.replace(s, queue=live.queue), NOW), plan(s, NOW))


def _same(fast: Plan, slow: Plan) -> None:
    """The same plan: the same actions (dispatches in the same order; the other moves may
    come in another order, queued tasks being looked at after the rest) and wake-up."""
    assert sorted(map(repr, fast.actions)) == sorted(map(repr, slow.actions))
    assert [a for a in fast.actions if isinstance(a, Dispatch)] == \
        [a for a in slow.actions if isinstance(a, Dispatch)]
    assert (fast.next_wake, fast.idle) == (slow.next_wake, slow.idle)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(forests(), st.data())
def test_updates_one_task_at_a_time_match_a_rebuild(s: SchedState, data: st.DataObject) -> None:
    tasks = dict(s.tasks)
    live = LiveSet(tasks)
    ids = list(tasks)
    for _ in range(data.draw(st.integers(0, 10))):
        if not ids:
            break
        tid = data.draw(st.sampled_from(ids))
        changed = tasks[tid].with_changes(
            status=data.draw(st.sampled_from(list(Status))),
            parent=data.draw(st.sampled_from([None, *[i for i in ids if i != tid]])),
            priority=data.draw(st.integers(0, 2)),
            review_rounds=data.draw(st.sampled_from([0, 1])))
        tasks[tid] = changed
        live.update(changed)
    fresh = LiveSet(tasks)
    assert set(live.live) == set(fresh.live)
    assert list(live.queue) == list(fresh.queue)
    assert {p: set(c) for p, c in live.children.items() if c} == \
        {p: set(c) for p, c in fresh.children.items() if c}
    fast = _fast(dataclasses.replace(s, tasks=tasks), live)
    slow = dataclasses.replace(s, tasks=tasks)
    _same(plan(fast, NOW), plan(slow, NOW))


def test_a_long_queue_is_read_only_as_far_as_the_free_slots_need() -> None:
    """The queue is read lazily: with one free slot, a plan looks at the first queued tasks
    (one, and the next one it finds no slot for), not at all 5,000."""
    tasks = {t.id: t for t in (task(f"q{i:04d}", age=i) for i in range(5000))}
    live = LiveSet(tasks)
    assert not live.live and len(list(live.queue)) == 5000
    read: list[str] = []

    class Counted(list[str]):
        def __iter__(self) -> Iterator[str]:
            for tid in live.queue:
                read.append(tid)
                yield tid

    s = SchedState(tasks=tasks, employees={"eng-1": emp("eng-1")}, config=config(max_agents=1),
                   live=live.live, children=live.children, queue=Counted(live.queue))
    p = plan(s, NOW)
    assert [a.task_id for a in p.actions] == ["q4999"]  # the oldest
    assert read == ["q4999", "q4998"]
    assert plan(dataclasses.replace(s, live=None, children=None, queue=None), NOW) == p
