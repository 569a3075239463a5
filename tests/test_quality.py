"""ruff and mypy are part of the suite: the code stays lint- and type-clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(300)
def test_ruff_clean() -> None:
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "aoi_git", "benchmarks"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.timeout(600)
def test_mypy_clean() -> None:
    proc = subprocess.run([sys.executable, "-m", "mypy", "aoi_git"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_command_is_documented() -> None:
    """Every command has help with an example and appears in the README."""
    import click

    from aoi_git.cli import main

    readme = (ROOT / "README.md").read_text()

    def walk(cmd: click.Command, path: list[str]) -> None:
        if getattr(cmd, "hidden", False):
            return
        name = " ".join(path)
        assert "Example" in (cmd.help or ""), f"`aoi {name}` help has no example"
        if path:
            assert f"aoi {path[0]}" in readme, f"`aoi {path[0]}` is not in the README"
        if isinstance(cmd, click.Group):
            ctx = click.Context(cmd)
            for sub_name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, sub_name)
                assert sub is not None, f"`aoi {name} {sub_name}` does not load"
                walk(sub, [*path, sub_name])

    walk(main, [])
