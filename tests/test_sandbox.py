"""Agents in their box: a hostile script agent and a hostile claude employee, run by the real
daemon under the real bubblewrap, on real git; and runs that die whole.

The hostile agent tries what an agent could do before the sandbox: plant a task in the
org checkout, cancel another task, raise its own concurrency, write outside its
worktree, install a hook in the main repository, write into $HOME, and leave 200
double-forked `setsid` sleepers behind. Afterwards none of it happened, no commit names a
person for it, and no process of the run is left. Its own work (a file and a `git commit`
on its branch) is merged as usual.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from kit import AOI_BIN, agent_processes, git
from orgkit import TmpOrg

from aoi_git.domain.model import Status
from aoi_git.runtime import run_unit
from aoi_git.testing.fake_messages_api import (
    ScriptedMessagesAPI,
    Text,
    ToolUse,
    offline_env,
    tool_results,
)

pytestmark = pytest.mark.timeout(120)

S = Status
SLEEPERS = 200

HOSTILE = '''
import json, os, pathlib, subprocess, time
ORG = pathlib.Path(os.environ["AOI_ORG_DIR"])
SHARED = pathlib.Path({shared!r})
tried = {{}}

def attempt(name, fn):
    try:
        fn()
        tried[name] = "done"
    except OSError as exc:
        tried[name] = f"refused: {{exc.strerror}}"

def edit(path, old, new):
    path.write_text(path.read_text().replace(old, new))

attempt("plant a task", lambda: (ORG / "tasks" / "planted.yaml").write_text(
    "id: planted\\ntitle: Planted by an agent\\nassignee: eng-1\\nreviewer: none\\n"))
victim = next((ORG / "tasks").rglob("victim.yaml"))
attempt("cancel a task", lambda: edit(victim, "status: pending", "status: cancelled"))
attempt("raise concurrency", lambda: edit(ORG / "employees" / "w1" / "profile.yaml",
                                          "concurrency: 1", "concurrency: 9"))
attempt("write outside", lambda: pathlib.Path("../../escaped.txt").write_text("x"))
common = pathlib.Path(subprocess.run(["git", "rev-parse", "--git-common-dir"],
                                     capture_output=True, text=True).stdout.strip())
attempt("install a hook", lambda: (common / "hooks" / "post-commit").write_text(
    "#!/bin/sh\\ntouch /tmp/aoi-hook-ran\\n"))
attempt("main branch", lambda: (common / "refs" / "heads" / "main").write_text("0" * 40))
attempt("write home", lambda: (pathlib.Path.home() / "planted.txt").write_text("x"))
attempt("see the daemon", lambda: os.kill({daemon_pid}, 0))
for _ in range({sleepers}):  # double fork: each sh starts a sleeper and exits at once
    subprocess.run(["setsid", "sh", "-c", "sleep 300 >/dev/null 2>&1 &"], check=True)
def sleepers():
    return sum(1 for p in pathlib.Path("/proc").iterdir() if p.name.isdigit()
               and (p / "cmdline").read_bytes().startswith(b"sleep\\x00300"))
deadline = time.time() + 10  # the last ones may not have exec'd `sleep` yet
while sleepers() < {sleepers} and time.time() < deadline:
    time.sleep(0.01)
tried["sleepers"] = sleepers()
attempt("private tmp", lambda: (pathlib.Path(os.environ["TMPDIR"]) / "x").write_text("x"))
pathlib.Path("work.txt").write_text("mine\\n")
subprocess.run(["git", "add", "work.txt"], check=True)
subprocess.run(["git", "-c", "user.name=w1", "-c", "user.email=w1@aoi.invalid", "commit",
                "-q", "-m", "the agent's own commit"], check=True)
(SHARED / "tried.json").write_text(json.dumps(tried))
pathlib.Path(os.environ["AOI_RESULT_FILE"]).write_text(json.dumps(
    {{"outcome": "completed", "summary": "did my work"}}))
'''


def script_employee(org: TmpOrg, eid: str, agent: Path) -> None:
    profile = {"id": eid, "name": eid, "role": "engineer", "reports_to": "ceo",
               "status": "active", "capacity": {"concurrency": 1, "timeout_s": 60},
               "backend": {"kind": "script", "command": [sys.executable, str(agent)]}}
    (org.root / "employees" / eid).mkdir(parents=True, exist_ok=True)
    (org.root / "employees" / eid / "profile.yaml").write_text(
        yaml.safe_dump(profile, sort_keys=False))


def commits_since(org: TmpOrg, base: str) -> str:
    return git(org.root, "log", "--format=%B%n----", f"{base}..HEAD")


FORKER = f"""
import json, os, pathlib, subprocess
for _ in range({SLEEPERS}):
    subprocess.run(["setsid", "sh", "-c", "sleep 300 >/dev/null 2>&1 &"], check=True)
