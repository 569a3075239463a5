"""The board's pages as HTML (the part inside <main>): pure functions of the read model."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from aoi_git.board import svg
from aoi_git.board.daemon_view import DaemonView
from aoi_git.board.html import diff_block, duration, e, query, task_card, task_link
from aoi_git.board.people import cards, hand_offs
from aoi_git.board.read import PER_COLUMN, Ask, BoardData, CostDay, Filters, Progress
from aoi_git.domain.model import Kind, Status, Task
from aoi_git.store.history import Record, body_text

PROJECTS_PER_PAGE = 100
TREE_ROWS = 400
GRAPH_NODES = 120


@dataclass(frozen=True)
class View:
    title: str
    here: str  # the navigation entry it belongs to
    body: str


def _options(values: Sequence[tuple[str, str]], chosen: str, empty: str) -> str:
    opts = [f'<option value="">{e(empty)}</option>']
    for value, label in values:
        sel = " selected" if value == chosen else ""
        opts.append(f'<option value="{e(value)}"{sel}>{e(label)}</option>')
    return "".join(opts)


def work(data: BoardData, f: Filters, offset: int = 0) -> View:
    projects = [(t.id, f"{t.id} {t.title[:40]}") for t, _ in data.projects()[:300]]
    if f.project and f.project not in dict(projects) and f.project in data.tasks:
        projects.insert(0, (f.project, f.project))
    people = [(x, x) for x in sorted({*data.org.employees, *data.org.config.humans})]
    form = (
        '<form class="filters" method="get" action="/">'
        f'<select name="project" aria-label="project">'
        f'{_options(projects, f.project, "all projects")}</select>'
        f'<select name="label" aria-label="label">'
        f'{_options([(x, x) for x in data.labels], f.label, "all labels")}</select>'
        f'<select name="employee" aria-label="employee">'
        f'{_options(people, f.employee, "everyone")}</select>'
        '<button type="submit">Filter</button>'
        + ('<a href="/">clear</a>' if f.any else "") + "</form>")
    cols = []
    total = 0
    for col in data.columns(f, PER_COLUMN, offset):
        total += col.count
        more = ""
        if col.count > offset + len(col.tasks):
            nxt = query(project=f.project, label=f.label, employee=f.employee,
                        offset=offset + PER_COLUMN)
            more = (f'<a class="more" href="/{nxt}">{col.count - offset - len(col.tasks)} '
                    "more…</a>")
        cards_ = "".join(task_card(t) for t in col.tasks)
        cols.append(f'<section class="column" data-status="{col.status.value}">'
                    f'<h2>{e(col.status.value)} <span class="count">{col.count}</span></h2>'
                    f"<ol>{cards_}</ol>{more}</section>")
    body = (f'<h1>Work <span class="count" id="total">{total}</span></h1>{form}'
            f'<div class="columns">{"".join(cols)}</div>')
    return View("Work", "/", body)


def _feedback(t: Task) -> str:
    if not t.feedback:
        return '<p class="muted">none</p>'
    items = []
    for fb in t.feedback:
        if isinstance(fb, dict):
            items.append(f'<li><span class="who">{e(fb.get("from", ""))}</span> '
                         f'<span class="kind">{e(fb.get("kind", ""))}</span> '
                         f'<span class="muted">{e(fb.get("at", ""))}</span>'
                         f'<div class="text">{e(fb.get("text", ""))}</div></li>')
        else:
            items.append(f"<li>{e(fb)}</li>")
    return f'<ol class="feedback">{"".join(items)}</ol>'


def _trail(records: Sequence[Record], tid: str) -> str:
    if not records:
        return '<p class="muted">no commits yet</p>'
    rows = []
    for rec in records:
        when = dt.datetime.fromtimestamp(rec.time).strftime("%Y-%m-%d %H:%M:%S")
        moves = ", ".join(tr for t, tr in rec.transitions if t == tid) or "—"
        usd = rec.cost.get("usd")
        cost = f"${usd:.4f}" if usd else ""
        note = body_text(rec)
        rows.append(f"<tr><td><code>{e(rec.commit[:10])}</code></td><td>{e(when)}</td>"
                    f"<td>{e(rec.actor)}</td><td>{e(moves)}</td><td>{e(cost)}</td>"
                    f"<td>{e(rec.subject)}"
                    + (f'<div class="muted">{e(note[:400])}</div>' if note else "")
                    + "</td></tr>")
    return ('<table class="trail"><thead><tr><th>commit</th><th>time</th><th>actor</th>'
            "<th>transition</th><th>cost</th><th>message</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def action_forms(t: Task, csrf: str, back: str = "") -> str:
    """The buttons a person acts with: the same decisions as `aoi review` / `aoi answer`
    (`back`: the page to return to afterwards, else the task's)."""
    token = f'<input type="hidden" name="csrf" value="{e(csrf)}">'
    if back:
        token += f'<input type="hidden" name="back" value="{e(back)}">'
    if t.kind is Kind.WORK and t.status is Status.COMPLETED:
        return (f'<form class="act review" method="post" action="/task/{e(t.id)}/review">'
                f"{token}<textarea name=message placeholder=\"feedback (needed to reject)\" "
                'aria-label="feedback"></textarea>'
                '<button name="decision" value="accept" class="accept">Accept</button>'
                '<button name="decision" value="reject" class="reject">Reject</button></form>')
    if t.kind is Kind.HUMAN and t.status is Status.PENDING:
        return (f'<form class="act answer" method="post" action="/task/{e(t.id)}/answer">'
                f'{token}<textarea name="text" placeholder="your answer" '
                'aria-label="answer"></textarea>'
                '<button class="accept">Answer</button></form>')
    return ""


def task_page(data: BoardData, t: Task, diff: str, records: Sequence[Record], csrf: str,
              error: str = "") -> View:
    res = t.result or {}
    meta = [("status", t.status.value), ("kind", t.kind.value),
            ("assignee", t.assignee or "—"), ("reviewer", t.reviewer or "default"),
            ("project", data.project_of.get(t.id, t.id)), ("priority", str(t.priority)),
            ("labels", ", ".join(t.labels) or "—"), ("attempts", str(t.attempts)),
            ("cost", f"${t.cost.get('usd', 0.0):.4f}"), ("created", t.created or "—")]
    meta_html = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in meta)
    links = []
    if t.parent and t.parent in data.tasks:
        links.append(f"parent {task_link(data.tasks[t.parent])}")
    links += [f"after {task_link(data.tasks[d])}" for d in t.depends_on if d in data.tasks]
    kids = [k for k in data.children.get(t.id, {}) if k in data.tasks][:50]
    if kids:
        links.append("subtasks " + " ".join(task_link(data.tasks[k]) for k in kids))
    qa = ""
    if t.question:
        qa += f"<h2>Question</h2><p>{e(t.question)}</p>"
    if t.answer:
        qa += f"<h2>Answer</h2><p>{e(t.answer)}</p>"
    result = '<p class="muted">none yet</p>'
    if res:
        rows = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in res.items()
                       if k != "summary")
        result = (f'<pre class="summary">{e(res.get("summary", ""))}</pre>'
                  f'<dl class="meta">{rows}</dl>')
    err = f'<p class="error" role="alert">{e(error)}</p>' if error else ""
    body = (f'<h1>{task_link(t)} <span class="status st-{t.status.value}">'
            f'{e(t.status.value)}</span> {e(t.title)}</h1>{err}'
            f'{action_forms(t, csrf)}<dl class="meta">{meta_html}</dl>'
            f'<p class="links">{" · ".join(links)}</p>'
            f'<h2>Description</h2><pre class="description">{e(t.description)}</pre>{qa}'
            f"<h2>Result</h2>{result}<h2>Feedback</h2>{_feedback(t)}"
            f"<h2>Branch diff</h2>{diff_block(diff)}"
            f"<h2>Audit trail</h2>{_trail(records, t.id)}")
    return View(t.id, "/", body)


