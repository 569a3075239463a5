"""Drawings rendered on the server as inline SVG: a project's dependency graph, the org
chart with its hand-offs, and cost over time. No script draws them, so they show in the
first paint and in any browser."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from aoi_git.board.people import Card, HandOff
from aoi_git.board.read import CostDay
from aoi_git.domain.model import Task

NODE_W, NODE_H, GAP_X, GAP_Y = 170, 40, 60, 16


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n - 1] + "…"


def dependency_graph(tasks: Sequence[Task]) -> str:
    """Tasks in layers left to right: a task right of its parent and of what it depends on;
    solid edges are subtasks, dashed are dependencies."""
    ids = {t.id: t for t in tasks}
    layer: dict[str, int] = {}

    def layer_of(tid: str, path: frozenset[str] = frozenset()) -> int:
        if tid in layer:
            return layer[tid]
        if tid in path:  # a cycle (validation reports it): cut it here
            return 0
        t = ids[tid]
        before = [d for d in t.depends_on if d in ids]
        if t.parent in ids:
            before.append(str(t.parent))
        value = max((layer_of(b, path | {tid}) + 1 for b in before), default=0)
        layer[tid] = value
        return value

    rows: dict[int, int] = {}
    pos: dict[str, tuple[int, int]] = {}
    for t in tasks:
        col = layer_of(t.id)
        row = rows.get(col, 0)
        rows[col] = row + 1
        pos[t.id] = (col * (NODE_W + GAP_X) + 8, row * (NODE_H + GAP_Y) + 8)
    width = (max(rows, default=0) + 1) * (NODE_W + GAP_X)
    height = max(rows.values(), default=1) * (NODE_H + GAP_Y) + 16
    parts = [f'<svg class="graph" xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="dependency graph">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" '
             'markerWidth="6" markerHeight="6" orient="auto-start-reverse">'
             '<path d="M0,0 L10,5 L0,10 z" fill="#667"/></marker></defs>']
    for t in tasks:
        x2, y2 = pos[t.id]
        sources = [(d, "dep") for d in t.depends_on if d in pos]
        if t.parent in pos:
            sources.append((str(t.parent), "sub"))
        for src, kind in sources:
            x1, y1 = pos[src]
            a, b = x1 + NODE_W, y1 + NODE_H // 2
            c, d = x2, y2 + NODE_H // 2
            mid = (a + c) // 2
            dash = ' stroke-dasharray="5 4"' if kind == "dep" else ""
            parts.append(f'<path class="edge {kind}" d="M{a},{b} C{mid},{b} {mid},{d} {c},{d}" '
                         f'fill="none" stroke="#667"{dash} marker-end="url(#arrow)"/>')
    for t in tasks:
        x, y = pos[t.id]
        parts.append(
            f'<a href="/task/{escape(t.id)}"><g class="node st-{t.status.value}">'
            f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="6"/>'
            f'<text x="{x + 8}" y="{y + 16}" class="nid">{escape(t.id)} · '
            f'{escape(t.status.value)}</text>'
            f'<text x="{x + 8}" y="{y + 32}">{escape(_clip(t.title, 26))}</text>'
            f'<title>{escape(t.title)}</title></g></a>')
    parts.append("</svg>")
    return "".join(parts)


CARD_W, CARD_H, CARD_GAP_X, CARD_GAP_Y = 150, 58, 20, 50
HANDOFF_COLOURS = {"review": "#b35c00", "question": "#8a2be2", "subtask": "#1f6fb2"}


def org_chart(cards: Sequence[Card], hand_offs: Sequence[HandOff]) -> str:
    """Everyone in a tree by `reports_to` (top down), with the open hand-offs as arrows."""
    by_id = {c.id: c for c in cards}
    kids: dict[str | None, list[str]] = {}
    for c in cards:
        boss = c.reports_to if c.reports_to in by_id and c.reports_to != c.id else None
        kids.setdefault(boss, []).append(c.id)
    pos: dict[str, tuple[float, float]] = {}
    next_x = [0.0]

    def place(cid: str, depth: int, seen: frozenset[str]) -> float:
        children = [k for k in kids.get(cid, []) if k not in seen]
        y = depth * (CARD_H + CARD_GAP_Y) + 10
        if not children:
            x = next_x[0]
            next_x[0] += CARD_W + CARD_GAP_X
        else:
            xs = [place(k, depth + 1, seen | {cid}) for k in children]
            x = (xs[0] + xs[-1]) / 2
        pos[cid] = (x, y)
        return x

    for top in kids.get(None, []):
        place(top, 0, frozenset())
    for c in cards:  # anyone in a reporting cycle
        if c.id not in pos:
            place(c.id, 0, frozenset())
    width = int(max(next_x[0], CARD_W)) + 20
    height = int(max((y for _, y in pos.values()), default=0)) + CARD_H + 20
    parts = [f'<svg class="orgchart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="org chart">', "<defs>"]
    for kind, colour in HANDOFF_COLOURS.items():
        parts.append(f'<marker id="h-{kind}" viewBox="0 0 10 10" refX="10" refY="5" '
                     f'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
                     f'<path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>')
    parts.append("</defs>")
    for c in cards:
        boss = c.reports_to
        if boss in pos and boss != c.id:
            bx, by = pos[str(boss)]
            x, y = pos[c.id]
            parts.append(f'<path class="reports" d="M{bx + CARD_W / 2},{by + CARD_H} '
                         f'V{(by + CARD_H + y) / 2} H{x + CARD_W / 2} V{y}" fill="none" '
                         f'stroke="#aab"/>')
    for h in hand_offs:
        if h.source not in pos or h.target not in pos:
            continue
        (x1, y1), (x2, y2) = pos[h.source], pos[h.target]
        a, b = x1 + CARD_W / 2, y1 + CARD_H / 2
        p, q = x2 + CARD_W / 2, y2 + CARD_H / 2
        bend = 40 if a <= p else -40
        colour = HANDOFF_COLOURS.get(h.kind, "#555")
        parts.append(f'<path class="handoff {h.kind}" d="M{a},{b} Q{(a + p) / 2},'
                     f'{min(b, q) - bend} {p},{q}" fill="none" stroke="{colour}" '
                     f'stroke-width="2" marker-end="url(#h-{h.kind})">'
                     f'<title>{escape(h.kind)}: {escape(h.source)} → {escape(h.target)} '
                     f'({escape(h.task)})</title></path>')
    for c in cards:
        x, y = pos[c.id]
        doing = c.current.id if c.current else ("person" if c.is_human else "")
        parts.append(
            f'<g class="card state-{c.state.value}" data-employee="{escape(c.id)}">'
            f'<rect x="{x}" y="{y}" width="{CARD_W}" height="{CARD_H}" rx="8"/>'
            f'<text x="{x + 8}" y="{y + 18}" class="nid">{escape(_clip(c.id, 18))}</text>'
            f'<text x="{x + 8}" y="{y + 34}">{escape(c.state.value)}'
            f'{" · " + escape(c.role) if c.role else ""}</text>'
            f'<text x="{x + 8}" y="{y + 50}" class="muted">{escape(doing)}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def cost_chart(days: Sequence[CostDay]) -> str:
    """USD per day as bars, with the highest day's amount on the axis."""
    width, height, pad = 640, 180, 30
    top = max((d.usd for d in days), default=0.0) or 1.0
    bar = (width - 2 * pad) / max(len(days), 1)
    parts = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="cost per day">',
             f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
             f'stroke="#889"/>',
             f'<text x="2" y="{pad - 8}" class="muted">${top:.2f}</text>']
    for i, d in enumerate(days):
        h = (height - 2 * pad) * d.usd / top
        x = pad + i * bar
        parts.append(f'<rect class="bar" x="{x + 1:.1f}" y="{height - pad - h:.1f}" '
                     f'width="{max(bar - 2, 1):.1f}" height="{h:.1f}">'
                     f'<title>{d.day}: ${d.usd:.4f}</title></rect>')
    if days:
        parts.append(f'<text x="{pad}" y="{height - 8}" class="muted">{days[0].day}</text>')
        parts.append(f'<text x="{width - pad}" y="{height - 8}" text-anchor="end" '
                     f'class="muted">{days[-1].day}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bar_rows(values: Mapping[str, float], link: str) -> str:
    """A horizontal bar per key (largest first), linking to `link` + key."""
    if not values:
        return '<p class="muted">none yet</p>'
    top = max(values.values()) or 1.0
    rows = []
    for key, usd in sorted(values.items(), key=lambda kv: -kv[1])[:30]:
        rows.append(f'<div class="hbar"><a href="{escape(link + key)}">{escape(key)}</a>'
                    f'<span class="fill" style="width:{100 * usd / top:.0f}%"></span>'
                    f'<span class="amount">${usd:.4f}</span></div>')
    return "".join(rows)
