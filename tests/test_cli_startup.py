"""`aoi` imports a subcommand's module only when that subcommand runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_task_show_reads_one_file_without_the_store(org_dir: Path) -> None:
    """`aoi task show` reads its one file through git: no pygit2, no org load, and none of
    `aoi task`'s other subcommands (the daemon's flow, worktrees) imported."""
    from aoi_git.org.task_lookup import candidate_paths

    made = subprocess.run([sys.executable, "-m", "aoi_git", "-C", str(org_dir), "task", "new",
                           "Shown alone", "--assignee", "coo"], capture_output=True,
                          text=True, check=True).stdout.strip()
    code = ("import sys\nfrom aoi_git.cli import main\n"
            f"sys.argv = ['aoi', '-C', {str(org_dir)!r}, 'task', 'show', {made[:6]!r}]\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code")
    mods = _imported_after(code)
    assert f"# {candidate_paths(made)[0]}" in subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    unwanted = {"pygit2", "aoi_git.store.org_store", "aoi_git.org.organisation",
                "aoi_git.org.flow", "aoi_git.store.worktrees", "aoi_git.commands.task_control",
                "aoi_git.commands.task_done"}
    assert not mods & unwanted


def test_the_executable_answers_version_before_building_the_cli() -> None:
    code = ("import sys\nfrom aoi_git.entry import main\nsys.argv = ['aoi', '--version']\n"
            "main()\nprint(' '.join(sys.modules))")
    out, mods = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               check=True).stdout.splitlines()
    assert not [m for m in mods.split() if m.startswith(("click", "aoi_git.cli", "yaml"))]
    by_click = subprocess.run(
        [sys.executable, "-c", "from aoi_git.cli import main; main(['--version'])"],
        capture_output=True, text=True, check=False).stdout
    assert out.startswith("aoi, version ") and f"{out}\n" == by_click


def test_task_list_of_open_tasks_reads_the_cache_without_the_store(org_dir: Path) -> None:
    """Once the task cache describes HEAD's tasks, `aoi task list --status pending` reads
    its open part: no pygit2, no org load; a commit the cache has not seen (a person's
    own `git commit`) sends it through the org, which brings the cache along."""
    def aoi(*args: str) -> str:
        return subprocess.run([sys.executable, "-m", "aoi_git", "-C", str(org_dir), *args],
                              capture_output=True, text=True, check=True).stdout

    first = aoi("task", "new", "Listed first", "--assignee", "coo").strip()
    code = ("import sys\nfrom aoi_git.cli import main\n"
            f"sys.argv = ['aoi', '-C', {str(org_dir)!r}, 'task', 'list', '--status', "
            "'pending']\ntry:\n    main()\nexcept SystemExit as e:\n    assert not e.code")
    assert first in aoi("task", "list", "--status", "pending")  # (the cache is written)
    mods = _imported_after(code)
    assert not mods & {"pygit2", "aoi_git.store.org_store", "aoi_git.org.organisation"}

    tasks = org_dir / "tasks"
    by_hand = "t-byhand01"
    (tasks / f"{by_hand}.yaml").write_text(
        f"id: {by_hand}\ntitle: Written by hand\nstatus: pending\nassignee: coo\n")
    subprocess.run(["git", "-C", str(org_dir), "add", "tasks"], check=True)
    subprocess.run(["git", "-C", str(org_dir), "commit", "-qm", "a task by hand"],
                   check=True)
    assert "pygit2" in _imported_after(code)  # the cache was behind HEAD
    listed = aoi("task", "list", "--status", "pending")
    assert first in listed and by_hand in listed
    assert "pygit2" not in _imported_after(code)  # ... and is HEAD's again
    assert by_hand not in aoi("task", "list", "--status", "finished")
