from __future__ import annotations

import click

from aoi_git.commands.cli_context import App
from aoi_git.errors import AoiError
from aoi_git.evolution import one_on_one as ooo


@click.command("one-on-one")
@click.argument("employee_id")
@click.argument("feedback")
@click.option("--no-reflect", is_flag=True,
              help="Only record your words; the employee does not rewrite its principles.")
@click.pass_obj
def one_on_one(app: App, employee_id: str, feedback: str, no_reflect: bool) -> None:
    """Give an employee feedback: your words go verbatim into its principles.md (your
    commit); a claude employee then rewrites its principles (its own commit).

    \b
    Example:
      aoi one-on-one eng-1 "Run the whole test suite before you report, not one file."
      git log -p -2 employees/eng-1/principles.md     # both steps, revertable
    """
    org = app.org()
    emp = org.employees.get(employee_id)
    if emp is None:
        raise AoiError(f"no employee {employee_id!r}: `ls employees/` lists them")
    if not emp.is_active:
        raise AoiError(f"{employee_id} is offboarded: one-on-ones are for active employees")
    first = ooo.record(app.store, emp, app.person, feedback)
    click.echo(f"recorded your words in employees/{employee_id}/principles.md "
               f"(commit {first[:10]})")
    if no_reflect:
        return
    if not ooo.can_reflect(emp):
        click.echo(f"{employee_id} runs on the {emp.backend.kind} backend and cannot reflect: "
                   "only your words were committed")
        return
    current = (app.store.read(ooo.principles_path(employee_id)) or b"").decode("utf-8")
    try:
        rewrite = ooo.reflect(emp, current, app.person.name, feedback)
        second = ooo.commit_rewrite(app.store, emp, rewrite, first)
    except AoiError as exc:
        click.echo(f"warning: {exc}; your words are committed", err=True)
        return
    if second is None:
        click.echo(f"{employee_id} kept its principles unchanged")
    else:
        click.echo(f"{employee_id} rewrote its principles (commit {second[:10]}); "
                   f"`git revert {second[:10]}` undoes it")
