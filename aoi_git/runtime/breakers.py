"""Circuit breakers, one per `Backend.breaker_key` (a backend kind, and the command of a
script employee): paused for a while after failures in a row, or held until a person
acts (a backend without credentials). Each says why."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class Breaker:
    failures: int = 0  # in a row
    until: float = 0.0  # paused until then (math.inf: held until `release`)
    why: str = ""  # why it is open: the last failures' error, or what is missing
    fix: str = ""  # what a person can do about it
    last_error: str = ""  # of the latest failure counted


class Breakers(dict[str, Breaker]):
    def paused(self, now: float) -> dict[str, float]:
        """Breaker key -> until when it is paused, for the keys paused at `now`."""
        return {k: b.until for k, b in self.items() if b.until > now}

    def trip(self, key: str, until: float, why: str, fix: str = "") -> None:
        br = self.setdefault(key, Breaker())
        br.until = until
        br.failures = 0
        br.why, br.fix = why, fix

    def hold(self, key: str, why: str, fix: str) -> None:
        """Open until `release`: no retry can help before a person acts."""
        self.trip(key, math.inf, why, fix)

    def held(self, key: str) -> bool:
        br = self.get(key)
        return br is not None and math.isinf(br.until)

    def release(self, key: str) -> None:
        br = self.get(key)
        if br is not None:
            br.until, br.why, br.fix = 0.0, "", ""

    def count(self, key: str, failed: bool, error: str = "") -> int:
        """Count a run's outcome; the failures in a row now."""
        br = self.setdefault(key, Breaker())
        br.failures = br.failures + 1 if failed else 0
        br.last_error = error[:300] if failed else ""
        return br.failures

    def for_status(self) -> dict[str, dict[str, object]]:
        """Per key: until (None when held until a person acts), failures, why, fix."""
        return {k: {"until": None if math.isinf(b.until) else b.until,
                    "held": math.isinf(b.until), "failures": b.failures, "why": b.why,
                    "fix": b.fix} for k, b in self.items()}