pathlib.Path(os.environ["AOI_RESULT_FILE"]).write_text('{{"outcome": "completed"}}')
"""


def hostile_org(tmp_path: Path, *, sandbox: bool, job: str = "job") -> TmpOrg:
    org = TmpOrg(tmp_path)
    agent = org.root / "agents" / "hostile.py"
    if sandbox:
        agent.write_text(textwrap.dedent(HOSTILE.format(
            shared=str(org.shared), sleepers=SLEEPERS, daemon_pid=os.getpid())))
    else:  # unconfined, only what the cgroup is for
        org.edit_config(lambda d: d["sandbox"].update(enabled=False))
        agent.write_text(FORKER)
    script_employee(org, "w1", agent)
    org.commit()
    org.new("victim", "Leave me alone", assignee="ceo", kind="human")
    org.new(job, "Do the work", assignee="w1")
    return org


def test_a_hostile_script_agent_changes_only_its_own_branch(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))  # the daemon's (and so the agent's) home
    org = hostile_org(tmp_path, sandbox=True)
    base = git(org.root, "rev-parse", "HEAD").strip()
    profile = (org.root / "employees" / "w1" / "profile.yaml").read_text()
    hooks = sorted(p.name for p in (org.root / ".git" / "hooks").iterdir())
    run = subprocess.run([str(AOI_BIN), "-C", str(org.root), "daemon", "--until-idle"],
                         capture_output=True, text=True, timeout=90, check=False)
    assert run.returncode == 0, run.stderr
    # every process of the run died with it, the 200 sleepers included
    assert agent_processes(org.root) == []
    tried = json.loads((org.shared / "tried.json").read_text())
    assert tried.pop("sleepers") == SLEEPERS  # they were alive when the agent ended
    assert tried.pop("private tmp") == "done"
    assert tried == {name: tried[name] for name in tried if tried[name].startswith("refused")}
    assert set(tried) == {"plant a task", "cancel a task", "raise concurrency", "write outside",
                          "install a hook", "main branch", "write home", "see the daemon"}
    # none of it happened
    assert not list((org.root / "tasks").rglob("planted*"))
    assert "planted" not in org.tasks()
    assert org.task("victim").status is S.PENDING
    assert (org.root / "employees" / "w1" / "profile.yaml").read_text() == profile
    assert not (org.root / ".aoi" / "escaped.txt").exists()
    assert sorted(p.name for p in (org.root / ".git" / "hooks").iterdir()) == hooks
    assert not (home / "planted.txt").exists()
    assert git(org.root, "status", "--porcelain") == ""
    # no commit since the set-up speaks for a person
    history = commits_since(org, base)
    assert "Aoi-Actor: human:" not in history
    # its own work went the usual way: the file and its own commit, merged
    assert org.task("job").status is S.FINISHED
    assert git(org.root, "show", "main:work.txt") == "mine\n"
    assert "the agent's own commit" in history
    fsck = subprocess.run(["git", "fsck", "--strict"], cwd=org.root, capture_output=True,
                          text=True, check=False)
    assert fsck.returncode == 0, fsck.stderr


@pytest.mark.skipif(run_unit.parent() is None, reason="no writable cgroup v2 here")
def test_without_the_sandbox_the_runs_cgroup_still_kills_every_descendant(
        tmp_path: Path) -> None:
    org = hostile_org(tmp_path, sandbox=False, job="fork-unit")
    run = subprocess.run([str(AOI_BIN), "-C", str(org.root), "daemon", "--until-idle"],
                         capture_output=True, text=True, timeout=90, check=False)
    assert run.returncode == 0, run.stderr
    assert org.task("fork-unit").status is S.FINISHED
    assert agent_processes(org.root) == []
    parent = run_unit.parent()
    assert parent is not None
    assert not list(parent.glob("aoi-*-fork-unit"))  # and its cgroup is gone


def test_the_daemon_refuses_to_run_agents_without_bubblewrap(tmp_path: Path) -> None:
    org = TmpOrg(tmp_path)
    bin_dir = tmp_path / "bin"  # the tools the daemon runs, without bwrap
    bin_dir.mkdir()
    for tool in ("git", "sh", "setpriv", "prlimit", "setsid"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    org.commit()
    env = {**os.environ, "PATH": str(bin_dir)}
    run = subprocess.run([str(AOI_BIN), "-C", str(org.root), "daemon", "--until-idle"],
                         capture_output=True, text=True, timeout=60, env=env, check=False)
    assert run.returncode == 1
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert "bubblewrap" in run.stderr and "sandbox: {enabled: false}" in run.stderr
    org.edit_config(lambda d: d["sandbox"].update(enabled=False))
    org.commit("no sandbox on this machine")
    run = subprocess.run([str(AOI_BIN), "-C", str(org.root), "daemon", "--until-idle"],
                         capture_output=True, text=True, timeout=60, env=env, check=False)
    assert run.returncode == 0, run.stderr


def test_a_claude_employee_cannot_plant_a_task_in_the_org_checkout(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    org = TmpOrg(tmp_path)
    org.edit_config(lambda d: d["tools"]["gated"].update({"Write": ["engineer"]}))
    profile = {"id": "eng-1", "name": "eng-1", "role": "engineer", "reports_to": "ceo",
               "status": "active", "tools": ["Read", "Write"],
               "backend": {"kind": "claude", "model": "claude-sonnet-4-5", "reflect": False},
               "capacity": {"concurrency": 1, "timeout_s": 90, "max_turns": 6}}
    (org.root / "employees" / "eng-1").mkdir(parents=True, exist_ok=True)
    (org.root / "employees" / "eng-1" / "profile.yaml").write_text(
        yaml.safe_dump(profile, sort_keys=False))
    org.commit()
    org.new("plant", "Write the notes", assignee="eng-1")
    base = git(org.root, "rev-parse", "HEAD").strip()
    planted = org.root / "tasks" / "planted-by-claude.yaml"
    script = [
        ToolUse("Write", {"file_path": str(planted), "content":
                          "id: planted-by-claude\ntitle: Planted\nassignee: ceo\n"}),
        ToolUse("mcp__aoi__report_result", {"outcome": "completed", "summary": "planted"}),
        Text("Done."),
    ]
    home = tmp_path / "claude-home"
    home.mkdir()
    with ScriptedMessagesAPI(script) as api:
        for k, v in offline_env(api.base_url, str(home)).items():
            monkeypatch.setenv(k, v)  # the daemon passes its environment to the runner
        org.run()
    (answer,) = tool_results(api.requests[1])  # what the Write call got back
    assert answer["is_error"] or "read-only" in answer["text"].lower(), answer
    assert not planted.exists()
    assert "planted-by-claude" not in org.tasks()
    history = commits_since(org, base)
    assert "planted-by-claude" not in history and "Aoi-Actor: human:" not in history
    assert git(org.root, "status", "--porcelain") == ""
    assert agent_processes(org.root) == []


# ------------------------------------------------------------------ the box itself
def linked_worktree(root: Path, name: str) -> tuple[Path, Path, str]:
    """A repository at `root` with a linked worktree on `aoi/<name>`: (worktree, run
    folder, tip)."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    (root / "f").write_text("x\n")
    git(root, "add", "f")
    git(root, "commit", "-q", "-m", "f")
    worktree = root / ".aoi" / "worktrees" / name
    git(root, "worktree", "add", "-q", "-b", f"aoi/{name}", str(worktree))
    run_folder = root / ".aoi" / "runs" / name
    run_folder.mkdir(parents=True)
    return worktree, run_folder, git(root, "rev-parse", "HEAD").strip()


