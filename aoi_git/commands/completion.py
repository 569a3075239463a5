"""`aoi completion SHELL`: the shell completion script, as click generates it."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

SHELLS = ("bash", "zsh", "fish")


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the completion script for SHELL (bash, zsh or fish).

    \b
    Examples:
      eval "$(aoi completion bash)"                 # in ~/.bashrc
      aoi completion fish > ~/.config/fish/completions/aoi.fish
    """
    from aoi_git.cli import main

    cls = get_completion_class(shell)
    assert cls is not None  # every name in SHELLS is one click ships
    click.echo(cls(main, {}, "aoi", "_AOI_COMPLETE").source())
