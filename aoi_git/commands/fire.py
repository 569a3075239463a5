from __future__ import annotations

import click

from aoi_git.commands.cli_context import App
from aoi_git.evolution import hiring
from aoi_git.store.txn import Txn, commit


@click.command()
@click.argument("employee_id")
@click.option("-m", "--reason", default="", help="Why (recorded in the commit and the task).")
@click.pass_obj
def fire(app: App, employee_id: str, reason: str) -> None:
    """Offboard an employee: status offboarded, and one task for its supervisor to reassign
    its open tasks, in one commit.

    \b
    Example:
      aoi fire eng-2 -m "the project is over"
      aoi answer <task> "reassign to eng-1"     # what the supervisor then does
    """
    org = app.org()
    out: list[hiring.Offboarding] = []

    def build(txn: Txn) -> None:
        out[:] = [hiring.fire(txn, org, employee_id, reason)]

    commit(app.store, build, app.person, org.index.paths)
    res = out[0]
    click.echo(f"offboarded {employee_id}")
    if res.human_task:
        click.echo(f"{len(res.open_tasks)} open task(s) listed for {res.supervisor} to "
                   f"reassign in {res.human_task}")
    if res.reports:
        click.echo(f"note: {', '.join(res.reports)} report(s) to {employee_id}: update their "
                   "reports_to")
