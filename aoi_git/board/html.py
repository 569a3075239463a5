"""The page around every view, and small pieces of markup; all text is escaped here."""

from __future__ import annotations

from html import escape
from urllib.parse import urlencode

from aoi_git.domain.model import Task

NAV = (("/", "Work"), ("/projects", "Projects"), ("/people", "People"),
       ("/inbox", "Needs you"), ("/cost", "Cost"))


def e(text: object) -> str:
    return escape(str(text), quote=True)


def page(title: str, body: str, *, org: str, commit: str | None, here: str,
         inbox: int) -> str:
    links = []
    for href, label in NAV:
        count = f' <span class="badge" id="inbox-count">{inbox}</span>' \
            if href == "/inbox" and inbox else ""
        cls = ' class="here"' if href == here else ""
        links.append(f'<a href="{href}"{cls}>{e(label)}{count}</a>')
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{e(title)} · {e(org)}</title>"
        '<link rel=stylesheet href="/static/board.css">'
        '<script src="/static/board.js" defer></script></head><body>'
        f'<header><strong class="org">{e(org)}</strong><nav>{"".join(links)}</nav>'
        f'<span class="commit" id="commit" title="the branch tip shown">'
        f'{e((commit or "no commits")[:10])}</span>'
        '<span class="live" id="live" title="live updates">●</span></header>'
        f'<main id="main" data-commit="{e(commit or "")}">{body}</main>'
        '<aside id="feed" aria-label="latest transitions"><h2>Live</h2><ol></ol></aside>'
        "</body></html>")


def task_link(t: Task) -> str:
    return f'<a href="/task/{e(t.id)}" class="tid">{e(t.id)}</a>'


def task_card(t: Task) -> str:
    who = f'<span class="who">@{e(t.assignee)}</span>' if t.assignee else ""
    labels = "".join(f'<span class="label">{e(lb)}</span>' for lb in t.labels[:4])
    kind = f'<span class="kind">{e(t.kind.value)}</span>' if t.kind.value != "work" else ""
    return (f'<li class="card st-{t.status.value}" data-task="{e(t.id)}">{task_link(t)} {kind}'
            f'<div class="title">{e(t.title)}</div>{who}{labels}</li>')


def query(**params: str | int) -> str:
    kept = {k: v for k, v in params.items() if v not in ("", 0, None)}
    return "?" + urlencode(kept) if kept else ""


def diff_block(diff: str) -> str:
    if not diff:
        return '<p class="muted">no branch changes</p>'
    rows = []
    for line in diff.splitlines():
        cls = ("add" if line.startswith("+") and not line.startswith("+++") else
               "del" if line.startswith("-") and not line.startswith("---") else
               "hunk" if line.startswith("@@") else
               "file" if line.startswith("diff ") else "")
        rows.append(f'<span class="{cls}">{e(line)}</span>' if cls else e(line))
    return '<pre class="diff">' + "\n".join(rows) + "</pre>"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"
