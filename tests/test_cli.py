"""The `aoi` command line on real org repositories."""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from pathlib import Path

import click
import pytest
from kit import PERSON_ACTOR, git, lines

from aoi_git.cli import main
from aoi_git.domain.ids import ID_RE

GENERATED = re.compile(r"^t-[a-z2-9]{10}$")


def ok(result):  # noqa: ANN001, ANN201 - click Result or CompletedProcess
    assert result.exit_code == 0 if hasattr(result, "exit_code") else result.returncode == 0, (
        result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    return result


def one_line_error(result, *needles: str) -> str:  # noqa: ANN001
    code = result.exit_code if hasattr(result, "exit_code") else result.returncode
    assert code == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    err = lines(result.stderr)
    assert len(err) == 1, result.stderr
    for n in needles:
        assert n in err[0], err[0]
    return err[0]


def count(repo: Path) -> int:
    return int(git(repo, "rev-list", "--count", "HEAD"))


def new(cli, org: Path, *args: str) -> str:  # noqa: ANN001
    result = ok(cli(org, "task", "new", *args))
    return result.stdout.strip()


def show_json(cli, org: Path, tid: str) -> dict:  # noqa: ANN001
    return json.loads(ok(cli(org, "task", "show", tid, "--json")).stdout)


# ---------------------------------------------------------------- init

def test_init_creates_an_org_in_one_commit(tmp_path: Path, run_aoi) -> None:  # noqa: ANN001
    result = run_aoi("init", "acme", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    org = tmp_path / "acme"
    assert count(org) == 1
    assert git(org, "status", "--porcelain", "--untracked-files=all") == ""
    for hook in ("pre-commit", "pre-receive"):
        path = org / ".git" / "hooks" / hook
        assert path.is_file() and path.stat().st_mode & stat.S_IXUSR
        assert "aoi" in path.read_text()
    driver = git(org, "config", "--local", "merge.aoi-task.driver")
    assert "aoi_git.store.task_merge" in driver and "%A" in driver
    assert re.search(r"(?m)^tasks/\*\*/\*\.yaml\s+merge=aoi-task\s*$",
                     (org / ".gitattributes").read_text())
    assert ".gitattributes" in git(org, "ls-files")
    settings = json.loads((org / ".vscode" / "settings.json").read_text())
    mapped = {k: v if isinstance(v, list) else [v] for k, v in settings["yaml.schemas"].items()}
    task_schema = next(k for k, v in mapped.items() if "tasks/**/*.yaml" in v)
    assert (org / task_schema).resolve().is_file()
    assert (org / task_schema).resolve() == (org / "schemas" / "task.schema.json").resolve()
    for name in ("coo", "hr", "ea", "cso"):
        assert (org / "employees" / name / "profile.yaml").is_file()
        assert (org / "employees" / name / "principles.md").is_file()
    assert ".aoi" in (org / ".gitignore").read_text()
    assert "name: acme" in (org / "aoi.yaml").read_text()
    assert ok(run_aoi("validate", cwd=org)).stdout.strip() == "ok"


def test_init_refuses_a_non_empty_folder_that_is_not_an_org(
    tmp_path: Path, run_aoi  # noqa: ANN001
) -> None:
    folder = tmp_path / "stuff"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine\n")
    result = run_aoi("init", "stuff", cwd=tmp_path)
    one_line_error(result, "not empty", str(folder))
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    assert (folder / "notes.txt").read_text() == "mine\n"


def test_init_in_a_fresh_clone_installs_hooks_and_changes_nothing(
    tmp_path: Path, org_dir: Path, run_aoi  # noqa: ANN001
) -> None:
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(org_dir), str(clone))
    assert not (clone / ".git" / "hooks" / "pre-commit").exists()
    head = git(clone, "rev-parse", "HEAD")
    result = run_aoi("init", str(clone), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "already an aoi org" in result.stdout
    assert (clone / ".git" / "hooks" / "pre-commit").stat().st_mode & stat.S_IXUSR
    assert git(clone, "config", "--local", "merge.aoi-task.driver")
    assert git(clone, "status", "--porcelain", "--untracked-files=all") == ""
    assert git(clone, "rev-parse", "HEAD") == head
    # and a second run is harmless
    assert run_aoi("init", ".", cwd=clone).returncode == 0
    assert git(clone, "status", "--porcelain", "--untracked-files=all") == ""


# ---------------------------------------------------------------- task new / show / list

def test_task_new_prints_only_the_id(org_dir: Path, run_aoi) -> None:  # noqa: ANN001
    before = count(org_dir)
    result = run_aoi("task", "new", "Write the README", "--assignee", "coo", "--label", "docs",
                     "--priority", "3", "--description", "All of it.", cwd=org_dir)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert re.fullmatch(r"t-[a-z2-9]{10}\n", result.stdout)
    tid = result.stdout.strip()
    assert count(org_dir) == before + 1
    assert git(org_dir, "status", "--porcelain", "--untracked-files=all") == ""
    shown = json.loads(run_aoi("task", "show", tid, "--json", cwd=org_dir).stdout)
    assert shown["title"] == "Write the README" and shown["assignee"] == "coo"
    assert shown["labels"] == ["docs"] and shown["priority"] == 3
    assert shown["description"] == "All of it."
    assert shown["status"] == "pending"
    trail = git(org_dir, "log", "-1", "--format=%(trailers:key=Aoi-Actor,valueonly)").strip()
    assert trail == PERSON_ACTOR


def test_after_records_depends_on_and_parent_is_kept(cli, org_dir: Path) -> None:  # noqa: ANN001
    a = new(cli, org_dir, "first")
    b = new(cli, org_dir, "second", "--after", a)
    c = new(cli, org_dir, "third", "--after", a[:6], "--after", b, "--parent", a)
    assert show_json(cli, org_dir, b)["depends_on"] == [a]
    third = show_json(cli, org_dir, c)
    assert third["depends_on"] == [a, b] and third["parent"] == a
    one_line_error(cli(org_dir, "task", "new", "x", "--after", "nope-nope"), "nope-nope")
    one_line_error(cli(org_dir, "task", "new", "x", "--assignee", "nobody"), "nobody")


def test_a_cycle_made_by_editing_a_file_is_named_by_validate(
    cli, org_dir: Path  # noqa: ANN001
) -> None:
    new(cli, org_dir, "a", "--id", "aa")
    new(cli, org_dir, "b", "--id", "bb", "--after", "aa")
    path = org_dir / "tasks" / "aa.yaml"
    path.write_text(path.read_text() + "depends_on: [bb]\n")
    result = cli(org_dir, "validate")
    assert result.exit_code == 1
    err = lines(result.stderr)
    assert any(re.fullmatch(r"tasks/(aa|bb)\.yaml:\d+: dependency cycle: (aa -> bb -> aa|"
                            r"bb -> aa -> bb)", ln) for ln in err), err
    assert "Traceback" not in result.stderr
    assert "depends_on: [bb]" in path.read_text()  # nothing overwritten


def test_task_show_prints_the_path_and_json_parses(cli, org_dir: Path) -> None:  # noqa: ANN001
    tid = new(cli, org_dir, "Show me")
    result = ok(cli(org_dir, "task", "show", tid[:5]))
    first, *rest = result.stdout.splitlines()
    path = first.removeprefix("# ").strip()
    assert path == f"tasks/{tid[2]}/{tid[3]}/{tid}.yaml"
    assert (org_dir / path).is_file()
    assert f"id: {tid}" in rest and "title: Show me" in rest
    data = show_json(cli, org_dir, tid)
    assert data["id"] == tid and data["path"] == path and data["title"] == "Show me"


def test_task_list_filters_by_status_and_speaks_json(cli, org_dir: Path) -> None:  # noqa: ANN001
    a = new(cli, org_dir, "keep me")
    b = new(cli, org_dir, "cancel me")
    ok(cli(org_dir, "task", "cancel", b))
    pending = ok(cli(org_dir, "task", "list", "--status", "pending")).stdout
    assert a in pending and b not in pending
    cancelled = ok(cli(org_dir, "task", "list", "--status", "cancelled")).stdout
    assert b in cancelled and a not in cancelled
    both = ok(cli(org_dir, "task", "list")).stdout
    assert a in both and b in both
    data = json.loads(ok(cli(org_dir, "task", "list", "--json")).stdout)
    assert {d["id"]: d["status"] for d in data} == {a: "pending", b: "cancelled"}
    assert all(d["path"].startswith("tasks/") for d in data)
    data = json.loads(ok(cli(org_dir, "task", "list", "--status", "cancelled", "--json")).stdout)
    assert [d["id"] for d in data] == [b]
    one_line_error(cli(org_dir, "task", "list", "--status", "nonsense"), "nonsense",
                   "aoi task list -h")


# ---------------------------------------------------------------- edit

EDITOR = """\
import sys
added, path = sys.argv[1], sys.argv[-1]
text = open(path, encoding="utf-8").read()
open(path, "w", encoding="utf-8").write(text + added.replace("\\\\n", "\\n"))
"""


def _editor(tmp_path: Path, appended: str) -> dict[str, str]:
    script = tmp_path / "editor.py"
    script.write_text(EDITOR)
    return {"EDITOR": f"{sys.executable} {script} '{appended}'", "VISUAL": ""}


def test_task_edit_commits_a_valid_save_as_the_person(
    cli, org_dir: Path, tmp_path: Path  # noqa: ANN001
) -> None:
    tid = new(cli, org_dir, "Edit me")
    before = count(org_dir)
    result = ok(cli(org_dir, "task", "edit", tid,
                    env=_editor(tmp_path, "# a comment of mine\\nlabels: [edited]\\n")))
    assert "committed" in result.stdout
    assert count(org_dir) == before + 1
    path = f"tasks/{tid[2]}/{tid[3]}/{tid}.yaml"
    committed = git(org_dir, "show", f"HEAD:{path}")
    assert "# a comment of mine" in committed and "labels: [edited]" in committed
    assert git(org_dir, "log", "-1", "--format=%(trailers:key=Aoi-Actor,valueonly)").strip() == (
        PERSON_ACTOR)
    assert git(org_dir, "status", "--porcelain") == ""
    assert show_json(cli, org_dir, tid)["labels"] == ["edited"]


def test_task_edit_keeps_an_invalid_save_and_commits_nothing(
    cli, org_dir: Path, tmp_path: Path  # noqa: ANN001
) -> None:
    tid = new(cli, org_dir, "Edit me")
    before = count(org_dir)
    path = org_dir / "tasks" / tid[2] / tid[3] / f"{tid}.yaml"
    result = cli(org_dir, "task", "edit", tid, env=_editor(tmp_path, "bogus: 1\\n"))
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    err = lines(result.stderr)
    assert any(re.fullmatch(rf"tasks/{tid[2]}/{tid[3]}/{tid}\.yaml:\d+: unknown key 'bogus'", ln)
               for ln in err), err
    assert count(org_dir) == before
    assert path.read_text().endswith("bogus: 1\n")  # kept as written
    assert git(org_dir, "status", "--porcelain").strip() == f"M tasks/{tid[2]}/{tid[3]}/{tid}.yaml"


def test_task_edit_illegal_status_change_is_refused(
    cli, org_dir: Path, tmp_path: Path  # noqa: ANN001
) -> None:
    tid = new(cli, org_dir, "Edit me")
    before = count(org_dir)
    result = cli(org_dir, "task", "edit", tid, env=_editor(tmp_path, "status: finished\\n"))
    assert result.exit_code == 1
    assert "pending -> finished" in result.stderr
    assert count(org_dir) == before


# ---------------------------------------------------------------- cancel

def test_cancel_cascades_to_dependents_and_subtasks_in_one_commit(
    cli, org_dir: Path  # noqa: ANN001
) -> None:
    root = new(cli, org_dir, "root")
    kid = new(cli, org_dir, "kid", "--parent", root)
    grandkid = new(cli, org_dir, "grandkid", "--parent", kid)
    dep = new(cli, org_dir, "after root", "--after", root)
    dep2 = new(cli, org_dir, "after that", "--after", dep)
    other = new(cli, org_dir, "unrelated")
    before = count(org_dir)
    result = ok(cli(org_dir, "task", "cancel", root, "-m", "superseded"))
    assert count(org_dir) == before + 1
    victims = {root, kid, grandkid, dep, dep2}
    assert {ln.split()[-1] for ln in lines(result.stdout)} == victims
    for tid in victims:
        data = show_json(cli, org_dir, tid)
        assert data["status"] == "cancelled"
        assert any("superseded" in str(fb) for fb in data["feedback"])
    assert show_json(cli, org_dir, other)["status"] == "pending"
    tasks = git(org_dir, "log", "-1", "--format=%(trailers:key=Aoi-Task,valueonly)").split()
    assert set(tasks) == victims
    assert git(org_dir, "status", "--porcelain") == ""
    one_line_error(cli(org_dir, "task", "cancel", root), "already cancelled")


# ---------------------------------------------------------------- tree / graph / log

def test_tree_is_indented_with_statuses(cli, org_dir: Path) -> None:  # noqa: ANN001
    root = new(cli, org_dir, "root")
    kid = new(cli, org_dir, "kid", "--parent", root, "--assignee", "coo")
    out = ok(cli(org_dir, "tree")).stdout.splitlines()
    r = next(ln for ln in out if root in ln)
    k = next(ln for ln in out if kid in ln)
    assert r.startswith(root) and "[pending]" in r
    assert k.startswith("  " + kid) and "[pending]" in k and "@coo" in k
    assert out.index(r) < out.index(k)
    only = ok(cli(org_dir, "tree", kid)).stdout
    assert root not in only and kid in only


def test_graph_mermaid_and_dot(cli, org_dir: Path) -> None:  # noqa: ANN001
    a = new(cli, org_dir, "a")
    b = new(cli, org_dir, "b", "--parent", a)
    c = new(cli, org_dir, "c", "--after", b)
    mer = ok(cli(org_dir, "graph", "--format", "mermaid")).stdout
    assert mer.startswith("flowchart")
    n = lambda t: t.replace("-", "_")  # noqa: E731
    assert f"{n(a)} --> {n(b)}" in mer and f"{n(b)} -.-> {n(c)}" in mer
    assert ok(cli(org_dir, "graph")).stdout == mer
    dot = ok(cli(org_dir, "graph", "--format", "dot")).stdout
    assert dot.startswith("digraph") and dot.rstrip().endswith("}")
    assert f'"{a}" -> "{b}";' in dot and f'"{b}" -> "{c}" [style=dashed];' in dot
    one_line_error(cli(org_dir, "graph", "--format", "png"), "png")


def test_log_shows_actor_and_transition(cli, org_dir: Path) -> None:  # noqa: ANN001
    a = new(cli, org_dir, "a")
    b = new(cli, org_dir, "b")
    ok(cli(org_dir, "task", "cancel", a))
    out = ok(cli(org_dir, "log")).stdout.splitlines()
    assert len(out) == 3
    assert re.match(rf"\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\s+{PERSON_ACTOR}\s+{a}\s+"
                    r"new->pending", out[0])
    assert PERSON_ACTOR in out[2] and a in out[2] and "pending->cancelled" in out[2]
    only = ok(cli(org_dir, "log", a)).stdout
    assert b not in only and "pending->cancelled" in only
    data = json.loads(ok(cli(org_dir, "log", "--json")).stdout)
    assert [r["transitions"][0]["transition"] for r in data] == [
        "new->pending", "new->pending", "pending->cancelled"]
    assert all(r["actor"] == PERSON_ACTOR for r in data)


# ---------------------------------------------------------------- where it runs

def test_dash_c_and_any_subfolder_work(org_dir: Path, run_aoi, tmp_path: Path) -> None:  # noqa: ANN001
    tid = run_aoi("-C", org_dir, "task", "new", "from outside", cwd=tmp_path).stdout.strip()
    assert GENERATED.match(tid)
    sub = org_dir / "employees" / "coo"
    result = run_aoi("task", "list", cwd=sub)
    assert result.returncode == 0 and tid in result.stdout
    result = run_aoi("-C", "employees", "task", "show", tid, cwd=org_dir)
    assert result.returncode == 0 and f"id: {tid}" in result.stdout
    shard = org_dir / "tasks" / tid[2] / tid[3]
    assert run_aoi("validate", f"{tid}.yaml", cwd=shard).returncode == 0
    one_line_error(run_aoi("task", "list", cwd=tmp_path), "not inside an aoi organisation")
    one_line_error(run_aoi("-C", tmp_path / "nope", "task", "list", cwd=tmp_path), "nope")


def test_unknown_id_is_one_line_and_exit_1(cli, org_dir: Path) -> None:  # noqa: ANN001
    new(cli, org_dir, "something")
    for args in (["task", "show", "zzzz"], ["task", "edit", "zzzz"], ["task", "cancel", "zzzz"],
                 ["tree", "zzzz"], ["log", "zzzz"], ["task", "new", "x", "--parent", "zzzz"]):
        one_line_error(cli(org_dir, *args), "zzzz")


def test_usage_errors_are_one_line_and_exit_1(cli, run_aoi, org_dir: Path) -> None:  # noqa: ANN001
    # click alone prints three lines and exits 2; a bad option is bad input like any other
    one_line_error(cli(org_dir, "task", "list", "--bogus"), "--bogus", "aoi task list -h")
    one_line_error(cli(org_dir, "bogus"), "bogus", "aoi -h")
    one_line_error(cli(org_dir, "daemon", "--max-agents", "0"), "--max-agents", "0")
    one_line_error(run_aoi("task", "new", cwd=org_dir), "TITLE")  # the real entry point
    bare = cli(org_dir, "task")  # a group without a command: its help, status 1
    assert bare.exit_code == 1 and "Commands:" in bare.stderr
    assert ok(cli(org_dir, "task", "-h")).stdout.startswith("Usage:")
    assert "version" in ok(cli(org_dir, "--version")).stdout


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None
        out.append((*prefix, name))
        if isinstance(cmd, click.Group):
            out += _commands(cmd, (*prefix, name))
    return out


ALL_COMMANDS = [()] + _commands(main)


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=[" ".join(p) or "aoi" for p in ALL_COMMANDS])
def test_every_command_has_help_with_an_example(cli, tmp_path: Path, path) -> None:  # noqa: ANN001
    for flag in ("-h", "--help"):
        result = cli(tmp_path, *path, flag)
        assert result.exit_code == 0, result.output
        assert "Usage:" in result.stdout
        assert "Example" in result.stdout, f"`aoi {' '.join(path)} -h` shows no example"


def test_the_console_script_runs(run_aoi, tmp_path: Path) -> None:  # noqa: ANN001
    result = run_aoi("--version", cwd=tmp_path)
    assert result.returncode == 0 and "aoi" in result.stdout
    result = run_aoi("-h", cwd=tmp_path)
    assert result.returncode == 0 and "task" in result.stdout


def test_ids_from_the_cli_are_valid(cli, org_dir: Path) -> None:  # noqa: ANN001
    chosen = new(cli, org_dir, "mine", "--id", "login-page")
    assert chosen == "login-page" and ID_RE.match(chosen)
    assert (org_dir / "tasks" / "login-page.yaml").is_file()
    one_line_error(cli(org_dir, "task", "new", "again", "--id", "login-page"), "already exists")
    one_line_error(cli(org_dir, "task", "new", "escape", "--id", "../x"), "../x")
    assert not (org_dir / "x.yaml").exists() and not (org_dir.parent / "x.yaml").exists()
    assert os.listdir(org_dir / "tasks").count("login-page.yaml") == 1
