"""The `aoi` command line: a thin layer over the typed core.

Library errors (`AoiError`) and usage errors (an unknown option, a bad value) become one
line on stderr and exit status 1 here, and only here.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from aoi_git import __version__, commands
from aoi_git.errors import AoiError, ValidationFailed

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class AoiGroup(click.Group):
    """The top-level group: subcommands are imported when they run (see `commands.load`)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(commands.COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return commands.load(cmd_name)

    def main(self, args: Any = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        """Click's standalone mode, except that a usage error (an unknown option, a bad
        value) is one line and status 1, where click prints three lines and exits 2."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:  # `aoi task`: its help
            click.echo(exc.format_message(), err=True)
            sys.exit(1)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "aoi"
            click.echo(f"Error: {exc.format_message()} (see `{where} -h`)", err=True)
            sys.exit(1)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        # an `Exit` (also -h and --version) comes back as its status; commands return None
        sys.exit(code if isinstance(code, int) and not isinstance(code, bool) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ValidationFailed as exc:
            for line in exc.problems:
                click.echo(line, err=True)
            raise click.exceptions.Exit(1) from None
        except AoiError as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            raise click.exceptions.Exit(130) from None
        except BrokenPipeError:  # `aoi log | head`: the reader left; not an error
            sys.stderr.close()
            raise click.exceptions.Exit(0) from None
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:  # a bug, not a user mistake: still one line by default
            if os.environ.get("AOI_DEBUG"):
                raise
            raise click.ClickException(
                f"internal error: {type(exc).__name__}: {exc} (AOI_DEBUG=1 shows the traceback)"
            ) from None


@click.group(cls=AoiGroup, context_settings=CONTEXT)
@click.option("-C", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="Run as if aoi was started in this folder.")
@click.version_option(__version__, prog_name="aoi")
@click.pass_context
def main(ctx: click.Context, directory: Path | None) -> None:
    """aoi: an organisation of AI agents whose whole state is a git repository.

    \b
    Example:
      aoi init acme && cd acme && aoi task new "Write the README" --assignee coo
    """
    if directory is not None and not directory.is_dir():
        raise click.ClickException(f"-C {directory}: no such folder")
    if ctx.invoked_subcommand == "hook":
        return  # git's hooks need no App; a commit of no org file imports no store
    from aoi_git.commands.cli_context import App

    ctx.obj = App(Path(directory or os.getcwd()))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
