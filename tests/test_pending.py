"""The daemon's deferred work-tree and index moves (aoi_git.pending): while they wait, a
person's commit, `aoi validate`, a rescan and a locked index all behave, and nothing the
daemon committed is reverted or lost."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import PERSON_NAME, AoiRun, git

from aoi_git import pending
from aoi_git.daemon import Daemon, DaemonOptions
from aoi_git.model import Actor, ActorKind, Status
from aoi_git.ops import new_task
from aoi_git.org import load_org
from aoi_git.orginit import init_org
from aoi_git.store import Store
from aoi_git.txn import Txn, commit

PERSON = Actor(ActorKind.HUMAN, PERSON_NAME)


@pytest.fixture
def org(tmp_path: Path) -> Path:
    root = (tmp_path / "org").resolve()
    init_org(root)
    store = Store(root)
    tasks = load_org(store).tasks
    commit(store, lambda txn: new_task(txn, tasks, "Write it", task_id="job",
                                       assignee="coo", reviewer="none"), PERSON)
    return root


def daemon_edit(root: Path) -> Daemon:
    """A daemon commit whose work-tree file and index entry are still to be moved."""
    d = Daemon(root, DaemonOptions(watch=False))
    d._commit(lambda txn: txn.move("job", Status.PROCESSING, title="Write it well"))
    assert d.store.pending_moves and pending.read(d.index_journal)
    assert b"Write it well" not in (root / d.org.index.paths["job"]).read_bytes()
    return d


def head_title(root: Path) -> str:
    return load_org(Store(root)).tasks["job"].title


@pytest.mark.parametrize("how", ["commit", "commit -a"])
def test_a_persons_commit_meanwhile_keeps_the_daemons_change(org: Path, how: str) -> None:
    d = daemon_edit(org)
    (org / "notes.txt").write_text("mine\n")
    git(org, "add", "notes.txt")
    if how == "commit -a":
        (org / "aoi.yaml").write_text((org / "aoi.yaml").read_text() + "\n")
        git(org, "commit", "-q", "-a", "-m", "my notes")
    else:
        git(org, "commit", "-q", "-m", "my notes")
    assert git(org, "show", "--stat", "--format=", "HEAD").count("|") == (
        2 if how == "commit -a" else 1)  # only the person's files
    assert head_title(org) == "Write it well"
    d._flush_index()
    assert not d.store.pending_moves and not pending.read(d.index_journal)
    assert b"Write it well" in (org / d.org.index.paths["job"]).read_bytes()
    assert git(org, "status", "--porcelain") == ""


def test_validate_and_a_rescan_do_not_take_a_pending_move_for_a_persons_edit(
        org: Path, run_aoi: AoiRun) -> None:
    d = daemon_edit(org)
    out = run_aoi("-C", str(org), "validate")
    assert out.returncode == 0, out.stdout + out.stderr
    head = git(org, "rev-parse", "HEAD")
    d.rescan = True
    d._take_human_edits()
    assert git(org, "rev-parse", "HEAD") == head and not d.file_problems
    # a person's real edit of that file, made meanwhile, is still a person's edit
    path = org / d.org.index.paths["job"]
    path.write_text(path.read_text().replace("title: Write it\n",
                                             "title: Mine\nstatus: processing\n"))
    d.rescan = True
    d._take_human_edits()
    assert head_title(org) == "Mine", d.file_problems


def test_a_locked_index_defers_the_move_and_loses_nothing(org: Path) -> None:
    d = daemon_edit(org)
    lock = org / ".git" / "index.lock"
    lock.write_text("")
    d._flush_index()
    assert d.store.pending_moves and pending.read(d.index_journal)  # kept for the next try
    d._commit(lambda txn: txn.update("job", title="Written"))
    lock.unlink()
    d._flush_index()
    assert not d.store.pending_moves and not pending.read(d.index_journal)
    assert git(org, "status", "--porcelain") == ""
    assert b"Written" in (org / d.org.index.paths["job"]).read_bytes()


def test_another_aoi_process_committing_the_path_meanwhile(org: Path) -> None:
    d = daemon_edit(org)
    store = Store(org)  # the CLI: moves its files at once
    commit(store, lambda txn: _retitle(txn, "Write it better"), PERSON,
           load_org(store).index.paths)
    d._flush_index()
    assert b"Write it better" in (org / d.org.index.paths["job"]).read_bytes()
    assert git(org, "status", "--porcelain") == ""


def _retitle(txn: Txn, title: str) -> None:
    txn.update("job", title=title)


def test_the_open_journal_writer_appends_empties_in_place_and_survives_a_crash(
        tmp_path: Path) -> None:
    path = tmp_path / "index-pending.jsonl"
    writer = pending.Writer(path)
    writer.clear()  # nothing written yet: nothing to clear
    assert not path.exists()
    writer.append([("tasks/a.yaml", pending.Move("1" * 40, "2" * 40, "1" * 40))])
    writer.append([])  # a commit of no deferred path writes nothing
    writer.append([("tasks/a.yaml", pending.Move("2" * 40, "3" * 40, "2" * 40)),
                   ("tasks/b.yaml", pending.Move(None, "4" * 40, None))])
    # read by another process while still open (as after a kill -9 of the daemon)
    assert pending.read(path) == {"tasks/a.yaml": pending.Move("1" * 40, "3" * 40, "1" * 40),
                                  "tasks/b.yaml": pending.Move(None, "4" * 40, None)}
    inode = path.stat().st_ino
    writer.clear()
    assert pending.read(path) == {} and path.stat().st_ino == inode  # emptied, not replaced
    writer.append([("tasks/c.yaml", pending.Move(None, None, pending.KEEP))])
    writer.close()
    assert pending.read(path) == {"tasks/c.yaml": pending.Move(None, None, pending.KEEP)}
