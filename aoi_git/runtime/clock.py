"""The time as the daemon and its executor read it: injected, so tests can move it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Clock:
    """`wall()`: seconds since the epoch (deadlines, retry times, what commits and logs
    say); `monotonic()`: for how long something took, or a wait bounded in real time."""

    wall: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
