"""A hostile script agent whose branch tries to damage the org: every attempt is refused
before any reviewer runs, with feedback naming the path, and nothing of it is merged.

Real daemon, real agent processes, real git; the agent commits on its own branch with git
(a rename, a gitlink) or leaves files for the daemon to commit. Pure cases of the policy
and of the change listing are at the end.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pygit2
import pytest
from kit import git
from test_org_loop import LoopOrg

from aoi_git.domain.model import Status
from aoi_git.org import branch_policy
from aoi_git.store.branch_changes import MODE_GITLINK, MODE_SYMLINK, PathChange, branch_changes

pytestmark = pytest.mark.timeout(120)

GIT = "git -c user.name=agent -c user.email=agent@aoi.invalid"

# what the agent does in its worktree -> the path its refusal must name
DAMAGE: dict[str, tuple[list[str], dict[str, str], str]] = {
    "rename aoi.yaml away": ([f"git mv aoi.yaml elsewhere.yaml && {GIT} commit -nqm away"], {},
                             "aoi.yaml"),
    "move hr's profile out": ([f"git mv --sparse employees/hr/profile.yaml hr.yaml && "
                               f"{GIT} commit -nqm out"], {}, "employees/hr/profile.yaml"),
    "rewrite .gitattributes": ([], {".gitattributes": "* -merge\n"}, ".gitattributes"),
    "ignore tasks/": (["printf 'tasks/\\n' >> .gitignore"], {}, ".gitignore"),
    "symlink to /etc/passwd": (["ln -s /etc/passwd passwd"], {}, "passwd"),
    "symlink to the main .git/config": (["ln -s ../../../.git/config cfg"], {}, "cfg"),
    # (a repository of its own: not with the sandbox's object store of the worktree's repo)
    "a gitlink": (["unset GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES; "
                   f"git init -q vendor/x && {GIT} -C vendor/x commit -q --allow-empty -m x"
                   " && git add --sparse vendor/x"], {}, "vendor/x"),
    "a workflow": ([], {".github/workflows/x.yml": "on: push\n"}, ".github/workflows/x.yml"),
    "a protected glob": ([], {"legal/terms.md": "mine now\n"}, "legal/terms.md"),
    **{f"a file under {folder}/": ([], {f"{folder}/planted.yaml": "x: 1\n"},
                                   f"{folder}/planted.yaml")
       for folder in ("tasks", "employees", "talents", "sops", "retros", "reviews", "schemas")},
}


@pytest.fixture(name="org")
def hostile_org(tmp_path: Path) -> LoopOrg:
    o = LoopOrg(tmp_path)
    o.employee("eng-1")
    o.employee("qa", role="reviewer")
    return o


@pytest.mark.parametrize("what", sorted(DAMAGE))
def test_a_damaging_branch_is_refused_before_review(org: LoopOrg, what: str) -> None:
    sh, files, named = DAMAGE[what]
    org.config(max_review_rounds=1)  # refused once: then a person decides, no rework loop
    org.edit_config(lambda d: d.setdefault("workspace", {}).update(protected=["legal/*"]))
    (org.root / "legal").mkdir()
    (org.root / "legal" / "terms.md").write_text("the terms\n")
    org.act("Work", {"files": {"work.txt": "work\n", **files}, "sh": sh})
    org.act("Review: Work", {"review": {"decision": "accept", "feedback": "ok"}})
    org.commit()
    base_before = git(org.root, "rev-parse", "main:").strip()
    org.new("wk", "Work", reviewer="qa")
    org.run()
    t = org.task("wk")
    assert t.status is Status.PENDING and t.review_rounds == 1
    (reason,) = [x for x in t.feedback_texts() if x.startswith("refused: your branch")]
    assert named in reason, reason
    assert org.runs("Review: Work") == []  # no reviewer ever saw it
    assert org.in_base("work.txt") is None  # nothing of the branch was merged
    changed = git(org.root, "diff", "--name-only", base_before, "main", "--", ".",
                  ":!tasks", ":!employees/*/journal*").split()
    assert changed == [], changed
    org.assert_story()


def test_a_refused_rename_names_both_sides_when_both_are_protected(org: LoopOrg) -> None:
    org.config(max_review_rounds=1)
    org.act("Move", {"sh": [f"git mv --sparse employees/hr/profile.yaml tasks/hr.yaml && "
                            f"{GIT} commit -nqm move"]})
    org.commit()
    org.new("mv", "Move", reviewer="qa")
    org.run()
    (reason,) = [x for x in org.task("mv").feedback_texts() if x.startswith("refused")]
    assert "employees/hr/profile.yaml" in reason and "tasks/hr.yaml" in reason


def test_a_person_reviewer_is_never_asked_about_a_refused_branch(org: LoopOrg) -> None:
    org.config(max_review_rounds=1)
    org.act("Work", {"files": {"work.txt": "work\n", "tasks/planted.yaml": "x: 1\n"}})
    org.commit()
    org.new("wk", "Work", reviewer="ceo")
    org.run()
    t = org.task("wk")
    assert t.status is Status.PENDING and t.review_rounds == 1
    (reason,) = [x for x in t.feedback_texts() if x.startswith("refused: your branch")]
    assert "tasks/planted.yaml" in reason
    assert org.transitions("wk")[-2:] == ["processing->completed", "completed->pending"]
    assert "wk" not in org.ok("review").split()
    assert org.in_base("work.txt") is None and org.in_base("tasks/planted.yaml") is None
    org.assert_story()


def test_without_a_reviewer_the_merge_refuses_the_same_paths(org: LoopOrg) -> None:
    org.config(max_review_rounds=1)
    org.act("Link", {"sh": ["ln -s /etc/passwd passwd"], "files": {"ok.txt": "ok\n"}})
    org.commit()
    org.new("ln", "Link", reviewer="none")
    org.run()
    t = org.task("ln")
    (reason,) = [x for x in t.feedback_texts() if x.startswith("refused")]
    assert "passwd (a symlink" in reason
    assert t.status is Status.PENDING and org.in_base("ok.txt") is None


# ---------------------------------------------------------------- the pure parts

def _refused(*changes: PathChange, org_state: bool = True,
             protected: tuple[str, ...] = ()) -> list[str]:
    return [r.path for r in branch_policy.refusals(changes, org_state=org_state,
                                                   protected=protected)]


def test_policy_refuses_each_side_and_kind() -> None:
    f = 0o100644
    assert _refused(PathChange("aoi.yaml", None, f, 0), PathChange(None, "x.yaml", 0, f)) == \
        ["aoi.yaml"]
    assert _refused(PathChange(None, "src/a", 0, MODE_SYMLINK)) == ["src/a"]
    assert _refused(PathChange("src/a", None, MODE_SYMLINK, 0)) == ["src/a"]  # removing one
    assert _refused(PathChange(None, "lib", 0, MODE_GITLINK)) == ["lib"]
    assert _refused(PathChange(None, "Tasks/x.yaml", 0, f), PathChange(None, "AOI.yaml", 0, f),
                    PathChange(None, "src/.gitattributes", 0, f)) == \
        ["Tasks/x.yaml", "AOI.yaml", "src/.gitattributes"]
    # the work product is free; `tasks.md` or `docs/aoi.yaml` are not the org's files
    assert _refused(PathChange(None, "tasks.md", 0, f), PathChange(None, "docs/aoi.yaml", 0, f),
                    PathChange("src/m.py", "src/m.py", f, 0o100755)) == []
    # a separate workspace repository: its own tasks/ is work product; git's files are not
    assert _refused(PathChange(None, "tasks/x", 0, f), PathChange(None, ".gitignore", 0, f),
                    org_state=False) == [".gitignore"]
    assert _refused(PathChange(None, "legal/a/b.md", 0, f), PathChange(None, "dist/x", 0, f),
                    PathChange(None, "distx", 0, f), protected=("legal/*", "dist/")) == \
        ["legal/a/b.md", "dist/x"]


def test_feedback_names_every_path_up_to_a_limit() -> None:
    refused = [branch_policy.Refusal(f"tasks/{i}.yaml", "org state") for i in range(25)]
    text = branch_policy.feedback(refused)
    assert "tasks/0.yaml" in text and "tasks/19.yaml" in text and "and 5 more" in text


def test_branch_changes_lists_both_sides_of_a_rename_with_modes(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "aoi.yaml").write_text("name: x\n" * 20)
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-qm", "base")
    git(repo, "config", "diff.renames", "true")  # the repository's config does not apply
    git(repo, "checkout", "-q", "-b", "br")
    git(repo, "mv", "aoi.yaml", "elsewhere.yaml")
    (repo / "link").symlink_to("/etc/passwd")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-qm", "br")
    got = branch_changes(pygit2.Repository(str(repo)), "main", "br")
    assert sorted(got, key=lambda c: c.paths) == [
        PathChange("aoi.yaml", None, 0o100644, 0),
        PathChange(None, "elsewhere.yaml", 0, 0o100644),
        PathChange(None, "link", 0, MODE_SYMLINK),
    ]
