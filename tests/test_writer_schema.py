"""What aoi writes, the shipped schemas accept (issue 15, point 8).

`aoi demo` and a full organisation loop (decomposition, a question, review with a
rejection, merges, a retrospective, a performance review, a proposed and approved hire)
run on real git; then every org file at HEAD is checked with `jsonschema` itself (not
through aoi's validator), and the whole history is pushed to a real bare repository
whose `pre-receive` hook is the shipped one, which must accept it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from kit import AOI_BIN, git
from test_org_loop import LoopOrg

from aoi_git.domain.model import Kind, Status
from aoi_git.resources import resource_dir

pytestmark = pytest.mark.timeout(300)

REPO = Path(__file__).resolve().parent.parent
SCHEMA_OF = {"task": "task", "profile": "profile", "talent": "talent", "aoi": "aoi",
             "sop": "sop"}


def _schema_kind(path: str) -> str | None:
    parts = path.split("/")
    if parts[0] == "tasks" and path.endswith((".yaml", ".yml")):
        return "task"
    if len(parts) == 3 and parts[0] == "employees" and parts[2] == "profile.yaml":
        return "profile"
    if len(parts) == 3 and parts[0] == "talents" and parts[2] == "talent.yaml":
        return "talent"
    if path == "aoi.yaml":
        return "aoi"
    if parts[0] == "sops" and path.endswith(".md"):
        return "sop"
    return None


def _front_matter(text: str) -> Any:
    assert text.startswith("---\n"), text[:80]
    return yaml.safe_load(text[4:].split("\n---", 1)[0])


def schema_violations(root: Path) -> tuple[dict[str, int], list[str]]:
    """Files checked per schema, and `path: message` for each violation at HEAD."""
    validators = {}
    for name in SCHEMA_OF.values():
        schema = json.loads((REPO / "schemas" / f"{name}.schema.json").read_text())
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        validators[name] = cls(schema, format_checker=cls.FORMAT_CHECKER)
    checked: dict[str, int] = {}
    problems: list[str] = []
    for path in git(root, "ls-tree", "-r", "--name-only", "-z", "HEAD").split("\0"):
        kind = _schema_kind(path)
        if kind is None:
            continue
        text = git(root, "show", f"HEAD:{path}")
        data = _front_matter(text) if kind == "sop" else yaml.safe_load(text)
        checked[kind] = checked.get(kind, 0) + 1
        for err in validators[kind].iter_errors(data if data is not None else {}):
            where = "/".join(str(p) for p in err.absolute_path)
            problems.append(f"{path}: {where}: {err.message[:200]}")
    return checked, problems


def push_through_pre_receive(root: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Push all of `root`'s branch to a new bare repository guarded by hooks/pre-receive."""
    bare = tmp_path / "shared.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    hook = bare / "hooks" / "pre-receive"
    shutil.copy(resource_dir("hooks") / "pre-receive", hook)
    hook.chmod(0o755)
    subprocess.run(["git", "-C", str(bare), "config", "aoi.python", sys.executable], check=True)
    return subprocess.run(["git", "push", "-q", str(bare), "HEAD:refs/heads/main"], cwd=root,
                          capture_output=True, text=True, timeout=240, check=False)


def assert_written_files_fit_their_schemas(root: Path, tmp_path: Path) -> dict[str, int]:
    checked, problems = schema_violations(root)
    assert problems == [], "\n".join(problems[:30])
    pushed = push_through_pre_receive(root, tmp_path)
    assert pushed.returncode == 0, pushed.stderr[-3000:]
    assert "aoi: push refused" not in pushed.stderr
    return checked


