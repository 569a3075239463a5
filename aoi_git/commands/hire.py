from __future__ import annotations

import click

from aoi_git.commands.cli_context import App
from aoi_git.errors import ValidationFailed
from aoi_git.evolution import hiring
from aoi_git.org.validate import Validator
from aoi_git.store.txn import Txn, commit


@click.command()
@click.argument("talent")
@click.option("--as", "employee_id", required=True, help="The new employee's id, e.g. eng-2.")
@click.option("--reports-to", help="Supervisor: an employee or a person (default: the CEO).")
@click.option("--backend", "backend_kind",
              help="Backend kind (default: the talent's), e.g. claude or script.")
@click.option("--command", "command",
              help="For --backend script: the command to run, e.g. \"python agents/x.py\".")
@click.option("--name", help="Display name (default: the id).")
@click.pass_obj
def hire(app: App, talent: str, employee_id: str, reports_to: str | None,
         backend_kind: str | None, command: str | None, name: str | None) -> None:
    """Hire an employee from a talent (the org's talents/, else the markets), in one commit.

    Creates employees/ID/ (profile, principles seeded from the talent, journal) and
    copies the talent package into talents/ if the org does not have it.

    \b
    Examples:
      aoi hire software-engineer --as eng-2 --reports-to coo --name Ada
      aoi hire qa-engineer --as qa-1 --backend script --command "python agents/qa.py"
    """
    org = app.org()
    source = hiring.find_talent(app.root, org, talent)

    def build(txn: Txn) -> None:
        hiring.hire(txn, org, source, employee_id=employee_id, reports_to=reports_to,
                    backend_kind=backend_kind, command=command, name=name)
        problems = Validator.for_org(org).check(dict(txn.files), app.person)
        if problems:
            raise ValidationFailed(problems)

    commit(app.store, build, app.person)
    where = "" if source.origin == "org" else f"; talents/{talent}/ copied from the " \
        f"{source.origin} market"
    click.echo(f"hired {employee_id} ({source.talent.role}) from {talent}{where}")
