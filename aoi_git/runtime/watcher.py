"""The file watcher: a wake-up signal for the daemon, never the truth.

Watches `tasks/`, `employees/`, `talents/`, `sops/` and `aoi.yaml`. When the kernel queue
overflows (watchdog only logs it), the daemon is told to rescan against git.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from watchdog.events import (
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

WATCHED = ("tasks", "employees", "talents", "sops")
# A save ends in a close after writing, a rename into place, or a delete. Asking the kernel
# for only these (no open, read or per-write events) keeps watchdog's threads, and their
# hold on the GIL, off most of the daemon's own file writes.
EVENTS: list[type[FileSystemEvent]] = [FileClosedEvent, FileCreatedEvent, FileMovedEvent,
                                       FileDeletedEvent, DirMovedEvent, DirDeletedEvent]


class _Handler(FileSystemEventHandler):
    def __init__(self, on_path: Callable[[str], None]) -> None:
        self.on_path = on_path

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        for p in (event.src_path, getattr(event, "dest_path", "")):
            path = p.decode() if isinstance(p, bytes) else p
            if path and path.endswith((".yaml", ".yml", ".md")) and "/.aoi-tmp" not in path:
                self.on_path(path)


class _OverflowHook(logging.Handler):
    def __init__(self, on_overflow: Callable[[], None]) -> None:
        super().__init__(logging.DEBUG)
        self.on_overflow = on_overflow

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            self.on_overflow()


def start_watcher(root: Path, on_path: Callable[[str], None],
                  on_overflow: Callable[[], None]) -> Any:
    observer = Observer()
    handler = _Handler(on_path)
    for name in WATCHED:
        folder = root / name
        folder.mkdir(exist_ok=True)
        observer.schedule(handler, str(folder), recursive=True, event_filter=EVENTS)
    observer.schedule(handler, str(root), recursive=False, event_filter=EVENTS)
    hook = _OverflowHook(on_overflow)
    wd_log = logging.getLogger("watchdog")
    wd_log.addHandler(hook)
    # watchdog reports an overflow as a warning; below that it logs every event, which
    # costs the daemon's thread the GIL on every file it writes
    if wd_log.level == logging.NOTSET or wd_log.level > logging.WARNING:
        wd_log.setLevel(logging.WARNING)
    wd_log.propagate = False
    observer.daemon = True
    observer.start()
    return observer


class WatcherStart:
    """`start_watcher` on a thread of its own, while the daemon's start-up goes on: adding
    a kernel watch to every folder of `tasks/` (~1,000 at 100k tasks) is system calls, and
    took ~0.3 s of a warm start done before anything else. `observer()` waits for it (and
    raises what it raised). What changes meanwhile is seen by the first tick, which asks
    git for every changed file anyway."""

    def __init__(self, root: Path, on_path: Callable[[str], None],
                 on_overflow: Callable[[], None]) -> None:
        import threading

        self._observer: Any = None
        self._error: BaseException | None = None

        def run() -> None:
            try:
                self._observer = start_watcher(root, on_path, on_overflow)
            except BaseException as exc:  # handed to `observer()`
                self._error = exc

        self._thread = threading.Thread(target=run, name="aoi-watcher-start", daemon=True)
        self._thread.start()

    def observer(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._observer

    def stop(self) -> None:
        """Stop the watcher once started (at the daemon's exit, whatever happened)."""
        self._thread.join()
        if self._observer is not None:
            self._observer.stop()
