"""The organisation at one commit: config, employees, talents and tasks."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

from aoi_git.domain.model import BAD_VALUE, Employee, OrgConfig, Talent, Task
from aoi_git.domain.task_rows import TaskMap, TaskRows
from aoi_git.errors import AoiError
from aoi_git.org.validate import field_line, one_line, other_file_problems
from aoi_git.store import yamlio
from aoi_git.store.head_view import HeadView
from aoi_git.store.org_store import Store
from aoi_git.store.task_cache import TaskIndex


@dataclass
class Org:
    commit: str | None
    config: OrgConfig
    employees: dict[str, Employee]
    talents: dict[str, Talent]
    index: TaskIndex
    problems: list[str] = field(default_factory=list)  # `path:line: message` at HEAD
    _sorted_ids: list[str] | None = None

    @property
    def tasks(self) -> TaskMap:
        """Every task by id; finished ones are parsed when looked up (see `TaskMap`):
        iterate `open_tasks()` or `rows`, not the values."""
        return self.index.tasks

    @property
    def rows(self) -> TaskRows:
        """The compact row of every task (listing, counts, status)."""
        return self.index.rows

    def open_tasks(self) -> list[Task]:
        """Every open task, parsed (and persons' hire decisions not applied yet)."""
        return self.index.tasks.open_values()

    def tasks_changed(self, commit: str | None) -> None:
        """Its task index was brought up to `commit` in place (tasks added or changed)."""
        self.commit = commit
        self._sorted_ids = None

    def path_of(self, task_id: str) -> str:
        return self.index.paths[task_id]

    def resolve_id(self, prefix: str) -> str:
        """A full task id from an id or a unique prefix of one (like a git short SHA)."""
        if prefix in self.index.tasks:
            return prefix
        if self._sorted_ids is None:
            self._sorted_ids = sorted(self.index.tasks)
        ids = self._sorted_ids
        lo = bisect.bisect_left(ids, prefix)
        matches = []
        for tid in ids[lo:]:
            if not tid.startswith(prefix):
                break
            matches.append(tid)
            if len(matches) > 5:
                break
        if not matches and not prefix.startswith("t-") and len(prefix) >= 2:
            try:  # `4k2m` means `t-4k2m...`, as a short SHA leaves out nothing either
                return self.resolve_id("t-" + prefix)
            except AoiError as exc:
                if "ambiguous" in str(exc):
                    raise
                return _no_task(prefix)
        if not matches:
            return _no_task(prefix)
        if len(matches) > 1:
            shown = ", ".join(matches[:5])
            raise AoiError(f"task id prefix {prefix!r} is ambiguous ({shown}...): give more of it")
        return matches[0]

    def task(self, prefix: str) -> Task:
        return self.index.tasks[self.resolve_id(prefix)]

    def is_human(self, name: str | None) -> bool:
        return name is not None and name in self.config.humans

    def employees_with_role(self, role: str) -> list[Employee]:
        return [e for e in self.employees.values() if e.role == role and e.is_active]


def _no_task(prefix: str) -> str:
    raise AoiError(f"no task with id {prefix!r}: `aoi task list` shows the ids")


def load_yaml_file(view: HeadView, path: str) -> tuple[Any, str | None]:
    data = view.read(path)
    if data is None:
        return None, f"{path}:0: missing"
    try:
        return yamlio.load(data), None
    except yamlio.YamlError as exc:
        return None, f"{path}:{exc.line}: {exc}"


def _schema_problems(view: HeadView, path: str, raw: Any) -> list[str]:
    """`aoi.yaml`, a profile or a talent against its schema, as `aoi validate PATH` checks it.

    Unlike a task file's, such a problem is shown but does not drop the record: a stray
    key in a profile should not stop an employee."""
    return other_file_problems(path, view.read(path) or b"", raw)


def load_org(store: Store, view: HeadView | None = None) -> Org:
    view = view or store.head()
    problems: list[str] = []
    raw_config, err = load_yaml_file(view, "aoi.yaml")
    if err:
        problems.append(err)
    schema = [] if err else _schema_problems(view, "aoi.yaml", raw_config)
    problems += schema
    try:
        config = OrgConfig.from_dict(raw_config if isinstance(raw_config, dict) else {})
    except BAD_VALUE as exc:
        if not schema:  # else the schema named the field already
            problems.append(f"aoi.yaml:{field_line(view.read('aoi.yaml') or b'', exc)}: {exc}")
        config = OrgConfig()
    employees: dict[str, Employee] = {}
    for name in store.list_dir("employees", view):
        path = f"employees/{name}/profile.yaml"
        raw, err = load_yaml_file(view, path)
        if err:
            if view.exists(path):
                problems.append(err)
            continue
        schema = _schema_problems(view, path, raw)
        problems += schema
        try:
            employees[name] = Employee.from_dict(raw or {}, default_id=name)
        except BAD_VALUE as exc:
            if not schema:
                problems.append(f"{path}:{field_line(view.read(path) or b'', exc)}: {exc}")
    talents: dict[str, Talent] = {}
    for name in store.list_dir("talents", view):
        talent = load_talent(view, f"talents/{name}", name, problems)
        if talent is not None:
            talents[name] = talent
    index = store.load_tasks(view)
    for path, (line, msg) in sorted(index.errors.items()):
        problems.append(f"{path}:{line}: {msg}")
    return Org(view.oid, config, employees, talents, index, [one_line(p) for p in problems])


def load_talent(view: HeadView, folder: str, name: str, problems: list[str]) -> Talent | None:
    raw, err = load_yaml_file(view, f"{folder}/talent.yaml")
    if err:
        if view.exists(f"{folder}/talent.yaml"):
            problems.append(err)
        return None
    schema = _schema_problems(view, f"{folder}/talent.yaml", raw)
    problems += schema
    prompt = (view.read(f"{folder}/prompt.md") or b"").decode("utf-8", "replace")
    try:
        return Talent.from_dict(raw or {}, default_id=name, prompt=prompt)
    except BAD_VALUE as exc:
        path = f"{folder}/talent.yaml"
        if not schema:
            problems.append(f"{path}:{field_line(view.read(path) or b'', exc)}: {exc}")
        return None
