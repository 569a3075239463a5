"""The daemon's deferred work-tree and index moves (aoi_git.store.index_journal): while they wait, a
person's commit, `aoi validate`, a rescan and a locked index all behave, and nothing the
daemon committed is reverted or lost."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kit import PERSON_NAME, AoiRun, git

from aoi_git.domain.model import Actor, ActorKind, Status
from aoi_git.org.create import init_org
from aoi_git.org.organisation import load_org
from aoi_git.org.task_ops import new_task
from aoi_git.runtime.daemon import Daemon, DaemonOptions
from aoi_git.store import index_journal
from aoi_git.store.org_store import Store
from aoi_git.store.txn import Txn, commit

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
    d.executor.commit(lambda txn: txn.move("job", Status.PROCESSING, title="Write it well"))
    assert d.store.pending_moves and index_journal.read(d.index_journal)
    assert b"Write it well" not in (root / d.executor.org.index.paths["job"]).read_bytes()
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
    d.flush_index()
    assert not d.store.pending_moves  # the journal keeps only moves made, while they settle
    assert index_journal.read(d.index_journal).keys() == d.store.settling_moves.keys()
    assert b"Write it well" in (org / d.executor.org.index.paths["job"]).read_bytes()
    assert git(org, "status", "--porcelain") == ""


def test_validate_and_a_rescan_do_not_take_a_pending_move_for_a_persons_edit(
        org: Path, run_aoi: AoiRun) -> None:
    d = daemon_edit(org)
    out = run_aoi("-C", str(org), "validate")
    assert out.returncode == 0, out.stdout + out.stderr
    head = git(org, "rev-parse", "HEAD")
    d.person_files.rescan = True
    d.person_files.take(d.executor)
    assert git(org, "rev-parse", "HEAD") == head and not d.person_files.problems
    # a person's real edit of that file, made meanwhile, is still a person's edit
    path = org / d.executor.org.index.paths["job"]
    path.write_text(path.read_text().replace("title: Write it\n",
                                             "title: Mine\nstatus: processing\n"))
    d.person_files.rescan = True
    d.person_files.take(d.executor)
    assert head_title(org) == "Mine", d.person_files.problems


def test_a_locked_index_defers_the_move_and_loses_nothing(org: Path) -> None:
    d = daemon_edit(org)
    lock = org / ".git" / "index.lock"
    lock.write_text("")
    d.flush_index()
    assert d.store.pending_moves and index_journal.read(d.index_journal)  # kept for the next try
    d.executor.commit(lambda txn: txn.update("job", title="Written"))
    lock.unlink()
    d.flush_index()
    assert not d.store.pending_moves  # the journal keeps only moves made, while they settle
    assert index_journal.read(d.index_journal).keys() == d.store.settling_moves.keys()
    assert git(org, "status", "--porcelain") == ""
    assert b"Written" in (org / d.executor.org.index.paths["job"]).read_bytes()


def test_another_aoi_process_committing_the_path_meanwhile(org: Path) -> None:
    d = daemon_edit(org)
    store = Store(org)  # the CLI: moves its files at once
    commit(store, lambda txn: _retitle(txn, "Write it better"), PERSON,
           load_org(store).index.paths)
    d.flush_index()
    assert b"Write it better" in (org / d.executor.org.index.paths["job"]).read_bytes()
    assert git(org, "status", "--porcelain") == ""


def _retitle(txn: Txn, title: str) -> None:
    txn.update("job", title=title)


def test_the_open_journal_writer_appends_empties_in_place_and_survives_a_crash(
        tmp_path: Path) -> None:
    path = tmp_path / "index-pending.jsonl"
    writer = index_journal.Writer(path)
    writer.clear()  # nothing written yet: nothing to clear
    assert not path.exists()
    writer.append([("tasks/a.yaml", index_journal.Move("1" * 40, "2" * 40, "1" * 40))])
    writer.append([])  # a commit of no deferred path writes nothing
    writer.append([("tasks/a.yaml", index_journal.Move("2" * 40, "3" * 40, "2" * 40)),
                   ("tasks/b.yaml", index_journal.Move(None, "4" * 40, None))])
    # read by another process while still open (as after a kill -9 of the daemon)
    Move = index_journal.Move
    assert index_journal.read(path) == {"tasks/a.yaml": Move("1" * 40, "3" * 40, "1" * 40,
                                                             ("2" * 40,)),
                                        "tasks/b.yaml": Move(None, "4" * 40, None)}
    inode = path.stat().st_ino
    writer.clear()
    assert index_journal.read(path) == {} and path.stat().st_ino == inode  # emptied, not replaced
    writer.append([("tasks/c.yaml", index_journal.Move(None, None, index_journal.KEEP))])
    writer.close()
    kept = index_journal.Move(None, None, index_journal.KEEP)
    assert index_journal.read(path) == {"tasks/c.yaml": kept}


# ------------------------------------------------ an index.lock left by a killed writer

def _die_holding_the_index_lock(root: Path, started: float | None = None) -> None:
    """A real process that marks an index write, takes git's index.lock the way git and
    libgit2 do, and is killed (SIGKILL) before it renames the lock into place."""
    code = (
        "import os, signal, sys, time\n"
        "from pathlib import Path\n"
        "from aoi_git.store import index_lock\n"
        "root = Path(sys.argv[1])\n"
        "with index_lock.writing(root / '.aoi'):\n"
        "    if len(sys.argv) > 2:\n"  # an older write: rewrite the marker's start time
        "        fd = os.open(root / '.aoi/locks/index-writer', os.O_WRONLY)\n"
        "        os.pwrite(fd, f'{os.getpid()} {sys.argv[2]}\\n'.encode(), 0)\n"
        "    os.open(root / '.git/index.lock', os.O_WRONLY | os.O_CREAT | os.O_EXCL)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    args = [sys.executable, "-c", code, str(root)] + ([str(started)] if started else [])
    proc = subprocess.run(args, check=False)
    assert proc.returncode == -signal.SIGKILL
    assert (root / ".git" / "index.lock").exists()


def test_an_index_lock_left_by_a_killed_aoi_writer_is_removed_and_the_move_done(
        org: Path) -> None:
    _die_holding_the_index_lock(org)
    d = daemon_edit(org)
    d.flush_index()
    assert not (org / ".git" / "index.lock").exists()
    assert not d.store.pending_moves  # the journal keeps only moves made, while they settle
    assert index_journal.read(d.index_journal).keys() == d.store.settling_moves.keys()
    assert git(org, "status", "--porcelain") == ""
    assert "removed the index.lock left by aoi process" in \
        (org / ".aoi" / "daemon.log").read_text()


def test_a_persons_index_lock_is_never_removed(org: Path) -> None:
    lock = org / ".git" / "index.lock"
    lock.write_text("")  # a person's git, writing the index now
    d = daemon_edit(org)
    d.flush_index()
    assert lock.exists() and d.store.pending_moves  # waits for the person's git
    # an aoi write cut short long ago, then a person's git takes the lock now
    lock.unlink()
    _die_holding_the_index_lock(org, started=time.time() - 3600)
    d.flush_index()
    assert lock.exists() and d.store.pending_moves
    lock.unlink()
    d.flush_index()
    assert not d.store.pending_moves and git(org, "status", "--porcelain") == ""


def test_a_lock_is_left_while_another_aoi_process_is_writing(org: Path) -> None:
    _die_holding_the_index_lock(org)
    holder = subprocess.Popen(  # another aoi process in the middle of its index write
        [sys.executable, "-c", "import fcntl, os, sys, time\n"
         "fd = os.open(sys.argv[1], os.O_RDWR)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)\n",
         str(org / ".aoi" / "locks" / "index-writer")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        d = daemon_edit(org)
        d.flush_index()
        assert (org / ".git" / "index.lock").exists() and d.store.pending_moves
    finally:
        holder.kill()
        holder.wait()
    d.flush_index()
    assert not d.store.pending_moves and git(org, "status", "--porcelain") == ""


def test_a_killed_writer_is_recognised_after_an_older_writers_leftover(org: Path) -> None:
    marker = org / ".aoi" / "locks" / "index-writer"
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("4194303 1000000000.000 and more: a longer leftover\n")
    _die_holding_the_index_lock(org)
    d = daemon_edit(org)
    d.flush_index()
    assert not (org / ".git" / "index.lock").exists() and not d.store.pending_moves
    assert git(org, "status", "--porcelain") == ""
