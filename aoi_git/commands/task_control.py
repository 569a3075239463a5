"""`aoi task pause|resume|reassign`: a person's control over running work
(`aoi_git.org.control`). Each is one commit as the person; a running daemon then stops,
resumes or hands over the agent's run."""

from __future__ import annotations

import click

from aoi_git.commands.cli_context import App
from aoi_git.org import control
from aoi_git.store.txn import Txn, commit


@click.command("pause")
@click.argument("task_id")
@click.option("-m", "--message", "reason", default="paused by a person", help="Why.")
@click.pass_obj
def pause(app: App, task_id: str, reason: str) -> None:
    """Pause a running task: its agent is stopped, what it wrote is kept on its branch
    and in its worktree, and it waits (suspended) until you resume it.

    \b
    Example:
      aoi task pause t-4k2m -m "the API design is changing"
    """
    org = app.org()
    tid = org.resolve_id(task_id)
    commit(app.store, lambda txn: control.pause(txn, tid, reason), app.person,
           org.index.paths)
    click.echo(f"paused {tid}")


@click.command("resume")
@click.argument("task_id")
@click.pass_obj
def resume(app: App, task_id: str) -> None:
    """Resume a suspended task: it is queued again and goes on where it was, in its kept
    worktree (a claude agent in the same session).

    \b
    Example:
      aoi task resume t-4k2m
    """
    org = app.org()
    tid = org.resolve_id(task_id)
    commit(app.store, lambda txn: control.resume(txn, tid), app.person, org.index.paths)
    click.echo(f"resumed {tid}")


@click.command("reassign")
@click.argument("task_id")
@click.argument("employee")
@click.option("-m", "--message", "reason", default="", help="Why, for the new assignee.")
@click.pass_obj
def reassign(app: App, task_id: str, employee: str, reason: str) -> None:
    """Give a pending, running or suspended task to another employee (or role:<role>).

    A running one is stopped first; its branch is kept and the new assignee continues
    from it, with a handoff note in its context.

    \b
    Example:
      aoi task reassign t-4k2m eng-2 -m "eng-1 is needed elsewhere"
    """
    org = app.org()
    tid = org.resolve_id(task_id)

    def build(txn: Txn) -> None:
        control.reassign(txn, tid, employee, org.employees, org.config, reason)

    commit(app.store, build, app.person, org.index.paths)
    click.echo(f"reassigned {tid} to {employee}")
