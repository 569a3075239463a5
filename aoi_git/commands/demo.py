from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

from aoi_git.commands.cli_context import App
from aoi_git.commands.render import tree_lines
from aoi_git.domain.model import Actor, ActorKind, SandboxConfig, Status
from aoi_git.errors import AoiError
from aoi_git.org import task_ops
from aoi_git.org.create import init_org
from aoi_git.org.organisation import load_org
from aoi_git.resources import resource_dir
from aoi_git.runtime import sandbox
from aoi_git.runtime.daemon import Daemon, DaemonOptions
from aoi_git.store import signing, yamlio
from aoi_git.store.git import git
from aoi_git.store.org_store import Store
from aoi_git.store.txn import Txn, commit

ROOT_TITLE = "Build textkit: a tiny text-statistics library with a command line"
ROOT_DESCRIPTION = """\
A Python package `textkit` with word statistics (count, most common words), sentence
statistics (count; sentences end with . ! or ?) and `python -m textkit FILE`.
Every module ships with unit tests; QA runs them before anything is merged."""
DEMO_TALENTS = ("software-engineer", "code-reviewer")


def build_demo_org(target: Path, claude_model: str | None, confined: bool = True) -> Path:
    """The demo org in `target`; `confined=False` turns its agents' sandbox off."""
    init_org(target, name="textkit-demo")
    if not confined:
        config = target / "aoi.yaml"
        text = config.read_text()
        assert "sandbox:\n  enabled: true\n" in text
        config.write_text(text.replace("sandbox:\n  enabled: true\n",
                                       "sandbox:\n  enabled: false\n"))
    src = resource_dir("examples") / "demo"
    shutil.copytree(src / "agents", target / "agents", dirs_exist_ok=True)
    shutil.copytree(src / "employees", target / "employees", dirs_exist_ok=True)
    shutil.copy(src / "README.md", target / "README.md")
    for talent in DEMO_TALENTS:
        shutil.copytree(resource_dir("market") / talent, target / "talents" / talent,
                        dirs_exist_ok=True)
    if claude_model:
        for profile in (target / "employees").glob("*/profile.yaml"):
            data = yamlio.load(profile.read_bytes())
            if data.get("backend", {}).get("kind") == "script":
                data["backend"] = {"kind": "claude", "model": claude_model}
                profile.write_bytes(yamlio.dump(data))
    if not git("config", "user.name", cwd=target, check=False).strip():
        git("config", "user.name", "ceo", cwd=target)
        git("config", "user.email", "ceo@example.invalid", cwd=target)
    git("add", "-A", cwd=target)
    host_key = signing.host_signer()  # a person's commit, signed by git itself
    sign = (["-c", "gpg.format=ssh", "-c", f"user.signingkey={host_key.path}", "-c",
             "commit.gpgsign=true"] if host_key and shutil.which("ssh-keygen") else [])
    git(*sign, "commit", "-q", "-m", "demo: hire the textkit team (planner, two engineers, QA)",
        cwd=target)
    return target


@click.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="Where to create the demo org (default: a new temporary folder).")
@click.option("--claude", is_flag=True,
              help="Run the same organisation on Claude (needs ANTHROPIC_API_KEY).")
@click.option("--model", default="claude-sonnet-4-5", show_default=True,
              help="The Claude model for --claude.")
@click.pass_obj
def demo(app: App, directory: Path | None, claude: bool, model: str) -> None:
    """Run a small real project end to end, offline, in a new org, and show its history.

    A planner decomposes the project, two engineers write code and tests on their own
    branches, QA runs the tests and rejects one deliverable once, the rework is accepted,
    everything merges, and the root is reviewed: QA rejects it once for missing usage
    documentation, and the planner re-plans, keeping the three accepted subtasks and
    adding only the documentation.

    \b
    Examples:
      aoi demo
      aoi demo --dir ./textkit-org
      ANTHROPIC_API_KEY=... aoi demo --claude
    """
    if claude and not os.environ.get("ANTHROPIC_API_KEY"):
        raise AoiError("--claude needs ANTHROPIC_API_KEY in the environment; "
                       "without it, run `aoi demo` (deterministic script employees)")
    target = (directory or Path(tempfile.mkdtemp(prefix="aoi-demo-"))).resolve()
    if target.exists() and any(target.iterdir()):
        raise AoiError(f"{target} is not empty: give --dir a new folder")
    started = time.monotonic()
    click.echo(f"creating the demo org in {target}")
    try:  # the demo's agents are aoi's own example scripts: confined where bwrap works
        sandbox.require(SandboxConfig())
        confined = True
    except AoiError as exc:
        click.echo(f"note: the demo runs its agents unconfined ({exc})")
        confined = False
    build_demo_org(target, model if claude else None, confined)
    store = Store(target)
    org = load_org(store)
    ceo = Actor(ActorKind.HUMAN, org.config.ceo)
    created: list[str] = []

    def add_root(txn: Txn) -> None:
        t = task_ops.new_task(txn, org.tasks, ROOT_TITLE, description=ROOT_DESCRIPTION,
                         assignee="coo", reviewer="qa")
        created.append(t.id)

    commit(store, add_root, ceo, org.index.paths)
    root = created[0]
    click.echo(f"the CEO asks: {ROOT_TITLE} ({root})\n")

    def progress(actor: str, subject: str) -> None:
        click.echo(f"  {time.monotonic() - started:5.1f}s  {actor:<16} {subject}")

    Daemon(target, DaemonOptions(until_idle=True, watch=False, on_commit=progress)).run()
    org = load_org(Store(target))
    click.echo("\ntask tree:")
    for line in tree_lines(org.tasks, [root]):
        click.echo(f"  {line}")
    replans = [line.strip() for line in git("log", "--format=%b", cwd=target).splitlines()
               if line.startswith("re-planned:")]
    if replans:
        click.echo("\nthe re-plan after the root's rejection (accepted work kept, not redone):")
        for line in replans:
            click.echo(f"  {line}")
    click.echo("\naudit log (aoi log ROOT):")
    out = subprocess.run([sys.executable, "-m", "aoi_git", "-C", str(target), "log", root],
                         capture_output=True, text=True, check=False)
    for line in out.stdout.splitlines():
        click.echo(f"  {line}")
    status = org.tasks[root].status
    files = git("ls-files", "textkit", "tests", cwd=target).split()
    click.echo(f"\nthe output is in {target} (branch {store.branch}): {' '.join(files)}")
    if "textkit/__main__.py" in files:
        run = subprocess.run([sys.executable, "-m", "textkit", "README.md"], cwd=target,
                             capture_output=True, text=True, check=False)
        click.echo("python -m textkit README.md:\n  " + "\n  ".join(run.stdout.splitlines()))
    click.echo(f"\nroot {root}: {status.value} in {time.monotonic() - started:.1f}s. "
               f"Try: cd {target} && git log --oneline && aoi log {root}")
    if status is not Status.FINISHED:
        raise SystemExit(1)
