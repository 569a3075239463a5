from __future__ import annotations

import json

import click

from aoi_git.commands.cli_context import App


@click.command()
@click.option("--employee", "employee", metavar="ID", default=None,
              help="Only this employee's runs, reviews of its work, cost and finished tasks.")
@click.option("--since", "since", metavar="DATE", default=None,
              help="Only events at or after DATE (2025-01-31, 2025-01-31T09:00, '2 weeks ago').")
@click.option("--roots", "max_roots", type=int, default=20, show_default=True,
              help="Most recent roots to list in the text output (0 = all).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (every root).")
@click.pass_obj
def stats(app: App, employee: str | None, since: str | None, max_roots: int,
          as_json: bool) -> None:
    """Throughput, lead time, review pass rate, retries and cost, per employee and per root,
    and plan shapes compared.

    Everything is computed from commit trailers in one pass over `git log` (see
    `aoi_git/stats.py` for how each number is counted); plan shapes (subtasks, planning
    rounds, rejections, cost, lead time) from the retrospectives' plan records.

    \b
    Examples:
      aoi stats
      aoi stats --employee eng-1 --since 2025-01-01
      aoi stats --since "2 weeks ago" --json
    """
    from aoi_git.evolution import plan_history
    from aoi_git.evolution.stats import compute, parse_since, render

    ts = parse_since(since, app.root) if since else None
    st = compute(app.root, since=ts, employee=employee)
    shapes = plan_history.shapes(plan_history.read_records(app.store.head()))
    if as_json:
        click.echo(json.dumps({**st.to_dict(),
                               "plan_shapes": [s.to_dict() for s in shapes]}, indent=2))
        return
    click.echo(render(st, max_roots))
    click.echo("\n" + plan_history.render_shapes(shapes))
