"""Reporting lines: who an employee reports to, up to the first person."""

from __future__ import annotations

from collections.abc import Mapping

from aoi_git.domain.model import Employee, OrgConfig


def supervisor_chain(who: str | None, employees: Mapping[str, Employee],
                     config: OrgConfig) -> list[str]:
    """`who`, then each `reports_to` up to the first person (or a loop's repeat)."""
    chain: list[str] = []
    cur = who
    while cur and cur not in chain:
        chain.append(cur)
        if cur in config.humans:
            break
        emp = employees.get(cur)
        cur = emp.reports_to if emp else None
    return chain


def first_human_up(who: str | None, employees: Mapping[str, Employee],
                   config: OrgConfig) -> str:
    """The first person up `who`'s reports_to chain; the CEO last."""
    if who and who.startswith("role:"):
        cands = [e for e in employees.values() if e.role == who[5:]]
        who = cands[0].id if cands else None
    for name in supervisor_chain(who, employees, config)[1:] if who in employees else [who or ""]:
        if name in config.humans:
            return name
    return config.ceo
