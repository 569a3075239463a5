from __future__ import annotations

import click

from aoi_git.commands.cli_context import App
from aoi_git.commands.render import dot, mermaid, tree_lines


@click.command()
@click.argument("task_id", required=False)
@click.pass_obj
def tree(app: App, task_id: str | None) -> None:
    """Show the task tree, indented, with statuses and assignees.

    \b
    Examples:
      aoi tree             # every root and its subtasks
      aoi tree t-4k2m      # one project
    """
    org = app.org()
    roots = [org.resolve_id(task_id)] if task_id else None
    for line in tree_lines(org.tasks, roots):
        click.echo(line)


@click.command()
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid",
              show_default=True, help="Mermaid (paste into Markdown) or Graphviz DOT.")
@click.pass_obj
def graph(app: App, fmt: str) -> None:
    """Print the task graph: solid edges are subtasks, dashed are dependencies.

    \b
    Examples:
      aoi graph > tasks.mmd
      aoi graph --format dot | dot -Tsvg > tasks.svg
    """
    org = app.org()
    click.echo((mermaid if fmt == "mermaid" else dot)(org.tasks), nl=False)
