from __future__ import annotations

import json

import click

from aoi_git.commands.cli_context import App
from aoi_git.commands.render import assignee_text, cost_text
from aoi_git.domain.lifecycle import reviewer_of
from aoi_git.domain.model import Kind, Status
from aoi_git.errors import AoiError
from aoi_git.org import person_actions, plan_choice
from aoi_git.store.txn import Txn, commit
from aoi_git.store.worktrees import open_workspace


@click.command()
@click.argument("task_id", required=False)
@click.option("--accept", "decision", flag_value="accept", help="Accept: its branch is merged.")
@click.option("--reject", "decision", flag_value="reject", help="Reject with -m feedback.")
@click.option("--choose", "choose", type=int, metavar="N", default=None,
              help="Choose plan N (from 1) of the task's alternative plans; -m says why.")
@click.option("-m", "--message", default="", help="Feedback (required with --reject).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def review(app: App, task_id: str | None, decision: str | None, choose: int | None,
           message: str, as_json: bool) -> None:
    """List tasks awaiting review, show one (summary, cost, diff), accept or reject it,
    or choose among a task's alternative plans.

    \b
    Examples:
      aoi review                      # what waits for a review
      aoi review t-4k2m               # the diff of aoi/t-4k2m, summary and cost
      aoi review t-4k2m --accept
      aoi review t-4k2m --reject -m "Add tests for the error path"
      aoi review t-4k2m --choose 2 -m "fewer hand-offs"   # one of its plans
    """
    if task_id is None and decision is not None:
        raise AoiError(f"--{decision} needs the task: aoi review ID --{decision}"
                       + (' -m "what to change"' if decision == "reject" else "")
                       + " (`aoi review` lists what waits)")
    org = app.org()
    if task_id is None:
        rows = [t for t in org.tasks.values() if t.status is Status.COMPLETED
                and t.kind is Kind.WORK]
        if as_json:
            click.echo(json.dumps([{"id": t.id, "title": t.title, "assignee": t.assignee,
                                    "routed_to": t.bookkeeping.routed_to,
                                    "reviewer": reviewer_of(t, org.tasks, org.config)}
                                   for t in rows], indent=2))
            return
        if not rows:
            click.echo("nothing waits for review")
            return
        for t in sorted(rows, key=lambda t: t.created or ""):
            rv = reviewer_of(t, org.tasks, org.config)
            click.echo(f"{t.id}  {assignee_text(t):<12} reviewer {rv:<10} {t.title}")
        return
    tid = org.resolve_id(task_id)
    t = org.tasks[tid]
    if choose is not None:
        if decision is not None:
            raise AoiError("give either --choose N or --accept/--reject, not both")

        def build_choice(txn: Txn) -> None:
            plan_choice.choose_by_person(txn, tid, choose, message, app.person,
                                         tasks=org.tasks, employees=org.employees,
                                         config=org.config, email=app.email)

        commit(app.store, build_choice, app.person, org.index.paths)
        click.echo(f"chose plan {choose} for {tid}")
        return
    if decision is None and t.bookkeeping.plan_choice and not as_json:
        click.echo(plan_choice.describe(t, plan_choice.plans_of(t)))
        click.echo(f"\nchoose with: aoi review {tid} --choose N -m \"why\"")
        return
    if decision is None:
        ws = open_workspace(app.store, org.config)
        info = {"id": t.id, "title": t.title, "status": t.status.value,
                "assignee": t.assignee, "routed_to": t.bookkeeping.routed_to,
                "summary": (t.result or {}).get("summary"),
                "branch": (t.result or {}).get("branch"), "cost": dict(t.cost),
                "diff": ws.diff(t.id)}
        if as_json:
            click.echo(json.dumps(info, indent=2))
            return
        click.echo(f"{t.id} [{t.status.value}] {t.title}  (by {assignee_text(t)})")
        click.echo(f"cost: {cost_text(t.cost)}")
        click.echo(f"summary:\n{info['summary'] or '(none)'}\n")
        click.echo(info["diff"] or "(no branch changes)")
        return
    person_actions.review(app.store, org, tid, decision == "accept", message, app.person,
                          app.email)
    click.echo(f"{'accepted' if decision == 'accept' else 'rejected'} {tid}")
