"""`aoi task done`: a person finishes a work task assigned to them; it is then reviewed."""

from __future__ import annotations

import click

from aoi_git.commands.cli_context import App
from aoi_git.org import person_work
from aoi_git.store.txn import Txn, commit
from aoi_git.store.worktrees import branch_name, open_workspace


@click.command("done")
@click.argument("task_id")
@click.option("-m", "--message", "summary", default="",
              help="What you did: the summary your reviewer reads.")
@click.pass_obj
def done(app: App, task_id: str, summary: str) -> None:
    """Finish a work task assigned to you; it goes to its reviewer like an agent's work.

    The task must be pending and assigned to you (a person of aoi.yaml `humans`), or you
    are the CEO. Work you committed on branch aoi/<id> is its diff, merged on acceptance.

    \b
    Examples:
      aoi task done t-4k2m -m "Called the customer; notes in docs/calls/acme.md"
      aoi task done t-4k2m     # work you committed on aoi/t-4k2m is its diff
    """
    org = app.org()
    tid = org.resolve_id(task_id)
    ws = open_workspace(app.store, org.config)
    branch = branch_name(tid) if ws.branch_tip(tid) is not None and not ws.is_merged(tid) \
        else None

    def build(txn: Txn) -> None:
        person_work.finish(txn, tid, summary.strip(), branch=branch, config=org.config,
                           email=app.email)

    commit(app.store, build, app.person, org.index.paths)
    click.echo(f"completed {tid}" + (f" (branch {branch})" if branch else "")
               + "; it waits for its review")
