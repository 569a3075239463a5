"""The daemon's log: every event in `.aoi/daemon.log` (rotated by size), and one line per
event on stderr when that is not a terminal (a service manager such as systemd hands
stderr to journald) or when asked (`aoi daemon -v`).

The file gets each message whole (a traceback included); stderr gets its first line, so a
journal reader sees one entry per event and the file holds the detail.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from aoi_git.store.txn import now_iso

MAX_BYTES = 10 * 1024 * 1024  # a file is rotated when a line would take it past this
BACKUPS = 5  # daemon.log.1 (the newest) .. daemon.log.5; older ones are dropped


def stderr_wanted(verbose: bool, stream: TextIO | None = None) -> bool:
    """Echo on stderr when asked, or when stderr is not a terminal (a service's journal)."""
    stream = stream if stream is not None else sys.stderr
    if verbose:
        return True
    try:
        return not stream.isatty()
    except (AttributeError, ValueError):  # a closed or odd stream: nothing to echo to
        return False


class DaemonLog:
    """A callable taking one message; thread-safe (the reaper's thread logs too)."""

    def __init__(self, path: Path, wall: Callable[[], float], echo: TextIO | None = None,
                 max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> None:
        self.path = path
        self.wall = wall
        self.echo = echo
        self.max_bytes = max_bytes
        self.backups = backups
        self._lock = threading.Lock()
        self._journal = bool(os.environ.get("JOURNAL_STREAM"))  # journald stamps lines itself

    def __call__(self, msg: str) -> None:
        stamp = now_iso(self.wall())
        data = f"{stamp} {msg}\n".encode("utf-8", "replace")
        with self._lock:
            self._append(data)
            if self.echo is not None:
                first = msg.splitlines()[0] if msg else ""
                more = " (more in .aoi/daemon.log)" if "\n" in msg.rstrip("\n") else ""
                line = f"{first}{more}" if self._journal else f"{stamp} {first}{more}"
                try:
                    self.echo.write(line + "\n")
                    self.echo.flush()
                except (OSError, ValueError):  # stderr closed: the file still has it
                    pass

    def _append(self, data: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            size = 0
        if size and size + len(data) > self.max_bytes:
            self._rotate()
        with open(self.path, "ab") as fh:  # opened per line: an outside rotation is safe too
            fh.write(data)

    def _rotate(self) -> None:
        for n in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{n + 1}"))
        if self.backups > 0:
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink()


class ForwardToLog(logging.Handler):
    """Sends records of the `aoi` loggers (the reaper's thread, the backend registry) to
    the daemon's log, so nothing they say is lost when no one passed `-v`."""

    def __init__(self, log: DaemonLog) -> None:
        super().__init__(logging.INFO)
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = record.getMessage()
            if record.exc_info:
                msg += "\n" + logging.Formatter().formatException(record.exc_info)
            self.log(msg)
        except Exception:  # a logging handler never raises into the code that logs
            self.handleError(record)
