from __future__ import annotations

import json
from pathlib import Path

import click

from aoi_git.commands.cli_context import App
from aoi_git.domain.model import Employee
from aoi_git.errors import AoiError
from aoi_git.evolution import market
from aoi_git.org.tool_access import tool_access
from aoi_git.org.validate import Validator
from aoi_git.store.txn import Txn, commit


def _catalogue(app: App, refresh: bool) -> market.Catalogue:
    """The markets of the org around the current folder; the bundled one outside an org."""
    try:
        root = app.root
    except AoiError:
        return market.load_catalogue(None, None)
    return market.load_catalogue(root, app.org().config, refresh=refresh)


def _warn(cat: market.Catalogue) -> None:
    for line in cat.problems:
        click.echo(f"warning: {line}", err=True)


@click.group("market")
def market_cmd() -> None:
    """Browse the talent markets (the bundled one, then aoi.yaml `markets:`) and import
    personas as talent packages.

    \b
    Example:
      aoi market search "python backend engineer" --explain
    """


@market_cmd.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--refresh", is_flag=True, help="Fetch git markets now, however recent.")
@click.pass_obj
def list_(app: App, as_json: bool, refresh: bool) -> None:
    """List every talent package, market by market (the first market wins an id).

    \b
    Examples:
      aoi market list
      aoi market list --json | jq -r '.[].id'
    """
    cat = _catalogue(app, refresh)
    _warn(cat)
    if as_json:
        click.echo(json.dumps([p.to_json() for p in cat.packages], indent=2))
        return
    for p in cat.packages:
        desc = " ".join(p.talent.description.split())
        click.echo(f"{p.id:<22} {p.talent.role:<12} {p.market:<10} {desc[:80]}")


@market_cmd.command("search")
@click.argument("query")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--explain", is_flag=True, help="Show each field's share of the score.")
@click.option("-n", "--limit", type=int, default=10, show_default=True,
              help="How many talents to show.")
@click.option("--refresh", is_flag=True, help="Fetch git markets now, however recent.")
@click.pass_obj
def search(app: App, query: str, as_json: bool, explain: bool, limit: int,
           refresh: bool) -> None:
    """Rank talents by relevance to QUERY: role (weight 3), tags (2.5), skills (2),
    description (1), plus a bonus when QUERY names the role.

    \b
    Examples:
      aoi market search "threat model audit"
      aoi market search "python backend engineer" --explain
    """
    if not market.tokens(query):
        raise AoiError("the query has no searchable words: e.g. aoi market search "
                       "\"python backend engineer\"")
    cat = _catalogue(app, refresh)
    _warn(cat)
    matches = market.search(cat.packages, query, limit=limit)
    if as_json:
        click.echo(json.dumps([m.to_json(explain) for m in matches], indent=2))
        return
    if not matches:
        click.echo("no talent matches; `aoi market list` shows them all")
        return
    for i, m in enumerate(matches, 1):
        t = m.package.talent
        click.echo(f"{i:>2}. {t.id:<22} {t.role:<12} {m.score:6.2f}  {m.package.market}")
        if explain:
            click.echo(f"      {m.explain()}")


@market_cmd.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--id", "talent_id", help="The talent id (default: from the persona's name).")
@click.pass_obj
def import_(app: App, file: Path, talent_id: str | None) -> None:
    """Turn a persona (Markdown with front matter `name`, `description`, optional `tools`,
    `tags`, `model`; the body = its instructions) into talents/ID/, as one commit.

    \b
    Example:
      aoi market import ~/.claude/agents/python-pro.md --id python-pro
    """
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AoiError(f"cannot read {file}: {exc}") from None
    tid, files = market.persona_package(text, source=str(file), talent_id=talent_id)
    org = app.org()
    paths = {f"talents/{tid}/{rel}": data for rel, data in files.items()}

    def build(txn: Txn) -> None:
        if txn.view.exists(f"talents/{tid}"):
            raise AoiError(f"talents/{tid} exists already: choose another --id "
                           "(an imported talent never overwrites one)")
        problems = Validator.for_org(org).check(paths, app.person)
        if problems:
            raise AoiError("; ".join(problems))
        for path, data in paths.items():
            txn.put_file(path, data)
        txn.subject = f"aoi: import talent {tid} from {file.name}"
        txn.trailers.append(("Aoi-Talent", tid))

    commit(app.store, build, app.person)
    click.echo(f"imported talents/{tid}/ (hire with `aoi hire {tid} --as ID`)")
    talent = app.org().talents.get(tid)
    if talent is not None:
        holder = Employee(id=tid, role=talent.role, talent=tid, tools=talent.tools)
        denied = tool_access(holder, org.config, talent).denied
        if denied:
            click.echo(f"note: its holders will not get {', '.join(denied)}: aoi.yaml "
                       f"`tools.gated` does not grant them to the role {talent.role!r}")
