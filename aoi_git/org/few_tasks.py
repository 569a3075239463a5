"""An org for a command that touches a few tasks: its config and employees, and its tasks
read one at a time where aoi saves them (`task_lookup`) instead of all at once.

`aoi task new` checks a new task against its assignee, its reviewer, the tasks it names
and what they reach; at 100k tasks loading every task for that cost ~1 s. Only iterating
or counting the tasks loads them all (the full `load_org`, once).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from aoi_git.domain.model import BAD_VALUE, Employee, OrgConfig, Task
from aoi_git.org.task_lookup import Files, Found, find
from aoi_git.store import yamlio

_UNREADABLE: tuple[type[Exception], ...] = (yamlio.YamlError, *BAD_VALUE)


class HeadTasks(Mapping[str, Task]):
    """id -> task at one commit, each read when first asked for."""

    def __init__(self, view: Files, everything: Callable[[], Mapping[str, Task]]) -> None:
        self.view = view
        self._everything = everything
        self._found: dict[str, Found | None] = {}

    def found(self, task_id: str) -> Found | None:
        if task_id not in self._found:
            self._found[task_id] = find(self.view, task_id)
        return self._found[task_id]

    def __getitem__(self, task_id: str) -> Task:
        got = self.found(task_id)
        if got is None:
            raise KeyError(task_id)
        return got.task

    def __contains__(self, task_id: object) -> bool:
        return isinstance(task_id, str) and self.found(task_id) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._everything())

    def __len__(self) -> int:
        return len(self._everything())


class HeadPaths(Mapping[str, str]):
    """id -> path of its file, for the tasks of a `HeadTasks`."""

    def __init__(self, tasks: HeadTasks, everything: Callable[[], Mapping[str, str]]) -> None:
        self.tasks = tasks
        self._everything = everything

    def __getitem__(self, task_id: str) -> str:
        got = self.tasks.found(task_id)
        if got is None:
            raise KeyError(task_id)
        return got.path

    def __contains__(self, task_id: object) -> bool:
        return task_id in self.tasks

    def __iter__(self) -> Iterator[str]:
        return iter(self._everything())

    def __len__(self) -> int:
        return len(self._everything())


@dataclass
class People:
    """What a task is checked against besides other tasks: the config and the employees."""

    config: OrgConfig
    employees: dict[str, Employee]


def load_people(view: Files) -> People:
    """`aoi.yaml` and every employee's profile, read as `load_org` reads them (a file that
    does not parse is left out; `aoi validate` reports it)."""
    try:
        raw = yamlio.load(view.read("aoi.yaml") or b"")
        config = OrgConfig.from_dict(raw if isinstance(raw, dict) else {})
    except _UNREADABLE:
        config = OrgConfig()
    employees: dict[str, Employee] = {}
    for name in view.names("employees"):
        data = view.read(f"employees/{name}/profile.yaml")
        if data is None:
            continue
        try:
            profile = yamlio.load(data)
            employees[name] = Employee.from_dict(profile or {}, default_id=name)
        except _UNREADABLE:
            continue
    return People(config, employees)
