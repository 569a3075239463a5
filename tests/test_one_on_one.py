"""`aoi one-on-one`: the person's words verbatim (their commit), then the employee's rewrite
of its principles (its own commit), each one a person can diff, blame and revert."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from kit import PERSON_ACTOR, PERSON_ID, PERSON_NAME, CliRun, git

from aoi_git.evolution.one_on_one import clean_rewrite, split_principles
from aoi_git.testing.fake_messages_api import (
    ScriptedMessagesAPI,
    Text,
    offline_env,
    system_text,
)

pytestmark = pytest.mark.timeout(120)

FEEDBACK = ("Quote the `git log` lines you rely on.\n\n"
            "And: **never** call a review \"failed\" without naming the task ids.")
REWRITE = """# Working principles: Tomás Lindqvist (hr)

1. Quote the git signals you rely on, with task ids.
2. Never call a review failed without naming the tasks.
3. Propose hires only for gaps shown by real tasks.
"""


def principles(org: Path, emp: str = "hr") -> str:
    return (org / "employees" / emp / "principles.md").read_text()


def head_message(org: Path, rev: str = "HEAD") -> str:
    return git(org, "log", "-1", "--format=%B", rev)


def count(org: Path) -> int:
    return int(git(org, "rev-list", "--count", "HEAD"))


def make_script_employee(org: Path, emp: str = "ea") -> None:
    profile = org / "employees" / emp / "profile.yaml"
    data = yaml.safe_load(profile.read_text())
    data["backend"] = {"kind": "script", "command": ["true"]}
    profile.write_text(yaml.safe_dump(data, sort_keys=False))
    git(org, "commit", "-q", "-am", f"{emp} runs a script")


def test_script_employee_gets_the_words_verbatim_in_one_commit(org_dir: Path,
                                                               cli: CliRun) -> None:
    make_script_employee(org_dir)
    before_text, before = principles(org_dir, "ea"), count(org_dir)
    out = cli(org_dir, "one-on-one", "ea", FEEDBACK)
    assert out.exit_code == 0, out.output
    assert "cannot reflect" in out.stdout and "only your words" in out.stdout
    assert count(org_dir) == before + 1
    today = dt.date.today().isoformat()
    text = principles(org_dir, "ea")
    assert text.startswith(before_text)  # appended, nothing rewritten
    assert text.endswith(f"\n## 1:1 with {PERSON_ID}, {today}\n\n{FEEDBACK}\n")
    msg = head_message(org_dir)
    assert msg.startswith(f"aoi: 1:1 with ea: feedback from {PERSON_ID}")
    assert f"Aoi-Actor: {PERSON_ACTOR}" in msg and "Aoi-Employee: ea" in msg
    assert git(org_dir, "log", "-1", "--format=%an").strip() == PERSON_NAME
    assert git(org_dir, "diff-tree", "--no-commit-id", "-r", "--name-only",
               "HEAD").split() == ["employees/ea/principles.md"]
    assert git(org_dir, "status", "--porcelain") == ""
    # a second 1:1 goes below the first; a person can revert it alone
    assert cli(org_dir, "one-on-one", "ea", "Second note.").exit_code == 0
    assert principles(org_dir, "ea").count("## 1:1 with ") == 2
    git(org_dir, "revert", "--no-edit", "HEAD")
    assert principles(org_dir, "ea") == text


def test_no_reflect_and_refusals(org_dir: Path, cli: CliRun) -> None:
    before = count(org_dir)
    out = cli(org_dir, "one-on-one", "hr", "Shorter reviews.", "--no-reflect")
    assert out.exit_code == 0, out.output
    assert count(org_dir) == before + 1 and "rewrote" not in out.stdout
    for args, error in [(("nobody", "x"), "no employee"), (("hr", "   "), "empty")]:
        bad = cli(org_dir, "one-on-one", *args)
        assert bad.exit_code == 1 and error in bad.stderr
    assert count(org_dir) == before + 1


def test_split_and_clean() -> None:
    mine, record = split_principles("# P\n\n1. a\n\n## 1:1 with X, 2025-01-01\n\nhi\n")
    assert mine == "# P\n\n1. a\n\n" and record.startswith("## 1:1 with X")
    assert clean_rewrite("```markdown\n# P\n\n1. b\n```") == "# P\n\n1. b\n"
    assert clean_rewrite("1. c\n## 1:1 with Y, 2025\n\ninvented") == \
        "# Working principles\n\n1. c\n"


def test_claude_employee_rewrites_its_principles_as_a_second_commit(
        org_dir: Path, cli: CliRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = principles(org_dir)

    def answer(request: dict[str, Any]) -> Text:
        if "Feedback from" in system_text(request):
            return Text(REWRITE)
        return Text("ok")  # any other request the CLI makes

    home = tmp_path / "claude-home"
    home.mkdir()
    before = count(org_dir)
    with ScriptedMessagesAPI([answer] * 4) as api:
        for k, v in offline_env(api.base_url, str(home)).items():
            monkeypatch.setenv(k, v)
        out = cli(org_dir, "one-on-one", "hr", FEEDBACK)
        requests = api.requests
    assert out.exit_code == 0, out.output
    assert "hr rewrote its principles" in out.stdout, out.output
    assert count(org_dir) == before + 2
    [asked] = [r for r in requests if "Feedback from" in system_text(r)]
    system = system_text(asked)
    assert FEEDBACK in system and "Base every verdict on signals" in system  # old principles
    assert asked.get("model") == "claude-sonnet-4-5"

    first, second = git(org_dir, "rev-list", "-2", "HEAD").split()[::-1]
    msg1, msg2 = head_message(org_dir, first), head_message(org_dir, second)
    assert f"Aoi-Actor: {PERSON_ACTOR}" in msg1
    assert msg2.startswith("aoi: 1:1 with hr: hr rewrote its principles")
    assert "Aoi-Actor: agent:hr" in msg2 and f"Aoi-Reflects-On: {first}" in msg2
    assert "Aoi-Cost-Input-Tokens:" in msg2
    assert git(org_dir, "log", "-1", "--format=%an", second).strip() == "hr (agent)"

    text = principles(org_dir)
    today = dt.date.today().isoformat()
    assert text.startswith(REWRITE)
    assert text.endswith(f"## 1:1 with {PERSON_ID}, {today}\n\n{FEEDBACK}\n")  # kept verbatim
    assert "Base every verdict on signals" not in text

    # blame: the rewrite is the agent's, the words are the person's
    blame = git(org_dir, "blame", "--line-porcelain", "employees/hr/principles.md")
    authors: dict[str, str] = {}
    current_author = ""
    for line in blame.splitlines():
        if line.startswith("author "):
            current_author = line[7:]
        elif line.startswith("\t"):
            authors[line[1:]] = current_author
    assert authors["1. Quote the git signals you rely on, with task ids."] == "hr (agent)"
    assert authors["Quote the `git log` lines you rely on."] == PERSON_NAME
    # a diff of either commit shows just that step
    assert FEEDBACK.splitlines()[0] in git(org_dir, "show", first)
    assert "+1. Quote the git signals" in git(org_dir, "show", second)

    # reverting the agent's rewrite restores the principles as the person left them
    after_first = git(org_dir, "show", f"{first}:employees/hr/principles.md")
    git(org_dir, "revert", "--no-edit", second)
    assert principles(org_dir) == after_first
    assert principles(org_dir) == original + f"\n## 1:1 with {PERSON_ID}, {today}\n\n" \
                                             f"{FEEDBACK}\n"


def test_a_failed_reflection_keeps_the_persons_commit(
        org_dir: Path, cli: CliRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aoi_git.testing.fake_messages_api import ApiError

    home = tmp_path / "claude-home"
    home.mkdir()
    before = count(org_dir)
    with ScriptedMessagesAPI([ApiError(400, "bad request")] * 4) as api:
        for k, v in offline_env(api.base_url, str(home)).items():
            monkeypatch.setenv(k, v)
        out = cli(org_dir, "one-on-one", "hr", "Be brief.")
    assert out.exit_code == 0, out.output
    assert "reflection turn failed" in out.stderr and "your words are committed" in out.stderr
    assert count(org_dir) == before + 1
    assert principles(org_dir).endswith("Be brief.\n")
