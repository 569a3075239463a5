from __future__ import annotations

import click

from aoi_git.commands.cli_context import App
from aoi_git.org import person_actions


@click.command()
@click.argument("task_id")
@click.argument("text")
@click.pass_obj
def answer(app: App, task_id: str, text: str) -> None:
    """Answer a question (a `human` task) or an escalation; the asker resumes.

    \b
    Examples:
      aoi answer t-9xy2 "Use PostgreSQL 16"
      aoi answer t-9xy2 "reassign to eng-2"      # for an escalation: retry | reassign to X | cancel
    """
    org = app.org()
    tid = person_actions.answer(app.store, org, task_id, text, app.person)
    click.echo(f"answered {tid}")
