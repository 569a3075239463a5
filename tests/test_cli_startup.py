"""`aoi` imports a subcommand's module only when that subcommand runs."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("pygit2", "jsonschema", "yaml", "watchdog", "filelock", "asyncio", "aoi_git.store",
         "aoi_git.org", "aoi_git.runtime", "aoi_git.evolution")


def _imported_after(code: str) -> set[str]:
    probe = code + "\nimport sys\nprint('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout
    return {m for m in out.split() if m.split(".")[0] in {h.split(".")[0] for h in HEAVY}}


def _heavy(mods: set[str]) -> set[str]:
    return {m for m in mods if any(m == h or m.startswith(h + ".") for h in HEAVY)}


def test_the_cli_module_imports_no_subcommand() -> None:
    assert _heavy(_imported_after("import aoi_git.cli")) == set()


def test_version_imports_no_subcommand() -> None:
    code = ("import sys\nfrom aoi_git.cli import main\nsys.argv = ['aoi', '--version']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass")
    assert _heavy(_imported_after(code)) == set()


def test_one_subcommand_imports_its_own_module_only() -> None:
    from aoi_git.commands import COMMANDS, load

    code = "from aoi_git.commands import load\nload('graph')"
    mods = _imported_after(code)
    others = {f"aoi_git.commands.{m}" for m, _ in COMMANDS.values()} - {"aoi_git.commands.graph"}
    assert "aoi_git.commands.graph" in mods
    assert not mods & others
    assert load("no-such-command") is None
