"""Plans, and how they went, read back from the retrospectives (`retros/`).

A root's retrospective records its plan in its front matter, `plan:` (`PlanRecord`): the
plan chosen among how many alternatives, by whom and why, its shape (subtasks, planning
rounds, subtasks superseded by re-plans) and how it went (review rejections, cost, lead
time, final status). Two readers use them: the context of a root task's planner lists
the outcomes of similar past plans (`similar`, `section`), and `aoi stats` compares plan
shapes (`shapes`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from aoi_git.domain.model import Task
from aoi_git.store.head_view import HeadView

MAX_RECORDS = 500  # retrospectives read at most, for one context
SIMILAR = 3
_WORD = re.compile(r"[a-z0-9]{3,}")


@dataclass(frozen=True)
class PlanRecord:
    root: str
    title: str
    labels: tuple[str, ...] = ()
    plan: str = ""  # the chosen alternative's title ("" when only one plan was made)
    alternatives: int = 1  # how many plans were offered
    chosen_by: str = ""
    reason: str = ""
    subtasks: int = 0  # in the final plan
    superseded: int = 0  # subtasks re-plans took out
    rounds: int = 0  # planning runs of the root (1 + re-plans)
    rejections: int = 0  # review rejections in the whole project
    usd: float = 0.0
    lead_time_s: float | None = None
    status: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["labels"] = list(self.labels)
        return d

    @classmethod
    def parse(cls, root: str, value: object) -> PlanRecord | None:
        if not isinstance(value, Mapping):
            return None
        known = {k: v for k, v in value.items() if k in cls.__dataclass_fields__}
        try:
            lead = known.get("lead_time_s")
            return cls(root=str(known.get("root") or root), title=str(known.get("title") or ""),
                       labels=tuple(str(x) for x in known.get("labels") or ()),
                       plan=str(known.get("plan") or ""),
                       alternatives=int(known.get("alternatives") or 1),
                       chosen_by=str(known.get("chosen_by") or ""),
                       reason=str(known.get("reason") or ""),
                       subtasks=int(known.get("subtasks") or 0),
                       superseded=int(known.get("superseded") or 0),
                       rounds=int(known.get("rounds") or 0),
                       rejections=int(known.get("rejections") or 0),
                       usd=float(known.get("usd") or 0.0),
                       lead_time_s=float(lead) if isinstance(lead, int | float) else None,
                       status=str(known.get("status") or ""))
        except (TypeError, ValueError):
            return None

    @property
    def shape(self) -> str:
        alt = f", chosen of {self.alternatives}" if self.alternatives > 1 else ""
        return f"{self.subtasks} subtasks{alt}"


def front_matter_value(record: PlanRecord) -> str:
    """The `plan:` line of a retrospective's front matter (JSON is YAML)."""
    return "plan: " + json.dumps(record.to_dict(), ensure_ascii=False)


def _retro_paths(view: HeadView) -> Iterator[str]:
    for a in sorted(view.names("retros")):
        if a.endswith(".md"):
            yield f"retros/{a}"
            continue
        for b in sorted(view.names(f"retros/{a}")):
            for name in sorted(view.names(f"retros/{a}/{b}")):
                if name.endswith(".md"):
                    yield f"retros/{a}/{b}/{name}"


# Records by the id of the `retros/` tree they were read from (content-addressed, so
# right for any repository): retrospectives change only when a root finishes, and every
# root's context reads them.
_BY_TREE: dict[tuple[str, int], tuple[PlanRecord, ...]] = {}
_BY_TREE_MAX = 8


def read_records(view: HeadView, limit: int = MAX_RECORDS) -> list[PlanRecord]:
    """The plan records of the retrospectives at `view` (at most `limit` files read): the
    `plan:` line of each front matter, JSON (`front_matter_value`)."""
    tree = view.blob_id("retros")
    if tree is None:
        return []
    key = (tree, limit)
    if key in _BY_TREE:
        return list(_BY_TREE[key])
    out: list[PlanRecord] = []
    for n, path in enumerate(_retro_paths(view)):
        if n >= limit:
            break
        rec = _record(path, view.read(path))
        if rec is not None:
            out.append(rec)
    while len(_BY_TREE) >= _BY_TREE_MAX:
        _BY_TREE.pop(next(iter(_BY_TREE)))
    _BY_TREE[key] = tuple(out)
    return out


def forget() -> None:
    """Drop the records kept in memory (the next read reads the files again)."""
    _BY_TREE.clear()


def _record(path: str, data: bytes | None) -> PlanRecord | None:
    if data is None or not data.startswith(b"---"):
        return None
    head = data.split(b"\n---", 1)[0]
    at = head.find(b"\nplan: ")
    if at < 0:
        return None
    line = head[at + 7:].split(b"\n", 1)[0]
    try:
        value = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return PlanRecord.parse(path.rsplit("/", 1)[-1][:-3], value)


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def similar(records: Sequence[PlanRecord], task: Task, n: int = SIMILAR) -> list[PlanRecord]:
    """The past plans most like `task` (shared title words and labels), best first."""
    mine = _words(f"{task.title} {task.description}") | {f"#{x}" for x in task.labels}
    scored = []
    for r in records:
        if r.root == task.id:
            continue
        theirs = _words(r.title) | {f"#{x}" for x in r.labels}
        score = len(mine & theirs)
        if score:
            scored.append((-score, r.root, r))
    return [r for _, _, r in sorted(scored)[:n]]


