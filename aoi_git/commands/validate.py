from __future__ import annotations

from pathlib import Path

import click

from aoi_git.commands.cli_context import App
from aoi_git.errors import ValidationFailed
from aoi_git.org.person_edits import pending_problems


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.pass_obj
def validate(app: App, paths: tuple[Path, ...]) -> None:
    """Check org files: schema, references, dependency cycles, status changes.

    Without PATHS, checks every org file that differs from HEAD (your uncommitted edits)
    plus everything committed. Prints `path:line: message` per problem; exit status 1.

    \b
    Examples:
      aoi validate                      # the whole org and your edits
      aoi validate tasks/login-page.yaml
    """
    problems = pending_problems(app, list(paths) or None)
    if problems:
        raise ValidationFailed(problems)
    click.echo("ok")
