from __future__ import annotations

import functools
import importlib
import json
import os
import shlex
import subprocess
from collections.abc import Mapping
from typing import TYPE_CHECKING

import click

from aoi_git.commands.cli_context import App
from aoi_git.domain.model import TERMINAL, Status, Task
from aoi_git.errors import AoiError, ValidationFailed

if TYPE_CHECKING:
    from aoi_git.store.txn import Txn

# subcommands kept in modules of their own: imported when they run (or for help)
_ELSEWHERE: dict[str, tuple[str, str]] = {
    "done": ("task_done", "done"),
    "pause": ("task_control", "pause"),
    "resume": ("task_control", "resume"),
    "reassign": ("task_control", "reassign"),
}


class TaskGroup(click.Group):
    """`aoi task`: `show`, `new` and `list` import neither the daemon's flow nor the
    transaction code they do not use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *_ELSEWHERE})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name not in _ELSEWHERE:
            return self.commands.get(cmd_name)
        module, attr = _ELSEWHERE[cmd_name]
        command = getattr(importlib.import_module(f"aoi_git.commands.{module}"), attr)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=TaskGroup)
def task() -> None:
    """Create, show, list, edit, cancel, finish, pause, resume and reassign tasks.

    \b
    Example:
      aoi task new "Build the login API" --assignee role:engineer --label backend
    """


def _as_json(t: Task, path: str) -> dict[str, object]:
    """A task for scripts: kind and status always present, even at their defaults."""
    return {**t.to_dict(), "kind": t.kind.value, "status": t.status.value, "path": path}


@task.command("new")
@click.argument("title")
@click.option("--assignee", help="An employee id, role:<role>, or a person in aoi.yaml.")
@click.option("--reviewer", help="An employee or person; `none` accepts without review.")
@click.option("--after", "after", multiple=True, help="A task this one depends on (repeatable).")
@click.option("--parent", help="The task this one is a subtask of.")
@click.option("--description", default="", help="Free text for the assignee.")
@click.option("--label", "labels", multiple=True, help="A label (repeatable).")
@click.option("--priority", type=int, default=0, show_default=True, help="Higher runs first.")
@click.option("--id", "task_id",
              help="Choose the id (file tasks/<id>.yaml) instead of a random one.")
@click.pass_obj
def new(app: App, title: str, assignee: str | None, reviewer: str | None, after: tuple[str, ...],
        parent: str | None, description: str, labels: tuple[str, ...], priority: int,
        task_id: str | None) -> None:
    """Create a task and print its id alone.

    \b
    Examples:
      aoi task new "Write the docs" --assignee coo
      id=$(aoi task new "Ship it" --after t-4k2m --priority 5)
    """
    from aoi_git.org import task_ops
    from aoi_git.org.validate import Validator
    from aoi_git.store.txn import commit

    tasks: Mapping[str, Task]
    paths: Mapping[str, str]
    if task_id is not None:  # a chosen id may be taken by a file anywhere under tasks/
        org = app.org()
        tasks, paths, validator = org.tasks, org.index.paths, Validator.for_org(org)
        deps = tuple(org.resolve_id(a) for a in after)
        parent_id = org.resolve_id(parent) if parent else None
    else:  # the few tasks it names, read one by one (see `few_tasks`)
        from aoi_git.org.few_tasks import HeadPaths, HeadTasks, load_people

        view = app.store.head()
        whole = functools.cache(app.org)
        head_tasks = HeadTasks(view, lambda: whole().tasks)
        tasks, paths = head_tasks, HeadPaths(head_tasks, lambda: whole().index.paths)
        people = load_people(view)
        validator = Validator.for_parts(tasks, paths, people.config, people.employees)
        deps = tuple(app.task(a, view).task.id for a in after)
        parent_id = app.task(parent, view).task.id if parent else None

    def build(txn: Txn) -> None:
        created = task_ops.new_task(
            txn, tasks, title, task_id=task_id, assignee=assignee, reviewer=reviewer,
            depends_on=list(deps), parent=parent_id, description=description,
            labels=list(labels), priority=priority,
        )
        problems = validator.check(dict(txn.files), app.person)
        if problems:
            raise ValidationFailed(problems)
        assert created.id in txn.written

    _, txn = commit(app.store, build, app.person, paths)
    click.echo(next(iter(txn.written)))


@task.command("show")
@click.argument("task_id")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def show(app: App, task_id: str, as_json: bool) -> None:
    """Show a task (an id or a unique prefix of one) and the path of its file.

    \b
    Example:
      aoi task show t-4k2m
    """
    found = app.task(task_id)
    t, path = found.task, found.path
    if as_json:
        click.echo(json.dumps(_as_json(t, path), indent=2, default=str))
        return
    click.echo(f"# {path}")
    click.echo(found.data.decode("utf-8", "replace").rstrip("\n"))


@task.command("list")
@click.option("--status", "statuses", multiple=True,
              type=click.Choice([s.value for s in Status]), help="Only tasks in this status.")
@click.option("--assignee", help="Only tasks of this assignee.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def list_(app: App, statuses: tuple[str, ...], assignee: str | None, as_json: bool) -> None:
    """List tasks, oldest first.

    \b
    Examples:
      aoi task list --status pending
      aoi task list --json | jq '.[].id'
    """
    from aoi_git.commands.render import row_line

    if as_json:  # the whole records: a finished one is parsed from its blob here
        org = app.org()
        rows = org.rows.by_status(*(statuses or Status))
        if assignee:
            rows = [r for r in rows if r.assignee == assignee]
        click.echo(json.dumps([_as_json(org.tasks[r.id], r.path) for r in rows],
                              indent=2, default=str))
        return
    # the rows only: of open tasks, read from the task cache when it is HEAD's
    every = app.open_rows() if statuses and not TERMINAL.intersection(statuses) \
        else app.org().rows
    rows = every.by_status(*(statuses or Status))
    if assignee:
        rows = [r for r in rows if r.assignee == assignee]
    for r in rows:
        click.echo(row_line(r))


task.add_command(list_, "list")


@task.command("edit")
@click.argument("task_id")
@click.pass_obj
def edit(app: App, task_id: str) -> None:
    """Open a task's file in $EDITOR; when you save, it is validated and committed.

    An invalid edit is kept in your work tree (never lost) and its problems are printed.

    \b
    Example:
      EDITOR=nano aoi task edit t-4k2m
    """
    from aoi_git.org.validate import Validator, full_task_problems
    from aoi_git.store.txn import commit

    org = app.org()
    t = org.task(task_id)
    path = org.path_of(t.id)
    full = app.root / path
    if not full.exists():
        data = app.store.read(path)
        if data is None:
            raise AoiError(f"{path}: missing at HEAD")
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_bytes(data)
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    rc = subprocess.call([*shlex.split(editor), str(full)])
    if rc != 0:
        raise AoiError(f"the editor `{editor}` exited {rc}; your file is left as it is: {path}")
    data = full.read_bytes()
    if data == app.store.read(path):
        click.echo("no change")
        return
    problems = Validator.for_org(org).check({path: data}, app.person)
    if problems:
        raise ValidationFailed([*problems, f"{path}: kept as you saved it; fix and save again"])

    new_task, _ = full_task_problems(data, path)
    assert new_task is not None

    def build(txn: Txn) -> None:
        txn.put(new_task, path=path)
        txn.files[path] = data  # the person's bytes exactly: comments and key order kept

    commit(app.store, build, app.person, org.index.paths)
    click.echo(f"committed {path}")


@task.command("cancel")
@click.argument("task_id")
@click.option("-m", "--message", "reason", default="cancelled by a person", help="Why.")
@click.pass_obj
def cancel(app: App, task_id: str, reason: str) -> None:
    """Cancel a task and, in the same commit, its subtasks and dependents.

    \b
    Example:
      aoi task cancel t-4k2m -m "superseded by t-9xy2"
    """
    from aoi_git.org import task_ops
    from aoi_git.store.txn import commit

    org = app.org()
    tid = org.resolve_id(task_id)
    result: list[str] = []

    def build(txn: Txn) -> None:
        result[:] = task_ops.cancel_cascade(txn, org.tasks, tid, reason)

    commit(app.store, build, app.person, org.index.paths)
    for c in result:
        click.echo(f"cancelled {c}")

