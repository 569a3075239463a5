"""What a server's `pre-receive` hook checks of a push: every new commit, in one pass.

Each new commit that carries `Aoi-*` trailers, changes org files or changes `keys/` must
be signed as `aoi_git.org.signatures` says, against the allowed signers of its parent;
the org files each new commit on a branch's first-parent line changes are validated as
`aoi validate` does (its transitions, references, authority) against the org as of its
parent.

A host pushes many commits at once (a batch of claims, a tick's results), so the work is
per push, not per commit: the org is loaded once, at the parent of the first commit of
the line, then carried along commit by commit with only the task files each commit
changes (a commit that changes `aoi.yaml` or a profile makes it load again); allowed
signers and configs are read once per blob. Nothing here reads a schema unless a pushed
commit changes a file that has one besides a task.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from aoi_git.domain.model import BAD_VALUE, Actor, ActorKind, Employee, OrgConfig, Task
from aoi_git.domain.org_paths import is_org_file, is_task_path
from aoi_git.store import signing, sshsig
from aoi_git.store.head_view import HeadView
from aoi_git.store.pushed import PushedCommit, PushedHistory
from aoi_git.store.task_cache import TaskCache
from aoi_git.store.trailers import parse_trailers

ZERO = "0" * 40
REFUSED = "aoi: push refused; fix the commits above"
KEYS = "keys"


@dataclass
class _Line:
    """The org as of one commit of the line being checked: what the validator needs."""

    at: str
    tasks: dict[str, Task]
    paths: dict[str, str]
    employees: dict[str, Employee]
    config: OrgConfig


class PushCheck:
    """The checks of one push to `history`'s repository (its refs not yet moved)."""

    def __init__(self, history: PushedHistory, tasks: TaskCache) -> None:
        self.history = history
        self.task_cache = tasks
        self.first_push = history.first_push
        self._signers: dict[str | None, list[sshsig.AllowedSigner]] = {}
        self._configs: dict[str | None, OrgConfig] = {}
        self._line: _Line | None = None
        self._checked: set[str] = set()

    # ---------------------------------------------------------------- the push
    def problems(self, lines: Iterable[str]) -> list[str]:
        """Every problem of the push whose `old new ref` lines git gave the hook."""
        out: list[str] = []
        for line in lines:
            parts = line.split()
            if len(parts) != 3:
                continue
            _, new, ref = parts
            if new == ZERO or not ref.startswith("refs/heads/"):
                continue
            for commit in self.history.new_commits(new):
                if commit.id not in self._checked:
                    self._checked.add(commit.id)
                    out += self.check(commit)
        return out

    # ------------------------------------------------------------- one commit
    def check(self, commit: PushedCommit) -> list[str]:
        rev = commit.id[:10]
        paths, before, after = commit.paths, commit.before, commit.after
        org_paths = [p for p in paths if is_org_file(p)]
        keys = any(p.split("/", 1)[0] == KEYS for p in paths)
        message = commit.message
        trailers = dict(parse_trailers(message))
        if not org_paths and not keys and not any(k.startswith("Aoi-") for k in trailers):
            return []  # work product: nobody's state, no one's word
        author_email = commit.author_email
        try:
            actor = Actor.parse(trailers["Aoi-Actor"]) if "Aoi-Actor" in trailers else Actor(
                ActorKind.HUMAN, commit.author_name)
        except ValueError:
            return [f"{rev} Aoi-Actor {trailers['Aoi-Actor']!r} is not agent:, human: or "
                    "daemon:<name>"]
        if commit.is_root and not self.first_push:
            return [f"{rev} is a new root commit: an organisation's history has one root, "
                    "its founding commit"]
        from aoi_git.org.signatures import SignedCommit, signature_problem

        problems: list[str] = []
        # who may sign: as of the parent; the org's first list of keys trusts itself
        allowed = self._allowed(before) or self._allowed(after)
        signer = signing.signer_of(commit.signature, commit.payload, allowed)
        why = signature_problem(SignedCommit(actor, author_email, signer, keys),
                                self._config(before).require_person_signatures)
        if why is not None:
            problems.append(f"{rev} {why}")
        listed = after.read(signing.ALLOWED_SIGNERS) if keys else None
        if listed is not None:
            problems += [f"{rev} {signing.ALLOWED_SIGNERS}:{n}: {why}" for n, why in
                         sshsig.parse_allowed_signers(listed.decode("utf-8", "replace"))[1]]
        if commit.on_line and org_paths:
            files = {p: after.read(p) for p in org_paths}
            found = self._validate(before, commit, files, actor, author_email)
            problems += [f"{rev} {p}" for p in found]
        return problems

    def _allowed(self, view: HeadView) -> list[sshsig.AllowedSigner]:
        blob = view.blob_id(signing.ALLOWED_SIGNERS)
        if blob not in self._signers:
            self._signers[blob] = signing.allowed_signers(view) if blob else []
        return self._signers[blob]

    def _config(self, view: HeadView) -> OrgConfig:
        blob = view.blob_id("aoi.yaml")
        if blob not in self._configs:
            self._configs[blob] = _config_at(view)
        return self._configs[blob]

    # -------------------------------------------------------------- validation
    def _validate(self, before: HeadView, commit: PushedCommit,
                  files: Mapping[str, bytes | None], actor: Actor, email: str) -> list[str]:
        from aoi_git.org.validate import Validator
        from aoi_git.store.trailers import moves

        line = self._line
        if line is None or line.at != before.oid:
            line = self._load(before)
        v = Validator(line.tasks, line.paths, line.employees,
                      {e.role for e in line.employees.values()}, line.config.humans)
        v.paths_named_by_id = True  # the store indexes a file only if its id is its name
        v.config, v.employees = line.config, line.employees
        found = v.check(files, actor, email, moves(commit.message))
        if found or any(not is_task_path(p) for p in files):
            self._line = None  # (the next commit loads the org again)
        else:
            _apply(line, files, v.parsed)
            line.at = str(commit.id)
            self._line = line
        return found

    def _load(self, view: HeadView) -> _Line:
        """The org at `view`, as `load_org` reads it for validation (no schemas, no
        talents: the validator looks at neither)."""
        employees: dict[str, Employee] = {}
        for name in view.names("employees"):
            raw = _yaml(view, f"employees/{name}/profile.yaml")
            if raw is None:
                continue
            try:
                employees[name] = Employee.from_dict(raw, default_id=name)
            except BAD_VALUE:
                continue
        index = self.task_cache.load_tasks(view)
        return _Line(view.oid or "", dict(index.tasks), dict(index.paths), employees,
                     self._config(view))


