"""`aoi stats`: throughput, lead time, review pass rate, retries and cost, per employee and
per root, all computed from commit trailers in one pass over `git log` (docs/git.md).

One `git log --reverse --format=%ct%x1f%B%x1e` process is read as a stream; of each commit
only the trailer block (the last paragraph) is looked at. Nothing else is read: no task
file, no tree. What the trailers say and how it is counted:

- a task is *created* by its `new->pending` transition; tasks created in the same commit as
  a transition or edit of another task belong to that task's root (a decomposition, a
  review request, a question); tasks created alone are roots. Tasks created next to a pure
  edit (`Aoi-Task` without `Aoi-Transition`: a review request) are review tasks: they
  count as reviews done, not as work finished.
- a *run* is a claim (`pending->processing`); the claim's `Aoi-Employee` ran it. Runs of a
  task by the same employee beyond the first are *retries*; `processing->failed` is a
  failed run.
- a *review decision* is `completed->pending` (a rejection) or `completed->accepted` by an
  agent or a person (the daemon's accept of a task without reviewer is none). The first
  decision after an employee's run counts for its *review pass rate* (accepted at first
  review / reviewed).
- *finished* is `accepted->finished`; *lead time* is creation -> finished (median, p90);
  *throughput* is work tasks finished per day (UTC), over the days from the first to the
  last finish.
- *cost* is the `Aoi-Cost-*` trailers, counted for the employee of the commit (the run's
  `Aoi-Employee`) and the root of the task whose run ended in it.

`--since DATE` counts only events at or after DATE (creation times before it still give
lead times). `--employee X` counts only X's runs, decisions on X's work, X's cost, and the
tasks X finished.

Limit: a subtask a person creates by hand (`aoi task new --parent P`) is alone in its
commit, so the trailers cannot tell its root: it is counted as a root of its own.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aoi_git.errors import AoiError
from aoi_git.store.git import GitError, git, git_stream, has_commits
from aoi_git.store.trailers import parse_trailers


@dataclass
class Acc:
    """Counters for one employee or one root."""

    tasks_done: int = 0
    reviews_done: int = 0
    runs: int = 0
    retries: int = 0
    failures: int = 0
    reviewed: int = 0
    passed_first: int = 0
    rejections: int = 0
    usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        rate = self.passed_first / self.reviewed if self.reviewed else None
        return {
            "tasks_done": self.tasks_done, "reviews_done": self.reviews_done,
            "runs": self.runs, "retries": self.retries, "failed_runs": self.failures,
            "reviewed": self.reviewed, "passed_first_review": self.passed_first,
            "review_pass_rate": None if rate is None else round(rate, 4),
            "rejections": self.rejections, "usd": round(self.usd, 6),
            "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
        }


@dataclass
class Stats:
    commits: int = 0
    transitions: int = 0
    since: int | None = None
    employee: str | None = None
    total: Acc = field(default_factory=Acc)
    employees: dict[str, Acc] = field(default_factory=dict)
    roots: dict[str, Acc] = field(default_factory=dict)
    root_created: dict[str, int] = field(default_factory=dict)
    root_finished: dict[str, int] = field(default_factory=dict)
    finished_by_day: dict[str, int] = field(default_factory=dict)
    lead_times: list[int] = field(default_factory=list)

    # ---------------------------------------------------------------- derived
    @property
    def finished(self) -> int:
        return sum(self.finished_by_day.values())

    def throughput(self) -> dict[str, Any]:
        days = sorted(self.finished_by_day)
        span = 0
        if days:
            first, last = dt.date.fromisoformat(days[0]), dt.date.fromisoformat(days[-1])
            span = (last - first).days + 1
        return {"finished": self.finished, "days": span,
                "per_day": round(self.finished / span, 3) if span else 0.0,
                "first_day": days[0] if days else None, "last_day": days[-1] if days else None,
                "by_day": dict(sorted(self.finished_by_day.items()))}

    def lead_time(self) -> dict[str, Any]:
        v = sorted(self.lead_times)
        return {"count": len(v), "median_s": _median(v), "p90_s": _pct(v, 0.9)}

    def root_rows(self) -> list[dict[str, Any]]:
        rows = []
        for rid, acc in self.roots.items():
            created, finished = self.root_created.get(rid), self.root_finished.get(rid)
            lead = finished - created if created is not None and finished is not None else None
            rows.append({"root": rid, "finished": _iso(finished), "lead_time_s": lead,
                         **acc.to_dict()})
        rows.sort(key=lambda r: (r["finished"] is None, r["finished"] or "", r["root"]))
        return rows

    def to_dict(self) -> dict[str, Any]:
        t = self.total
        return {
            "commits": self.commits, "transitions": self.transitions,
            "since": _iso(self.since), "employee": self.employee,
            "throughput": self.throughput(), "lead_time": self.lead_time(),
            "review": {"reviewed": t.reviewed, "passed_first_review": t.passed_first,
                       "review_pass_rate": (round(t.passed_first / t.reviewed, 4)
                                            if t.reviewed else None),
                       "rejections": t.rejections},
            "runs": t.runs, "retries": t.retries, "failed_runs": t.failures,
            "cost": {"usd": round(t.usd, 6), "input_tokens": t.input_tokens,
                     "output_tokens": t.output_tokens},
            "employees": {k: v.to_dict() for k, v in sorted(self.employees.items())},
            "roots": self.root_rows(),
        }


def _median(v: list[int]) -> float | None:
    if not v:
        return None
    n = len(v)
    return float(v[n // 2]) if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def _pct(v: list[int], q: float) -> float | None:
    """Nearest-rank percentile of a sorted list."""
    if not v:
        return None
    k = max(0, min(len(v) - 1, math.ceil(round(q * len(v), 9)) - 1))
    return float(v[k])


def _iso(ts: int | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_since(text: str, root: Path) -> int:
    """A timestamp from an ISO date/time or a git relative date ("2 weeks ago")."""
    s = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
            return int(dt.datetime.fromisoformat(s).replace(tzinfo=dt.UTC).timestamp())
        d = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
        if d.tzinfo is None:
            d = d.replace(tzinfo=dt.UTC)
        return int(d.timestamp())
    except ValueError:
        pass
    if re.fullmatch(r"(\d+\s+(second|minute|hour|day|week|month|year)s?\s+ago|yesterday|today)",
                    s, re.I):
        out = git("rev-parse", f"--since={s}", cwd=root, check=False)
        m = re.search(r"--max-age=(\d+)", out)
        if m:
            return int(m.group(1))
    raise AoiError(f"--since {text!r}: use a date like 2025-01-31, a time like "
                   "2025-01-31T09:00, or a relative one like '2 weeks ago'")


def _stream(root: Path, rev: str) -> Iterator[str]:
    """Each commit's `%ct\\x1f%B`, oldest first, from one streamed `git log`."""
    try:
        yield from git_stream("log", "--reverse", "--format=%ct%x1f%B%x1e", rev, cwd=root)
    except GitError:
        if has_commits(root):
            raise


