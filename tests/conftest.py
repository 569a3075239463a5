"""Shared fixtures: an isolated git identity and home for every test, a guard that fails
any test touching the real home, a fresh org (`org_dir`), and two ways to run the CLI:
in-process through click (`cli`) and as the real console script (`run_aoi`)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import click.testing
import pygit2
import pytest
from kit import AOI_BIN, PERSON_EMAIL, PERSON_NAME, AoiRun, CliRun

# Recorded before any fixture patches HOME.
REAL_HOME = Path(os.path.expanduser("~"))

# Variables that would point git (or aoi) at some other repository, config or identity.
_SCRUBBED = (
    "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_CEILING_DIRECTORIES", "GIT_NAMESPACE",
    "GIT_CONFIG", "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT", "GIT_AUTHOR_DATE",
    "GIT_COMMITTER_DATE", "GIT_EDITOR", "GIT_SEQUENCE_EDITOR", "EDITOR", "VISUAL",
    "AOI_DEBUG", "AOI_SKIP_HOOK", "GIT_QUARANTINE_PATH",
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: a slow test (deselect with -m 'not slow')")


def _home_snapshot() -> tuple[frozenset[str], dict[str, float | None]]:
    try:
        names = frozenset(os.listdir(REAL_HOME))
    except OSError:
        names = frozenset()
    mtimes: dict[str, float | None] = {}
    for name in (".gitconfig", ".aoi"):
        try:
            mtimes[name] = (REAL_HOME / name).stat().st_mtime_ns
        except OSError:
            mtimes[name] = None
    return names, mtimes


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Pin the git identity, point HOME and git's global config at a temporary folder,
    and fail the test if it changed the real home."""
    before = _home_snapshot()
    home = tmp_path_factory.mktemp("home")
    gitconfig = home / ".gitconfig"
    gitconfig.write_text(
        f"[user]\n\tname = {PERSON_NAME}\n\temail = {PERSON_EMAIL}\n"
        "[init]\n\tdefaultBranch = main\n"
        "[protocol \"file\"]\n\tallow = always\n"
    )
    for var in _SCRUBBED:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_AUTHOR_NAME", PERSON_NAME)
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", PERSON_EMAIL)
    monkeypatch.setenv("GIT_COMMITTER_NAME", PERSON_NAME)
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", PERSON_EMAIL)
    monkeypatch.setenv("GIT_TERMINAL_PROMPT", "0")
    # libgit2 (pygit2) does not read GIT_CONFIG_GLOBAL and fixed its search path at import.
    levels = pygit2.enums.ConfigLevel
    saved = {lvl: pygit2.settings.search_path[lvl]
             for lvl in (levels.GLOBAL, levels.XDG, levels.SYSTEM)}
    pygit2.settings.search_path[levels.GLOBAL] = str(home)
    pygit2.settings.search_path[levels.XDG] = str(home / ".config" / "git")
    pygit2.settings.search_path[levels.SYSTEM] = str(home / "no-system")
    try:
        yield home
    finally:
        for lvl, value in saved.items():
            pygit2.settings.search_path[lvl] = value
    after = _home_snapshot()
    if after != before:
        added = sorted(after[0] - before[0])
        removed = sorted(before[0] - after[0])
        changed = [k for k in after[1] if after[1][k] != before[1][k]]
        pytest.fail(
            f"the test touched the real home {REAL_HOME}: added {added}, removed {removed}, "
            f"modified {changed}",
            pytrace=False,
        )


@pytest.fixture
def org_dir(tmp_path: Path) -> Path:
    """A fresh org made by `aoi init` (one commit, hooks and merge driver installed)."""
    from aoi_git.org.create import init_org

    path = tmp_path / "org"
    init_org(path)
    return path


@pytest.fixture
def cli() -> CliRun:
    """`cli(DIR, *args, input=None, env=None)` runs `aoi -C DIR args...` in-process.

    The result has `exit_code`, `stdout`, `stderr` (kept apart; click >= 8.2 always
    separates them) and `output` (both interleaved)."""
    from aoi_git.cli import main

    def run(directory: Path | str, *args: str, input: str | None = None,
            env: Mapping[str, str] | None = None) -> click.testing.Result:
        runner = click.testing.CliRunner(**_runner_kwargs())
        return runner.invoke(main, ["-C", str(directory), *args], input=input,
                             env=dict(env or {}), prog_name="aoi")

    return run


def _runner_kwargs() -> dict[str, Any]:
    import inspect

    # click < 8.2 mixed stderr into stdout unless told otherwise.
    if "mix_stderr" in inspect.signature(click.testing.CliRunner.__init__).parameters:
        return {"mix_stderr": False}
    return {}


@pytest.fixture
def run_aoi() -> AoiRun:
    """`run_aoi(*args, cwd=DIR, input=None, env=None)`: the real `aoi` console script."""

    def run(*args: str | os.PathLike[str], cwd: Path | str | None = None,
            input: str | None = None, env: Mapping[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(AOI_BIN), *map(str, args)], cwd=cwd, input=input, capture_output=True,
            text=True, env={**os.environ, **(env or {})}, timeout=timeout, check=False,
        )

    return run