def test_aoi_demo_writes_only_files_its_schemas_accept(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    out = subprocess.run([str(AOI_BIN), "demo", "--dir", str(target)], capture_output=True,
                         text=True, timeout=120, env=env, check=False)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    checked = assert_written_files_fit_their_schemas(target, tmp_path)
    assert checked["task"] >= 5 and checked["profile"] >= 4 and checked["aoi"] == 1
    merged = [p for p in git(target, "grep", "-l", "merged:", "HEAD", "--", "tasks").split()]
    assert merged, "the demo merged no task: the check above proved less than it says"


def test_a_full_org_loop_writes_only_files_its_schemas_accept(tmp_path: Path) -> None:
    org = LoopOrg(tmp_path)
    org.employee("eng-1")
    org.employee("lead", role="lead")
    org.employee("qa", role="reviewer")
    org.employee("hr", role="hr")  # the template's HR, as a script that shortlists
    org.edit_config(lambda d: d.setdefault("evolution", {}).update(review_every=2))
    org.act("Build the app", {"summary": "split into A and B", "subtasks": [
        {"key": "a", "title": "Part A", "assignee": "eng-1", "reviewer": "qa"},
        {"key": "b", "title": "Part B", "assignee": "eng-1", "reviewer": "none",
         "depends_on": ["a"]},
    ], "lessons": ["split early"]})
    org.act("Part A", {"files": {"a.txt": "v1\n"}}, {"files": {"a.txt": "v2 with tests\n"}})
    org.act("Review: Part A", {"review": {"decision": "reject", "feedback": "add tests"}},
            {"review": {"decision": "accept", "feedback": "good"}})
    org.act("Part B", {"outcome": "blocked", "question": "Which port?",
                       "summary": "only the port is open"},
            {"files": {"b.txt": "port 8443\n"}, "summary": "served on 8443",
             "hire": {"talent": "qa-engineer", "as": "qa-2",
                      "reason": "nobody writes integration tests"}})
    org.act("Review: Build the app", {"review": {"decision": "accept", "feedback": "ok"}})
    org.act("Write the docs", {"files": {"docs.md": "# Docs\n"}, "lessons": ["short docs"]})
    org.commit()
    org.new("app", "Build the app", assignee="lead", reviewer="qa")
    org.new("docs", "Write the docs")
    org.run()
    (question,) = [t for t in org.humans() if t.question == "Which port?"]
    org.ok("answer", question.id, "8443")
    org.run()
    proposals = [t for t in org.humans() if t.bookkeeping.hire is not None]
    assert len(proposals) == 1, [(t.title, t.status.value, t.feedback_texts())
                                 for t in org.tasks().values()]
    proposal = proposals[0]
    org.ok("answer", proposal.id, "approve")
    org.run()

    tasks = org.tasks()
    # every stage was reached, so the schema check below covers what each one writes
    assert tasks["app"].status is Status.FINISHED and tasks["docs"].status is Status.FINISHED
    part_a = org.by_title("Part A")
    assert part_a.review_rounds == 1 and (part_a.result or {}).get("merged")
    assert any(t.kind is Kind.REVIEW for t in tasks.values())
    assert all(t.status is Status.FINISHED for t in org.humans())
    assert "qa-2" in os.listdir(org.root / "employees")
    listed = git(org.root, "ls-tree", "-r", "--name-only", "HEAD").split()
    assert any(p.startswith("retros/") for p in listed), listed
    assert any(p.startswith("reviews/") for p in listed), listed
    # a person can still edit a finished, merged task (its result.merged once refused it)
    editor = tmp_path / "editor.py"
    editor.write_text("import sys\nwith open(sys.argv[-1], 'a') as fh:\n"
                      "    fh.write('labels: [reread]\\n')\n")
    edited = subprocess.run([str(AOI_BIN), "-C", str(org.root), "task", "edit", part_a.id],
                            capture_output=True, text=True, timeout=60, check=False,
                            env={**os.environ, "EDITOR": f"{sys.executable} {editor}",
                                 "VISUAL": ""})
    assert edited.returncode == 0 and "committed" in edited.stdout, edited.stderr
    assert org.task(part_a.id).labels == ("reread",)
    checked = assert_written_files_fit_their_schemas(org.root, tmp_path)
    assert checked["task"] == len(tasks) and checked["talent"] >= 5
    org.assert_story()