def compute(root: Path, *, rev: str = "HEAD", since: int | None = None,
            employee: str | None = None) -> Stats:
    """The statistics of the org at `root` (see the module doc), in one pass."""
    st = Stats(since=since, employee=employee)
    since_ts = since if since is not None else -(1 << 62)
    total = st.total
    employees = st.employees
    roots = st.roots
    root_of: dict[str, str] = {}
    created: dict[str, int] = {}
    reviews: set[str] = set()  # tasks created to review another
    owner: dict[str, str] = {}  # task -> employee of its latest run
    ran: set[tuple[str, str]] = set()
    decided: set[tuple[str, str]] = set()
    done: set[tuple[str, str]] = set()
    commits = transitions = 0

    def acc_emp(e: str) -> Acc:
        a = employees.get(e)
        if a is None:
            a = employees[e] = Acc()
        return a

    def acc_root(r: str) -> Acc:
        a = roots.get(r)
        if a is None:
            a = roots[r] = Acc()
        return a

    for item in _stream(root, rev):
        ct_text, _, msg = item.partition("\x1f")
        trailers = parse_trailers(msg)
        if not any(k == "Aoi-Actor" for k, _ in trailers):
            continue
        try:
            ct = int(ct_text.strip())
        except ValueError:
            continue
        actor = emp = None
        entries: list[list[Any]] = []
        usd = 0.0
        tin = tout = 0
        for k, v in trailers:
            if k == "Aoi-Task":
                entries.append([v, None])
            elif k == "Aoi-Transition":
                if entries:
                    entries[-1][1] = v
            elif k == "Aoi-Actor":
                actor = v
            elif k == "Aoi-Employee":
                emp = v
            elif k == "Aoi-Cost-Usd":
                usd = _float(v)
            elif k == "Aoi-Cost-Input-Tokens":
                tin = int(_float(v))
            elif k == "Aoi-Cost-Output-Tokens":
                tout = int(_float(v))
        if not entries:
            continue
        commits += 1
        counted = ct >= since_ts
        new = [e[0] for e in entries if e[1] is not None and e[1].startswith("new->")]
        if new:
            anchors = [e for e in entries if e[1] is None or not e[1].startswith("new->")]
            for t in new:
                created.setdefault(t, ct)
            if anchors:
                a_id, a_tr = anchors[0]
                r = root_of.get(a_id, a_id)
                for t in new:
                    root_of[t] = r
                    if a_tr is None:
                        reviews.add(t)
            else:
                for t in new:
                    root_of[t] = t
                    st.root_created.setdefault(t, ct)
        for tid, tr in entries:
            if tr is None:
                continue
            transitions += 1
            if tr == "pending->processing":
                who = emp or ""
                owner[tid] = who
                if not counted or (employee is not None and who != employee):
                    continue
                r = root_of.get(tid, tid)
                ra = acc_root(r)
                ea = acc_emp(who) if who else None
                retry = (tid, who) in ran
                ran.add((tid, who))
                for a in (total, ra, ea):
                    if a is not None:
                        a.runs += 1
                        a.retries += retry
            elif tr.startswith("processing->"):
                who = emp or owner.get(tid, "")
                if not counted or (employee is not None and who != employee):
                    continue
                ra = acc_root(root_of.get(tid, tid))
                ea = acc_emp(who) if who else None
                result = tr[12:]
                first_done = (result == "completed" or result == "waiting") \
                    and (tid, who) not in done
                if first_done:
                    done.add((tid, who))  # distinct tasks: a redone one counts once
                for a in (total, ra, ea):
                    if a is None:
                        continue
                    if usd or tin or tout:
                        a.usd += usd
                        a.input_tokens += tin
                        a.output_tokens += tout
                    if result == "failed":
                        a.failures += 1
                    elif first_done:
                        if tid in reviews:
                            a.reviews_done += 1
                        else:
                            a.tasks_done += 1
                usd = 0.0
                tin = tout = 0  # a commit's cost belongs to the one run that ended in it
            elif tr == "completed->pending" or tr == "completed->accepted":
                accept = tr[11] == "a"
                if accept and actor is not None and actor.startswith("daemon:"):
                    continue  # no reviewer: accepted at once
                who = owner.get(tid, "")
                if not counted or (employee is not None and who != employee):
                    continue
                first = (tid, who) not in decided
                decided.add((tid, who))
                ra = acc_root(root_of.get(tid, tid))
                ea = acc_emp(who) if who else None
                for a in (total, ra, ea):
                    if a is None:
                        continue
                    if not accept:
                        a.rejections += 1
                    if first:
                        a.reviewed += 1
                        a.passed_first += accept
            elif tr == "accepted->finished":
                r = root_of.get(tid, tid)
                if r == tid:
                    st.root_finished[tid] = ct
                if not counted or tid in reviews:
                    continue
                if employee is not None and owner.get(tid) != employee:
                    continue
                day = dt.datetime.fromtimestamp(ct, dt.UTC).date().isoformat()
                st.finished_by_day[day] = st.finished_by_day.get(day, 0) + 1
                c = created.get(tid)
                if c is not None:
                    st.lead_times.append(ct - c)
                if r == tid:
                    acc_root(r)
        # a commit with cost but no run ending in it (unusual): the employee's and the total
        if (usd or tin or tout) and counted and (employee is None or emp == employee):
            for a in (total, acc_emp(emp) if emp else None):
                if a is not None:
                    a.usd += usd
                    a.input_tokens += tin
                    a.output_tokens += tout
    st.commits, st.transitions = commits, transitions
    # roots: tasks that are their own root and did something (not stray human tasks)
    st.roots = {r: a for r, a in roots.items()
                if root_of.get(r, r) == r and r not in reviews
                and (a.runs or r in st.root_finished)}
    return st


