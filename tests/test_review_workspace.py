"""An org whose agents work in a separate repository (`workspace: {repo: ...}` in aoi.yaml):
the task branches live there, and `aoi review ID` shows them from there."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from kit import git
from orgkit import TmpOrg

from aoi_git.domain.model import Status

pytestmark = pytest.mark.timeout(90)

AGENT = """\
import json, os, pathlib
pathlib.Path("feature.txt").write_text("made in the work repository\\n")
pathlib.Path(os.environ["AOI_RESULT_FILE"]).write_text(
    json.dumps({"outcome": "completed", "summary": "wrote feature.txt"}))
"""


def work_repo(path: Path) -> Path:
    path.mkdir()
    git(path, "init", "-q", "-b", "trunk")
    (path / "README.md").write_text("the product\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "the product's first commit")
    return path


def org_working_in(tmp_path: Path, repo_setting: str) -> TmpOrg:
    org = TmpOrg(tmp_path)
    (org.root / "agents" / "write.py").write_text(AGENT)
    profile = {"id": "eng-1", "name": "Eng-1", "role": "engineer", "reports_to": "ceo",
               "status": "active",
               "backend": {"kind": "script",
                           "command": [sys.executable, str(org.root / "agents" / "write.py")]},
               "capacity": {"concurrency": 1, "timeout_s": 60}}
    (org.root / "employees" / "eng-1").mkdir(parents=True, exist_ok=True)
    (org.root / "employees" / "eng-1" / "profile.yaml").write_text(
        yaml.safe_dump(profile, sort_keys=False))
    org.edit_config(lambda d: d.update(workspace={"repo": repo_setting}))
    org.commit()
    return org


@pytest.mark.parametrize("relative", [True, False])
def test_review_shows_the_diff_of_a_branch_in_the_separate_workspace_repo(
    tmp_path: Path, relative: bool
) -> None:
    work = work_repo(tmp_path / "work")
    org = org_working_in(tmp_path, "../work" if relative else str(work))
    org.new("job-1", "Write the feature", reviewer="ceo")
    org.run()
    assert org.task("job-1").status is Status.COMPLETED  # waits for the CEO's review
    # the agent's branch is in the work repository, not in the org's
    assert "feature.txt" in git(work, "diff", "--name-only", "trunk...aoi/job-1")
    assert git(org.root, "branch", "--list", "aoi/job-1") == ""

    shown = org.aoi("review", "job-1")
    assert shown.returncode == 0, shown.stderr
    assert "diff --git a/feature.txt b/feature.txt" in shown.stdout
    assert "+made in the work repository" in shown.stdout
    assert "(no branch changes)" not in shown.stdout
    info = json.loads(org.aoi("review", "job-1", "--json").stdout)
    assert "+made in the work repository" in info["diff"]


def test_a_workspace_repo_that_does_not_exist_is_a_one_line_error(tmp_path: Path) -> None:
    org = org_working_in(tmp_path, "../nowhere")
    org.new("job-1", "Write the feature", reviewer="ceo")
    shown = org.aoi("review", "job-1")
    assert shown.returncode == 1
    assert "Traceback" not in shown.stderr
    (line,) = shown.stderr.strip().splitlines()
    assert "nowhere" in line and "workspace" in line
