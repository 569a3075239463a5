from __future__ import annotations

import json

import click

from aoi_git.commands.cli_context import App
from aoi_git.errors import AoiError


@click.command()
@click.argument("root_id")
@click.option("--write", is_flag=True,
              help="Regenerate it from git history and commit it (with its SOP proposals).")
@click.option("--json", "as_json", is_flag=True,
              help="Machine-readable: the signals, SOP proposals and the text.")
@click.pass_obj
def retro(app: App, root_id: str, write: bool, as_json: bool) -> None:
    """Print the retrospective of a root task (retros/C1/C2/ROOT.md), or regenerate it.

    C1 and C2 are the first two characters of the id after `t-`, as in tasks/.

    The daemon writes it when the root finishes. Without one committed (or with --write)
    it is generated from git history: signals per task and employee, what went well and
    badly, the participants' journal entries verbatim, what people wrote, proposed SOPs.

    \b
    Examples:
      aoi retro t-4k2m
      aoi retro t-4k2m --json
      aoi retro t-4k2m --write      # regenerate and commit retros/4/k/t-4k2m.md
    """
    from aoi_git.evolution import retrospectives as retro_mod

    org = app.org()
    tid = org.resolve_id(root_id)
    task = org.tasks[tid]
    if task.parent is not None:
        top = task
        while top.parent and top.parent in org.tasks:
            top = org.tasks[top.parent]
        raise AoiError(f"{tid} is a subtask; retrospectives are per root task: "
                       f"`aoi retro {top.id}`")
    if task.kind.value != "work":
        raise AoiError(f"{tid} is a {task.kind.value} task; retrospectives are per root work "
                       "task (`aoi task list` shows them)")
    view = app.store.head()
    path = retro_mod.retro_path(tid, view)
    if write:
        oid, r = retro_mod.commit_retro(app.store, org.tasks, org.employees,
                                        org.config, tid, app.person, org.index.paths)
        if as_json:
            click.echo(json.dumps({**r.to_dict(), "commit": oid}, indent=2))
        else:
            click.echo(f"{'wrote' if oid else 'unchanged:'} {path}"
                       + (f" ({oid[:10]})" if oid else ""))
        return
    committed = view.read(path)
    if as_json:
        r = retro_mod.build(view, app.store, org.tasks, org.employees, org.config, tid)
        out = r.to_dict()
        out["committed"] = committed is not None
        if committed is not None:
            out["text"] = committed.decode("utf-8", "replace")
        click.echo(json.dumps(out, indent=2))
        return
    if committed is not None:
        click.echo(committed.decode("utf-8", "replace"), nl=False)
        return
    r = retro_mod.build(view, app.store, org.tasks, org.employees, org.config, tid)
    click.echo(r.text, nl=False)
    click.echo(f"(generated, not committed: `aoi retro {tid} --write` commits {path})",
               err=True)
