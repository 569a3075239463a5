"""Validation shared by every entry point: `aoi validate`, the daemon, the git hooks.

A problem is one line, `path:line: message`. Checks: the JSON Schema (unknown keys
refused), references (assignee, reviewer, parent, depends_on), the dependency DAG (a cycle
is named `a -> b -> a`), and each status change against the previous committed version
for the actor who made it, and a review decision (completed -> accepted or pending) for
the authority of who made it (`aoi_git.domain.lifecycle.review_authority`).
"""

from __future__ import annotations

import functools
import itertools
import json
import re
from collections import ChainMap
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from aoi_git.domain.graph import find_cycle
from aoi_git.domain.ids import is_valid_id
from aoi_git.domain.lifecycle import check_transition, review_authority, reviewer_of
from aoi_git.domain.model import (
    BAD_VALUE,
    Actor,
    ActorKind,
    Employee,
    Kind,
    OrgConfig,
    Status,
    Task,
)
from aoi_git.domain.org_paths import SCHEMA_FOR, is_task_path
from aoi_git.domain.person_work import done_problem
from aoi_git.errors import IllegalTransition
from aoi_git.resources import resource_dir
from aoi_git.store import yamlio

if TYPE_CHECKING:
    import jsonschema
    import jsonschema_rs

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def one_line(problem: str) -> str:
    """`problem` with its control characters escaped (`\\n`), so that a file name holding
    a newline still makes one line."""
    if not _CONTROL.search(problem):
        return problem
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], problem)


