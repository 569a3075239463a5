"""Folders deleted off the caller's thread (removed worktrees), so a long `rm` never
stalls the daemon's loop."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import uuid
from collections import deque
from pathlib import Path


class Trash:
    """Folders deleted off the caller's thread: moved aside into one folder with a rename,
    then deleted by a background thread that lives only while there is something to do."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._todo: deque[Path] = deque()
        self._cond = threading.Condition()
        self._worker: threading.Thread | None = None

    def put(self, path: Path) -> None:
        """Take `path` out of the way now and delete it soon (at once if it cannot move)."""
        dest = self.folder / f"{path.name}.{uuid.uuid4().hex[:12]}"
        try:
            try:
                os.rename(path, dest)
            except FileNotFoundError:
                if not path.exists():
                    return
                self.folder.mkdir(parents=True, exist_ok=True)
                os.rename(path, dest)
        except OSError:  # another file system: delete it here
            shutil.rmtree(path, ignore_errors=True)
            return
        self._enqueue([dest])

    def empty(self) -> None:
        """Delete what an earlier process left here (it may have died before deleting)."""
        try:
            self._enqueue(list(self.folder.iterdir()))
        except OSError:
            pass

    def wait(self, timeout: float = 30.0) -> bool:
        """Block until everything put here is deleted (or the timeout); True when it is."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._todo and self._worker is None,
                                       timeout)

    def _enqueue(self, paths: list[Path]) -> None:
        if not paths:
            return
        with self._cond:
            self._todo.extend(paths)
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, daemon=True,
                                                name="aoi-trash")
                self._worker.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._todo:
                    self._worker = None
                    self._cond.notify_all()
                    return
                batch = list(self._todo)
                self._todo.clear()
            # one `rm` for all that came in meanwhile: this thread then waits without the
            # GIL, where a Python rmtree would take it from the daemon's loop at every file
            try:
                subprocess.run(["rm", "-rf", "--", *map(str, batch)], check=False,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
            except OSError:
                pass
            for path in batch:
                if os.path.lexists(path):  # no `rm` here, or it failed
                    shutil.rmtree(path, ignore_errors=True)
