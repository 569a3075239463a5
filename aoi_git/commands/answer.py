from __future__ import annotations

import click

from aoi_git.commands.cli_context import App
from aoi_git.org import flow
from aoi_git.store.txn import Txn, commit


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
    tid = org.resolve_id(task_id)

    def build(txn: Txn) -> None:
        flow.answer_human_task(txn, tid, text)

    commit(app.store, build, app.person, org.index.paths)
    click.echo(f"answered {tid}")
