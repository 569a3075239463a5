"""What each employee spent today, in dollars: read from today's history, then counted."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from aoi_git.store.history import records


class DailySpend:
    def __init__(self, root: Path, log: Callable[[str], None]) -> None:
        self.root = root
        self.log = log
        self.day = ""
        self.by_employee: dict[str, float] = {}

    def on(self, day: str) -> None:
        """Make `day` (YYYY-MM-DD, local) the day counted; its costs so far are read from
        the commits of that day (advisory: a history that cannot be read counts 0)."""
        if day == self.day:
            return
        self.day = day
        self.by_employee = {}
        try:
            for rec in records(self.root, since=f"{day} 00:00"):
                usd = rec.cost.get("usd")
                emp = dict(rec.trailers).get("Aoi-Employee")
                if usd and emp:
                    self.add(emp, usd)
        except Exception as exc:  # history is advisory here
            self.log(f"could not read today's cost: {exc}")

    def add(self, employee: str, usd: float) -> None:
        self.by_employee[employee] = self.by_employee.get(employee, 0.0) + usd