def _bar(p: Progress) -> str:
    return (f'<span class="progress" title="{p.done}/{p.total} done">'
            f'<span style="width:{p.percent}%"></span></span> {p.percent}% '
            f'<span class="muted">{p.done}/{p.total}</span>')


def projects(data: BoardData, offset: int = 0) -> View:
    rows = data.projects()
    shown = rows[offset:offset + PROJECTS_PER_PAGE]
    items = "".join(
        f'<tr><td>{task_link(t)}</td><td><a href="/project/{e(t.id)}">{e(t.title)}</a></td>'
        f'<td class="st-{t.status.value}">{e(t.status.value)}</td><td>{_bar(p)}</td>'
        f"<td>${p.usd:.4f}</td></tr>" for t, p in shown)
    more = ""
    if len(rows) > offset + PROJECTS_PER_PAGE:
        more = (f'<a class="more" href="/projects?offset={offset + PROJECTS_PER_PAGE}">'
                f"{len(rows) - offset - PROJECTS_PER_PAGE} more…</a>")
    body = (f'<h1>Projects <span class="count">{len(rows)}</span></h1>'
            '<table class="projects"><thead><tr><th>id</th><th>title</th><th>status</th>'
            f"<th>progress</th><th>cost</th></tr></thead><tbody>{items}</tbody></table>{more}")
    return View("Projects", "/projects", body)


