"""The reaper: one thread reports the exit of every agent process handed to it."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading

import pytest

from aoi_git.runtime.reaper import Reaper


def _start(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code])


def _collect(n: int, exits: queue.SimpleQueue[tuple[str, int]]) -> dict[str, int]:
    got = {}
    for _ in range(n):
        key, rc = exits.get(timeout=20)
        got[key] = rc
    return got


def test_reports_each_exit_status_once_on_one_thread() -> None:
    exits: queue.SimpleQueue[tuple[str, int]] = queue.SimpleQueue()
    threads: set[str] = set()

    def on_exit(key: str, rc: int) -> None:
        threads.add(threading.current_thread().name)
        exits.put((key, rc))

    reaper = Reaper(on_exit)
    procs = {f"t{i}": _start(f"import time, sys; time.sleep({i % 3} * 0.05); sys.exit({i})")
             for i in range(12)}
    for key, proc in procs.items():
        reaper.watch(key, proc)
    try:
        assert _collect(12, exits) == {f"t{i}": i for i in range(12)}
        with pytest.raises(queue.Empty):
            exits.get(timeout=0.2)  # nothing reported twice
        assert all(p.returncode is not None for p in procs.values())  # reaped: no zombies
        if hasattr(os, "pidfd_open"):
            assert threads == {"aoi-reaper"}
    finally:
        reaper.close()


def test_a_process_that_exited_before_it_was_handed_over_is_reported() -> None:
    exits: queue.SimpleQueue[tuple[str, int]] = queue.SimpleQueue()
    reaper = Reaper(lambda key, rc: exits.put((key, rc)))
    proc = _start("raise SystemExit(7)")
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # exited, still a zombie
    reaper.watch("early", proc)
    try:
        assert _collect(1, exits) == {"early": 7}
    finally:
        reaper.close()


def test_a_killed_process_reports_the_signal_and_close_allows_a_new_start() -> None:
    exits: queue.SimpleQueue[tuple[str, int]] = queue.SimpleQueue()
    reaper = Reaper(lambda key, rc: exits.put((key, rc)))
    sleeper = _start("import time; time.sleep(60)")
    reaper.watch("sleeper", sleeper)
    sleeper.kill()
    assert _collect(1, exits) == {"sleeper": -9}
    reaper.close()
    reaper.close()  # twice is harmless
    reaper.watch("again", _start("pass"))  # a closed reaper starts its thread again
    try:
        assert _collect(1, exits) == {"again": 0}
    finally:
        reaper.close()


def test_without_pidfds_each_process_gets_its_own_waiting_thread(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def no_pidfds(pid: int, flags: int = 0) -> int:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(os, "pidfd_open", no_pidfds, raising=False)
    exits: queue.SimpleQueue[tuple[str, int]] = queue.SimpleQueue()
    reaper = Reaper(lambda key, rc: exits.put((key, threading.current_thread().name, rc)))  # type: ignore[arg-type]
    reaper.watch("a", _start("raise SystemExit(3)"))
    key, name, rc = exits.get(timeout=20)  # type: ignore[misc]
    assert (key, name, rc) == ("a", "wait-a", 3)
    reaper.close()  # no thread of its own was started


def test_a_failing_report_does_not_stop_the_others() -> None:
    exits: queue.SimpleQueue[tuple[str, int]] = queue.SimpleQueue()

    def on_exit(key: str, rc: int) -> None:
        if key == "bad":
            raise RuntimeError("the callback failed")
        exits.put((key, rc))

    reaper = Reaper(on_exit)
    reaper.watch("good", _start("import time; time.sleep(0.5); raise SystemExit(5)"))
    reaper.watch("bad", _start("pass"))  # exits first; its report fails
    try:
        assert _collect(1, exits) == {"good": 5}
    finally:
        reaper.close()
