"""Bad input: each problem is one `path:line: message` line, exit status 1, never a
traceback, nothing a person wrote is overwritten. And the git hooks, for real."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest
from kit import git, lines

PROBLEM = re.compile(r"^(?P<path>[^:\s][^:]*):(?P<line>\d+): (?P<msg>.+)$")
REPO = Path(__file__).resolve().parents[1]


def problems(result) -> list[tuple[str, int, str]]:  # noqa: ANN001
    """The parsed problem lines of a failed run; asserts the error contract on the way."""
    code = result.exit_code if hasattr(result, "exit_code") else result.returncode
    assert code == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    out = []
    for ln in lines(result.stderr):
        m = PROBLEM.match(ln)
        assert m, f"not a `path:line: message` line: {ln!r}"
        out.append((m["path"], int(m["line"]), m["msg"]))
    assert out
    return out


def write(org: Path, rel: str, data: bytes | str) -> Path:
    path = org / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def assert_flags(org: Path, cli, rel: str, data: bytes | str, line: int | None,  # noqa: ANN001
                 *needles: str) -> list[tuple[str, int, str]]:
    """Write `rel`, run `aoi validate` (all, and the one path): the file is named with the
    expected line and message, and left byte for byte as written."""
    path = write(org, rel, data)
    before = path.read_bytes()
    head = git(org, "rev-parse", "HEAD")
    for args in ((), (rel,)):
        found = problems(cli(org, "validate", *args))
        mine = [p for p in found if p[0] == rel]
        assert mine, found
        for needle in needles:
            assert any(needle in msg for _, _, msg in mine), (needle, mine)
        if line is not None:
            assert any(ln == line for _, ln, _ in mine), (line, mine)
    assert path.read_bytes() == before
    assert git(org, "rev-parse", "HEAD") == head
    return found


# --------------------------------------------------------------- one file at a time

@pytest.mark.parametrize(("data", "line", "needle"), [
    ("title: ok\ndescription: fine\nlabels: [a, b\npriority: 1\n", 4, "malformed YAML"),
    ("title: ok\nstatus: pending\n  bad: indent\n", 3, "malformed YAML"),
    ("title: ok\ndescription: |\n  text\n\tpriority: 2\n", 4, "malformed YAML"),
    ("title: [unclosed\n", 2, "malformed YAML"),
], ids=["flow-list", "indent", "tab", "eof"])
def test_malformed_yaml_names_the_line(org_dir: Path, cli, data: str,  # noqa: ANN001
                                       line: int, needle: str) -> None:
    assert_flags(org_dir, cli, "tasks/broken.yaml", data, line, needle)


@pytest.mark.parametrize(("data", "line", "needle"), [
    ("title: ok\npriority: high\n", 2, "priority"),
    ("title: ok\nlabels: 5\n", 2, "labels"),
    ("title: ok\nstatus: done\n", 2, "status"),
    ("title: ok\nkind: chore\n", 2, "kind"),
    ("title: ok\nbudget:\n  usd: lots\n", 3, "budget.usd"),
    ("title: ok\ndepends_on: aa\n", 2, "depends_on"),
    ("title: 42\n", 1, "title"),
    ("description: no title\n", 1, "title"),
    ("- a list\n- not a mapping\n", 1, "mapping"),
    ("", 1, "mapping"),
], ids=["priority", "labels", "status", "kind", "budget", "depends-str", "title-int",
        "no-title", "list", "empty"])
def test_wrong_types_are_reported_at_their_key(org_dir: Path, cli, data: str,  # noqa: ANN001
                                               line: int, needle: str) -> None:
    assert_flags(org_dir, cli, "tasks/typed.yaml", data, line, needle)


def test_unknown_key_with_its_line(org_dir: Path, cli) -> None:  # noqa: ANN001
    found = assert_flags(org_dir, cli, "tasks/unknown.yaml",
                         "title: ok\n\n# a comment\nasignee: coo\n", 4, "unknown key 'asignee'")
    assert len(found) == 1


@pytest.mark.parametrize(("data", "line", "needle"), [
    ("title: ok\nassignee: nobody\n", 2, "'nobody'"),
    ("title: ok\nassignee: role:astronaut\n", 2, "astronaut"),
    ("title: ok\nreviewer: ghost\n", 2, "'ghost'"),
    ("title: ok\nparent: no-such-parent\n", 2, "no-such-parent"),
    ("title: ok\ndepends_on: [no-such-dep]\n", 2, "no-such-dep"),
    ("title: ok\ndepends_on:\n- other-ref\n", 3, "'other-ref'"),
], ids=["assignee", "role", "reviewer", "parent", "depends_on", "depends_on-block"])
def test_missing_references(org_dir: Path, cli, data: str, line: int,  # noqa: ANN001
                            needle: str) -> None:
    assert_flags(org_dir, cli, "tasks/refs.yaml", data, line, needle)


def test_known_references_pass(org_dir: Path, cli) -> None:  # noqa: ANN001
    write(org_dir, "tasks/base.yaml", "title: base\n")
    write(org_dir, "tasks/refs.yaml",
          "title: ok\nassignee: role:coo\nreviewer: ceo\nparent: base\ndepends_on: [base]\n")
    result = cli(org_dir, "validate")
    assert result.exit_code == 0, result.stderr
    write(org_dir, "tasks/none.yaml", "title: ok\nreviewer: none\nassignee: hr\n")
    assert cli(org_dir, "validate").exit_code == 0


def test_cycle_is_named(org_dir: Path, cli) -> None:  # noqa: ANN001
    write(org_dir, "tasks/aa.yaml", "title: a\ndepends_on: [bb]\n")
    write(org_dir, "tasks/bb.yaml", "title: b\ndepends_on: [cc]\n")
    write(org_dir, "tasks/cc.yaml", "title: c\ndepends_on: [aa]\n")
    found = problems(cli(org_dir, "validate"))
    assert [msg for *_, msg in found] == ["dependency cycle: aa -> bb -> cc -> aa"]
    write(org_dir, "tasks/self.yaml", "title: me\ndepends_on: [self]\n")
    found = problems(cli(org_dir, "validate", "tasks/self.yaml"))
    assert any("itself" in msg or "self -> self" in msg for *_, msg in found)


def test_parent_cycle_is_named(org_dir: Path, cli) -> None:  # noqa: ANN001
    write(org_dir, "tasks/aa.yaml", "title: a\nparent: bb\n")
    write(org_dir, "tasks/bb.yaml", "title: b\nparent: aa\n")
    found = problems(cli(org_dir, "validate"))
    assert any("parent cycle: aa -> bb -> aa" in msg for *_, msg in found)


@pytest.mark.parametrize(("rel", "data", "needle"), [
    ("tasks/Bad_Name.yaml", "title: x\n", "not a valid task id"),
    ("tasks/x.yaml", "title: x\n", "not a valid task id"),
    ("tasks/ok-name.yaml", "id: ../x\ntitle: x\n", "id"),
    ("tasks/ok-name.yaml", "id: other-name\ntitle: x\n", "must equal the file name"),
], ids=["uppercase", "too-short", "escape", "mismatch"])
def test_bad_ids(org_dir: Path, cli, rel: str, data: str, needle: str) -> None:  # noqa: ANN001
    assert_flags(org_dir, cli, rel, data, None, needle)


def test_ids_that_try_to_escape_the_repo(org_dir: Path, cli, tmp_path: Path) -> None:  # noqa: ANN001
    outside = tmp_path / "x.yaml"
    outside.write_text("title: outside\n")
    for args in (["task", "show", "../x"], ["task", "edit", "../x"], ["task", "cancel", "../x"],
                 ["task", "new", "t", "--id", "../x"], ["task", "new", "t", "--after", "../x"],
                 ["validate", "../x.yaml"]):
        result = cli(org_dir, *args)
        assert result.exit_code == 1, (args, result.stderr)
        assert len(lines(result.stderr)) == 1 and "Traceback" not in result.stderr
    assert outside.read_text() == "title: outside\n"
    assert git(org_dir, "status", "--porcelain") == ""


def test_non_utf8_bytes(org_dir: Path, cli) -> None:  # noqa: ANN001
    assert_flags(org_dir, cli, "tasks/latin1.yaml", b"title: ok\ndescription: caf\xe9\n", 2,
                 "UTF-8")


def test_a_task_file_deleted_by_hand(org_dir: Path, cli) -> None:  # noqa: ANN001
    tid = cli(org_dir, "task", "new", "doomed").stdout.strip()
    path = org_dir / "tasks" / tid[2] / tid[3] / f"{tid}.yaml"
    path.unlink()
    found = problems(cli(org_dir, "validate"))
    assert any(p == f"tasks/{tid[2]}/{tid[3]}/{tid}.yaml" and "deleted by hand" in msg
               and "aoi task cancel" in msg for p, _, msg in found), found
    assert not path.exists()  # not restored behind the person's back


def test_duplicate_ids_in_two_folders(org_dir: Path, cli) -> None:  # noqa: ANN001
    write(org_dir, "tasks/one/dup-id.yaml", "title: first\n")
    write(org_dir, "tasks/two/dup-id.yaml", "title: second\n")
    found = problems(cli(org_dir, "validate"))
    assert any("duplicate task id 'dup-id'" in msg for *_, msg in found), found


def test_duplicate_of_a_committed_id(org_dir: Path, cli) -> None:  # noqa: ANN001
    assert cli(org_dir, "task", "new", "first", "--id", "dup-id").exit_code == 0
    write(org_dir, "tasks/elsewhere/dup-id.yaml", "title: second\n")
    found = problems(cli(org_dir, "validate"))
    assert any(p == "tasks/elsewhere/dup-id.yaml" and "duplicate task id 'dup-id'" in msg
               and "tasks/dup-id.yaml" in msg for p, _, msg in found), found


def test_duplicate_committed_behind_aoi_is_reported(org_dir: Path, cli) -> None:  # noqa: ANN001
    write(org_dir, "tasks/one/dup-id.yaml", "title: first\n")
    write(org_dir, "tasks/two/dup-id.yaml", "title: second\n")
    git(org_dir, "add", "tasks")
    git(org_dir, "commit", "-q", "--no-verify", "-m", "two of a kind")
    found = problems(cli(org_dir, "validate"))
    assert any("duplicate task id 'dup-id'" in msg for *_, msg in found), found


@pytest.mark.parametrize(("new_status", "needle"), [
    ("finished", "pending -> finished"),
    ("processing", "daemon"),
    ("completed", "not to a person"),  # only a person's own work is completed by hand
])
def test_illegal_human_status_change(org_dir: Path, cli, new_status: str,  # noqa: ANN001
                                     needle: str) -> None:
    assert cli(org_dir, "task", "new", "work", "--id", "work-task").exit_code == 0
    path = org_dir / "tasks" / "work-task.yaml"
    text = path.read_text() + f"\nstatus: {new_status}\n"
    line = text.splitlines().index(f"status: {new_status}") + 1
    assert_flags(org_dir, cli, "tasks/work-task.yaml", text, line, needle)


def test_a_new_file_must_start_pending(org_dir: Path, cli) -> None:  # noqa: ANN001
    assert_flags(org_dir, cli, "tasks/eager.yaml", "title: x\nstatus: finished\n", 2,
                 "must start as pending")


def test_a_person_may_answer_a_human_task_and_cancel(org_dir: Path, cli) -> None:  # noqa: ANN001
    write(org_dir, "tasks/ask-ceo.yaml", "title: decide\nkind: human\nquestion: yes?\n")
    write(org_dir, "tasks/drop-me.yaml", "title: drop\n")
    git(org_dir, "add", "tasks")
    git(org_dir, "commit", "-qm", "two tasks")
    write(org_dir, "tasks/ask-ceo.yaml",
          "title: decide\nkind: human\nquestion: yes?\nanswer: go ahead\nstatus: finished\n")
    write(org_dir, "tasks/drop-me.yaml", "title: drop\nstatus: cancelled\n")
    result = cli(org_dir, "validate")
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize("garbage", [b"\x80\x04garbage", b"", b"\x00" * 100])
def test_a_stale_or_corrupt_cache_is_harmless(org_dir: Path, cli, garbage: bytes) -> None:  # noqa: ANN001
    tid = cli(org_dir, "task", "new", "cached").stdout.strip()
    assert tid in cli(org_dir, "task", "list").stdout  # (`task new` reads no index)
    cache = org_dir / ".aoi" / "cache" / "tasks.pickle"
    assert cache.is_file()
    cache.write_bytes(garbage)
    result = cli(org_dir, "validate")
    assert result.exit_code == 0 and result.stdout.strip() == "ok", result.stderr
    assert tid in cli(org_dir, "task", "list").stdout
    # stale: the branch moved behind aoi's back
    path = org_dir / "tasks" / tid[2] / tid[3] / f"{tid}.yaml"
    path.write_text(path.read_text().replace("title: cached", "title: renamed"))
    git(org_dir, "commit", "-qam", "by hand")
    assert "renamed" in cli(org_dir, "task", "show", tid).stdout


def test_other_org_files_are_validated_too(org_dir: Path, cli) -> None:  # noqa: ANN001
    profile = org_dir / "employees" / "coo" / "profile.yaml"
    text = profile.read_text()
    profile.write_text(text + "favourite_colour: blue\n")
    found = problems(cli(org_dir, "validate"))
    line = len(text.splitlines()) + 1
    assert ("employees/coo/profile.yaml", line, "unknown key 'favourite_colour'") in found
    profile.write_text(text)
    (org_dir / "aoi.yaml").write_text((org_dir / "aoi.yaml").read_text() + "limits: [\n")
    found = problems(cli(org_dir, "validate"))
    assert any(p == "aoi.yaml" and "malformed YAML" in m for p, _, m in found)


def test_several_problems_one_line_each(org_dir: Path, cli) -> None:  # noqa: ANN001
    write(org_dir, "tasks/p1.yaml", "title: ok\nfoo: 1\n")
    write(org_dir, "tasks/p2.yaml", "title: [\n")
    write(org_dir, "tasks/p3.yaml", "title: ok\nassignee: nobody\n")
    found = problems(cli(org_dir, "validate"))
    assert {p for p, _, _ in found} == {"tasks/p1.yaml", "tasks/p2.yaml", "tasks/p3.yaml"}


def test_the_console_script_reports_like_the_library(org_dir: Path, run_aoi) -> None:  # noqa: ANN001
    write(org_dir, "tasks/bad.yaml", "title: ok\n\nbogus: 1\n")
    result = run_aoi("validate", cwd=org_dir)
    assert problems(result) == [("tasks/bad.yaml", 3, "unknown key 'bogus'")]
    assert result.stdout == ""


# --------------------------------------------------------------- git hooks, for real

def _commit(org: Path, *args: str):  # noqa: ANN202
    import subprocess

    return subprocess.run(["git", "commit", *args], cwd=org, capture_output=True, text=True)


def test_pre_commit_hook_blocks_an_invalid_task_file(org_dir: Path, cli) -> None:  # noqa: ANN001
    write(org_dir, "tasks/hooked.yaml", "title: ok\nassignee: nobody\nfoo: 1\n")
    git(org_dir, "add", "tasks/hooked.yaml")
    head = git(org_dir, "rev-parse", "HEAD")
    proc = _commit(org_dir, "-m", "sneak it in")
    assert proc.returncode != 0
    hook_lines = [ln for ln in lines(proc.stderr) if not ln.startswith("aoi:")]
    assert "Traceback" not in proc.stderr
    assert ("tasks/hooked.yaml:3: unknown key 'foo'") in hook_lines
    # the same messages as `aoi validate`
    assert hook_lines == lines(cli(org_dir, "validate", "tasks/hooked.yaml").stderr)
    assert "commit blocked" in proc.stderr
    assert git(org_dir, "rev-parse", "HEAD") == head
    assert "tasks/hooked.yaml" in git(org_dir, "diff", "--cached", "--name-only")


def test_pre_commit_hook_checks_the_staged_version(org_dir: Path) -> None:
    write(org_dir, "tasks/hooked.yaml", "title: ok\nfoo: 1\n")
    git(org_dir, "add", "tasks/hooked.yaml")
    write(org_dir, "tasks/hooked.yaml", "title: ok\n")  # fixed in the work tree only
    assert _commit(org_dir, "-m", "x").returncode != 0


def test_pre_commit_hook_blocks_an_illegal_status_change(org_dir: Path, cli) -> None:  # noqa: ANN001
    assert cli(org_dir, "task", "new", "w", "--id", "work-task").exit_code == 0
    path = org_dir / "tasks" / "work-task.yaml"
    path.write_text(path.read_text() + "status: finished\n")
    proc = _commit(org_dir, "-am", "done!")
    assert proc.returncode != 0
    assert "tasks/work-task.yaml:" in proc.stderr and "pending -> finished" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_pre_commit_hook_lets_a_valid_file_through(org_dir: Path) -> None:
    write(org_dir, "tasks/login-page.yaml", "title: Build the login page\nassignee: coo\n")
    write(org_dir, "notes.md", "not an org file\n")
    git(org_dir, "add", ".")
    proc = _commit(org_dir, "-m", "a task by hand")
    assert proc.returncode == 0, proc.stderr
    assert "login-page.yaml" in git(org_dir, "show", "--name-only", "HEAD")


def _server(tmp_path: Path, org_dir: Path) -> tuple[Path, Path]:
    bare = tmp_path / "server.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    hook = bare / "hooks" / "pre-receive"
    shutil.copy(REPO / "hooks" / "pre-receive", hook)
    hook.chmod(0o755)
    git(bare, "config", "aoi.python", sys.executable)
    git(org_dir, "remote", "add", "origin", str(bare))
    push = _push(org_dir)
    assert push.returncode == 0, push.stderr
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(bare), str(clone))
    return bare, clone


def _push(repo: Path, *args: str):  # noqa: ANN202
    import subprocess

    return subprocess.run(["git", "push", "origin", "HEAD:main", *args], cwd=repo,
                          capture_output=True, text=True)


def test_pre_receive_accepts_a_valid_push_and_refuses_an_invalid_one(
    tmp_path: Path, org_dir: Path, run_aoi  # noqa: ANN001
) -> None:
    bare, clone = _server(tmp_path, org_dir)
    tid = run_aoi("task", "new", "pushed", cwd=clone).stdout.strip()
    assert tid
    push = _push(clone)
    assert push.returncode == 0, push.stderr
    assert git(bare, "rev-parse", "main") == git(clone, "rev-parse", "HEAD")

    write(clone, "tasks/bad.yaml", "title: ok\nassignee: nobody\n")
    git(clone, "add", "tasks/bad.yaml")
    git(clone, "commit", "-q", "--no-verify", "-m", "skip the local hook")
    before = git(bare, "rev-parse", "main")
    push = _push(clone)
    assert push.returncode != 0
    assert "tasks/bad.yaml:2: assignee: 'nobody'" in push.stderr
    assert "push refused" in push.stderr
    assert "Traceback" not in push.stderr
    assert git(bare, "rev-parse", "main") == before

    # an illegal transition in history is refused too, even after a valid commit
    git(clone, "reset", "-q", "--hard", "HEAD~1")
    path = clone / "tasks" / tid[2] / tid[3] / f"{tid}.yaml"
    path.write_text(path.read_text() + "labels: [fine]\n")
    git(clone, "commit", "-qam", "fine")
    path.write_text(path.read_text() + "status: processing\n")
    git(clone, "commit", "-q", "--no-verify", "-am", "claim by hand")
    push = _push(clone)
    assert push.returncode != 0
    assert "pending -> processing" in push.stderr
    assert git(bare, "rev-parse", "main") == before


def test_pre_receive_checks_each_commit_of_a_push_against_the_ones_before_it(
    tmp_path: Path, org_dir: Path
) -> None:
    """One push, many commits (a host's batch): each is judged by the org as its parent
    left it, not as the push found it: a task a commit adds may be named by the next one,
    and a move is judged from the status the commit before it set."""
    bare, clone = _server(tmp_path, org_dir)
    write(clone, "tasks/first.yaml", "title: First\nassignee: coo\n")
    git(clone, "add", "tasks/first.yaml")
    git(clone, "commit", "-q", "-m", "first")
    write(clone, "tasks/second.yaml", "title: Second\nassignee: coo\ndepends_on: [first]\n")
    git(clone, "add", "tasks/second.yaml")
    git(clone, "commit", "-q", "-m", "second, after first")
    push = _push(clone)
    assert push.returncode == 0, push.stderr
    assert git(bare, "rev-parse", "main") == git(clone, "rev-parse", "HEAD")

    before = git(bare, "rev-parse", "main")
    path = clone / "tasks" / "first.yaml"
    path.write_text(path.read_text() + "status: cancelled\n")
    git(clone, "commit", "-qam", "cancel first")
    path.write_text(path.read_text().replace("status: cancelled", "status: pending"))
    git(clone, "commit", "-q", "--no-verify", "-am", "and back, by hand")
    push = _push(clone)
    assert push.returncode != 0
    assert "cancelled -> pending" in push.stderr
    assert "Traceback" not in push.stderr
    assert git(bare, "rev-parse", "main") == before