def _yaml(view: HeadView, path: str) -> dict[str, object] | None:
    """The mapping in the YAML file at `path` ({} for an empty one), None when it is
    missing or not a mapping (as `load_org` reads it, without its import of the org)."""
    from aoi_git.store import yamlio

    data = view.read(path)
    if data is None:
        return None
    try:
        raw = yamlio.load(data)
    except yamlio.YamlError:
        return None
    return raw if isinstance(raw, dict) else {} if raw is None else None


def _config_at(view: HeadView) -> OrgConfig:
    raw = _yaml(view, "aoi.yaml")
    try:
        return OrgConfig.from_dict(raw or {})
    except BAD_VALUE:
        return OrgConfig()


def _apply(line: _Line, files: Mapping[str, bytes | None], parsed: Mapping[str, Task]) -> None:
    """Carry the org along by a commit that changed these task files and passed (`parsed`:
    the tasks the validator read from them)."""
    for path in files:  # deleted or replaced: the task that was there
        stem = PurePosixPath(path).stem
        if line.paths.get(stem) == path:
            del line.paths[stem]
            line.tasks.pop(stem, None)
    for task in parsed.values():
        at = next((p for p in files if PurePosixPath(p).stem == task.id), None)
        if at is not None and files[at] is not None:
            line.tasks[task.id] = task
            line.paths[task.id] = at


def check_push(git_dir: Path, lines: Iterable[str],
               env: Mapping[str, str] = os.environ) -> list[str]:
    """The problems of a push to the repository at `git_dir` (empty: accept it; else
    `REFUSED` goes after them). The tasks it parsed are kept for the next push in
    `<git_dir>/.aoi/cache/` (by blob id: a push refused leaves nothing wrong there)."""
    history = PushedHistory(git_dir, env)
    cache = TaskCache(history.repo, git_dir / ".aoi")
    problems = PushCheck(history, cache).problems(lines)
    with contextlib.suppress(OSError):  # only a cache
        cache.save()
    return problems
