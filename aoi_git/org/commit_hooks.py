"""What aoi's git hooks do in a person's `git commit`: judge what they staged, add trailers.

Each runs in every commit of a person, also while the daemon commits many times a second,
so each first looks at what is staged with git alone and imports the store and the
validator only when an org file of the person's is in it:

* `pre_commit_problems`: an entry that only lags behind the daemon's commits (any path
  the daemon's journal names, see `aoi_git.store.index_journal`, or an org file that
  `aoi_git.store.index_lag` finds lagging) is put back at HEAD's version, all in one
  `git update-index`; the rest of the staged org files are validated;
* `add_trailers`: the `Aoi-*` trailers of the staged task files.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from aoi_git.domain.org_paths import is_org_file, is_task_path
from aoi_git.store import index_journal
from aoi_git.store.git import git
from aoi_git.store.staged import Staged, stage_head_versions, staged_changes

if TYPE_CHECKING:
    from aoi_git.store.org_store import Store


BLOCKED = "aoi: commit blocked; fix the files above"
TRAILERS_SKIPPED = "aoi: commit-msg hook skipped"


def pre_commit_problems(root: Path) -> list[str]:
    """Stage HEAD's version of the entries that lag behind the daemon; the problems of the
    org files the person staged (empty: the commit may go on)."""
    changes = staged_changes(root)
    if not changes:
        return []
    passed = index_journal.passed_blobs(index_journal.journal_path(root))
    # (a path the daemon created lags with no entry while its file is there; with the file
    # gone too it is the person's `git rm`, which is theirs to commit)
    lagging = [c for c in changes
               if index_journal.stale_entry(passed, c.path, c.staged, c.head)
               and (c.staged is not None or (root / c.path).exists())]
    theirs = [c for c in changes if c not in lagging and is_org_file(c.path)]
    if not theirs:
        stage_head_versions(root, lagging)
        return []
    from aoi_git.store.index_lag import lagging_entry
    from aoi_git.store.org_store import Store

    store = Store(root)
    lagging += [c for c in theirs if lagging_entry(store, c.path, c.staged, c.head)]
    theirs = [c for c in theirs if c not in lagging]
    stage_head_versions(root, lagging)
    if not theirs:
        return []
    return _problems(root, store, theirs)


def _problems(root: Path, store: Store, theirs: list[Staged]) -> list[str]:
    from aoi_git.domain.people import person_actor
    from aoi_git.org.organisation import load_org
    from aoi_git.org.validate import Validator
    from aoi_git.store.objects import read_blob

    files = {c.path: None if c.staged is None else read_blob(store, c.staged) for c in theirs}
    name = git("config", "user.name", cwd=root, check=False).strip()
    org = load_org(store)
    store.save_cache()
    email = git("config", "user.email", cwd=root, check=False).strip()
    person = person_actor(name, email, org.config.humans)
    return Validator.for_org(org).check(files, person, email)


def add_trailers(root: Path, message_file: Path) -> None:
    """Add `Aoi-Task` / `Aoi-Transition` / `Aoi-Actor` to the message of a commit of task
    files (see `aoi hook commit-msg`); leaves a message with an `Aoi-Actor` alone."""
    staged_tasks = [c for c in staged_changes(root) if is_task_path(c.path)]
    if not staged_tasks:
        return
    from aoi_git.store.trailers import parse_trailers

    message = message_file.read_text(encoding="utf-8")
    if any(k == "Aoi-Actor" for k, _ in parse_trailers(message)):
        return
    if git("rev-parse", "-q", "--verify", "MERGE_HEAD", cwd=root, check=False).strip():
        return  # a merge brings others' commits, which carry their own trailers
    from aoi_git.org.people import acting_person
    from aoi_git.org.validate import full_task_problems, parse_task_bytes
    from aoi_git.store.objects import read_blob
    from aoi_git.store.org_store import Store
    from aoi_git.store.trailers import Transition

    store = Store(root)
    head = store.head()
    found: list[Transition] = []
    for c in staged_tasks:
        data = None if c.staged is None else read_blob(store, c.staged)
        if data is None:
            continue
        task, _ = full_task_problems(data, c.path)
        if task is None:
            continue
        before = head.read(c.path)
        old = parse_task_bytes(before, c.path) if before is not None else None
        old_status = old.status.value if old is not None and not isinstance(
            old, tuple) else None
        found.append(Transition(task.id, old_status, task.status.value, task.title))
    if not found:
        return
    name = git("config", "user.name", cwd=root, check=False).strip()
    email = git("config", "user.email", cwd=root, check=False).strip()
    lines = []
    for t in found:
        lines.append(f"Aoi-Task: {t.task_id}")
        if t.old != t.new:
            lines.append(f"Aoi-Transition: {t.label}")
    lines.append(f"Aoi-Actor: {acting_person(head, name, email)}")
    # before git's comment lines (and a `commit -v` scissors line with the diff below)
    text = message.splitlines(keepends=True)
    cut = next((i for i, ln in enumerate(text) if ln.startswith("#")), len(text))
    body, rest = "".join(text[:cut]).rstrip("\n"), "".join(text[cut:])
    message_file.write_text(body + "\n\n" + "\n".join(lines) + "\n"
                            + ("\n" + rest if rest else ""), encoding="utf-8")