def seen_in_box(worktree: Path, run_folder: Path, tip: str, keys: Path) -> list[str]:
    """What `ls -A` of `keys` shows to a run in its box."""
    from aoi_git.domain.model import SandboxConfig
    from aoi_git.runtime import agent_run, sandbox

    bwrap = sandbox.require(SandboxConfig())
    assert bwrap is not None
    files = agent_run.prepare(run_folder, {"id": worktree.name}, "", {})
    box = sandbox.box_for_run(bwrap, worktree, files.folder, (), tip)
    proc = agent_run.spawn(["/bin/ls", "-A", str(keys)], files=files, cwd=worktree,
                           env=dict(os.environ), memory_mb=None, box=box)
    assert proc.wait(30) == 0, files.stderr.read_text()
    assert json.loads(files.meta.read_text())["sandboxed"]
    return files.stdout.read_text().split()


def test_the_keys_folder_shows_empty_in_the_box_unless_the_run_lives_inside_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aoi_git.store import signing

    keys = signing.keys_dir()
    keys.mkdir(parents=True)
    (keys / "host_ed25519").write_text("secret\n")
    assert seen_in_box(*linked_worktree(tmp_path / "repo", "t-a"), keys) == []
    # the keys folder named through a symlink, the run's folders inside its real path:
    # the folder is the run's own
    (tmp_path / "config-link").symlink_to(keys.parent.parent)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config-link"))
    assert signing.keys_dir() != keys
    run = linked_worktree(keys / "org", "t-b")
    assert seen_in_box(*run, keys) == ["host_ed25519", "org"]
    monkeypatch.setenv("XDG_CONFIG_HOME", str(keys.parent.parent))
    assert seen_in_box(*linked_worktree(tmp_path / "repo2", "t-c"), keys) == []


def test_the_branch_copies_follow_the_branches_from_run_to_run(tmp_path: Path) -> None:
    from aoi_git.store import agent_git

    worktree, run_folder, tip = linked_worktree(tmp_path / "repo", "t-a")
    root = tmp_path / "repo"
    git(root, "branch", "aoi/t-other")
    ag = agent_git.prepare(worktree, run_folder, tip)
    assert ag is not None
    assert (ag.refs / "t-other").read_text().strip() == tip
    (root / "g").write_text("y\n")
    git(root, "add", "g")
    git(root, "commit", "-q", "-m", "g")
    moved = git(root, "rev-parse", "HEAD").strip()
    git(root, "branch", "-f", "aoi/t-other", moved)
    (ag.refs / "t-a").write_text("0" * 40 + "\n")  # what the last run left of its own
    again = agent_git.prepare(worktree, run_folder, tip)
    assert again is not None
    assert (again.refs / "t-other").read_text().strip() == moved
    assert (again.refs / "t-a").read_text().strip() == tip
