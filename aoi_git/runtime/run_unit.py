"""An agent run as one cgroup (v2), so that every process it started dies with it.

Where the machine offers a writable cgroup v2 hierarchy (with `cgroup.kill`, Linux 5.14+)
each run gets `aoi-<daemon pid>-<task id>/` below the daemon's own cgroup; the launcher
moves the agent into it before it runs anything (see `agent_run`), so its descendants,
double-forked and `setsid` ones included, are all inside. `kill` writes `cgroup.kill`
and removes the folder once it is empty. Elsewhere `create` returns None and the run is
held together by the sandbox's pid namespace (see `sandbox`) and its process group.
"""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path

EMPTY_WAIT_S = 2.0  # how long `kill` waits for the killed processes to be gone


@functools.cache
def parent() -> Path | None:
    """The daemon's own cgroup v2 folder, when runs can be made below it; else None."""
    mount = _cgroup2_mount()
    if mount is None:
        return None
    try:
        own = next(line.split("::", 1)[1].strip()
                   for line in Path("/proc/self/cgroup").read_text().splitlines()
                   if line.startswith("0::"))
    except (OSError, StopIteration):
        return None
    base = mount / own.lstrip("/")
    probe = base / f"aoi-probe-{os.getpid()}"
    try:
        probe.mkdir(exist_ok=True)
        usable = (probe / "cgroup.kill").exists() and os.access(probe / "cgroup.procs", os.W_OK)
        probe.rmdir()
    except OSError:
        return None
    return base if usable else None


def _cgroup2_mount() -> Path | None:
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        left, _, right = line.partition(" - ")
        if right.split(" ", 1)[0] == "cgroup2":
            return Path(left.split()[4])
    return None


def create(task_id: str) -> Path | None:
    """A fresh, empty cgroup for a run of `task_id`, or None where there are none."""
    base = parent()
    if base is None:
        return None
    path = base / f"aoi-{os.getpid()}-{task_id}"
    if path.exists():
        kill(path)
    try:
        path.mkdir()
    except OSError:
        return None
    return path


def owned(path: Path | str, task_id: str) -> bool:
    """True when `path` is a run cgroup of `task_id` (any daemon's) below `parent()`."""
    base = parent()
    folder = Path(path)
    if base is None or folder.parent != base:
        return False
    head, _, rest = folder.name.partition("-")
    pid, _, task = rest.partition("-")
    return head == "aoi" and pid.isdigit() and task == task_id


def procs_file(path: Path) -> Path:
    return path / "cgroup.procs"


def kill(path: Path | str | None) -> bool:
    """SIGKILL every process in the cgroup and remove it; False when it was not there."""
    if not path:
        return False
    folder = Path(path)
    try:
        (folder / "cgroup.kill").write_text("1")
    except OSError:
        return False
    deadline = time.monotonic() + EMPTY_WAIT_S
    while True:
        try:
            folder.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError:  # still populated: the killed processes are exiting
            if time.monotonic() > deadline:
                return True
            time.sleep(0.002)


def sweep() -> int:
    """Kill and remove the run cgroups of daemons that are gone (a kill -9 can leave them);
    the number removed."""
    base = parent()
    if base is None:
        return 0
    removed = 0
    for folder in base.glob("aoi-*-*"):
        pid = folder.name.split("-")[1]
        if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        removed += kill(folder)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True

