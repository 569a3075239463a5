"""What the test modules share besides fixtures (those stay in conftest.py): the test
person's identity, the `aoi` console script, a git runner, and the types of the CLI
runner fixtures. Import it as `from kit import ...`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import click.testing
import psutil

AOI_BIN = Path(sys.executable).parent / "aoi"

PERSON_NAME = "Test Person"
PERSON_EMAIL = "test@example.com"

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
