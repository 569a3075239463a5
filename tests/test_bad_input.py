"""No file anyone writes stops the organisation (issue 15, point 7).

Each bad file below once crashed `aoi validate`, `aoi status` or `aoi daemon` (ValueError,
RecursionError, AttributeError, OverflowError), took seconds to read, or was passed over
unseen. Here each lies beside a good task, in the work tree or committed: every entry
point names it in one `path:line: message` line and goes on, the real daemon finishes the
good task and starts again, and the bad bytes are left as the person wrote them.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kit import git
from orgkit import TmpOrg

from aoi_git.domain.model import Status
from aoi_git.org.organisation import load_org
from aoi_git.org.validate import parse_task_bytes
from aoi_git.store import yamlio
from aoi_git.store.org_store import Store

pytestmark = pytest.mark.timeout(180)

AGENT = """\
import json, os, pathlib
pathlib.Path(os.environ["AOI_RESULT_FILE"]).write_text(json.dumps(
    {"outcome": "completed", "summary": "done"}))
"""


def _laughs() -> str:
    lines = ["title: laughs", 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", '
             '"lol", "lol"]']
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def _nested(levels: int) -> str:
    body = "".join("  " * (i + 1) + f"k{i}:\n" for i in range(levels))
    return "title: nested\nextra:\n" + body + "  " * (levels + 1) + "1\n"


# name: (path, content, expected `path:line` prefix as shown, words of the message)
BAD: dict[str, tuple[str, bytes, str, str]] = {
    "5000-digit priority": ("tasks/digits.yaml",
                            ("title: digits\npriority: " + "9" * 5000 + "\n").encode(),
                            "tasks/digits.yaml:2", "integer longer than"),
    "alias of itself": ("tasks/self-alias.yaml", b"title: alias\nfeedback: &a [*a]\n",
                        "tasks/self-alias.yaml:2", "nested deeper than"),
    "400-level mapping": ("tasks/nested.yaml", _nested(400).encode(),
                          "tasks/nested.yaml:66", "nested deeper than 64"),
    "bad timestamp": ("tasks/stamp.yaml", b"title: !!timestamp nope\n",
                      "tasks/stamp.yaml:1", "not a timestamp"),
    "billion laughs": ("tasks/laughs.yaml", _laughs().encode(), "tasks/laughs.yaml:",
                       "more than 100000 values"),
    "infinite priority": ("tasks/inf.yaml", b"title: inf\npriority: .inf\n",
                          "tasks/inf.yaml:2", "not a finite number"),
    "huge priority": ("tasks/huge.yaml", b"title: huge\npriority: 99999999999\n",
                      "tasks/huge.yaml:2", "priority"),
    "concurrency a word": ("employees/odd/profile.yaml",
                           b"id: odd\nrole: engineer\ncapacity:\n  concurrency: many\n",
                           "employees/odd/profile.yaml:4", "concurrency"),
    "priority a list": ("tasks/listy.yaml", b"title: listy\npriority: [1]\n",
                        "tasks/listy.yaml:2", "priority"),
    "newline in the name": ("tasks/ab\n.yaml", b"title: named\n", "tasks/ab\\n.yaml:1",
                            "not a valid task id"),
    "5 MiB file": ("tasks/big.yaml", b"title: big\ndescription: " + b"x" * (5 << 20) + b"\n",
                   "tasks/big.yaml:1", "larger than 4 MiB"),
    "profile with infinite capacity": ("employees/odd/profile.yaml",
                                       b"id: odd\nrole: engineer\ncapacity:\n"
                                       b"  concurrency: 1.0e+400\n",
                                       "employees/odd/profile.yaml:4", "not a finite number"),
}
PROBLEM_LINE = re.compile(r"^\S[^\n]*:\d+: \S")


class BadOrg(TmpOrg):
    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path)
        (self.root / "agents" / "ok.py").write_text(AGENT)
        profile = {"id": "eng-1", "name": "Eng", "role": "engineer", "reports_to": "ceo",
                   "status": "active",
                   "backend": {"kind": "script",
                               "command": [sys.executable, str(self.root / "agents/ok.py")]},
                   "capacity": {"concurrency": 1, "timeout_s": 60}}
        (self.root / "employees" / "eng-1").mkdir(parents=True)
        (self.root / "employees/eng-1/profile.yaml").write_text(yaml.safe_dump(profile))
        self.commit()

    def daemon_until_idle(self) -> subprocess.CompletedProcess[str]:
        return self.aoi("daemon", "--until-idle", timeout=120)


@pytest.fixture
def org(tmp_path: Path) -> Iterator[BadOrg]:
    yield BadOrg(tmp_path)


def assert_reported(out: subprocess.CompletedProcess[str], shown: str, words: str) -> None:
    text = out.stdout + out.stderr
    assert "internal error" not in text and "Traceback" not in text, text[-2000:]
    lines = [ln for ln in text.splitlines() if ln.lstrip().startswith(shown)]
    assert len(lines) == 1, text[-3000:]
    assert words in lines[0] and len(lines[0]) < 300, lines[0]


@pytest.mark.parametrize("where", ["work tree", "committed"])
@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_file_is_one_line_and_the_org_goes_on(org: BadOrg, case: str, where: str) -> None:
    path, data, shown, words = BAD[case]
    org.new("good-1", assignee="eng-1")
    full = org.root / path
    full.parent.mkdir(parents=True, exist_ok=True)
    full.write_bytes(data)
    if where == "committed":  # as a push of someone's history would bring it
        git(org.root, "add", "-A")
        git(org.root, "commit", "-q", "--no-verify", "-m", f"a bad file: {case}")
    else:  # a person's commit of it is refused by the pre-commit hook, in one line
        git(org.root, "add", "--", path)
        refused = subprocess.run(["git", "commit", "-q", "-m", "bad"], cwd=org.root,
                                 capture_output=True, text=True, check=False)
        assert refused.returncode != 0
        assert_reported(refused, shown, words)
        git(org.root, "reset", "-q")

    out = org.aoi("validate")
    assert out.returncode == 1
    assert_reported(out, shown, words)
    assert all(PROBLEM_LINE.match(ln) for ln in out.stderr.splitlines() if ln), out.stderr
    if path.startswith("tasks/") and "\n" not in path:
        one = org.aoi("validate", path)  # the file alone: the same verdict
        assert one.returncode == 1
        assert_reported(one, shown, words)
    status = org.aoi("status")
    assert status.returncode == 0, status.stderr
    assert_reported(status, shown, words)

    first = org.daemon_until_idle()
    assert first.returncode == 0, first.stdout + first.stderr + org.daemon_log()
    assert org.task("good-1").status is Status.FINISHED
    org.new("good-2", assignee="eng-1")
    again = org.daemon_until_idle()  # a restart beside the same file
    assert again.returncode == 0, again.stdout + again.stderr + org.daemon_log()
    assert org.task("good-2").status is Status.FINISHED
    assert "Traceback" not in org.daemon_log()
    assert full.read_bytes() == data  # nothing the person wrote is lost
    if where == "committed":
        assert any(p.startswith(shown) for p in load_org(Store(org.root)).problems)


def test_a_task_file_at_head_is_read_with_the_checks_of_aoi_validate(org: BadOrg) -> None:
    # result.merged is written on every merge: both readers accept it; an unknown key
    # under result is refused by both, at its line
    good = b"title: t\nstatus: finished\nresult:\n  summary: s\n  merged: abc123\n"
    bad = b"title: t\nstatus: finished\nresult:\n  summary: s\n  landed: abc123\n"
    assert not isinstance(parse_task_bytes(good, "tasks/t1.yaml"), tuple)
    assert parse_task_bytes(bad, "tasks/t1.yaml") == (5, "unknown key 'landed'")
    (org.root / "tasks" / "t1.yaml").write_bytes(bad)
    git(org.root, "add", "-A")
    git(org.root, "commit", "-q", "--no-verify", "-m", "unknown key")
    whole, alone = org.aoi("validate"), org.aoi("validate", "tasks/t1.yaml")
    assert whole.returncode == alone.returncode == 1
    assert "tasks/t1.yaml:5: unknown key 'landed'" in whole.stderr
    assert "tasks/t1.yaml:5: unknown key 'landed'" in alone.stderr


@pytest.mark.parametrize("text", [
    "a: 1\n", "[1, 2]\n", "a: &x [1, 2]\nb: *x\n", "when: 2024-01-02\n", "n: 0x1f\n",
    "f: 1.5e3\n", "s: !!binary aGk=\n",
])
def test_ordinary_yaml_reads_as_pyyaml_reads_it(text: str) -> None:
    assert yamlio.load(text) == yaml.safe_load(text)


@pytest.mark.parametrize("text, line, words", [
    ("a: 1\nb: !!float nope\n", 2, "not a number"),
    ("a: 1\nb: !!int nope\n", 2, "not an integer"),
    ("a: 1\nb: -.inf\n", 2, "not a finite number"),
    ("a: .nan\n", 1, "not a finite number"),
    ("a: 1\nb:\n  c: " + "[" * 70 + "]" * 70 + "\n", 3, "nested deeper than 64"),
])
def test_values_out_of_bounds_are_yaml_errors_with_their_line(text: str, line: int,
                                                              words: str) -> None:
    with pytest.raises(yamlio.YamlError) as err:
        yamlio.load(text)
    assert err.value.line == line and words in str(err.value)


def test_a_committed_profile_against_its_schema_fails_both_ways_of_validating(
        org: BadOrg) -> None:
    profile = org.root / "employees" / "eng-1" / "profile.yaml"
    profile.write_text(profile.read_text() + "favourite_colour: blue\n")
    git(org.root, "commit", "-q", "--no-verify", "-am", "a stray key")
    whole = org.aoi("validate")
    alone = org.aoi("validate", "employees/eng-1/profile.yaml")
    assert whole.returncode == alone.returncode == 1
    for out in (whole, alone):
        assert_reported(out, "employees/eng-1/profile.yaml:", "unknown key 'favourite_colour'")
    assert "eng-1" in load_org(Store(org.root)).employees  # shown, but the employee works


@pytest.mark.parametrize("case", ["5000-digit priority", "billion laughs", "newline in the name"])
def test_a_push_of_a_bad_file_is_refused_in_one_line(org: BadOrg, tmp_path: Path,
                                                     case: str) -> None:
    from test_writer_schema import push_through_pre_receive

    path, data, shown, words = BAD[case]
    (org.root / path).write_bytes(data)
    git(org.root, "add", "-A")
    git(org.root, "commit", "-q", "--no-verify", "-m", f"a bad file: {case}")
    pushed = push_through_pre_receive(org.root, tmp_path)
    assert pushed.returncode != 0
    assert "internal error" not in pushed.stderr and "Traceback" not in pushed.stderr
    lines = [ln for ln in pushed.stderr.splitlines() if f" {shown}" in ln]
    assert len(lines) == 1 and words in lines[0], pushed.stderr[-3000:]
    assert "aoi: push refused" in pushed.stderr
