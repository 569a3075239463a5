from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from aoi_git.domain.model import Actor, ActorKind
from aoi_git.domain.org_paths import is_org_file
from aoi_git.errors import ValidationFailed
from aoi_git.org.commit_hooks import BLOCKED, TRAILERS_SKIPPED, add_trailers, pre_commit_problems
from aoi_git.store.git import git
from aoi_git.store.trailers import moves, parse_trailers

if TYPE_CHECKING:
    from aoi_git.store.org_store import Store

# The installed hooks run `python -m aoi_git.hook_main` (no CLI to import); these commands
# do the same for a hook installed by an older aoi.

ZERO = "0" * 40


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
    validated as `aoi validate` does.

    \b
    Example (what hooks/pre-receive runs, old/new/ref lines on stdin):
      python -m aoi_git hook pre-receive
    """
    from aoi_git.store.objects import add_object_dir
    from aoi_git.store.org_store import Store

    store = Store(Path(git("rev-parse", "--git-dir", cwd=".").strip()).resolve())
    # Pushed objects wait in a quarantine folder that git, but not libgit2, reads.
    for var in ("GIT_QUARANTINE_PATH", "GIT_OBJECT_DIRECTORY"):
        if os.environ.get(var):
            add_object_dir(store, os.environ[var])
    first_push = not git("for-each-ref", "--count=1", cwd=store.root).strip()
    problems: list[str] = []
    checked: set[str] = set()
    for line in sys.stdin.read().splitlines():
        old, new, ref = line.split()
        if new == ZERO or not ref.startswith("refs/heads/"):
            continue
        line_of = set(git("rev-list", "--first-parent", new, "--not", "--all",
                          cwd=store.root).split())
        for rev in git("rev-list", "--reverse", "--topo-order", new, "--not", "--all",
                       cwd=store.root).split():
            if rev not in checked:
                checked.add(rev)
                problems += _check_commit(store, rev, rev in line_of, first_push)
    if problems:
        raise ValidationFailed([*problems, "aoi: push refused; fix the commits above"])


def _check_commit(store: Store, rev: str, validate: bool, first_push: bool) -> list[str]:
    from aoi_git.org.organisation import load_org
    from aoi_git.org.signatures import SignedCommit, signature_problem
    from aoi_git.org.validate import Validator
    from aoi_git.store import signing, sshsig
    from aoi_git.store.objects import commit_change

    commit = commit_change(store, rev)
    files = {path: commit.after.read(path) for path in commit.paths if is_org_file(path)}
    keys = any(p.split("/", 1)[0] == "keys" for p in commit.paths)
    trailers = dict(parse_trailers(commit.message))
    if not files and not keys and not any(k.startswith("Aoi-") for k in trailers):
        return []  # work product: nobody's state, no one's word
    try:
        actor = Actor.parse(trailers["Aoi-Actor"]) if "Aoi-Actor" in trailers else Actor(
            ActorKind.HUMAN, commit.author_name)
    except ValueError:
        return [f"{rev[:10]} Aoi-Actor {trailers['Aoi-Actor']!r} is not agent:, human: or "
                "daemon:<name>"]
    if commit.before.commit is None and not first_push:
        return [f"{rev[:10]} is a new root commit: an organisation's history has one root, "
                "its founding commit"]
    org = load_org(store, commit.before)
    # who may sign: as of the parent; the org's first list of keys trusts itself
    allowed = (signing.allowed_signers(commit.before)
               or signing.allowed_signers(commit.after))
    signer = signing.commit_signer(store.repo, rev, allowed)
    problems: list[str] = []
    why = signature_problem(SignedCommit(actor, commit.author_email, signer, keys),
                            org.config.require_person_signatures)
    if why is not None:
        problems.append(f"{rev[:10]} {why}")
    listed = commit.after.read(signing.ALLOWED_SIGNERS) if keys else None
    if listed is not None:
        problems += [f"{rev[:10]} {signing.ALLOWED_SIGNERS}:{n}: {why}" for n, why in
                     sshsig.parse_allowed_signers(listed.decode("utf-8", "replace"))[1]]
    if validate and files:
        problems += [f"{rev[:10]} {p}"
                     for p in Validator.for_org(org).check(files, actor, commit.author_email,
                                                           moves(commit.message))]
    return problems
