"""The task graph: cycles are found and named, cascades reach every transitive task."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from hypothesis import given, settings
from hypothesis import strategies as st

from aoi_git.domain.bookkeeping import Bookkeeping
from aoi_git.domain.graph import (
    TaskLinks,
    children,
    dependents,
    descendants,
    find_cycle,
    is_root,
    root_of,
    would_cycle,
)
from aoi_git.domain.ids import shard_path
from aoi_git.domain.model import Kind, Status, Task
from aoi_git.domain.task_rows import TaskMap, TaskRows, row_of

NODES = [f"n{i}" for i in range(7)]


def reachable(edges: Mapping[str, Iterable[str]], start: str) -> set[str]:
    """Nodes reachable from `start` by one or more edges (plain DFS)."""
    seen: set[str] = set()
    stack = list(edges.get(start, ()))
    while stack:
        cur = stack.pop()
        if cur in seen:
            continue
        seen.add(cur)
        stack.extend(edges.get(cur, ()))
    return seen


def has_cycle(edges: Mapping[str, Iterable[str]]) -> bool:
    return any(n in reachable(edges, n) for n in edges)


def assert_real_cycle(edges: Mapping[str, Iterable[str]], cycle: list[str]) -> None:
    assert len(cycle) >= 2
    assert cycle[0] == cycle[-1]
    assert len(set(cycle[:-1])) == len(cycle) - 1, "a simple cycle visits each node once"
    for a, b in zip(cycle, cycle[1:], strict=False):
        assert b in set(edges.get(a, ())), f"{a} -> {b} is not an edge"


digraphs = st.dictionaries(
    st.sampled_from(NODES), st.lists(st.sampled_from(NODES), max_size=4), max_size=len(NODES)
)


@settings(max_examples=600, deadline=None)
@given(edges=digraphs)
def test_find_cycle_agrees_with_brute_force(edges: dict[str, list[str]]) -> None:
    cycle = find_cycle(edges)
    if has_cycle(edges):
        assert cycle is not None
        assert_real_cycle(edges, cycle)
    else:
        assert cycle is None


@settings(max_examples=200, deadline=None)
@given(edges=digraphs, a=st.sampled_from(NODES), b=st.sampled_from(NODES))
def test_adding_an_edge_back_along_a_path_makes_a_cycle(
    edges: dict[str, list[str]], a: str, b: str
) -> None:
    if b in reachable(edges, a) or a == b:
        closed = {**edges, b: [*edges.get(b, []), a]}
        cycle = find_cycle(closed)
        assert cycle is not None
        assert_real_cycle(closed, cycle)


def test_named_cycles() -> None:
    assert find_cycle({"a": ["b"], "b": ["a"]}) == ["a", "b", "a"]
    assert find_cycle({"a": ["a"]}) == ["a", "a"]
    assert find_cycle({"a": ["b"], "b": ["c"], "c": []}) is None
    assert find_cycle({}) is None
    assert find_cycle({"a": ["missing"]}) is None


def test_long_chain_does_not_hit_the_recursion_limit() -> None:
    n = 20000
    edges = {f"t{i}": [f"t{i + 1}"] for i in range(n)}
    assert find_cycle(edges) is None
    edges[f"t{n}"] = ["t0"]
    cycle = find_cycle(edges)
    assert cycle is not None and len(cycle) == n + 2


def _task(tid: str, parent: str | None = None, deps: Iterable[str] = ()) -> Task:
    return Task(id=tid, title=tid, parent=parent, depends_on=tuple(deps))


def test_would_cycle_refuses_a_closing_edge() -> None:
    tasks = {"aa": _task("aa"), "bb": _task("bb", deps=["aa"])}
    assert would_cycle(tasks, "aa", ["bb"]) == ["aa", "bb", "aa"]
    assert would_cycle(tasks, "cc", ["aa", "bb"]) is None


def test_descendants_cover_subtasks_and_dependents_transitively() -> None:
    tasks = {
        "root": _task("root"),
        "kid": _task("kid", parent="root"),
        "grandkid": _task("grandkid", parent="kid"),
        "after-kid": _task("after-kid", deps=["kid"]),  # in another branch of the tree
        "after-that": _task("after-that", parent="other", deps=["after-kid"]),
        "other": _task("other"),
        "unrelated": _task("unrelated", deps=["other"]),
    }
    got = descendants(tasks, "root")
    assert sorted(got) == ["after-kid", "after-that", "grandkid", "kid"]
    assert len(got) == len(set(got))
    assert descendants(tasks, "unrelated") == []
    assert root_of(tasks, "grandkid") == "root"
    assert sorted(children(tasks)["root"]) == ["kid"]
    assert dependents(tasks)["kid"] == ["after-kid"]


task_graphs = st.lists(
    st.tuples(st.sampled_from(NODES), st.one_of(st.none(), st.sampled_from(NODES)),
              st.lists(st.sampled_from(NODES), max_size=3)),
    max_size=len(NODES),
    unique_by=lambda t: t[0],
)


@settings(max_examples=300, deadline=None)
@given(spec=task_graphs, start=st.sampled_from(NODES))
def test_descendants_match_brute_force(
    spec: list[tuple[str, str | None, list[str]]], start: str
) -> None:
    tasks = {tid: _task(tid, parent, deps) for tid, parent, deps in spec}
    # edge x -> y when y is a subtask of x or depends on x
    down: dict[str, list[str]] = {}
    for t in tasks.values():
        if t.parent:
            down.setdefault(t.parent, []).append(t.id)
        for d in t.depends_on:
            down.setdefault(d, []).append(t.id)
    expected = reachable(down, start) - {start}
    got = descendants(tasks, start)
    assert set(got) == expected
    assert len(got) == len(set(got))


def _linked(tid: str, parent: str | None, subject: str | None, about: str | None,
            kind: Kind, status: Status = Status.PENDING) -> Task:
    return Task(id=tid, title=tid, parent=parent, subject=subject, kind=kind, status=status,
                bookkeeping=Bookkeeping(about=about))


linked_tasks = st.tuples(
    st.sampled_from(NODES), st.one_of(st.none(), st.sampled_from(NODES)),
    st.one_of(st.none(), st.sampled_from(NODES)), st.one_of(st.none(), st.sampled_from(NODES)),
    st.sampled_from([Kind.WORK, Kind.REVIEW, Kind.HUMAN]),
    st.sampled_from([Status.PENDING, Status.FINISHED, Status.CANCELLED]))


def members_by_scan(tasks: Mapping[str, Task], roots: Iterable[str]) -> dict[str, str]:
    """Reference: subtrees of `roots` plus the tasks about their members, by a full scan."""
    out: dict[str, str] = {}
    for root in roots:
        stack = [root]
        while stack:
            tid = stack.pop()
            if tid in out or tid not in tasks:
                continue
            out[tid] = root
            stack += [t.id for t in tasks.values()
                      if t.parent == tid or tid in (t.subject, t.bookkeeping.about)]
    return out


@settings(max_examples=300, deadline=None)
@given(first=st.lists(linked_tasks, max_size=len(NODES), unique_by=lambda t: t[0]),
       edits=st.lists(linked_tasks, max_size=10))
def test_task_links_updated_one_task_at_a_time_match_a_scan(
    first: list[tuple[str, str | None, str | None, str | None, Kind, Status]],
    edits: list[tuple[str, str | None, str | None, str | None, Kind, Status]],
) -> None:
    """The daemon keeps one `TaskLinks` and updates it per written task (a parent, subject
    or `about` changed, a task added); it must always say what a scan of all tasks says."""
    tasks = {spec[0]: _linked(*spec) for spec in first}
    links = TaskLinks(tasks)
    for spec in edits:
        tasks[spec[0]] = _linked(*spec)
        links.update(tasks[spec[0]])
    assert set(links.roots) == {t.id for t in tasks.values() if is_root(t)}
    assert set(links.finished_roots) == {t.id for t in tasks.values()
                                         if is_root(t) and t.status is Status.FINISHED}
    fresh = TaskLinks(tasks)
    rows = TaskRows()
    for t in tasks.values():
        rows.put(row_of(t, shard_path(t.id), ""))
    from_rows = TaskLinks(TaskMap(rows, {}, lambda row: tasks[row.id]))  # (the daemon's)
    for other in (fresh, from_rows):
        for got, want in ((links.children, other.children), (links.about, other.about)):
            assert {k: set(v) for k, v in got.items() if v} == \
                {k: set(v) for k, v in want.items() if v}
        assert set(other.roots) == set(links.roots)
        assert set(other.finished_roots) == set(links.finished_roots)
    assert from_rows._parent == fresh._parent and from_rows._refs == fresh._refs
    roots = sorted(links.roots)
    assert links.members(tasks, roots) == members_by_scan(tasks, roots)
