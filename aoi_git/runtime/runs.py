"""The agent processes the daemon is running: started, reaped, timed out, killed.

Each run is one process group holding its task's and its employee slot's locks. Its exit
is reported by the reaper's thread: the exit status is written to the run's files first
(so a daemon killed right after still knows the agent finished), then queued for the
daemon's loop, which is woken. A run past its deadline gets SIGTERM, and SIGKILL after a
grace period (at most 5 s); whatever is left of a group is killed when its run ends.
"""

from __future__ import annotations

import queue
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from aoi_git.domain.control import Stop
from aoi_git.runtime import agent_run
from aoi_git.runtime.locks import SlotLock
from aoi_git.runtime.reaper import Reaper
from aoi_git.store.tree_snapshot import Snapshot


@dataclass
class Active:
    task_id: str
    employee: str
    backend: str
    files: agent_run.RunFiles
    started: float
    deadline: float
    pgid: int = 0
    proc: subprocess.Popen[bytes] | None = None
    slot: SlotLock | None = None
    task_lock: SlotLock | None = None
    term_at: float | None = None
    kill_at: float | None = None
    timed_out: bool = False
    stopped: bool = False  # killed by a cold stop of the daemon, not by its own failure
    stop: tuple[Stop, str] | None = None  # stopped because the org no longer wants it
    fresh_tip: str | None = None  # the branch was made for this run at this base commit
    before: Snapshot | None = None  # the worktree as the agent got it


class Runs:
    def __init__(self, runs_dir: Path, wake: threading.Event,
                 log: Callable[[str], None]) -> None:
        self.runs_dir = runs_dir
        self.wake = wake
        self.log = log
        self.active: dict[str, Active] = {}  # task id -> its run
        self._exits: queue.SimpleQueue[tuple[str, int]] = queue.SimpleQueue()  # (task, rc)
        self._reaper = Reaper(self._child_exited)

    def watch(self, run: Active) -> None:
        """`run` has started: report its exit."""
        assert run.proc is not None
        self.active[run.task_id] = run
        self._reaper.watch(run.task_id, run.proc)

    def _child_exited(self, task_id: str, rc: int) -> None:
        """(On the reaper's thread.)"""
        try:
            agent_run.RunFiles(self.runs_dir / task_id).exit.write_text(str(rc))
        except OSError:
            pass
        self._exits.put((task_id, rc))
        self.wake.set()

    def exits(self, block: float | None = None) -> Iterator[tuple[Active, int]]:
        """The runs that exited since the last call, with their exit status (waiting up
        to `block` seconds for the first). The caller then calls `ended` for each."""
        while True:
            try:
                task_id, rc = self._exits.get(timeout=block) if block else \
                    self._exits.get_nowait()
            except queue.Empty:
                return
            block = None
            a = self.active.get(task_id)
            if a is not None:
                yield a, rc

    def ended(self, a: Active) -> None:
        """Forget `a`, kill what is left of its process group and release its locks."""
        self.active.pop(a.task_id, None)
        agent_run.end_run(a.files, a.pgid, a.task_id)  # leftovers of the agent
        if a.slot:
            a.slot.release()
        if a.task_lock:
            a.task_lock.release()

    def check_timeouts(self, now: float, grace_s: float) -> None:
        for a in self.active.values():
            if a.term_at is None and now >= a.deadline and a.pgid:
                a.timed_out = True
                a.term_at = now
                a.kill_at = now + min(grace_s, 5.0)
                agent_run.kill_group(a.pgid, signal.SIGTERM)
                self.log(f"{a.task_id}: timeout: SIGTERM to process group {a.pgid}")
            elif a.kill_at is not None and now >= a.kill_at and a.pgid:
                agent_run.end_run(a.files, a.pgid, a.task_id)
                a.kill_at = None
                self.log(f"{a.task_id}: SIGKILL to process group {a.pgid}")

    def next_deadline(self) -> float | None:
        """The earliest time a run is due a SIGTERM or SIGKILL."""
        times = [t for a in self.active.values()
                 for t in (a.deadline if a.term_at is None else None, a.kill_at)
                 if t is not None]
        return min(times, default=None)

    def stop(self, a: Active, stop: Stop, why: str) -> None:
        """Stop `a` now, as a unit (its process group and cgroup): the org no longer
        wants it (`domain.control`). Its exit is still reported."""
        a.stop = (stop, why)
        agent_run.end_run(a.files, a.pgid, a.task_id)
        self.log(f"{a.task_id}: stopped the run of {a.employee} ({why})")

    def kill_all(self) -> None:
        """SIGKILL every run (a cold stop): their exits are still reported."""
        for a in list(self.active.values()):
            a.stopped = True
            agent_run.end_run(a.files, a.pgid, a.task_id)

    def lost(self, task_id: str) -> tuple[agent_run.RunFiles, int | None]:
        """A run of `task_id` that a previous daemon started: its process group is killed
        if still alive (agents do not outlive their daemon); its files and exit status."""
        files = agent_run.RunFiles(self.runs_dir / task_id)
        pgid = int(files.read_meta().get("pgid") or 0)
        # (meta.json is in the run folder, which the agent can write: see `owns_group`)
        if pgid and agent_run.group_alive(pgid) and agent_run.owns_group(files, pgid):
            agent_run.kill_group(pgid, signal.SIGKILL)
            self.log(f"{task_id}: killed the orphaned agent group {pgid}")
        agent_run.end_run(files, 0, task_id)  # and its cgroup
        return files, files.read_exit()

    def close(self) -> None:
        """Stop reporting exits."""
        self._reaper.close()
