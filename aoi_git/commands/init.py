from __future__ import annotations

from pathlib import Path

import click

from aoi_git.commands.cli_context import App
from aoi_git.org.create import init_org


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", help="The organisation's name (default: the folder's name).")
@click.pass_obj
def init(app: App, directory: Path, name: str | None) -> None:
    """Create an organisation repository in DIRECTORY (or wire up a clone of one).

    \b
    Examples:
      aoi init acme            # a new org with the founding team: coo, hr, ea, cso
      git clone server:acme && aoi init acme   # install hooks + merge driver in a clone
    """
    target = directory if directory.is_absolute() else app.cwd / directory
    for line in init_org(target, name=name or target.resolve().name):
        click.echo(line)
