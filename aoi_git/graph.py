"""The task graph: cycle detection (naming the cycle), children, dependents, roots."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from aoi_git.model import Task


def find_cycle(edges: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A cycle in a directed graph as `[a, b, a]`, or None. Iterative (no recursion limit)."""
    WHITE, GREY, BLACK = 0, 1, 2
    color: dict[str, int] = {}
    for start in sorted(edges):
        if color.get(start, WHITE) != WHITE:
            continue
        stack: list[tuple[str, list[str]]] = [(start, sorted(edges.get(start, ())))]
        path = [start]
        color[start] = GREY
        while stack:
            node, todo = stack[-1]
            if not todo:
                stack.pop()
                path.pop()
                color[node] = BLACK
                continue
            nxt = todo.pop()
            c = color.get(nxt, WHITE)
            if c == GREY:
                return path[path.index(nxt):] + [nxt]
            if c == WHITE and nxt in edges:
                color[nxt] = GREY
                path.append(nxt)
                stack.append((nxt, sorted(edges.get(nxt, ()))))
            elif c == WHITE:
                color[nxt] = BLACK
    return None


def dependency_edges(tasks: Mapping[str, Task]) -> dict[str, tuple[str, ...]]:
    return {tid: t.depends_on for tid, t in tasks.items()}


def would_cycle(
    tasks: Mapping[str, Task], task_id: str, new_deps: Iterable[str]
) -> list[str] | None:
    edges: dict[str, tuple[str, ...]] = dependency_edges(tasks)
    edges[task_id] = tuple(dict.fromkeys([*edges.get(task_id, ()), *new_deps]))
    return find_cycle(edges)


def children(tasks: Mapping[str, Task]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for t in tasks.values():
        if t.parent:
            out.setdefault(t.parent, []).append(t.id)
    return out


def dependents(tasks: Mapping[str, Task]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for t in tasks.values():
        for d in t.depends_on:
            out.setdefault(d, []).append(t.id)
    return out


def root_of(tasks: Mapping[str, Task], task_id: str) -> str:
    seen = set()
    cur = task_id
    while True:
        t = tasks.get(cur)
        if t is None or not t.parent or t.parent in seen or t.parent not in tasks:
            return cur
        seen.add(cur)
        cur = t.parent


def descendants(tasks: Mapping[str, Task], task_id: str) -> list[str]:
    """Transitive subtasks and dependents of a task (for cancellation cascades)."""
    kids, deps = children(tasks), dependents(tasks)
    out: list[str] = []
    seen = {task_id}
    stack = [task_id]
    while stack:
        cur = stack.pop()
        for nxt in kids.get(cur, []) + deps.get(cur, []):
            if nxt not in seen:
                seen.add(nxt)
                out.append(nxt)
                stack.append(nxt)
    return out
