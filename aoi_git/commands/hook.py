from __future__ import annotations

import sys
from pathlib import Path

import click

from aoi_git.errors import ValidationFailed
from aoi_git.org.commit_hooks import BLOCKED, TRAILERS_SKIPPED, add_trailers, pre_commit_problems
from aoi_git.store.git import git

# The installed hooks run `python -m aoi_git.hook_main` (no CLI to import); these commands
# do the same for a hook installed by an older aoi.


@click.group(hidden=True)
def hook() -> None:
    """Entry points for the git hooks aoi installs (not for direct use).

    \b
    Example:
      aoi hook pre-commit
    """


@hook.command("pre-commit")
def pre_commit() -> None:
    """Validate the staged org files; block the commit on any problem.

    \b
    Example (.git/hooks/pre-commit runs it as `python -m aoi_git.hook_main pre-commit`):
      python -m aoi_git hook pre-commit
    """
    problems = pre_commit_problems(Path(git("rev-parse", "--show-toplevel", cwd=".").strip()))
    if problems:
        raise ValidationFailed([*problems, BLOCKED])


@hook.command("commit-msg")
@click.argument("message_file", type=click.Path(dir_okay=False, path_type=Path))
def commit_msg(message_file: Path) -> None:
    """Add aoi trailers to a person's commit of task files (never blocks the commit).

    For each staged task file: `Aoi-Task`, and `Aoi-Transition: old->new` when its status
    changes (`new->...` for a new task); then `Aoi-Actor: human:<user.name>`. A message that
    already has an `Aoi-Actor` trailer is left alone.

    \b
    Example (.git/hooks/commit-msg runs it as `python -m aoi_git.hook_main commit-msg`):
      python -m aoi_git hook commit-msg .git/COMMIT_EDITMSG
    """
    try:
        add_trailers(Path(git("rev-parse", "--show-toplevel", cwd=".").strip()), message_file)
    except Exception as exc:  # a trailer is a nicety: never block a person's commit
        print(f"{TRAILERS_SKIPPED}: {exc}", file=sys.stderr)


@hook.command("pre-receive")
def pre_receive() -> None:
    """Validate every pushed commit that changes org files, and check who signed it
    (server side).

    Each new commit that carries `Aoi-*` trailers, changes org files or changes `keys/`
    must be signed as `aoi_git.org.signatures` says, against the allowed signers
    of its parent; the org files of each new commit on a branch's first-parent line are
    validated as `aoi validate` does (see `aoi_git.org.push_check`).

    \b
    Example (hooks/pre-receive runs it as `python -m aoi_git.hook_main pre-receive`,
    old/new/ref lines on stdin):
      python -m aoi_git hook pre-receive
    """
    from aoi_git.org.push_check import REFUSED, check_push

    git_dir = Path(git("rev-parse", "--git-dir", cwd=".").strip()).resolve()
    problems = check_push(git_dir, sys.stdin.read().splitlines())
    if problems:
        raise ValidationFailed([*problems, REFUSED])
