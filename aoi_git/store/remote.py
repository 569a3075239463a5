"""The shared remote of a multi-host org: its refs, pushes, fetches and leases.

The remote's atomic ref update is the compare-and-swap between hosts: a push of the
org's branch succeeds only when it is a fast-forward of what the remote holds, so a host
whose push is rejected fetches and rebuilds its commits on the new head (`rebuild`).
Nothing here decides *what* to push: `aoi_git.runtime.hosts` does.

Refs on the remote:
- `refs/heads/<branch>`: the org's history;
- `refs/heads/aoi/<task>`: a task's work branch, pushed by the host that ran it;
- `refs/aoi/leases/<host>`: each host's lease, a parentless commit (empty tree) whose
  message says until when the host is alive and which tasks it holds. Outside the main
  history: renewing it moves no branch.

Their copies in a clone are under `refs/aoi/remote/` (fetched with `--prune`).
Every git command goes through `aoi_git.store.git`, with a timeout: a remote that does
not answer in time is unreachable, which is not an error here (`Pushed.UNREACHABLE`).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pygit2

from aoi_git.domain.lifecycle import allowed
from aoi_git.domain.model import ActorKind, Status, Task
from aoi_git.errors import AoiError
from aoi_git.org.validate import parse_task_bytes
from aoi_git.store.git import GitError, git
from aoi_git.store.org_store import Change, Store
from aoi_git.store.task_merge import merge_task_texts
from aoi_git.store.trailers import parse_trailers

LEASES = "refs/aoi/leases/"
TRACK = "refs/aoi/remote/"
TRACK_LEASES = TRACK + "leases/"
HOST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_ENV = {"GIT_TERMINAL_PROMPT": "0"}
_REJECTED = ("[rejected]", "[remote rejected]", "stale info", "fetch first", "non-fast-forward",
             "failed to update ref", "cannot lock ref", "atomic push failed")


def check_host_id(host: str) -> str:
    if not HOST_ID.match(host):
        raise AoiError(f"host id {host!r}: use letters, digits, '.', '_' or '-' "
                       "(at most 64, starting with a letter or digit)")
    return host


class Pushed(enum.Enum):
    OK = "ok"
    REJECTED = "rejected"  # another host moved the branch first: fetch and rebuild
    REFUSED = "refused"  # the server's hook refused the commits
    UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class Lease:
    host: str
    renewed: float
    expires: float
    holds: frozenset[str] = frozenset()

    def message(self) -> str:
        return (f"aoi lease {self.host}\n\nAoi-Host: {self.host}\n"
                f"Aoi-Lease-Renewed: {self.renewed:.3f}\nAoi-Lease-Expires: {self.expires:.3f}\n"
                f"Aoi-Lease-Holds: {' '.join(sorted(self.holds))}\n")

    @classmethod
    def parse(cls, message: str) -> Lease | None:
        fields: dict[str, str] = {}
        for line in message.splitlines():
            key, sep, value = line.partition(": ")
            if sep:
                fields[key.strip()] = value.strip()
            elif line.strip().endswith(":"):  # an empty value ("Aoi-Lease-Holds:")
                fields[line.strip()[:-1]] = ""
        try:
            return cls(fields["Aoi-Host"], float(fields["Aoi-Lease-Renewed"]),
                       float(fields["Aoi-Lease-Expires"]),
                       frozenset(fields.get("Aoi-Lease-Holds", "").split()))
        except (KeyError, ValueError):
            return None


@dataclass
class Rebuilt:
    """What `rebuild` made: the new head and the local commits it left out."""

    head: str | None
    kept: int = 0
    dropped: list[str] = field(default_factory=list)  # "<sha> <subject>: why"
    dropped_tasks: set[str] = field(default_factory=set)
    paths: set[str] = field(default_factory=set)  # what differs between old and new head


class Remote:
    """The shared remote of one clone: `url` is a URL or a remote name."""

    def __init__(self, store: Store, url: str, host: str, timeout: float) -> None:
        self.store = store
        self.url = url
        self.host = check_host_id(host)
        self.timeout = timeout
        self.branch = store.branch
        self.lease_ref = LEASES + host
        self.empty_tree = str(store.repo.TreeBuilder().write())

    @property
    def root(self) -> Path:
        return self.store.root

    def _git(self, *args: str, timeout: float | None = None) -> str:
        return git(*args, cwd=self.root, env=_ENV, timeout=timeout or self.timeout)

    # ------------------------------------------------------------------ reading
    def ls(self) -> str | None:
        """The remote branch's commit ('' when it has none); None when unreachable."""
        try:
            out = self._git("ls-remote", self.url, f"refs/heads/{self.branch}")
        except GitError:
            return None
        for line in out.splitlines():
            sha, _, ref = line.partition("\t")
            if ref == f"refs/heads/{self.branch}":
                return sha
        return ""

    def fetch(self) -> bool:
        """Bring the remote's branch, task branches and leases into `refs/aoi/remote/`."""
        try:
            self._git("fetch", "--prune", "--no-tags", "--quiet", "--no-write-fetch-head",
                      self.url, f"+refs/heads/{self.branch}:{TRACK}heads/{self.branch}",
                      f"+{LEASES}*:{TRACK_LEASES}*",
                      f"+refs/heads/aoi/*:{TRACK}heads/aoi/*")
        except GitError:
            return False
        return True

    def tracked(self, name: str | None = None) -> str | None:
        """The remote branch (or task branch `aoi/<id>`) as last fetched or pushed."""
        ref = self.store.repo.references.get(f"{TRACK}heads/{name or self.branch}")
        return str(ref.target) if ref is not None else None

    def leases(self) -> dict[str, Lease]:
        """Every host's lease as last fetched, by host."""
        out: dict[str, Lease] = {}
        repo = self.store.repo
        for name in repo.references:
            if not name.startswith(TRACK_LEASES):
                continue
            obj = repo.get(repo.references[name].target)
            lease = Lease.parse(obj.message) if isinstance(obj, pygit2.Commit) else None
            if lease is not None:
                out[name.removeprefix(TRACK_LEASES)] = lease
        return out

    def task_branches(self) -> dict[str, str]:
        """Task id -> the tip of its work branch on the remote, as last fetched."""
        prefix = f"{TRACK}heads/aoi/"
        repo = self.store.repo
        return {name.removeprefix(prefix): str(repo.references[name].target)
                for name in repo.references if name.startswith(prefix)}

    # ------------------------------------------------------------------ writing
    def lease_commit(self, lease: Lease) -> str:
        """The lease as a commit object (by a git process: safe on the lease thread)."""
        name, email = f"{self.host} (daemon)", f"{self.host}@aoi.invalid"
        return git("commit-tree", self.empty_tree, cwd=self.root, input=lease.message(),
                   env={"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email,
                        "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email},
                   timeout=self.timeout).strip()

    def push(self, head: str | None, lease: str | None,
             branches: Mapping[str, str] = {}, track: bool = True) -> tuple[Pushed, str]:
        """Push the org's branch (to `head`, a fast-forward or nothing), this host's lease
        commit and task branches (`aoi/<id>` -> tip, forced: one host runs a task at a
        time) in one atomic push. (outcome, git's telling line). `track`: note what was
        pushed under `refs/aoi/remote/` (not from another thread than the daemon's)."""
        specs: list[str] = []
        if head is not None:
            specs.append(f"{head}:refs/heads/{self.branch}")
        if lease is not None:
            specs.append(f"+{lease}:{self.lease_ref}")
        specs += [f"+{tip}:refs/heads/aoi/{tid}" for tid, tip in sorted(branches.items())]
        if not specs:
            return Pushed.OK, ""
        try:
            self._git("push", "--atomic", "--porcelain", "--quiet", self.url, *specs)
        except GitError as exc:
            text = f"{exc.stdout}\n{exc.stderr}"
            if "hook declined" in text:
                return Pushed.REFUSED, " | ".join(
                    ln.strip() for ln in text.splitlines() if ln.strip())[-2000:]
            if any(r in text for r in _REJECTED):
                return Pushed.REJECTED, _reason(text)
            return Pushed.UNREACHABLE, str(exc)
        if not track:
            return Pushed.OK, ""
        refs = self.store.repo.references
        if head is not None:
            refs.create(f"{TRACK}heads/{self.branch}", pygit2.Oid(hex=head), force=True)
        if lease is not None:
            refs.create(f"{TRACK_LEASES}{self.host}", pygit2.Oid(hex=lease), force=True)
        for tid, tip in branches.items():
            refs.create(f"{TRACK}heads/aoi/{tid}", pygit2.Oid(hex=tip), force=True)
        return Pushed.OK, ""


def _reason(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return next((ln for ln in lines if "rejected" in ln or "error" in ln or "declined" in ln),
                lines[-1] if lines else "")


# ---------------------------------------------------------------- rebuilding
def unpushed(store: Store, onto: str | None) -> list[pygit2.Commit]:
    """The local commits (first parents, oldest first) that `onto` does not contain."""
    head = store.head_commit()
    if head is None:
        return []
    repo = store.repo
    out: list[pygit2.Commit] = []
    c: pygit2.Commit | None = head
    base = repo.merge_base(head.id, pygit2.Oid(hex=onto)) if onto else None
    while c is not None and c.id != base:
        out.append(c)
        c = c.parents[0] if c.parents else None
    out.reverse()
    return out


def rebuild(store: Store, onto: str | None, *, keep_only_people: bool = False,
            drop_claims: Iterable[str] = ()) -> Rebuilt:
    """Rebuild the local commits the remote branch `onto` lacks on top of it, one by one.

    A file the other side did not change takes ours; a task file both sides changed is
    merged field by field, and our status move is checked again against the lifecycle
    from the status the other side left (a move the other side made already, or one the
    table does not allow from there, drops the commit: another host won). A commit is
    kept or dropped whole, and a later commit on a task of a dropped one is dropped too.
    `keep_only_people`: commits by daemons and agents are left out (a host whose lease
    expired abandons them); `drop_claims`: the last claim (`pending -> processing`) of
    each of these tasks is left out, with what follows it on the task (what came before,
    e.g. the recovery that put the task back to pending, stays).
    Returns the new head; the branch is not moved (see `Store.move_head`)."""
    repo = store.repo
    old = store.head_commit()
    commits = unpushed(store, onto)
    tip: pygit2.Commit | None = repo[onto] if onto else None  # type: ignore[assignment]
    out = Rebuilt(onto)
    tainted: set[str] = set()
    wanted = set(drop_claims)
    last_claim = {t: c.id for c in commits if wanted and _is_claim(c.message)
                  for t in _task_ids(c.message) & wanted}
    for c in commits:
        actor = _actor_kind(c.message)
        tasks = _task_ids(c.message)
        why: str | None = None
        if keep_only_people and actor is not ActorKind.HUMAN:
            why = "its host's lease expired"
        elif any(last_claim.get(t) == c.id for t in tasks):
            why = "its claim was not pushed"
        elif tasks & tainted:
            why = "an earlier commit on its task was left out"
        files: dict[str, bytes | None] = {}
        if why is None:
            files, why = _replay_files(store, c, tip, actor)
        if why is not None:
            out.dropped.append(f"{str(c.id)[:10]} {c.message.splitlines()[0]}: {why}")
            out.dropped_tasks |= tasks
            tainted |= tasks
            continue
        if not files and len(c.parents) < 2:
            continue  # nothing left to change
        change = Change(files, c.message, tuple(str(p) for p in c.parent_ids[1:]))
        actor_of = next((v for k, v in parse_trailers(c.message) if k == "Aoi-Actor"), None)
        new = store.write_commit(tip, change, c.author, c.committer, actor_of)
        tip = repo[new]  # type: ignore[assignment]
        out.kept += 1
    out.head = str(tip.id) if tip is not None else None
    if old is not None and tip is not None:
        out.paths = {d.new_file.path or d.old_file.path
                     for d in repo.diff(old, tip).deltas}
    return out


def _replay_files(store: Store, c: pygit2.Commit, tip: pygit2.Commit | None,
                  actor: ActorKind | None) -> tuple[dict[str, bytes | None], str | None]:
    repo = store.repo
    parent = c.parents[0] if c.parents else None
    diff = repo.diff(parent, c) if parent is not None else c.tree.diff_to_tree(swap=True)
    files: dict[str, bytes | None] = {}
    for d in diff.deltas:
        path = d.new_file.path or d.old_file.path
        base = _blob(parent, path)
        ours = _blob(c, path)
        theirs = _blob(tip, path)
        if theirs == ours and ours != base and _is_task(path) and ours is not None:
            # the same bytes from another writer: one move made twice (two hosts' claims
            # are byte for byte alike); the other made it first
            o = _task(repo, path, ours)
            b = _task(repo, path, base)
            if o is not None and (b is None or b.status is not o.status):
                return {}, f"{o.id} is {o.status.value} already: another writer moved it first"
        if theirs in (base, ours):
            if theirs != ours:
                files[path] = None if ours is None else _data(repo, ours)
            continue
        if _is_task(path) and ours is not None and theirs is not None:
            merged, why = _merge_task(repo, path, base, ours, theirs, actor)
            if why is not None:
                return {}, why
            files[path] = merged
            continue
        if _is_task(path):
            return {}, f"{path} was changed and deleted on the two sides"
        if ours is None:  # we deleted what they changed: theirs stays
            continue
        if theirs is None:  # made by one of our commits left out: only what this one adds
            files[path] = _union(_data(repo, base) if base else b"", _data(repo, ours), b"")
            continue
        files[path] = _union(_data(repo, base) if base else b"", _data(repo, ours),
                             _data(repo, theirs))
    return files, None


def _merge_task(repo: pygit2.Repository, path: str, base: str | None, ours: str,
                theirs: str, actor: ActorKind | None) -> tuple[bytes | None, str | None]:
    b = _task(repo, path, base)
    o, t = _task(repo, path, ours), _task(repo, path, theirs)
    if o is None or t is None:
        return None, f"{path} does not parse on one side"
    base_status = b.status if b is not None else None
    merged = merge_task_texts(_data(repo, base) if base else None, _data(repo, ours),
                              _data(repo, theirs), ours_is_later=True).text
    want = o.status if o.status is not base_status else t.status
    if o.status is not base_status and t.status is not base_status:  # both moved it
        if t.status is o.status:
            return None, f"{o.id} is {o.status.value} already: another writer moved it first"
        if actor is None or not allowed(t.status, o.status, actor, o.kind):
            return None, f"{o.id}: {t.status.value} -> {o.status.value} is not allowed"
    if t.status is not want or _status_of(merged, path) is not want:
        merged = _with_status(merged, path, want)
    return merged, None


def _is_task(path: str) -> bool:
    return path.startswith("tasks/") and path.endswith(".yaml")


def _status_of(data: bytes, path: str) -> Status | None:
    parsed = parse_task_bytes(data, path)
    return parsed.status if isinstance(parsed, Task) else None


def _with_status(data: bytes, path: str, status: Status) -> bytes:
    parsed = parse_task_bytes(data, path)
    if not isinstance(parsed, Task):
        return data
    from aoi_git.store import yamlio

    return yamlio.dump(parsed.with_changes(status=status).to_dict())


def _union(base: bytes, ours: bytes, theirs: bytes) -> bytes:
    """Theirs, with the lines ours added (a journal both sides appended to keeps both)."""
    seen = set(base.splitlines()) | set(theirs.splitlines())
    added = [ln for ln in ours.splitlines(keepends=True) if ln.rstrip(b"\r\n") not in seen]
    sep = b"" if not theirs or theirs.endswith(b"\n") else b"\n"
    return theirs + sep + b"".join(ln if ln.endswith(b"\n") else ln + b"\n" for ln in added)


def _task(repo: pygit2.Repository, path: str, blob: str | None) -> Task | None:
    if blob is None:
        return None
    parsed = parse_task_bytes(_data(repo, blob), path)
    return parsed if isinstance(parsed, Task) else None


def _blob(commit: pygit2.Commit | None, path: str) -> str | None:
    if commit is None:
        return None
    try:
        return str(commit.tree[path].id)
    except KeyError:
        return None


def _data(repo: pygit2.Repository, blob: str) -> bytes:
    obj = repo[blob]
    assert isinstance(obj, pygit2.Blob)
    return obj.data


def _actor_kind(message: str) -> ActorKind | None:
    for key, value in parse_trailers(message):
        if key == "Aoi-Actor":
            try:
                return ActorKind(value.partition(":")[0])
            except ValueError:
                return None
    return ActorKind.HUMAN  # a person's plain git commit has no trailers


def _is_claim(message: str) -> bool:
    return any(k == "Aoi-Transition" and v.replace(" ", "") == "pending->processing"
               for k, v in parse_trailers(message))


def _task_ids(message: str) -> set[str]:
    return {v for k, v in parse_trailers(message) if k == "Aoi-Task"}


def local_task_branches(store: Store) -> dict[str, str]:
    prefix = "refs/heads/aoi/"
    repo = store.repo
    return {name.removeprefix(prefix): str(repo.references[name].target)
            for name in repo.references if name.startswith(prefix)}


def adopt_task_branches(store: Store, remote: Mapping[str, str],
                        skip: Sequence[str] = ()) -> list[str]:
    """Create (or fast-forward) local `aoi/<id>` branches from the remote's, so that the
    host that merges or reviews a task another host ran sees its work; a branch checked
    out by a run here (`skip`) is left alone. Returns the task ids brought along."""
    repo = store.repo
    local = local_task_branches(store)
    done: list[str] = []
    for tid, tip in remote.items():
        if tid in skip or local.get(tid) == tip:
            continue
        mine = local.get(tid)
        if mine is not None and not repo.descendant_of(pygit2.Oid(hex=tip),
                                                        pygit2.Oid(hex=mine)):
            continue  # ours has work the remote's lacks
        try:
            repo.references.create(f"refs/heads/aoi/{tid}", pygit2.Oid(hex=tip), force=True)
        except (pygit2.GitError, ValueError):
            continue
        done.append(tid)
    return done


def drop_stale_task_branches(store: Store, old_head: str | None, new_head: str,
                             skip: Sequence[str] = ()) -> list[str]:
    """Delete the local `aoi/<id>` branches with no work of their own that are not on the
    branch `new_head` is the tip of, e.g. that point into the local history a rebuild
    replaced (their base is no commit of the branch any more, so their diff would show
    the replaced commits' org changes); a branch in use by a run here (`skip`) is left
    alone. A later run starts a fresh branch from the head."""
    repo = store.repo
    old = pygit2.Oid(hex=old_head) if old_head else None
    new = pygit2.Oid(hex=new_head)
    done: list[str] = []
    for tid, tip in local_task_branches(store).items():
        t = pygit2.Oid(hex=tip)
        if tid in skip or t == new or repo.descendant_of(new, t):
            continue
        on_old = old is not None and (t == old or repo.descendant_of(old, t))
        commit = repo.get(t)
        # (or its tip is an org commit, not an agent's: a branch made at a base that a
        # rebuild replaced, e.g. before this daemon restarted)
        org_tip = isinstance(commit, pygit2.Commit) and any(
            k == "Aoi-Actor" and not v.startswith("agent:")
            for k, v in parse_trailers(commit.message))
        if on_old or org_tip:
            repo.references.delete(f"refs/heads/aoi/{tid}")
            done.append(tid)
    return done
