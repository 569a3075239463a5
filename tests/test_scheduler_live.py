"""`LiveSet`: the daemon hands the planner only the open tasks and the subtask links, so a
plan in an org of 100k finished tasks costs O(open tasks). The plan must be the same."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_scheduler import NOW, config, emp, iso, task

from aoi_git.model import Kind, Status, Task
from aoi_git.scheduler import LiveSet, Running, SchedState, plan

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
        extra = draw(st.sampled_from([{}, {"escalation": "t0"}, {"waiting_on": "t1"},
                                      {"budget_request": "t2"}, {"review_task": "t3"}]))
        tasks.append(task(
            f"t{i}", status=draw(st.sampled_from(list(Status))), parent=parent,
            kind=draw(st.sampled_from([Kind.WORK, Kind.WORK, Kind.HUMAN, Kind.REVIEW])),
            assignee=draw(st.sampled_from(["e0", "e1", "role:ops", "ceo", None])),
            reviewer=draw(st.sampled_from(["none", "e0", "ceo", None])),
            depends_on=deps, extra=extra, attempts=draw(st.integers(0, 3)),
            retry_at=draw(st.sampled_from([None, iso(NOW + 10)])),
        ))
    run = {t.id: Running(t.id, "e0", "script", NOW - 1) for t in tasks
           if t.status is S.PROCESSING and draw(st.booleans())}
    return SchedState(tasks={t.id: t for t in tasks}, employees={e.id: e for e in staff},
                      config=config(max_agents=draw(st.integers(1, 4))), running=run)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(forests())
def test_a_plan_on_the_live_set_is_the_plan_on_all_tasks(s: SchedState) -> None:
    live = LiveSet(s.tasks)
    fast = dataclasses.replace(s, live=live.live, children=live.children)
    assert plan(fast, NOW) == plan(s, NOW)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
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
            parent=data.draw(st.sampled_from([None, *[i for i in ids if i != tid]])))
        tasks[tid] = changed
        live.update(changed)
    fresh = LiveSet(tasks)
    assert set(live.live) == set(fresh.live)
    assert {p: set(c) for p, c in live.children.items() if c} == \
        {p: set(c) for p, c in fresh.children.items() if c}
    fast = dataclasses.replace(s, tasks=tasks, live=live.live, children=live.children)
    slow = dataclasses.replace(s, tasks=tasks)
    assert sorted(map(repr, plan(fast, NOW).actions)) == sorted(map(repr, plan(slow, NOW).actions))
