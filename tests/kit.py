"""What the test modules share besides fixtures (those stay in conftest.py): the test
person's identity, the `aoi` console script, a git runner, and the types of the CLI
runner fixtures. Import it as `from kit import ...`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import click.testing
import psutil

AOI_BIN = Path(sys.executable).parent / "aoi"

PERSON_NAME = "Test Person"
PERSON_EMAIL = "test@example.com"
# `aoi init` makes the founder the CEO (aoi.yaml `humans.ceo` gets their name and e-mail),
# so the person's commits say `Aoi-Actor: human:ceo` whatever their `user.name`
PERSON_ID = "ceo"
PERSON_ACTOR = f"human:{PERSON_ID}"

# `cli(DIR, *args, input=None, env=None)`: see the `cli` fixture.
CliRun = Callable[..., click.testing.Result]
# `run_aoi(*args, cwd=DIR, input=None, env=None)`: see the `run_aoi` fixture.
AoiRun = Callable[..., "subprocess.CompletedProcess[str]"]


def git(cwd: Path | str, *args: str, check: bool = True,
        env: Mapping[str, str] | None = None) -> str:
    """Run git in `cwd`; returns stdout (a failure raises AssertionError with stderr)."""
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    return proc.stdout


def lines(text: str) -> Sequence[str]:
    """The non-blank lines of `text`."""
    return [ln for ln in text.splitlines() if ln.strip()]


def agent_processes(org_root: Path) -> list[psutil.Process]:
    """The live processes of an org's agent runs, found by the AOI_ORG_DIR they inherit
    (the pids an agent notes are its sandbox's own, so tests look from outside)."""
    out = []
    for p in psutil.process_iter():
        try:
            if (p.environ().get("AOI_ORG_DIR") == str(org_root)
                    and p.status() != psutil.STATUS_ZOMBIE):
                out.append(p)
        except psutil.Error:
            continue
    return out


def wait_for(cond: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05,
             what: str = "condition") -> Any:
    """Poll `cond` every `interval` s until it returns something true (that value), or fail
    after `timeout` s naming `what`."""
    end = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
