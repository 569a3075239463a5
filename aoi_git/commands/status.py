from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterable
from typing import Any

import click

from aoi_git.commands.cli_context import App
from aoi_git.domain.model import Employee, Kind, Status
from aoi_git.org.person_edits import pending_problems, start_changed_org_files
from aoi_git.runtime import credentials
from aoi_git.runtime.scheduler import SchedState, resumable, waits_on_person
from aoi_git.store.clone_setup import SETUP_FIX, missing_setup
from aoi_git.store.history import records
from aoi_git.store.trailers import COST_TRAILERS


def _daemon_state(app: App) -> dict[str, Any]:
    path = app.root / ".aoi" / "daemon" / "status.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if data.get("stopped"):
        return {**data, "running": []}
    try:
        import os

        os.kill(int(data["pid"]), 0)
    except (OSError, KeyError, ValueError):
        return {**data, "running": [], "stopped": True, "dead": True}
    return data


def _claude_missing(employees: Iterable[Employee]) -> str | None:
    """What this shell's environment lacks for the org's Claude employees, with the fix."""
    import os

    missing = credentials.needing_claude(employees, os.environ)
    if not missing:
        return None
    return f"{credentials.missing_message(missing, os.environ)}\n  fix: {credentials.FIX}"


def collect(app: App) -> dict[str, Any]:
    changed = start_changed_org_files(app.root)  # git stats the files while the org loads
    org = app.org()
    now = time.time()
    daemon = _daemon_state(app)
    running = daemon.get("running", [])
    run_by_emp: dict[str, int] = {}
    for r in running:
        run_by_emp[r["employee"]] = run_by_emp.get(r["employee"], 0) + 1
    queue: dict[str, list[str]] = {}
    open_tasks = org.open_tasks()
    waiting = [t for t in open_tasks  # (a preempted task waits in its queue to resume)
               if (t.status is Status.PENDING or resumable(t)) and t.kind is not Kind.HUMAN
               and t.assignee]
    for t in sorted(waiting, key=lambda t: (-t.priority, t.created or "", t.id)):
        assert t.assignee is not None
        queue.setdefault(t.assignee, []).append(t.id)
    state = SchedState(org.tasks, org.employees, org.config)
    needs_person = [
        {"id": t.id, "status": t.status.value, "kind": t.kind.value, "title": t.title,
         "assignee": t.assignee}
        for t in open_tasks
        if not t.is_terminal and (waits_on_person(t, state) or t.status is Status.FAILED)
    ]
    today = dt.date.today().isoformat()
    cost_today = 0.0
    # git reads back to midnight and hands over only the commits that cost money
    for rec in records(app.root, since=f"{today} 00:00", having=f"{COST_TRAILERS['usd']}: "):
        cost_today += rec.cost.get("usd", 0.0)
    return {
        "org": org.config.name,
        "daemon": {"running": bool(daemon) and not daemon.get("stopped"),
                   "pid": daemon.get("pid"), "breakers": daemon.get("breakers", {}),
                   "day_cap": daemon.get("day_cap")},
        "employees": [
            {"id": e.id, "role": e.role, "status": e.status.value, "backend": e.backend.kind,
             "slots": e.capacity.concurrency, "busy": run_by_emp.get(e.id, 0),
             "queue": queue.get(e.id, [])}
            for e in sorted(org.employees.values(), key=lambda e: e.id)
        ],
        "running": [{**r, "elapsed_s": round(now - r["started"], 1)} for r in running],
        "queues_by_role": {k: v for k, v in queue.items() if k.startswith("role:")},
        "needs_person": needs_person,
        "invalid": pending_problems(app, None, org, changed),
        "problems": daemon.get("problems", []),
        "claude_credentials": _claude_missing(org.employees.values()),
        "cost_today_usd": round(cost_today, 6),
        "counts": org.rows.counts(),
        "setup_missing": missing_setup(app.store.repo),
    }


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def status(app: App, as_json: bool) -> None:
    """Employees and their slots, running tasks, queues, what needs a person, invalid files,
    and today's cost.

    \b
    Example:
      aoi status
    """
    info = collect(app)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    d = info["daemon"]
    state = f"running (pid {d['pid']})" if d["running"] else "not running"
    click.echo(f"org {info['org']}: daemon {state}")
    if info["setup_missing"]:
        click.echo(f"this clone lacks {', '.join(info['setup_missing'])}: {SETUP_FIX}")
    counts = ", ".join(f"{k} {v}" for k, v in info["counts"].items() if v)
    click.echo(f"tasks: {counts or 'none'}")
    click.echo("\nemployees:")
    for e in info["employees"]:
        q = f"  queue: {' '.join(e['queue'][:5])}" + (" ..." if len(e["queue"]) > 5 else "") \
            if e["queue"] else ""
        click.echo(f"  {e['id']:<12} {e['role']:<12} {e['status']:<10} {e['backend']:<7} "
                   f"slots {e['busy']}/{e['slots']}{q}")
    if info["running"]:
        click.echo("\nrunning:")
        for r in info["running"]:
            click.echo(f"  {r['task']}  {r['employee']:<12} {r['elapsed_s']:>7.1f}s")
    for role, ids in info["queues_by_role"].items():
        click.echo(f"\nqueue {role}: {' '.join(ids[:10])}")
    last = "" if d["running"] else " (at the daemon's last run)"
    for key, b in d["breakers"].items():
        why = f": {b['why']}" if b.get("why") else ""
        fix = f"\n  fix: {b['fix']}" if b.get("fix") else ""
        if b.get("held"):
            click.echo(f"\nbackend {key} held until a person acts{last}{why}{fix}")
        elif (b.get("until") or 0) > time.time():
            click.echo(f"\nbackend {key} paused (circuit breaker) for "
                       f"{b['until'] - time.time():.0f}s{why}{fix}")
    if info["claude_credentials"] and not d["breakers"].get("claude", {}).get("held"):
        click.echo(f"\nClaude, as seen from this shell: {info['claude_credentials']}")
    if d.get("day_cap"):
        click.echo(f"\nno new agents today{last}: {d['day_cap']}")
    if info["needs_person"]:
        click.echo("\nneeds a person:")
        for t in info["needs_person"]:
            who = t["assignee"] or "-"
            click.echo(f"  {t['id']}  {t['status']:<10} {t['kind']:<6} {who:<10} {t['title']}")
    if info["problems"]:
        click.echo("\ndaemon problems (tracebacks in .aoi/daemon.log):")
        for p in info["problems"]:
            click.echo(f"  {p['what']}: {p['error']}")
    if info["invalid"]:
        click.echo("\ninvalid files (not committed, not acted on):")
        for line in info["invalid"]:
            click.echo(f"  {line}")
    click.echo(f"\ncost today: ${info['cost_today_usd']:.4f}")
