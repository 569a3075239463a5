"""The compact task index: a row per task, finished tasks parsed only when asked for, the
cache brought along by the files a commit changed, and always the same as a cold build."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from kit import git

from aoi_git.domain.model import Status
from aoi_git.store.org_store import Store
from aoi_git.store.task_cache import TaskIndex


def task_file(tid: str, status: str = "pending", **more: str) -> str:
    extra = "".join(f"{k}: {v}\n" for k, v in more.items())
    return f"id: {tid}\ntitle: Task {tid}\nstatus: {status}\nassignee: coo\n{extra}"


def write_commit(org: Path, files: dict[str, str | None], message: str = "tasks") -> None:
    """Write (or with None, delete) files and commit them as a person would."""
    for rel, text in files.items():
        path = org / rel
        if text is None:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(org, "add", "-A", "tasks")
    subprocess.run(["git", "-C", str(org), "commit", "-qm", message, "--no-verify"],
                   check=True)


def cold(org: Path) -> TaskIndex:
    shutil.rmtree(org / ".aoi" / "cache", ignore_errors=True)
    return Store(org).load_tasks()


def same(a: TaskIndex, b: TaskIndex) -> None:
    assert dict(a.rows.items()) == dict(b.rows.items())
    assert a.errors == b.errors
    assert set(a.tasks.open) == set(b.tasks.open)
    assert a.root_tree == b.root_tree


def test_finished_tasks_are_rows_and_parsed_on_demand(org_dir: Path) -> None:
    write_commit(org_dir, {
        "tasks/t-open1.yaml": task_file("t-open1", depends_on="[t-done1]"),
        "tasks/t-done1.yaml": task_file("t-done1", "finished", description="kept in git"),
        "tasks/t-gone1.yaml": task_file("t-gone1", "cancelled"),
    })
    store = Store(org_dir)
    index = store.load_tasks()
    assert set(index.tasks.open) == {"t-open1"}  # only the open task is held parsed
    assert set(index.tasks) == {"t-open1", "t-done1", "t-gone1"}
    assert index.rows["t-done1"].status == Status.FINISHED
    assert index.rows.counts()["finished"] == 1
    assert [r.id for r in index.rows.by_status(Status.PENDING)] == ["t-open1"]
    assert index.rows["t-open1"].depends_on == ("t-done1",)
    store.save_cache()

    warm = Store(org_dir)
    loaded = warm.load_tasks()
    assert warm.task_cache.parsed_blobs == 0
    done = loaded.tasks["t-done1"]  # parsed from its blob now
    assert warm.task_cache.parsed_blobs == 1
    assert done.description == "kept in git" and done.status is Status.FINISHED
    assert loaded.tasks["t-done1"] is done  # and kept for the next lookup
    assert loaded.tasks.open_values() == [loaded.tasks["t-open1"]]


def test_the_cache_follows_commits_by_the_files_they_changed(org_dir: Path) -> None:
    write_commit(org_dir, {f"tasks/t-keep{i}.yaml": task_file(f"t-keep{i}", "finished")
                           for i in range(20)} | {"tasks/t-edit1.yaml": task_file("t-edit1")})
    first = Store(org_dir)
    first.load_tasks()
    first.save_cache()

    write_commit(org_dir, {
        "tasks/t-edit1.yaml": task_file("t-edit1", "finished"),  # changed
        "tasks/t-keep0.yaml": None,  # deleted
        "tasks/sub/t-new1.yaml": task_file("t-new1"),  # added in a new folder
        "tasks/t-bad1.yaml": "id: t-bad1\ntitle: [unclosed\n",  # broken
    })
    warm = Store(org_dir)
    index = warm.load_tasks()
    assert warm.task_cache.parsed_blobs == 3  # the three files written, not the 20 others
    assert "t-keep0" not in index.tasks and index.rows["t-new1"].path == "tasks/sub/t-new1.yaml"
    assert index.rows["t-edit1"].status == "finished" and "t-edit1" not in index.tasks.open
    assert "tasks/t-bad1.yaml" in index.errors
    same(index, cold(org_dir))

    # fixed again, and a folder moved: the same as a cold build each time
    warm.save_cache()
    write_commit(org_dir, {"tasks/t-bad1.yaml": task_file("t-bad1")})
    git(org_dir, "mv", "tasks/sub", "tasks/moved")
    subprocess.run(["git", "-C", str(org_dir), "commit", "-qm", "move", "--no-verify"],
                   check=True)
    index = Store(org_dir).load_tasks()
    assert index.rows["t-new1"].path == "tasks/moved/t-new1.yaml"
    assert not index.errors
    same(index, cold(org_dir))


def test_a_duplicated_id_is_decided_as_a_cold_build_decides_it(org_dir: Path) -> None:
    write_commit(org_dir, {"tasks/b/t-twin1.yaml": task_file("t-twin1")})
    store = Store(org_dir)
    store.load_tasks()
    store.save_cache()
    write_commit(org_dir, {"tasks/a/t-twin1.yaml": task_file("t-twin1", "blocked")})
    index = Store(org_dir).load_tasks()
    assert len(index.errors) == 1 and "duplicate task id" in next(iter(index.errors.values()))[1]
    same(index, cold(org_dir))
    again = Store(org_dir)  # (the cold build saved no cache: this one does)
    again.load_tasks()
    again.save_cache()
    write_commit(org_dir, {"tasks/a/t-twin1.yaml": None})  # the twin that won goes
    index = Store(org_dir).load_tasks()
    assert not index.errors and index.rows["t-twin1"].path == "tasks/b/t-twin1.yaml"
    same(index, cold(org_dir))


def test_task_list_and_status_read_the_rows(org_dir: Path, cli) -> None:  # noqa: ANN001
    write_commit(org_dir, {
        "tasks/t-open1.yaml": task_file("t-open1"),
        "tasks/t-done1.yaml": task_file("t-done1", "finished"),
    })
    out = cli(org_dir, "task", "list", "--status", "finished").output
    assert "t-done1" in out and "t-open1" not in out
    out = cli(org_dir, "task", "list").output
    assert "t-done1" in out and "t-open1" in out

    rows = json.loads(cli(org_dir, "task", "list", "--json").stdout)
    assert {r["id"]: r["status"] for r in rows} == {"t-open1": "pending",
                                                    "t-done1": "finished"}
    counts = json.loads(cli(org_dir, "status", "--json").stdout)["counts"]
    assert counts["finished"] == 1 and counts["pending"] == 1


def test_a_save_after_a_few_changes_writes_only_those_rows(org_dir: Path) -> None:
    write_commit(org_dir, {f"tasks/t-many{i}.yaml": task_file(f"t-many{i}", "finished")
                           for i in range(30)})
    first = Store(org_dir)
    first.load_tasks()
    first.save_cache()
    base = org_dir / ".aoi" / "cache" / "tasks.pickle"
    delta = org_dir / ".aoi" / "cache" / "tasks.delta.pickle"
    written = base.stat().st_mtime_ns
    assert not delta.exists()

    write_commit(org_dir, {"tasks/t-many3.yaml": task_file("t-many3", "cancelled"),
                           "tasks/t-many4.yaml": None,
                           "tasks/t-fresh1.yaml": task_file("t-fresh1")})
    second = Store(org_dir)
    second.load_tasks()
    second.save_cache()
    assert base.stat().st_mtime_ns == written and delta.is_file()  # the delta only
    assert delta.stat().st_size < base.stat().st_size / 3

    third = Store(org_dir)
    index = third.load_tasks()
    assert third.task_cache.parsed_blobs == 0  # the base and its delta are the head's
    assert index.rows["t-many3"].status == "cancelled" and "t-many4" not in index.tasks
    assert set(index.tasks.open) == {"t-fresh1"}
    old_delta = delta.read_bytes()

    # a delta of another base (the base was rewritten since) is not applied
    third.task_cache.index.tasks.changed = None  # type: ignore[union-attr]
    third.task_cache.dirty = True
    third.save_cache()  # a full rewrite drops the delta
    assert not delta.exists() and base.stat().st_mtime_ns != written
    write_commit(org_dir, {"tasks/t-many5.yaml": task_file("t-many5", "cancelled")})
    delta.write_bytes(old_delta)  # left by a process that had read the older base
    index = Store(org_dir).load_tasks()
    assert index.rows["t-many5"].status == "cancelled" and "t-fresh1" in index.tasks
    delta.write_bytes(b"not a pickle")
    again = Store(org_dir).load_tasks()
    same(index, cold(org_dir))
    same(again, cold(org_dir))


def test_a_warm_load_reads_the_finished_rows_only_when_a_question_needs_them(
        org_dir: Path) -> None:
    write_commit(org_dir, {f"tasks/t-old{i}.yaml": task_file(f"t-old{i}", "finished")
                           for i in range(10)}
                 | {"tasks/t-live1.yaml": task_file("t-live1", "blocked"),
                    "tasks/t-live2.yaml": task_file("t-live2")})
    first = Store(org_dir)
    first.load_tasks()
    first.save_cache()
    # a delta on top: a finished one removed, one changed, an open one finished, one added
    write_commit(org_dir, {"tasks/t-old0.yaml": None,
                           "tasks/t-old1.yaml": task_file("t-old1", "cancelled"),
                           "tasks/t-live2.yaml": task_file("t-live2", "finished"),
                           "tasks/t-new1.yaml": task_file("t-new1")})
    second = Store(org_dir)
    second.load_tasks()
    second.save_cache()

    rows = Store(org_dir).load_tasks().rows
    assert rows.partial
    assert [r.id for r in rows.by_status("pending", "blocked")] == ["t-live1", "t-new1"]
    assert rows.counts()["finished"] == 9 and rows.counts()["cancelled"] == 1
    assert len(rows) == 12 and {r.id for r in rows.open_rows()} == {"t-live1", "t-new1"}
    assert rows.status_of("t-live2") == "finished"  # changed in the delta: held
    assert rows.partial  # nothing above needed the finished rows
    assert rows.status_of("t-old5") == "finished"  # this does
    assert not rows.partial
    assert "t-old0" not in rows and rows.status_of("t-old1") == "cancelled"
    warm = Store(org_dir).load_tasks()
    assert warm.rows.by_status("finished")[0].id == "t-live2" and not warm.rows.partial
    same(Store(org_dir).load_tasks(), cold(org_dir))


def test_an_unreadable_second_part_is_a_clear_error_and_the_cache_goes(
        org_dir: Path) -> None:
    from aoi_git.errors import AoiError

    write_commit(org_dir, {"tasks/t-old1.yaml": task_file("t-old1", "finished"),
                           "tasks/t-live1.yaml": task_file("t-live1")})
    first = Store(org_dir)
    first.load_tasks()
    first.save_cache()
    base = org_dir / ".aoi" / "cache" / "tasks.pickle"
    base.write_bytes(base.read_bytes()[:-20])  # its end cut off
    rows = Store(org_dir).load_tasks().rows
    assert [r.id for r in rows.by_status("pending")] == ["t-live1"]
    with pytest.raises(AoiError, match="could not be read.*rebuilt from git"):
        rows.status_of("t-old1")
    assert not base.exists()
    same(Store(org_dir).load_tasks(), cold(org_dir))


def test_a_one_off_task_new_brings_the_cache_along_to_its_commit(org_dir: Path,
                                                                  cli) -> None:  # noqa: ANN001
    write_commit(org_dir, {f"tasks/t-past{i}.yaml": task_file(f"t-past{i}", "finished")
                           for i in range(5)} | {"tasks/t-open1.yaml": task_file("t-open1")})
    first = Store(org_dir)
    first.load_tasks()
    first.save_cache()
    made = [cli(org_dir, "task", "new", f"Made {i}", "--assignee", "coo").stdout.strip()
            for i in range(2)]
    warm = Store(org_dir)
    index = warm.load_tasks()
    assert warm.task_cache.parsed_blobs == 0  # the cache is HEAD's: nothing parsed
    assert index.rows.partial and index.rows.counts()["pending"] == 3
    assert {r.id for r in index.rows.by_status("pending")} == {"t-open1", *made}
    same(index, cold(org_dir))
    # a person's commit the cache has not seen: the next one-off commit leaves it as is
    second = Store(org_dir)
    second.load_tasks()
    second.save_cache()
    write_commit(org_dir, {"tasks/t-hand1.yaml": task_file("t-hand1")})
    later = cli(org_dir, "task", "new", "Made later", "--assignee", "coo").stdout.strip()
    index = Store(org_dir).load_tasks()
    assert {"t-hand1", later} <= set(index.rows)
    same(index, cold(org_dir))
