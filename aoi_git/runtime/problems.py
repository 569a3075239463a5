"""What the daemon's loop could not handle, kept so it goes on with everything else.

A problem is one action, one agent's exit, one recovered run or one tick that raised an
unexpected exception: its traceback goes to the daemon's log, and it is listed (once,
with its latest error) in the status file, where `aoi status` shows it, until the same
thing is handled without an error.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

from aoi_git.errors import AoiError, IllegalTransition
from aoi_git.store.txn import now_iso


@dataclass
class Problem:
    what: str  # e.g. "action Dispatch(task_id='t-1', employee='eng-1')"
    error: str  # the exception's type and message
    at: str  # when it last happened (ISO 8601, UTC)
    retry_at: float | None = None  # an action's: when it may be tried again


class Problems:
    def __init__(self, log: Callable[[str], None], wall: Callable[[], float]) -> None:
        self.log = log
        self.wall = wall
        self.open: dict[str, Problem] = {}

    def record(self, what: str, exc: BaseException, retry_at: float | None = None) -> None:
        """Log `exc` (raised while handling `what`) with its traceback and keep it."""
        error = f"{type(exc).__name__}: {exc}"
        trace = "".join(traceback.format_exception(exc)).rstrip()
        self.log(f"{what} failed: {error}\n{trace}")
        self.open[what] = Problem(what, error[:500], now_iso(self.wall()), retry_at)

    def solved(self, what: str) -> None:
        self.open.pop(what, None)

    def forget_all_but(self, prefix: str, current: set[str]) -> None:
        """Drop the problems named `prefix...` that are not in `current` (e.g. actions
        the plan no longer has: the task moved on some other way)."""
        for what in [w for w in self.open if w.startswith(prefix) and w not in current]:
            del self.open[what]

    def held_until(self, what: str, now: float) -> float | None:
        """When `what` may be tried again, if it failed and that time is still to come."""
        p = self.open.get(what)
        if p is None or p.retry_at is None or p.retry_at <= now:
            return None
        return p.retry_at

    @contextmanager
    def guard(self, what: str, retry_at: float | None = None) -> Iterator[None]:
        """Run the block; an unexpected exception in it is recorded instead of raised.
        IllegalTransition and AoiError (the state moved, or a clear refusal) are the
        caller's to handle and pass through."""
        try:
            yield
        except (IllegalTransition, AoiError):
            raise
        except Exception as exc:
            self.record(what, exc, retry_at)
        else:
            self.solved(what)

    def for_status(self) -> list[dict[str, object]]:
        return [{k: v for k, v in asdict(p).items() if k != "retry_at"}
                for p in self.open.values()]
