"""Waiting for agent processes to exit, all of them on one thread.

One long-lived thread polls a pidfd per process (Linux 5.3+: readable once the process has
exited) and a pipe that tells it of new ones; handing it a process is a write to that
pipe, so starting an agent never waits for a new thread to be scheduled (with both CPUs
busy with the agent and its checkout, that wait is a time slice). Where pidfds are
missing (other systems, old kernels) each process gets its own waiting thread.

Only the processes handed over are waited for (`Popen.wait` on each), so git commands the
daemon runs and waits for itself are never reaped here.
"""

from __future__ import annotations

import logging
import os
import select
import subprocess
import threading
from collections.abc import Callable
from typing import Any

OnExit = Callable[[str, int], None]
log = logging.getLogger("aoi.reaper")


class Reaper:
    """Calls `on_exit(key, returncode)`, on its own thread, when a watched process exits."""

    def __init__(self, on_exit: OnExit) -> None:
        self._on_exit = on_exit
        self._lock = threading.Lock()
        self._new: list[tuple[int, str, subprocess.Popen[Any]]] = []
        self._thread: threading.Thread | None = None
        self._wake_r = self._wake_w = -1

    def watch(self, key: str, proc: subprocess.Popen[Any]) -> None:
        try:
            pidfd = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):  # no pidfds here (or the process is reaped)
            threading.Thread(target=self._wait_one, args=(key, proc), daemon=True,
                             name=f"wait-{key}").start()
            return
        with self._lock:
            self._new.append((pidfd, key, proc))
            if self._thread is None:
                self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="aoi-reaper")
                self._thread.start()  # once per daemon: its start-up wait does not matter
            wake_w = self._wake_w
        os.write(wake_w, b"x")

    def close(self) -> None:
        """Stop the thread; processes still watched are no longer reported (a later
        `watch` starts a new thread)."""
        with self._lock:
            thread, wake_w = self._thread, self._wake_w
        if thread is None:
            return
        os.write(wake_w, b"q")
        thread.join()

    def _wait_one(self, key: str, proc: subprocess.Popen[Any]) -> None:
        self._on_exit(key, proc.wait())

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        watched: dict[int, tuple[str, subprocess.Popen[Any]]] = {}
        try:
            while True:
                for fd, _ in poller.poll():
                    if fd == self._wake_r:
                        if b"q" in _drain(fd):
                            return
                        with self._lock:
                            new, self._new = self._new, []
                        for pidfd, key, proc in new:
                            watched[pidfd] = (key, proc)
                            poller.register(pidfd, select.POLLIN)
                        continue
                    key, proc = watched.pop(fd)
                    poller.unregister(fd)
                    os.close(fd)
                    try:
                        self._on_exit(key, proc.wait())
                    except Exception:  # one report failing must not end the others'
                        log.exception("reporting the exit of %s failed", key)
        finally:
            for fd in watched:
                os.close(fd)
            with self._lock:
                for pidfd, _, _ in self._new:
                    os.close(pidfd)
                self._new = []
                os.close(self._wake_r)
                os.close(self._wake_w)
                self._thread = None


def _drain(fd: int) -> bytes:
    data = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            return data
        if not chunk:
            return data
        data += chunk
