"""The one git path (`aoi_git.store.git`): what its errors say, how the stream ends."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest
from kit import git as run_git

from aoi_git.errors import AoiError
from aoi_git.evolution import stats
from aoi_git.store import history
from aoi_git.store.git import NOT_STARTED, GitError, git, git_stream


def repo_with_commits(path: Path, n: int) -> Path:
    path.mkdir()
    run_git(path, "init", "-q", "-b", "main")
    for i in range(n):
        run_git(path, "commit", "-q", "--allow-empty", "-m", f"commit {i}")
    return path


def test_a_failing_command_names_itself_its_status_and_stderr(tmp_path: Path) -> None:
    repo = repo_with_commits(tmp_path / "r", 1)
    with pytest.raises(GitError) as caught:
        git("rev-parse", "--verify", "no-such-branch", cwd=repo)
    err = caught.value
    assert isinstance(err, AoiError)
    assert err.cmd == ["git", "rev-parse", "--verify", "no-such-branch"]
    assert err.returncode == 128 and "fatal" in err.stderr
    assert str(err) == ("`git rev-parse --verify no-such-branch` exited 128: "
                        "fatal: Needed a single revision")
    assert git("rev-parse", "--verify", "no-such-branch", cwd=repo, check=False) == ""


def test_git_that_cannot_start_is_a_git_error_too(tmp_path: Path) -> None:
    with pytest.raises(GitError) as caught:
        git("status", cwd=tmp_path / "missing")
    assert caught.value.returncode == NOT_STARTED
    assert "cannot run git" in str(caught.value)


def test_the_stream_yields_each_item_and_raises_a_failure_at_its_end(tmp_path: Path) -> None:
    repo = repo_with_commits(tmp_path / "r", 3)
    items = list(git_stream("log", "--reverse", "--format=%s%x1e", "main", cwd=repo))
    assert [i.strip() for i in items] == ["commit 0", "commit 1", "commit 2"]
    with pytest.raises(GitError) as caught:
        list(git_stream("log", "--format=%s%x1e", "no-such-branch", cwd=repo))
    assert caught.value.returncode == 128
    assert "fatal: ambiguous argument 'no-such-branch'" in str(caught.value)


def test_a_reader_that_stops_early_ends_git_and_gets_no_error(tmp_path: Path) -> None:
    repo = repo_with_commits(tmp_path / "r", 50)
    stream = git_stream("log", "--format=%s%x1e", "main", cwd=repo)
    assert next(stream).strip() == "commit 49"
    stream.close()  # raises nothing
    assert not [c for c in psutil.Process().children() if c.name() == "git"]


def test_the_history_readers_read_a_branch_without_commits_as_empty(tmp_path: Path) -> None:
    repo = tmp_path / "empty"
    repo.mkdir()
    run_git(repo, "init", "-q", "-b", "main")
    assert list(history.records(repo)) == []
    assert stats.compute(repo).commits == 0


def test_stats_of_a_missing_revision_is_an_error_not_nothing(tmp_path: Path) -> None:
    repo = repo_with_commits(tmp_path / "r", 1)
    with pytest.raises(GitError, match="no-such-branch"):
        stats.compute(repo, rev="no-such-branch")
    with pytest.raises(GitError, match="no-such-branch"):
        list(history.records(repo, rev="no-such-branch"))
