from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from aoi_git.domain.model import Actor, ActorKind
from aoi_git.errors import ValidationFailed
from aoi_git.org.validate import is_org_file
from aoi_git.store import index_journal
from aoi_git.store.git import git
from aoi_git.store.trailers import parse_trailers

if TYPE_CHECKING:
    from aoi_git.store.org_store import Store

# The store (pygit2) and the org loader are imported where they are needed: a person's
# commit of files outside the org runs both commit hooks and should not wait for them.

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
    Example (what .git/hooks/pre-commit runs):
      python -m aoi_git hook pre-commit
    """
    root = Path(git("rev-parse", "--show-toplevel", cwd=".").strip())
    # The staged blob ids come from git itself: `git commit -a` / `git commit PATH` stage
    # into a temporary index (GIT_INDEX_FILE), which libgit2 would not read.
    raw = git("diff", "--cached", "--raw", "-z", "--no-renames", "--no-abbrev", cwd=root)
    items = raw.split("\0")
    staged_org = [(meta, p) for meta, p in zip(items[0::2], items[1::2], strict=False)
                  if p and is_org_file(p)]
    if not staged_org:
        return
    from aoi_git.org.organisation import load_org
    from aoi_git.org.validate import Validator
    from aoi_git.store.index_lag import lagging_entry
    from aoi_git.store.objects import read_blob
    from aoi_git.store.org_store import Store

    store = Store(root)
    files: dict[str, bytes | None] = {}
    passed = index_journal.passed_blobs(index_journal.journal_path(root))
    for meta, p in staged_org:
        head_id, new_id = meta.split()[2:4]
        staged = None if new_id == ZERO else new_id
        head = None if head_id == ZERO else head_id
        if index_journal.stale_entry(passed, p, staged, head) or lagging_entry(
                store, p, staged, head):
            _move_entry_forward(root, p, head)  # the daemon's update, not the person's
            continue
        files[p] = None if staged is None else read_blob(store, staged)
    if not files:
        return
    name = git("config", "user.name", cwd=root, check=False).strip() or "unknown"
    org = load_org(store)
    store.save_cache()
    email = git("config", "user.email", cwd=root, check=False).strip()
    problems = Validator.for_org(org).check(files, Actor(ActorKind.HUMAN, name), email)
    if problems:
        raise ValidationFailed([*problems, "aoi: commit blocked; fix the files above"])


def _move_entry_forward(root: Path, path: str, head_id: str | None) -> None:
    """Stage HEAD's version of `path` (its absence: None), whose index entry only lags
    behind the daemon's commit, in the index this commit is made from (GIT_INDEX_FILE: git
    reads it again after this hook, so the commit keeps HEAD's). The entry may be missing
    (a file the daemon created), hence `--add`."""
    if head_id is None:
        git("update-index", "--force-remove", "--", path, cwd=root)
    else:
        git("update-index", "--add", "--cacheinfo", f"100644,{head_id},{path}", cwd=root)


@hook.command("commit-msg")
@click.argument("message_file", type=click.Path(dir_okay=False, path_type=Path))
def commit_msg(message_file: Path) -> None:
    """Add aoi trailers to a person's commit of task files (never blocks the commit).

    For each staged task file: `Aoi-Task`, and `Aoi-Transition: old->new` when its status
    changes (`new->...` for a new task); then `Aoi-Actor: human:<user.name>`. A message that
    already has an `Aoi-Actor` trailer is left alone.

    \b
    Example (what .git/hooks/commit-msg runs):
      python -m aoi_git hook commit-msg .git/COMMIT_EDITMSG
    """
    from aoi_git.org.validate import full_task_problems, is_task_path, parse_task_bytes
    from aoi_git.store.trailers import Transition

    try:
        message = message_file.read_text(encoding="utf-8")
        if any(k == "Aoi-Actor" for k, _ in parse_trailers(message)):
            return
        root = Path(git("rev-parse", "--show-toplevel", cwd=".").strip())
        if git("rev-parse", "-q", "--verify", "MERGE_HEAD", cwd=root, check=False).strip():
            return  # a merge brings others' commits, which carry their own trailers
        raw = git("diff", "--cached", "--raw", "-z", "--no-renames", "--no-abbrev", cwd=root)
        items = raw.split("\0")
        staged_tasks = [(meta, p) for meta, p in zip(items[0::2], items[1::2], strict=False)
                        if p and is_task_path(p)]
        if not staged_tasks:
            return
        from aoi_git.store.objects import read_blob
        from aoi_git.store.org_store import Store

        store = Store(root)
        head = store.head()
        found: list[Transition] = []
        for meta, p in staged_tasks:
            new_id = meta.split()[3]
            data = None if new_id == ZERO else read_blob(store, new_id)
            if data is None:
                continue
            task, _ = full_task_problems(data, p)
            if task is None:
                continue
            before = head.read(p)
            old = parse_task_bytes(before, p) if before is not None else None
            old_status = old.status.value if old is not None and not isinstance(
                old, tuple) else None
            found.append(Transition(task.id, old_status, task.status.value, task.title))
        if not found:
            return
        name = git("config", "user.name", cwd=root, check=False).strip() or "unknown"
        lines = []
        for t in found:
            lines.append(f"Aoi-Task: {t.task_id}")
            if t.old != t.new:
                lines.append(f"Aoi-Transition: {t.label}")
        lines.append(f"Aoi-Actor: {Actor(ActorKind.HUMAN, name)}")
        # before git's comment lines (and a `commit -v` scissors line with the diff below)
        text = message.splitlines(keepends=True)
        cut = next((i for i, ln in enumerate(text) if ln.startswith("#")), len(text))
        body, rest = "".join(text[:cut]).rstrip("\n"), "".join(text[cut:])
        message_file.write_text(body + "\n\n" + "\n".join(lines) + "\n"
                                + ("\n" + rest if rest else ""), encoding="utf-8")
    except Exception as exc:  # a trailer is a nicety: never block a person's commit
        print(f"aoi: commit-msg hook skipped: {exc}", file=sys.stderr)


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
                     for p in Validator.for_org(org).check(files, actor, commit.author_email)]
    return problems
