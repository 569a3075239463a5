"""Moves nobody could act between share one commit: a task with no reviewer and nothing to
merge is accepted and finished by one commit carrying one `Aoi-Transition` per move, which
`aoi log`, the history and the pre-receive hook read move by move.

Real daemon with script agents, real git, the real pre-receive hook on a bare repository.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kit import git
from test_org_loop import LoopOrg, commit_of

from aoi_git.domain.lifecycle import NO_REVIEWER
from aoi_git.store.trailers import Message, Transition, authorities, moves

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(name="org")
def moves_org(tmp_path: Path) -> LoopOrg:
    o = LoopOrg(tmp_path)
    o.employee("eng-1")
    o.act("Nothing to change", {"summary": "looked: nothing to do"})
    o.act("Change a file", {"files": {"f.txt": "changed\n"}})
    o.commit()
    return o


def shared_repo(org: LoopOrg, tmp_path: Path) -> Path:
    """A bare repository with aoi's pre-receive hook, as a shared server has it."""
    bare = tmp_path / "shared.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    hook = bare / "hooks" / "pre-receive"
    hook.write_text((Path(__file__).parents[1] / "hooks" / "pre-receive").read_text())
    hook.chmod(0o755)
    git(bare, "config", "aoi.python", sys.executable)
    return bare


def push(org: LoopOrg, bare: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "push", "-q", str(bare), "main"], cwd=org.root,
                          capture_output=True, text=True, check=False)


def test_accepted_and_finished_in_one_commit_seen_move_by_move(
        org: LoopOrg, tmp_path: Path) -> None:
    bare = shared_repo(org, tmp_path)
    assert push(org, bare).returncode == 0
    org.new("noop", "Nothing to change")
    org.new("edit", "Change a file")
    org.run()
    assert org.transitions("noop") == [
        "new->pending", "pending->processing", "processing->completed",
        "completed->accepted", "accepted->finished"]
    both = commit_of(org, "noop", "completed->accepted")
    assert both == commit_of(org, "noop", "accepted->finished")  # one commit
    assert both.startswith("aoi: noop completed -> accepted -> finished: Nothing to change")
    assert "Aoi-Actor: daemon:" in both and authorities(both) == [NO_REVIEWER]
    assert moves(both) == {"noop": ["completed->accepted", "accepted->finished"]}
    # a branch to merge: the accept, the merge and the finish stay commits of their own
    assert commit_of(org, "edit", "completed->accepted") != \
        commit_of(org, "edit", "accepted->finished")
    fsck = subprocess.run(["git", "fsck", "--no-progress"], cwd=org.root, capture_output=True,
                          text=True, check=False)
    assert fsck.returncode == 0 and not fsck.stdout.strip(), fsck.stdout
    out = push(org, bare)  # the hook checks each move of the shared commit: legal
    assert out.returncode == 0, out.stderr


def test_the_hook_checks_each_declared_move(org: LoopOrg, tmp_path: Path) -> None:
    """A person's commit that declares completed->accepted->finished is refused: the
    finish is the daemon's move, whoever may accept."""
    org.act("Wait for me", {"summary": "done"})
    org.new("mine", "Wait for me", reviewer="ceo")
    org.run()
    bare = shared_repo(org, tmp_path)
    assert push(org, bare).returncode == 0
    path = org.root / "tasks" / "mine.yaml"
    data = yaml.safe_load(path.read_text())
    assert data["status"] == "completed"
    data["status"] = "finished"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    message = Message([Transition("mine", "completed", "accepted"),
                       Transition("mine", "accepted", "finished")], "human:ceo").render()
    git(org.root, "commit", "-q", "--no-verify", "-am", message)
    out = push(org, bare)
    assert out.returncode != 0, out.stderr
    assert "accepted -> finished is made by the daemon" in out.stderr, out.stderr


def test_a_shared_commit_names_each_move() -> None:
    msg = Message([Transition("a", "completed", "accepted", "A"),
                   Transition("a", "accepted", "finished", "A"),
                   Transition("b", "pending", "cancelled", "B")], "daemon:h").render()
    assert msg.splitlines()[0] == "aoi: a completed -> accepted -> finished: A (+1 more)"
    assert moves(msg) == {"a": ["completed->accepted", "accepted->finished"],
                          "b": ["pending->cancelled"]}
