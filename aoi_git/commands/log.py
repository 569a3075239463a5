from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable

import click

from aoi_git.commands.cli_context import App
from aoi_git.store.history import Record, body_text, records

_GREP_AT_MOST = 200  # task ids git's `--grep` is given at once; more: every commit is read


@click.command()
@click.argument("task_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def log(app: App, task_id: str | None, as_json: bool) -> None:
    """The audit trail from commit trailers: time, actor, transition, cost.

    With a task id, that task and its whole subtree (a project's story), in order.

    \b
    Examples:
      aoi log
      aoi log t-4k2m --json
    """
    wanted: set[str] | None = None
    if task_id:
        org = app.org()
        root = org.resolve_id(task_id)
        # the compact rows' links, read in place: no row built, no finished task parsed
        kids: dict[str, list[str]] = {}
        abouts: list[tuple[str, tuple[str, ...]]] = []
        for tid, parent, about, _project, _finished in org.rows.links():
            if parent:
                kids.setdefault(parent, []).append(tid)
            if about:
                abouts.append((tid, about))
        wanted, stack = {root}, [root]
        while stack:
            for k in kids.get(stack.pop(), []):
                if k not in wanted:
                    wanted.add(k)
                    stack.append(k)
        for tid, about in abouts:  # review and human tasks about the subtree
            if any(a in wanted for a in about):
                wanted.add(tid)
    rows = []
    for rec in _records(app, wanted):
        trans = rec.transitions if wanted is None else [
            (t, tr) for t, tr in rec.transitions if t in wanted]
        if not trans:
            continue
        rows.append((rec, trans))
    if as_json:
        click.echo(json.dumps([
            {"commit": r.commit, "time": r.time, "actor": r.actor,
             "transitions": [{"task": t, "transition": tr} for t, tr in trans],
             "cost": r.cost, "subject": r.subject, "note": body_text(r)}
            for r, trans in rows], indent=2))
        return
    for r, trans in rows:
        when = dt.datetime.fromtimestamp(r.time).strftime("%Y-%m-%d %H:%M:%S")
        cost = f"  ${r.cost['usd']:.4f}" if r.cost.get("usd") else ""
        for tid, tr in trans:
            click.echo(f"{when}  {r.actor:<22}  {tid:<14}  {tr:<22}{cost}")
        note = body_text(r)
        if note:
            for line in note.splitlines()[:3]:
                click.echo(f"{'':21}  {line}")


def _records(app: App, wanted: set[str] | None) -> Iterable[Record]:
    """The aoi commits naming a task in `wanted` (all of them for None), oldest first: from
    the history index when one was built (`.aoi/cache/history.sqlite`: the commits of these
    tasks alone), else from git, which reads only the commits that name them."""
    if wanted is None:
        return records(app.root)
    if app.store.history.path.exists():
        found = app.store.history.records("HEAD", wanted)
        if found is not None:
            return found
    return records(app.root, tasks=sorted(wanted) if len(wanted) <= _GREP_AT_MOST else ())