def project(data: BoardData, root: Task) -> View:
    rows = data.subtree(root.id, TREE_ROWS)
    p = data.progress.get(root.id, Progress())
    tree = "".join(
        f'<li style="margin-left:{depth * 1.2}em" class="st-{t.status.value}">'
        f'{task_link(t)} <span class="status">{e(t.status.value)}</span> '
        f'{"@" + e(t.assignee) if t.assignee else ""} {e(t.title)}'
        + (f' <span class="muted">after {e(", ".join(t.depends_on))}</span>'
           if t.depends_on else "") + "</li>" for depth, t in rows)
    cut = (f'<p class="muted">first {TREE_ROWS} of {p.total} tasks</p>'
           if p.total > TREE_ROWS else "")
    graph_tasks = [t for _, t in rows[:GRAPH_NODES]]
    gcut = (f'<p class="muted">graph of the first {GRAPH_NODES} tasks</p>'
            if len(rows) > GRAPH_NODES else "")
    body = (f"<h1>{task_link(root)} {e(root.title)}</h1><p>{_bar(p)} · ${p.usd:.4f}</p>"
            f'<h2>Dependency graph</h2>{gcut}<div class="scroll">'
            f"{svg.dependency_graph(graph_tasks)}</div>"
            f'<h2>Task tree</h2>{cut}<ol class="tree">{tree}</ol>')
    return View(root.id, "/projects", body)


def people(data: BoardData, daemon: DaemonView, now: float) -> View:
    everyone = cards(data, daemon, now)
    offs = hand_offs(data)
    rows = "".join(
        f'<tr class="state-{c.state.value}" data-employee="{e(c.id)}"><td>'
        f'<a href="/?employee={e(c.id)}">{e(c.id)}</a></td><td>{e(c.name)}</td>'
        f"<td>{e(c.role)}</td><td>{e(c.reports_to or '—')}</td>"
        f'<td class="state">{e(c.state.value)}</td>'
        f"<td>{task_link(c.current) + ' ' + e(c.current.title[:50]) if c.current else '—'}</td>"
        f'<td class="elapsed"{_started(c.started)}>{e(duration(c.elapsed_s))}</td>'
        f"<td>{c.open_count}</td><td>${c.usd:.4f}</td></tr>"
        for c in everyone)
    offs_html = "".join(
        f'<li class="handoff {e(h.kind)}">{e(h.source)} → {e(h.target)} '
        f'<span class="kind">{e(h.kind)}</span> <a href="/task/{e(h.task)}">{e(h.task)}</a></li>'
        for h in offs) or '<li class="muted">none open</li>'
    state = f"daemon running (pid {daemon.pid})" if daemon.running else "daemon not running"
    body = (f'<h1>People and agents</h1><p class="muted">{e(state)}</p>'
            f'<div class="scroll">{svg.org_chart(everyone, offs)}</div>'
            '<table class="people"><thead><tr><th>id</th><th>name</th><th>role</th>'
            "<th>reports to</th><th>state</th><th>current task</th><th>elapsed</th>"
            f"<th>open</th><th>cost</th></tr></thead><tbody>{rows}</tbody></table>"
            f'<h2>Hand-offs</h2><ul class="handoffs">{offs_html}</ul>')
    return View("People", "/people", body)


def _started(started: float | None) -> str:
    return f' data-started="{started:.3f}"' if started is not None else ""


def inbox(asks: Sequence[Ask], diffs: dict[str, str], csrf: str) -> View:
    if not asks:
        return View("Needs you", "/inbox",
                    '<h1>Needs you</h1><p class="muted">nothing waits on a person</p>')
    items = []
    for a in asks:
        t = a.task
        about = f" about {task_link(a.about)} {e(a.about.title)}" if a.about else ""
        detail = ""
        if a.kind == "review":
            summary = (t.result or {}).get("summary", "")
            detail = (f'<pre class="summary">{e(summary)}</pre>'
                      + (f"<details open><summary>diff</summary>{diff_block(diffs[t.id])}"
                         "</details>" if t.id in diffs else ""))
        else:
            detail = f'<pre class="description">{e(t.question or t.description)}</pre>'
        items.append(f'<li class="ask {a.kind}" data-task="{e(t.id)}">'
                     f'<span class="kind">{e(a.kind)}</span> {task_link(t)} {e(t.title)}'
                     f'{" by @" + e(t.assignee) if t.assignee and a.kind == "review" else ""}'
                     f"{about}{detail}{action_forms(t, csrf, '/inbox')}</li>")
    body = (f'<h1>Needs you <span class="count">{len(asks)}</span></h1>'
            f'<ol class="asks">{"".join(items)}</ol>')
    return View("Needs you", "/inbox", body)


def cost(data: BoardData, today_usd: float, days: Sequence[CostDay]) -> View:
    per_project = {t.id: p.usd for t, p in data.projects() if p.usd}
    body = (f'<h1>Cost</h1><p class="today">today <strong id="cost-today">'
            f"${today_usd:.4f}</strong></p>"
            f"<h2>Per day (last {len(days)} days)</h2>{svg.cost_chart(days)}"
            f'<h2>Per project</h2>{svg.bar_rows(per_project, "/project/")}'
            f'<h2>Per employee</h2>{svg.bar_rows(data.usd_by_employee, "/?employee=")}')
    return View("Cost", "/cost", body)

