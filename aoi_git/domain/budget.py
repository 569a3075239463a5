"""Budgets: whether a task may run again for an employee, given what is spent."""

from __future__ import annotations

from collections.abc import Mapping

from aoi_git.domain.model import Employee, Task


def over_budget(t: Task, emp: Employee, spent_today: Mapping[str, float]) -> str | None:
    """Why `t` must not run again on `emp` (its own dollar or token budget spent, or the
    employee's daily dollars, `spent_today` by employee id), or None when it may."""
    usd_cap = t.budget.get("usd")
    if usd_cap is not None and float(t.cost.get("usd", 0.0)) >= float(usd_cap):
        return f"task budget spent: ${float(t.cost.get('usd', 0.0)):.2f} of ${float(usd_cap):.2f}"
    tok_cap = t.budget.get("tokens") or emp.capacity.tokens_per_task
    used = int(t.cost.get("input_tokens", 0)) + int(t.cost.get("output_tokens", 0))
    if tok_cap is not None and used >= int(tok_cap):
        return f"task token budget spent: {used} of {int(tok_cap)}"
    day = emp.capacity.usd_per_day
    if day is not None and spent_today.get(emp.id, 0.0) >= day:
        return f"daily budget spent: ${spent_today.get(emp.id, 0.0):.2f} of ${day:.2f}"
    return None
