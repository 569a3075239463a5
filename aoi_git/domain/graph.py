"""The task graph: cycle detection (naming the cycle), children, dependents, roots, and
`TaskLinks`, the links a long-running process keeps up to date instead of rescanning."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from aoi_git.domain.model import Kind, Status, Task
from aoi_git.domain.task_rows import TaskMap


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
    """The cycle `task_id` depending on `new_deps` would close, or None. A cycle it closes
    goes through it, so only the tasks it reaches are read, not the whole org."""
    own = tasks[task_id].depends_on if task_id in tasks else ()
    edges: dict[str, tuple[str, ...]] = {task_id: tuple(dict.fromkeys([*own, *new_deps]))}
    stack = list(edges[task_id])
    while stack:
        tid = stack.pop()
        if tid in edges:
            continue
        found = tasks.get(tid)
        edges[tid] = found.depends_on if found is not None else ()
        stack.extend(edges[tid])
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


def oldest_first(tasks: Mapping[str, Task], ids: Iterable[str]) -> list[str]:
    """`ids` in order of creation, then of id (one without `created` first)."""
    return sorted(ids, key=lambda i: (tasks[i].created or "", i))


def is_root(task: Task) -> bool:
    """A project: a work task without a parent."""
    return task.parent is None and task.kind is Kind.WORK


def about_refs(task: Task) -> tuple[str, ...]:
    """The tasks this one is about (a review's subject, a person's decision's task)."""
    refs = (task.subject, task.bookkeeping.about)
    return tuple(dict.fromkeys(r for r in refs if isinstance(r, str) and r))


class TaskLinks:
    """Subtasks, "about" links and projects of a task map, updated one written task at a
    time, so questions about one project cost its size, not the org's."""

    def __init__(self, tasks: Mapping[str, Task]) -> None:
        self.children: dict[str, dict[str, None]] = {}  # parent -> subtasks
        self.about: dict[str, dict[str, None]] = {}  # task -> tasks about it
        self.roots: dict[str, None] = {}  # projects
        self.finished_roots: dict[str, None] = {}  # projects whose root is finished
        self.finished_log: list[str] = []  # roots in the order they became finished
        self._parent: dict[str, str] = {}
        self._refs: dict[str, tuple[str, ...]] = {}
        if isinstance(tasks, TaskMap):  # its rows hold the links: no finished task parsed
            self._from_rows(tasks.rows.links())
            return
        for t in tasks.values():
            self.update(t)

    def _from_rows(self, links: Iterable[tuple[str, str | None, tuple[str, ...], bool, bool]]
                   ) -> None:
        """The links of every row at once, as `_set` would leave them one by one on empty
        maps (each id once): at 100k rows, a third of the time."""
        children, about, parent_of, refs_of = self.children, self.about, self._parent, self._refs
        roots, finished_roots, log = self.roots, self.finished_roots, self.finished_log
        for tid, parent, refs, root, finished in links:
            if parent:
                kids = children.get(parent)
                if kids is None:
                    children[parent] = kids = {}
                kids[tid] = None
                parent_of[tid] = parent
            if refs:
                for r in refs:
                    about.setdefault(r, {})[tid] = None
                refs_of[tid] = refs
            if root:
                roots[tid] = None
                if finished:
                    finished_roots[tid] = None
                    log.append(tid)

    def update(self, task: Task) -> None:
        self._set(task.id, task.parent, about_refs(task), is_root(task),
                  task.status is Status.FINISHED)

    def _set(self, tid: str, parent: str | None, refs: tuple[str, ...], root: bool,
             finished: bool) -> None:
        old = self._parent.get(tid)
        if old != parent:
            if old is not None:
                self.children.get(old, {}).pop(tid, None)
                del self._parent[tid]
            if parent:
                self.children.setdefault(parent, {})[tid] = None
                self._parent[tid] = parent
        old_refs = self._refs.get(tid, ())
        if refs != old_refs:
            for r in old_refs:
                self.about.get(r, {}).pop(tid, None)
            for r in refs:
                self.about.setdefault(r, {})[tid] = None
            if refs:
                self._refs[tid] = refs
            else:
                self._refs.pop(tid, None)
        if root:
            self.roots[tid] = None
        else:
            self.roots.pop(tid, None)
        if root and finished:
            if tid not in self.finished_roots:
                self.finished_roots[tid] = None
                self.finished_log.append(tid)
        else:
            self.finished_roots.pop(tid, None)

    def members(self, tasks: Mapping[str, Task], roots: Iterable[str]) -> dict[str, str]:
        """task id -> its root, for the subtrees of `roots` and the tasks about them."""
        out: dict[str, str] = {}
        for root in roots:
            stack = [root]
            while stack:
                tid = stack.pop()
                if tid in out or tid not in tasks:
                    continue
                out[tid] = root
                stack += self.children.get(tid, ())
                stack += self.about.get(tid, ())
        return out
