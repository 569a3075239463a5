"""Budgets: whether a task may run again for an employee, given what is spent; whether a
run that just ended went past its task's budget; the organisation's daily cap."""

from __future__ import annotations

from collections.abc import Mapping

from aoi_git.domain.model import Employee, OrgConfig, Task


def usd(amount: float) -> str:
    """Dollars as a person reads them: cents, or (under a dime) four digits."""
    return f"${amount:.2f}" if amount == 0 or amount >= 0.1 else f"${amount:.4g}"


def _tokens(t: Task) -> int:
    return int(t.cost.get("input_tokens", 0)) + int(t.cost.get("output_tokens", 0))


def over_budget(t: Task, emp: Employee, spent_today: Mapping[str, float]) -> str | None:
    """Why `t` must not run again on `emp` (its own dollar or token budget spent, or the
    employee's daily dollars, `spent_today` by employee id), or None when it may."""
    usd_cap = t.budget.get("usd")
    if usd_cap is not None and float(t.cost.get("usd", 0.0)) >= float(usd_cap):
        return f"task budget spent: ${float(t.cost.get('usd', 0.0)):.2f} of ${float(usd_cap):.2f}"
    tok_cap = t.budget.get("tokens") or emp.capacity.tokens_per_task
    used = _tokens(t)
    if tok_cap is not None and used >= int(tok_cap):
        return f"task token budget spent: {used} of {int(tok_cap)}"
    day = emp.capacity.usd_per_day
    if day is not None and spent_today.get(emp.id, 0.0) >= day:
        return f"daily budget spent: ${spent_today.get(emp.id, 0.0):.2f} of ${day:.2f}"
    return None


def run_past_budget(t: Task, emp: Employee) -> str | None:
    """Why the run that brought `t`'s cost to what it is now went past the task's budget
    (`budget.usd`, `budget.tokens` or the employee's `capacity.tokens_per_task`), or None.
    Reaching a cap exactly is within it; the next run is then not started (`over_budget`)."""
    usd_cap = t.budget.get("usd")
    spent = float(t.cost.get("usd", 0.0))
    if usd_cap is not None and spent > float(usd_cap) + 1e-9:
        return f"budget exhausted: the task has cost {usd(spent)}, its budget.usd is " \
               f"{usd(float(usd_cap))}"
    tok_cap = t.budget.get("tokens") or emp.capacity.tokens_per_task
    if tok_cap is not None and _tokens(t) > int(tok_cap):
        return f"budget exhausted: the task has used {_tokens(t)} tokens, its budget is " \
               f"{int(tok_cap)}"
    return None


def org_day_spent(config: OrgConfig, spent_today: Mapping[str, float]) -> str | None:
    """Why no new agent may start today (`limits.usd_per_day` reached), or None."""
    cap = config.limits.usd_per_day
    total = sum(spent_today.values())
    if cap is not None and total >= cap:
        return (f"the organisation's daily cap is reached: ${total:.2f} of ${cap:.2f} "
                "(limits.usd_per_day); no new agent starts today unless it is raised in aoi.yaml")
    return None
