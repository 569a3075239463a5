"""A plan ends on any task map, also one whose parent links form a cycle (a hand-edited
org can hold one until `aoi validate` refuses it): the deadlock search visits each task
of a subtree once."""

from __future__ import annotations

import dataclasses

import pytest
from test_scheduler import NOW, state, task

from aoi_git.domain.model import Status, Task
from aoi_git.runtime.scheduler import Advance, LiveSet, plan

pytestmark = pytest.mark.timeout(60)


def _stuck_on_a_cycle() -> list[Task]:
    # r waits on a; a and b are each other's parent, and no one is assigned to them
    return [task("r", depends_on=("a",)),
            task("a", parent="b", assignee=None), task("b", parent="a", assignee=None)]


def test_a_project_waiting_on_a_parent_cycle_is_failed_as_deadlocked() -> None:
    p = plan(state(_stuck_on_a_cycle()), NOW)
    assert [(a.task_id, a.to) for a in p.actions if isinstance(a, Advance)] == \
        [("r", Status.FAILED)]


def test_the_live_set_plans_the_same_on_a_parent_cycle() -> None:
    s = state(_stuck_on_a_cycle())
    live = LiveSet(s.tasks)
    fast = dataclasses.replace(s, live=live.live, children=live.children, queue=live.queue)
    assert plan(fast, NOW) == plan(s, NOW)