def _lead(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s:.0f}s" if s < 120 else f"{s / 60:.1f}m" if s < 7200 else f"{s / 3600:.1f}h"


def section(records: Sequence[PlanRecord]) -> str:
    """The context section on similar past plans (empty when there are none)."""
    if not records:
        return ""
    lines = ["## How similar past plans went (from their retrospectives)", ""]
    for r in records:
        chosen = f"; plan \"{r.plan}\" chosen of {r.alternatives}" if r.alternatives > 1 else ""
        why = f" ({r.reason})" if r.reason and r.alternatives > 1 else ""
        lines.append(f"- {r.root} \"{r.title}\": {r.status}, {r.subtasks} subtasks"
                     f"{chosen}{why}, {r.rounds} planning round(s), {r.superseded} "
                     f"superseded, {r.rejections} rejection(s), ${r.usd:.4f}, lead time "
                     f"{_lead(r.lead_time_s)}")
    return "\n".join(lines)


@dataclass(frozen=True)
class Shape:
    """Plans of one shape, compared (`aoi stats`)."""

    shape: str
    plans: int
    finished: int
    mean_rounds: float
    mean_rejections: float
    mean_usd: float
    median_lead_time_s: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def shapes(records: Sequence[PlanRecord]) -> list[Shape]:
    """Plans grouped by shape (subtasks, and whether chosen among alternatives)."""
    groups: dict[tuple[int, bool], list[PlanRecord]] = {}
    for r in records:
        groups.setdefault((r.subtasks, r.alternatives > 1), []).append(r)
    out = []
    for _, rs in sorted(groups.items()):
        leads = sorted(r.lead_time_s for r in rs if r.lead_time_s is not None)
        median = leads[len(leads) // 2] if leads else None
        k = len(rs)
        out.append(Shape(rs[0].shape.replace(f" of {rs[0].alternatives}", " of several"),
                         k, sum(r.status == "finished" for r in rs),
                         round(sum(r.rounds for r in rs) / k, 2),
                         round(sum(r.rejections for r in rs) / k, 2),
                         round(sum(r.usd for r in rs) / k, 6), median))
    return out


def render_shapes(rows: Sequence[Shape]) -> str:
    lines = ["plan shapes (from retrospectives):",
             f"  {'shape':<32} {'plans':>5} {'finished':>8} {'rounds':>6} {'rejected':>8} "
             f"{'usd':>10} {'lead time':>9}"]
    if not rows:
        lines.append("  (no retrospective records a plan yet)")
    for s in rows:
        lines.append(f"  {s.shape:<32} {s.plans:>5} {s.finished:>8} {s.mean_rounds:>6.2f} "
                     f"{s.mean_rejections:>8.2f} {s.mean_usd:>10.4f} "
                     f"{_lead(s.median_lead_time_s):>9}")
    return "\n".join(lines)


def record_of(root: Task, *, rounds: int, rejections: int, usd: float,
              lead_time_s: float | None, status: str) -> PlanRecord | None:
    """The plan record of a root's retrospective (None: the root was never decomposed)."""
    book = root.bookkeeping
    result = root.result or {}
    plans = result.get("plans")
    if not book.subtasks and not book.superseded and not plans:
        return None
    chosen = result.get("chosen") if isinstance(result.get("chosen"), Mapping) else {}
    assert isinstance(chosen, Mapping)
    return PlanRecord(root=root.id, title=root.title, labels=root.labels,
                      plan=str(chosen.get("title") or ""),
                      alternatives=len(plans) if isinstance(plans, list) and plans else 1,
                      chosen_by=str(chosen.get("by") or ""),
                      reason=str(chosen.get("reason") or "")[:500],
                      subtasks=len(book.subtasks), superseded=len(book.superseded),
                      rounds=rounds, rejections=rejections, usd=round(usd, 6),
                      lead_time_s=round(lead_time_s, 3) if lead_time_s is not None else None,
                      status=status)


def plan_lines(rec: PlanRecord) -> list[str]:
    """The "## The plan" section of a retrospective."""
    lines = ["## The plan", ""]
    if rec.alternatives > 1:
        lines.append(f"Plan \"{rec.plan}\" was chosen of {rec.alternatives} alternatives by "
                     f"{rec.chosen_by or '?'}: {rec.reason or 'no reason given'}.")
    else:
        lines.append("One plan was made (no alternatives were offered).")
    lines.append(f"It went: {rec.status}, {rec.subtasks} subtasks in the final plan, "
                 f"{rec.rounds} planning round(s), {rec.superseded} subtask(s) superseded "
                 f"by re-plans, {rec.rejections} review rejection(s), ${rec.usd:.4f}, "
                 f"lead time {_lead(rec.lead_time_s)}.")
    return lines
