"""aoi beside the tools around it: editors (the `$schema` modeline), the pre-commit
framework, `git log --author`, 72-character subjects, and clones without aoi's setup."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from kit import AOI_BIN, PERSON_NAME, git
from orgkit import TmpOrg

REPO = Path(__file__).resolve().parent.parent
MODELINE = re.compile(
    rb"\A# yaml-language-server: \$schema=((?:\.\./)*)schemas/task\.schema\.json\n")

AGENT = """\
import os, subprocess
open("work.txt", "w").write("the agent's work\\n")
subprocess.run(["git", "add", "work.txt"], check=True)
subprocess.run(["git", "commit", "-q", "-m", "the agent's own commit"], check=True)
open("more.txt", "w").write("left for the daemon to commit\\n")
"""


def _script_employee(org: TmpOrg, eid: str, body: str) -> None:
    script = org.root / "agents" / f"{eid}.py"
    script.write_text(body)
    profile = {"id": eid, "name": eid.upper(), "role": "engineer", "reports_to": "ceo",
               "status": "active",
               "backend": {"kind": "script", "command": [sys.executable, str(script)]}}
    (org.root / "employees" / eid).mkdir()
    (org.root / "employees" / eid / "profile.yaml").write_text(yaml.safe_dump(profile))


def test_task_files_aoi_writes_carry_a_schema_modeline_that_resolves(tmp_path: Path) -> None:
    org = TmpOrg(tmp_path)
    org.commit()
    out = org.aoi("task", "new", "Write the launch post", "--assignee", "coo")
    assert out.returncode == 0, out.stderr
    tid = out.stdout.strip()
    path = next(p for p in (org.root / "tasks").rglob(f"{tid}.yaml"))
    data = path.read_bytes()
    m = MODELINE.match(data)
    assert m, data[:200]
    schema = (path.parent / m.group(1).decode() / "schemas" / "task.schema.json").resolve()
    assert schema == (org.root / "schemas" / "task.schema.json").resolve() and schema.is_file()
    # and a transition written by the daemon's side keeps it
    org.aoi("task", "cancel", tid, "-m", "not now")
    assert MODELINE.match(path.read_bytes())


def test_the_pre_commit_framework_manifest_is_valid_and_its_entry_checks_files(
        tmp_path: Path) -> None:
    from pre_commit.clientlib import load_manifest

    (hook,) = load_manifest(str(REPO / ".pre-commit-hooks.yaml"))
    assert hook["id"] == "aoi-validate" and hook["language"] == "python"
    org = TmpOrg(tmp_path)
    org.commit()
    bad = org.root / "tasks" / "broken.yaml"
    bad.write_text("id: broken\ntitle: Broken\nstatus: nonsense\n")
    ok = org.root / "employees" / "coo" / "profile.yaml"
    files = [str(p.relative_to(org.root)) for p in (bad, ok, org.root / "README.md")]
    matched = [f for f in files if re.search(hook["files"], f)]
    assert matched == files[:2]  # org files only
    argv = hook["entry"].split()
    assert argv[0] == "aoi"
    run = subprocess.run([str(AOI_BIN), *argv[1:], *matched], cwd=org.root,
                         capture_output=True, text=True, check=False)
    assert run.returncode == 1
    assert re.search(r"^tasks/broken\.yaml:\d+: .*status", run.stdout + run.stderr, re.M), \
        run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    ok_only = subprocess.run([str(AOI_BIN), *argv[1:], matched[1]], cwd=org.root,
                             capture_output=True, text=True, check=False)
    assert ok_only.returncode == 0, ok_only.stdout + ok_only.stderr


def test_agent_work_is_authored_by_the_employee_and_committed_by_the_host(
        tmp_path: Path) -> None:
    org = TmpOrg(tmp_path)
    _script_employee(org, "qa", AGENT)
    org.commit()
    long_title = "Check the release " + "and everything around it " * 6
    org.new("t1", long_title.strip(), assignee="qa")
    org.run()
    assert org.task("t1").status.value in {"finished", "accepted"}, org.daemon_log()
    found = git(org.root, "log", "--all", "--author=qa", "--format=%H %an|%ae|%cn|%s")
    subjects = [ln.split("|", 3)[3] for ln in found.splitlines()]
    assert "the agent's own commit" in subjects  # the commit it made in its worktree
    assert any(s.startswith("aoi: t1 processing -> ") for s in subjects)  # its result
    everything = git(org.root, "log", "--all", "--format=%an|%cn|%B%x00")
    for entry in everything.split("\x00"):
        if "Aoi-Actor: agent:" in entry or "the agent's own commit" in entry:
            author, committer, _ = entry.strip().split("|", 2)
            assert PERSON_NAME not in (author, committer), entry
    # subjects of at most 72 characters, with the whole line in the body
    for entry in git(org.root, "log", "--all", "--format=%s%x00%b%x01").split("\x01"):
        subject, _, body = entry.strip().partition("\x00")
        assert len(subject) <= 72, subject
        if "t1" in subject and subject.endswith("\u2026"):
            assert long_title.strip()[:60] in body


def test_a_clone_without_aois_setup_is_told_how_to_fix_it(tmp_path: Path) -> None:
    org = TmpOrg(tmp_path)
    org.commit()
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(org.root), str(clone))
    status = subprocess.run([str(AOI_BIN), "-C", str(clone), "status"], capture_output=True,
                            text=True, check=False)
    assert status.returncode == 0, status.stderr
    line = next(ln for ln in status.stdout.splitlines() if "lacks" in ln)
    assert "merge driver" in line and "pre-commit hook" in line and "aoi init" in line
    daemon = subprocess.run([str(AOI_BIN), "-C", str(clone), "daemon", "--until-idle"],
                            capture_output=True, text=True, check=False, timeout=60)
    assert daemon.returncode == 0, daemon.stderr
    assert "lacks" in daemon.stderr and "aoi init" in daemon.stderr
    # the fix it names works (an older aoi hook is replaced), and then nothing is said
    (clone / ".git" / "hooks" / "pre-commit").write_text(
        "#!/bin/sh\n# aoi-hook: an older version\nexit 0\n")
    fixed = subprocess.run([str(AOI_BIN), "init", "."], cwd=clone, capture_output=True,
                           text=True, check=False)
    assert fixed.returncode == 0, fixed.stderr
    again = subprocess.run([str(AOI_BIN), "-C", str(clone), "status"], capture_output=True,
                           text=True, check=False)
    assert "lacks" not in again.stdout, again.stdout
    assert (clone / ".git" / "hooks" / "pre-commit").read_bytes() == \
        (REPO / "hooks" / "pre-commit").read_bytes()
    shutil.rmtree(clone)


PERSON_FILE = """\
# yaml-language-server: $schema=../schemas/task.schema.json
# The launch post: keep it short.
id: launch-post
title: 'Write the launch post'   # the title marketing asked for
status: pending
assignee: coo
priority: 3
labels: [launch, blog]
description: |
  Two paragraphs.
  One picture.
reviewer: none
"""


def test_the_merge_driver_keeps_a_persons_formatting(tmp_path: Path) -> None:
    org = TmpOrg(tmp_path)
    path = org.root / "tasks" / "launch-post.yaml"
    path.write_text(PERSON_FILE)
    org.commit()
    git(org.root, "checkout", "-q", "-b", "other")
    path.write_text(PERSON_FILE.replace("priority: 3", "priority: 5"))
    git(org.root, "commit", "-q", "--no-verify", "-am", "raise the priority")
    git(org.root, "checkout", "-q", "-")
    # (the next line, so a plain text merge would conflict: the driver merges the fields)
    mine = PERSON_FILE.replace("assignee: coo", "assignee: hr")
    path.write_text(mine)
    git(org.root, "commit", "-q", "--no-verify", "-am", "one more line")
    git(org.root, "merge", "-q", "--no-edit", "--no-verify", "other")
    merged = path.read_text()
    assert merged == mine.replace("priority: 3", "priority: 5"), merged