@functools.cache
def _validator(name: str) -> jsonschema.protocols.Validator:
    import jsonschema.validators  # (~0.1 s: not for the git hooks' quick ways out)

    schema = json.loads((resource_dir("schemas") / f"{name}.schema.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


@functools.cache
def _fast_validator(name: str) -> jsonschema_rs.Validator:
    """The same schema compiled by jsonschema-rs: ~5 us a task (the Python one: ~350)."""
    import jsonschema_rs
    schema = json.loads((resource_dir("schemas") / f"{name}.schema.json").read_text())
    return jsonschema_rs.validator_for(schema, validate_formats=False)


_STATUSES = frozenset(s.value for s in Status)


def _steps(old: Task | None, new: Task,
           declared: Sequence[str]) -> list[tuple[Task | None, Task]]:
    """The moves from `old` to `new` to check: the successive ones a commit declares when
    they lead from one to the other (`completed->accepted`, `accepted->finished`), else
    the one from `old` to `new`."""
    start = old.status.value if old is not None else "new"
    stops: list[str] = []
    for label in declared:
        frm, _, to = label.partition("->")
        if frm != (stops[-1] if stops else start) or not to:
            break
        stops.append(to)
    if len(stops) < 2 or old is None or stops[-1] != new.status.value \
            or not all(s in _STATUSES for s in stops):
        return [(old, new)]
    versions = [old, *(new.with_changes(status=Status(s)) for s in stops[:-1]), new]
    return list(itertools.pairwise(versions))


def _line_for(lines: Mapping[tuple[str, ...], int], path: Iterable[Any]) -> int:
    key = tuple(str(p) for p in path)
    while key:
        if key in lines:
            return lines[key]
        key = key[:-1]
    return 1


def schema_problems(name: str, data: Any, raw: bytes, path: str) -> list[str]:
    return [f"{path}:{line}: {msg}" for line, msg in schema_findings(name, data, raw)]


def schema_findings(name: str, data: Any, raw: bytes) -> list[tuple[int, str]]:
    """(line, message) for each way `data` (parsed from `raw`) breaks schema `name`.

    jsonschema-rs answers yes or no; only a no (or a value JSON has no type for, such as a
    date) goes on to the Python validator, whose messages and paths are the ones shown."""
    try:
        if _fast_validator(name).is_valid(data):
            return []
    except (ValueError, TypeError, OverflowError):
        pass
    errors = sorted(_validator(name).iter_errors(data), key=lambda e: list(e.absolute_path))
    if not errors:
        return []
    lines = yamlio.key_lines(raw)
    out = []
    for err in errors:
        where = list(err.absolute_path)
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            allowed = set(err.schema.get("properties", {}))
            for key in err.instance:
                if key not in allowed:
                    out.append((_line_for(lines, [*where, key]), f"unknown key {key!r}"))
            continue
        field = ".".join(str(p) for p in where) or "file"
        message = err.message if len(err.message) <= 200 else err.message[:200] + "..."
        out.append((_line_for(lines, where), f"{field}: {message}"))
    return out


def field_line(data: bytes, exc: Exception) -> int:
    """The line of the field a from_dict error names first (`budget.usd: ...`), else 1."""
    name = tuple(str(exc).split(":", 1)[0].split("."))
    for key, line in yamlio.key_lines(data).items():
        if key[-len(name):] == name:
            return line
    return 1


def task_id_from_path(path: str) -> str:
    return path.rsplit("/", 1)[-1].rsplit(".", 1)[0]  # not PurePosixPath: ~2 us a file


def parse_task_bytes(data: bytes, path: str) -> Task | tuple[int, str]:
    """A task file read as every reader reads it (the store's loader, `aoi validate`, the
    hooks): a Task, or (line, message) of its first problem."""
    task, findings = task_findings(data, path)
    if task is not None:
        return task
    line, message = findings[0]
    more = len(findings) - 1
    return (line, message + (f" (and {more} more: `aoi validate {path}`)" if more else ""))


def full_task_problems(data: bytes, path: str) -> tuple[Task | None, list[str]]:
    """Parse and validate one task file completely (schema included)."""
    task, findings = task_findings(data, path)
    return task, [f"{path}:{line}: {msg}" for line, msg in findings]


def task_findings(data: bytes, path: str) -> tuple[Task | None, list[tuple[int, str]]]:
    """The one check of a task file: bounded YAML, the schema, the file name, the typed
    record. A Task and no findings, or None and (line, message) for each problem."""
    try:
        raw = yamlio.load(data)
    except yamlio.YamlError as exc:
        return None, [(exc.line, str(exc))]
    if not isinstance(raw, dict):
        return None, [(1, "a task file must be a YAML mapping with at least `title:`")]
    problems = schema_findings("task", raw, data)
    stem = task_id_from_path(path)
    if not is_valid_id(stem):
        problems.append((1, f"file name {stem!r} is not a valid task id"
                            " ([a-z0-9][a-z0-9-]{1,63}, e.g. tasks/login-page.yaml)"))
    if raw.get("id") not in (None, stem):
        line = yamlio.key_lines(data).get(("id",), 1)
        problems.append((line, f"id {raw.get('id')!r} must equal the file name {stem!r}"))
    if problems:
        return None, problems
    try:  # the schema passed: keys, types and ranges are known good; this builds the record
        return Task.from_dict(raw, default_id=stem), []
    except BAD_VALUE as exc:  # a check of the model the schema does not state
        return None, [(field_line(data, exc), f"bad value: {exc}")]


def other_file_problems(path: str, data: bytes, parsed: Any = None) -> list[str]:
    """Problems of `aoi.yaml`, a profile or a talent (`parsed`: its YAML, if read already)."""
    for pattern, name in SCHEMA_FOR[1:]:
        if pattern.fullmatch(path):
            if parsed is None:
                try:
                    parsed = yamlio.load(data)
                except yamlio.YamlError as exc:
                    return [f"{path}:{exc.line}: {exc}"]
            return schema_problems(name, parsed if parsed is not None else {}, data, path)
    return []


class Validator:
    """Validates proposed file contents against the org they would change."""

    def __init__(
        self,
        tasks: Mapping[str, Task],
        paths: Mapping[str, str],
        employee_ids: Iterable[str],
        roles: Iterable[str],
        humans: Iterable[str],
    ) -> None:
        self.tasks = tasks
        self.paths = paths
        self.employee_ids = set(employee_ids)
        self.roles = set(roles)
        self.humans = set(humans)
        # True when every path in `paths` is `.../<its id>.yaml` (as in a loaded org), so the
        # task at a path is found by its file name instead of a reverse map of all paths
        self.paths_named_by_id = False
        # what review decisions are judged by; without a config they are not judged
        self.config: OrgConfig | None = None
        self.employees: Mapping[str, Employee] = {}
        self.parsed: dict[str, Task] = {}  # id -> task of the files the last `check` read

    @classmethod
    def for_org(cls, org: Any) -> Validator:
        return cls.for_parts(org.tasks, org.index.paths, org.config, org.employees)

    @classmethod
    def for_parts(cls, tasks: Mapping[str, Task], paths: Mapping[str, str],
                  config: OrgConfig, employees: Mapping[str, Employee]) -> Validator:
        """As `for_org`, from an org's parts (e.g. tasks read one at a time)."""
        v = cls(tasks, paths, employees, {e.role for e in employees.values()}, config.humans)
        v.paths_named_by_id = True  # the store indexes a file only if its id is its name
        v.config, v.employees = config, employees
        return v

    def _authority_problem(self, old: Task, new: Task, actor: Actor, email: str,
                           changed: Mapping[str, Task]) -> str | None:
        """Why `actor` may not decide the review that moves `old` (completed) to `new`."""
        if self.config is None or old.status is not Status.COMPLETED:
            return None
        if new.status is Status.PENDING and actor.kind is ActorKind.DAEMON:
            return None  # the branch policy's refusal, not a review
        if new.status not in (Status.ACCEPTED, Status.PENDING):
            return None
        via = next((t for t in changed.values()
                    if t.kind is Kind.REVIEW and t.subject == old.id), None)
        try:
            review_authority(actor, old, reviewer_of(old, self.tasks, self.config),
                             config=self.config, employees=self.employees, email=email,
                             via=via)
        except IllegalTransition as exc:
            return str(exc)
        return None

    def _id_at(self) -> Callable[[str], str | None]:
        """path -> id of the task at that path now (None if none)."""
        if not self.paths_named_by_id:
            return {p: i for i, p in self.paths.items()}.get

        def id_at(path: str) -> str | None:
            stem = PurePosixPath(path).stem
            return stem if self.paths.get(stem) == path else None

        return id_at

    def check(self, files: Mapping[str, bytes | None], actor: Actor,
              email: str = "", moves: Mapping[str, Sequence[str]] | None = None) -> list[str]:
        """Problems with changing `files` (path -> new bytes, None = deleted) as `actor`
        (a person also known by `email`, for the authority over a review). `moves`: task
        id -> the `Aoi-Transition`s a commit declares for it (`trailers.moves`); a task it
        moves several times (accepted, then finished) is checked move by move."""
        problems: list[str] = []
        new: dict[str, Task] = {}
        self.parsed = new  # for a caller that carries the org along (`org.push_check`)
        # the org with `files` applied, without copying it (only `new` is ever written)
        overlay = ChainMap(new, self.tasks)  # type: ignore[arg-type]
        changed: dict[str, tuple[str, Task]] = {}
        id_at = self._id_at()
        for path, data in sorted(files.items()):
            if not is_task_path(path):
                if data is not None:
                    problems += other_file_problems(path, data)
                continue
            old_id = id_at(path)
            if data is None:
                if old_id is not None:
                    problems.append(
                        f"{path}:0: task {old_id} was deleted by hand; tasks are cancelled, "
                        f"not deleted (`git checkout -- {path}` restores it, then "
                        f"`aoi task cancel {old_id}`)"
                    )
                continue
            task, errs = full_task_problems(data, path)
            if task is None:
                problems += errs
                continue
            existing = self.paths.get(task.id)
            if existing is not None and existing != path and existing not in files:
                problems.append(f"{path}:1: duplicate task id {task.id!r} (also {existing})")
                continue
            if task.id in changed:  # two new files with one name in different folders
                other = changed[task.id][0]
                problems.append(f"{path}:1: duplicate task id {task.id!r} (also {other})")
                continue
            new[task.id] = task
            changed[task.id] = (path, task)
        for tid, (path, task) in changed.items():
            problems += self._ref_problems(task, path, overlay, files[path] or b"")
            old = self.tasks.get(tid)
            steps = _steps(old, task, (moves or {}).get(tid, ()))
            for before, after in steps:
                try:
                    check_transition(before.status if before else None, after.status,
                                     actor.kind, task.kind)
                except IllegalTransition as exc:
                    refused: str | None = str(exc)
                else:
                    refused = None if before is None else \
                        self._authority_problem(before, after, actor, email, new)
                    if refused is None and self.config is not None:
                        refused = done_problem(before, after, actor, self.config, email)
                if refused:
                    line = yamlio.key_lines(files[path] or b"").get(("status",), 1)
                    problems.append(f"{path}:{line}: {refused}")
                    break
        if changed:
            # A cycle these files make goes through one of them: search what they reach
            # (their dependencies, their ancestors), not the whole org (~0.1 s at 100k).
            edges: list[tuple[str, Callable[[Task], tuple[str, ...]]]] = [
                ("dependency", lambda v: v.depends_on),
                ("parent", lambda v: (v.parent,) if v.parent else ()),
            ]
            for kind, out in edges:
                cycle = find_cycle(_reachable(overlay, changed, out))
                if cycle:
                    first = next((c for c in cycle if c in changed), cycle[0])
                    where = changed[first][0] if first in changed \
                        else self.paths.get(first, "tasks")
                    problems.append(f"{where}:1: {kind} cycle: {' -> '.join(cycle)}")
        return [one_line(p) for p in problems]

    def _ref_problems(
        self, task: Task, path: str, overlay: Mapping[str, Task], data: bytes = b""
    ) -> list[str]:
        out = []
        key_lines = yamlio.key_lines(data) if data else {}

        def at(*key: str) -> str:
            return f"{path}:{_line_for(key_lines, key)}"

        for field_name, who in (("assignee", task.assignee), ("reviewer", task.reviewer)):
            if who is None or (field_name == "reviewer" and who == "none"):
                continue
            if who.startswith("role:"):
                if who[5:] not in self.roles:
                    out.append(f"{at(field_name)}: {field_name}: no employee has role {who[5:]!r}")
            elif who not in self.employee_ids and who not in self.humans:
                out.append(
                    f"{at(field_name)}: {field_name}: {who!r} is neither an employee nor a person "
                    "in aoi.yaml `humans:`"
                )
        if task.parent and task.parent not in overlay:
            out.append(f"{at('parent')}: parent: no task {task.parent!r}")
        for i, dep in enumerate(task.depends_on):
            if dep not in overlay:
                out.append(f"{at('depends_on', str(i))}: depends_on: no task {dep!r}")
            elif dep == task.id:
                out.append(f"{at('depends_on', str(i))}: depends_on: a task cannot depend on "
                           "itself")
        return out


def _reachable(tasks: Mapping[str, Task], start: Iterable[str],
               out: Callable[[Task], tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """task -> its edges, for the tasks reachable from `start` that have any."""
    edges: dict[str, tuple[str, ...]] = {}
    seen: set[str] = set()
    stack = list(start)
    while stack:
        tid = stack.pop()
        if tid in seen:
            continue
        seen.add(tid)
        task = tasks.get(tid)
        targets = out(task) if task is not None else ()
        if targets:
            edges[tid] = targets
            stack.extend(targets)
    return edges


def human_actor(name: str) -> Actor:
    return Actor(ActorKind.HUMAN, name or "unknown")
