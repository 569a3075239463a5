"""Circuit breakers, one per backend kind: paused for a while after failures in a row."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Breaker:
    failures: int = 0  # in a row
    until: float = 0.0  # paused until then


class Breakers(dict[str, Breaker]):
    def paused(self, now: float) -> dict[str, float]:
        """Backend kind -> until when it is paused, for the kinds paused at `now`."""
        return {k: b.until for k, b in self.items() if b.until > now}

    def trip(self, kind: str, until: float) -> None:
        br = self.setdefault(kind, Breaker())
        br.until = until
        br.failures = 0

    def count(self, kind: str, failed: bool) -> int:
        """Count a run's outcome; the failures in a row now."""
        br = self.setdefault(kind, Breaker())
        br.failures = br.failures + 1 if failed else 0
        return br.failures

    def for_status(self) -> dict[str, dict[str, float]]:
        return {k: {"until": b.until, "failures": b.failures} for k, b in self.items()}