def _float(v: str) -> float:
    try:
        return float(v)
    except ValueError:
        return 0.0


# ------------------------------------------------------------------------- text

def fmt_s(s: float | None, minute_places: int = 1) -> str:
    """A duration for people: 42s, 7.5m, 3.1h, 2.0d (`minute_places` digits on minutes)."""
    if s is None:
        return "-"
    s = float(s)
    if s < 90:
        return f"{s:.0f}s"
    if s < 5400:
        return f"{s / 60:.{minute_places}f}m"
    if s < 172800:
        return f"{s / 3600:.1f}h"
    return f"{s / 86400:.1f}d"


def render(st: Stats, max_roots: int = 20) -> str:
    t = st.total
    tp = st.throughput()
    lt = st.lead_time()
    scope = []
    if st.employee:
        scope.append(f"employee {st.employee}")
    if st.since is not None:
        scope.append(f"since {_iso(st.since)}")
    head = f"aoi stats ({', '.join(scope)})" if scope else "aoi stats"
    rate = f"{t.passed_first / t.reviewed:.0%}" if t.reviewed else "-"
    per_run = f" ({t.retries / t.runs:.2f} per run)" if t.runs else ""
    lines = [
        f"{head}: {st.transitions:,} transitions in {st.commits:,} commits",
        f"throughput:   {tp['finished']:,} tasks finished in {tp['days']} day(s): "
        f"{tp['per_day']:.2f} per day"
        + (f" ({tp['first_day']} .. {tp['last_day']})" if tp["first_day"] else ""),
        f"lead time:    median {fmt_s(lt['median_s'])}, p90 {fmt_s(lt['p90_s'])} "
        f"(created -> finished, {lt['count']:,} tasks)",
        f"review:       pass rate {rate} ({t.passed_first:,} of {t.reviewed:,} accepted at "
        f"first review), {t.rejections:,} rejections",
        f"runs:         {t.runs:,}, retries {t.retries:,}{per_run}, failed {t.failures:,}",
        f"cost:         ${t.usd:,.4f}, {t.input_tokens + t.output_tokens:,} tokens "
        f"({t.input_tokens:,} in, {t.output_tokens:,} out)",
        "",
        "per employee:",
        f"  {'employee':<14} {'done':>6} {'reviews':>7} {'runs':>6} {'retries':>7} "
        f"{'failed':>6} {'pass rate':>10} {'usd':>12} {'tokens':>12}",
    ]
    for eid, a in sorted(st.employees.items()):
        r = f"{a.passed_first / a.reviewed:.0%} ({a.passed_first}/{a.reviewed})" \
            if a.reviewed else "-"
        lines.append(f"  {eid:<14} {a.tasks_done:>6} {a.reviews_done:>7} {a.runs:>6} "
                     f"{a.retries:>7} {a.failures:>6} {r:>10} {a.usd:>12.4f} "
                     f"{a.input_tokens + a.output_tokens:>12,}")
    rows = st.root_rows()
    shown = rows[-max_roots:] if max_roots else rows
    more = f" (the {len(shown)} most recent of {len(rows):,}; --json lists all)" \
        if len(shown) < len(rows) else ""
    lines += ["", f"per root{more}:",
              f"  {'root':<20} {'finished':<20} {'lead time':>9} {'runs':>5} {'retries':>7} "
              f"{'rejected':>8} {'usd':>10} {'tokens':>11}"]
    for row in shown:
        lines.append(f"  {row['root']:<20} {row['finished'] or '-':<20} "
                     f"{fmt_s(row['lead_time_s']):>9} {row['runs']:>5} {row['retries']:>7} "
                     f"{row['rejections']:>8} {row['usd']:>10.4f} "
                     f"{row['input_tokens'] + row['output_tokens']:>11,}")
    return "\n".join(lines)
