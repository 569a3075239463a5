"""The org store: reads the org at HEAD and writes every change as exactly one commit.

Writes go through pygit2 (blob + TreeBuilder along the changed paths, ~1 ms per commit
in a sharded tree). The branch update is a compare-and-swap: `create_commit` fails when
the branch tip is no longer our parent, and then the change is rebuilt on the new head by
calling the caller's `build` function again, so the caller's checks (the transition
table) run against what is really there.

After a commit the person's checkout is brought along path by path: a work-tree file
that still holds the old committed content is rewritten, one the person has edited is
left alone; index entries are moved only where they matched the old commit. Nothing the
person has not committed is ever swept into an aoi commit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pygit2

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

from aoi_git.domain.model import Task
from aoi_git.errors import AoiError, ConcurrentUpdate
from aoi_git.store import (
    index_journal,
    index_lock,
    index_patch,
    person_commit,
    ref_move,
    signing,
)
from aoi_git.store.git import git, git_detached
from aoi_git.store.head_view import HeadView, remember_blob
from aoi_git.store.history_index import HistoryIndex
from aoi_git.store.identity import actor_ident, host_ident
from aoi_git.store.task_cache import TaskCache, TaskIndex

_RETRYABLE = (
    "current tip is not the first parent",
    "old reference value does not match",
    "failed to lock",
    "failed to create locked file",
)

FILEMODE_BLOB = pygit2.enums.FileMode.BLOB if hasattr(pygit2, "enums") else 0o100644
FILEMODE_TREE = pygit2.enums.FileMode.TREE if hasattr(pygit2, "enums") else 0o040000

# libgit2 caches trees of at most 4 KB by default; the `tasks/` tree of a sharded org (one
# entry per shard, ~30 KB) is read several times per commit, so let bigger trees be cached.
pygit2.settings.cache_object_limit(pygit2.enums.ObjectType.TREE, 1 << 20)

GC_EVERY_COMMITS = 2000

GIT_GC_AUTO_DEFAULT = 6700  # git's gc.auto when unset


@dataclass
class Change:
    """A change to org files: path -> new bytes (None deletes), as one commit."""

    files: dict[str, bytes | None]
    message: str
    extra_parents: tuple[str, ...] = ()  # e.g. the task branch tip for a merge
    base_tree: str | None = None  # a merged tree to start from instead of the head's
    in_work_tree: tuple[str, ...] = ()  # paths whose work-tree file holds the new bytes already
    actor: str | None = None  # whose commit it is (its Aoi-Actor), when not the writer's


def _signature_from_env(prefix: str, fallback: pygit2.Signature) -> pygit2.Signature:
    name = os.environ.get(f"GIT_{prefix}_NAME")
    email = os.environ.get(f"GIT_{prefix}_EMAIL")
    if name or email:
        return pygit2.Signature(name or fallback.name, email or fallback.email)
    return fallback


COMMITTED_LATELY_DEPTH = 64  # how far back a work-tree file is recognised as committed


def host_actor() -> str:
    return f"daemon:{socket.gethostname()}"


class Store:
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        try:
            self.repo = pygit2.Repository(str(self.root))
        except pygit2.GitError as exc:
            raise AoiError(f"{self.root} is not a git repository: {exc}") from None
        self.aoi_dir = self.root / ".aoi"
        self.defer_index = False
        self._checkout_held = False
        self._pending: dict[str, index_journal.Move] = {}
        self._settling = index_journal.Settling()
        self._person = person_commit.Watch(self.root, Path(self.repo.path).resolve())
        self.commits_since_gc = 0
        self.index_lock_s = 0.0  # time spent writing the index (holding index.lock)
        self.index_writes = 0
        self.task_cache = TaskCache(self.repo, self.aoi_dir)
        self._history: HistoryIndex | None = None
        self._identity: tuple[tuple[str, str], ...] | None = None  # committer, author
        self.on_notice: Callable[[str], None] | None = None  # e.g. the daemon's log
        self.sign_commits = True  # False: unsigned commits (a benchmark's baseline)
        self._signers: dict[bool, signing.Signer | None] = {}

    # ------------------------------------------------------------------ reading
    @property
    def branch_ref(self) -> str:
        try:
            ref = self.repo.lookup_reference("HEAD").target
        except KeyError:  # pragma: no cover
            return "refs/heads/main"
        return str(ref) if isinstance(ref, str) else "refs/heads/main"

    @property
    def branch(self) -> str:
        return self.branch_ref.removeprefix("refs/heads/")

    @property
    def common_dir(self) -> Path:
        """The repository's git folder; for a linked worktree, its main repository's."""
        git_dir = Path(self.repo.path).resolve()
        common = git_dir / "commondir"
        if common.exists():
            return (git_dir / common.read_text().strip()).resolve()
        return git_dir

    def user_name(self) -> str | None:
        """The checkout's `user.name` (as git reads it), None when unset."""
        return git("config", "user.name", cwd=self.root, check=False).strip() or None

    def user_email(self) -> str:
        """The checkout's `user.email`, "" when unset."""
        return git("config", "user.email", cwd=self.root, check=False).strip()

    def head_commit(self) -> pygit2.Commit | None:
        try:
            ref = self.repo.lookup_reference(self.branch_ref)
        except KeyError:
            return None
        obj = self.repo[ref.target]
        assert isinstance(obj, pygit2.Commit)
        return obj

    def head(self) -> HeadView:
        return HeadView(self.repo, self.head_commit())

    @property
    def history(self) -> HistoryIndex:
        """Which aoi commits name a task (`.aoi/cache/history.sqlite`, opened on first use)."""
        if self._history is None:
            self._history = HistoryIndex(self.repo, self.aoi_dir / "cache" / "history.sqlite")
        return self._history

    def view(self, commit: str) -> HeadView:
        obj = self.repo.revparse_single(commit)
        assert isinstance(obj, pygit2.Commit)
        return HeadView(self.repo, obj)

    def read(self, path: str) -> bytes | None:
        return self.head().read(path)

    def list_dir(self, path: str, view: HeadView | None = None) -> list[str]:
        """Names of the entries of a folder at HEAD (empty if missing)."""
        return (view or self.head()).names(path)

    # ------------------------------------------------------------ task loading
    def load_tasks(self, view: HeadView | None = None) -> TaskIndex:
        """All tasks at HEAD, parsing only files changed since the cached index (.aoi/)."""
        return self.task_cache.load_tasks(view or self.head())

    def note_task_written(self, path: str, blob_id: str, task: Task,
                          replaced: str | None = None) -> None:
        """See `TaskCache.note_task_written`."""
        self.task_cache.note_task_written(path, blob_id, task, replaced)

    def parsed_task(self, blob_id: str, task_id: str | None = None) -> Task | None:
        """The parsed task of a blob this process holds already, if any."""
        return self.task_cache.parsed_task(blob_id, task_id)

    def save_cache(self, whole: bool = True) -> None:
        """Write the parsed-task cache to `.aoi/cache/` if it changed (`whole=False`: only
        if a small delta file says it, see `TaskCache.save`)."""
        self.task_cache.save(whole)

    # ------------------------------------------------------------------ writing
    def signature(self, actor: str | None = None) -> tuple[pygit2.Signature, pygit2.Signature]:
        if self._identity is None:
            # read once: the config lookup cost ~20 µs of every commit (a changed
            # user.name shows in the commits of the next Store, e.g. after a restart)
            try:
                default = self.repo.default_signature
            except (KeyError, pygit2.GitError):
                default = pygit2.Signature("aoi", "aoi@localhost")
            self._identity = tuple(
                (sig.name, sig.email) for sig in (_signature_from_env("COMMITTER", default),
                                                  _signature_from_env("AUTHOR", default)))
        (c_name, c_email), (a_name, a_email) = self._identity
        committer = pygit2.Signature(c_name, c_email)  # the time: now, in local time
        author = pygit2.Signature(a_name, a_email)
        if actor and not actor.startswith("human:"):
            # an agent's or the daemon's commit: authored by the employee (or the daemon),
            # committed by the daemon's host, never under the person's name
            kind, _, name = actor.partition(":")
            now = int(time.time())
            author = pygit2.Signature(*actor_ident(kind, name), now, 0)
            committer = pygit2.Signature(*host_ident(), now, 0)
        return author, committer

    def signer_for(self, actor: str | None) -> signing.Signer | None:
        """The key a commit by `actor` is signed with: a person's own key (their git
        config) for `human:` commits where aoi can use it, else this host's key; None when
        there is neither (or `sign_commits` is off)."""
        if not self.sign_commits:
            return None
        person = bool(actor and actor.startswith("human:"))
        if person not in self._signers:  # read once per Store, as the identity is
            own = signing.person_signer(signing.pygit2_config(self.repo)) if person else None
            self._signers[person] = own or signing.host_signer()
        return self._signers[person]

    def create_commit(self, author: pygit2.Signature, committer: pygit2.Signature,
                      message: str, tree: pygit2.Oid, parents: list[pygit2.Oid],
                      actor: str | None) -> pygit2.Oid:
        """Write a commit object, signed for `actor` (see `signer_for`); no ref moves."""
        return signing.create_commit(self.repo, author, committer, message, tree, parents,
                                     self.signer_for(actor))

    def transact(
        self,
        build: Callable[[HeadView], Change | None],
        *,
        actor: str | None = None,
        attempts: int = 50,
    ) -> str | None:
        """Build a change against the current head and commit it with a compare-and-swap.

        `build` is called again on the new head whenever another writer moved the branch,
        so its checks always see the state the commit is made on. Returns the new commit
        id, or None when `build` decided there is nothing to do.
        """
        last_error = ""
        for attempt in range(attempts):
            head = self.head_commit()
            view = HeadView(self.repo, head)
            change = build(view)
            if change is None:
                return None
            tree_id = self._build_tree(head, change)
            parents = [head.id] if head is not None else []
            parents += [pygit2.Oid(hex=p) for p in change.extra_parents]
            author, committer = self.signature(change.actor or actor)
            # Commit and checkout sync under one lock, so two aoi processes sharing this
            # checkout bring the work tree along in commit order.
            with self._checkout_lock():
                try:
                    new_id = self.create_commit(  # the object only; then the branch
                        author, committer, change.message, tree_id, parents, actor)
                    if not self.repo.is_bare:  # a person's `git commit` under way: let it end
                        self._person.wait()
                    self._move_branch(head, new_id, change.message)
                except (pygit2.GitError, ValueError, OSError) as exc:  # ref lock: OSError
                    last_error = str(exc)
                    if not any(r in last_error for r in _RETRYABLE):
                        raise
                else:
                    self._after_commit(head, new_id, change.files.keys(), change.in_work_tree)
                    return str(new_id)
            time.sleep(min(0.001 * (2**attempt), 0.05))
        raise ConcurrentUpdate(
            f"could not commit after {attempts} attempts, the branch keeps moving: {last_error}"
        )

    def _move_branch(self, head: pygit2.Commit | None, new_id: pygit2.Oid,
                     message: str) -> None:
        """Point the branch at `new_id` if it still points at `head` (a compare-and-swap,
        as the last step: the moment a person's `git commit` could be caught out is the
        shortest). Raises with a `_RETRYABLE` message when the branch moved."""
        summary = message.split("\n", 1)[0]
        if head is None:
            if self.repo.references.get(self.branch_ref) is not None:
                raise ValueError("current tip is not the first parent")
            self.repo.create_reference_direct(self.branch_ref, new_id, False,
                                              message=f"commit (initial): {summary}")
            return
        git_dir = Path(self.repo.path)
        _author, committer = self.signature()
        who = f"{committer.name} <{committer.email}>"
        while not ref_move.move(git_dir, self.common_dir, self.branch_ref, str(head.id),
                                str(new_id), who, f"commit: {summary}", self._no_new_commit):
            self._person.wait()  # a person's commit started just now: let it end first

    def _no_new_commit(self) -> bool:
        """The last look before the branch moves: no `git commit` of a person's has started
        since the previous look (always true in a bare repository). While a person's git
        was at work a moment ago, a second look follows a short pause: a `git commit`
        forked but not yet exec'd at the first one is a `git` process by then."""
        if self.repo.is_bare:
            return True
        if self._person.started_since() is not None:
            return False
        if not self._person.active_lately():
            return True
        time.sleep(person_commit.SECOND_LOOK_S)
        return self._person.started_since() is None

    def commit_to_branch(self, branch: str, view: HeadView, change: Change,
                         actor: str | None = None) -> str:
        """Commit `change` on top of `view` as the tip of `branch` (created or moved there,
        whatever it held), leaving the org's branch and the work tree as they are."""
        tree_id = self._build_tree(view.commit, change)
        author, committer = self.signature(actor)
        parents = [view.commit.id] if view.commit is not None else []
        oid = self.create_commit(author, committer, change.message, tree_id, parents, actor)
        self.repo.references.create(f"refs/heads/{branch}", oid, force=True)
        return str(oid)

    def write_commit(self, parent: pygit2.Commit | None, change: Change,
                     author: pygit2.Signature, committer: pygit2.Signature,
                     actor: str | None = None) -> str:
        """The commit object of `change` on `parent` (no branch moves), as written by
        `author` and `committer` (e.g. a commit rebuilt on another head keeps its own),
        signed for `actor` (see `signer_for`)."""
        tree_id = self._build_tree(parent, change)
        parents = [parent.id] if parent is not None else []
        parents += [pygit2.Oid(hex=p) for p in change.extra_parents]
        return str(self.create_commit(author, committer, change.message, tree_id, parents,
                                      actor))

    def move_head(self, expected: str | None, new: str, paths: Iterable[str]) -> bool:
        """Point the branch at `new` if it still points at `expected` (a compare-and-swap
        under the checkout lock, after a person's `git commit` under way), then bring the
        checkout along for `paths` as a commit does. False when the branch moved."""
        with self._checkout_lock():
            if not self.repo.is_bare:
                self._person.wait()
            head = self.head_commit()
            if (str(head.id) if head is not None else None) != expected:
                return False
            if head is None:
                self.repo.create_reference_direct(self.branch_ref, pygit2.Oid(hex=new), False,
                                                  message="aoi: the shared remote's branch")
            else:
                try:
                    self._move_branch(head, pygit2.Oid(hex=new), "aoi: rebuilt on the remote")
                except (pygit2.GitError, ValueError, OSError):
                    return False
            new_commit = self.repo[new]
            assert isinstance(new_commit, pygit2.Commit)
            self.sync_paths(HeadView(self.repo, head), HeadView(self.repo, new_commit), paths)
        return True

    @contextlib.contextmanager
    def _checkout_lock(self) -> Iterator[None]:
        if self.repo.is_bare or fcntl is None or self._checkout_held:
            yield  # (re-entered: a commit's own flush)
            return
        path = self.aoi_dir / "locks" / "checkout.lock"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._checkout_held = True
            yield
        finally:
            self._checkout_held = False
            os.close(fd)

    def _build_tree(self, head: pygit2.Commit | None, change: Change) -> pygit2.Oid:
        base: pygit2.Object | None
        if change.base_tree is not None:
            base = self.repo[change.base_tree]
        else:
            base = head.tree if head is not None else None
        nested: dict[str, object] = {}
        for path, data in change.files.items():
            parts = path.split("/")
            node = nested
            for part in parts[:-1]:
                node = node.setdefault(part, {})  # type: ignore[assignment]
            node[parts[-1]] = data
        return self._write_tree(base if isinstance(base, pygit2.Tree) else None, nested)[0]

    def _write_tree(
        self, base: pygit2.Tree | None, nested: Mapping[str, object]
    ) -> tuple[pygit2.Oid, int]:
        """Write `base` with `nested` applied; returns the tree id and its number of entries."""
        builder = self.repo.TreeBuilder(base) if base is not None else self.repo.TreeBuilder()
        for name, value in nested.items():
            existing = None
            if base is not None:
                try:
                    existing = base[name]
                except KeyError:
                    existing = None
            if isinstance(value, dict):
                sub = self.repo[existing.id] if existing is not None else None
                sub_tree = sub if isinstance(sub, pygit2.Tree) else None
                oid, size = self._write_tree(sub_tree, value)
                if size == 0:
                    if existing is not None:
                        builder.remove(name)
                else:
                    builder.insert(name, oid, FILEMODE_TREE)
            elif value is None:
                if existing is not None:
                    builder.remove(name)
            else:
                assert isinstance(value, bytes)
                blob = self.repo.create_blob(value)
                remember_blob(blob, value)  # e.g. a journal: read again by the next task
                builder.insert(name, blob, FILEMODE_BLOB)
        return builder.write(), len(builder)

    # ------------------------------------------------------- checkout sync
    def _after_commit(
        self, old: pygit2.Commit | None, new_id: pygit2.Oid, paths: Iterable[str],
        in_work_tree: Iterable[str] = (),
    ) -> None:
        new = self.repo[new_id]
        assert isinstance(new, pygit2.Commit)
        old_view, new_view = HeadView(self.repo, old), HeadView(self.repo, new)
        self.sync_paths(old_view, new_view, paths, in_work_tree)
        self.commits_since_gc += 1
        if self.commits_since_gc >= GC_EVERY_COMMITS:
            self.maintenance()

    def sync_paths(self, old: HeadView, new: HeadView, paths: Iterable[str],
                   in_work_tree: Iterable[str] = ()) -> None:
        """Bring work tree and index from `old` to `new` for `paths`, sparing a person's edits.

        `in_work_tree`: paths whose work-tree file already holds the new content (a person's
        saved file). With `defer_index` (the daemon) the move is only recorded here and done
        by `flush_index`, once for many commits (see `aoi_git.store.index_journal`)."""
        if self.repo.is_bare:
            return
        theirs = set(in_work_tree)
        for path in paths:
            old_blob, new_blob = old.blob_id(path), new.blob_id(path)
            if old_blob == new_blob:
                continue
            move = index_journal.Move(old_blob, new_blob, new_blob if path in theirs else old_blob)
            earlier = self._pending.get(path)
            if earlier is not None:
                move = earlier.then(move)
                if path in theirs:
                    move = dataclasses.replace(move, file_old=new_blob)
            self._pending[path] = move
        if not self.defer_index:
            self.flush_index()

    @property
    def pending_moves(self) -> Mapping[str, index_journal.Move]:
        """Committed paths whose work-tree file or index entry is not moved along yet."""
        return self._pending

    @property
    def settling_moves(self) -> Mapping[str, index_journal.Move]:
        """Index entries written by a recent flush that a person's git may still overwrite
        with the copy of the index it read before (see `index_journal.Settling`)."""
        return self._settling.moves

    def resume_moves(self, moves: Mapping[str, index_journal.Move]) -> None:
        """Take back moves journaled by a process that died before flushing them (they
        come first: anything this process committed since moves on from them)."""
        for path, move in moves.items():
            later = self._pending.get(path)
            self._pending[path] = move.then(later) if later else move

    def flush_index(self, with_index: bool = True) -> bool:
        """Move work-tree files, then index entries, that still match the old commit to the
        new one (one index write), and move again the recently written entries a person's
        git has put back. False when another git process holds the index lock or a
        person's commit is under way: the index moves stay pending for the next call (the
        files are moved already). `with_index=False`: the files only (no index lock)."""
        if self.repo.is_bare or not (self._pending or self._settling.moves):
            self._pending.clear()
            return True
        if not with_index:
            self._move_files_only()
            return True
        git_dir = Path(self.repo.path)
        if (git_dir / "index.lock").exists():  # (a lock an aoi process died holding goes)
            done = index_lock.clear_if_stale(git_dir, self.aoi_dir)
            if done is not None and self.on_notice is not None:
                self.on_notice(done)
        if self._person.under_way():
            return False  # its git writes the index it read at its start: after it
        moves, self._pending = self._pending, {}
        with self._checkout_lock():
            # to what HEAD has now: another aoi process may have committed the path since
            # (and spared the stale file, taking it for a person's edit)
            head = self.head()
            now = {path: head.blob_id(path) for path in moves}
            on_disk = {path: self._move_file(path, move.file_old, now[path])
                       for path, move in moves.items()}
            try:
                if not self._patch_entries(moves, now, on_disk):
                    self._move_entries(moves, now, on_disk)
            except (pygit2.GitError, OSError):  # index.lock: a person's git is writing it
                # the files are done; the entries are not
                self.resume_moves({path: dataclasses.replace(move, file_old=on_disk[path])
                                   for path, move in moves.items()})
                return False
            self._settling.add({path: dataclasses.replace(move, new=now[path],
                                                          file_old=on_disk[path])
                                for path, move in moves.items()}, time.monotonic())
        return True

    def _move_entries(self, moves: Mapping[str, index_journal.Move],
                      now: Mapping[str, str | None], on_disk: Mapping[str, str | None]) -> None:
        """The index half of `flush_index` through libgit2 (the whole index read and
        written), with the settling entries a person's git put back moved again."""
        index = self.repo.index
        try:
            index.read(False)
            changed = self._move_lost_entries(index)
            for path, move in moves.items():
                changed |= self._move_entry(index, path, move.index_olds, now[path],
                                            on_disk[path])
            if changed:
                self._write_index(index)
        except (pygit2.GitError, OSError):
            with contextlib.suppress(pygit2.GitError, OSError):
                index.read(True)  # drop what was changed in memory only
            raise

    def _move_lost_entries(self, index: pygit2.Index | index_patch.PatchedIndex) -> bool:
        """Move again the settling entries a person's git wrote back (True: one moved)."""
        changed = False
        for path, lost in self._settling.lost(index_blobs(index, self._settling.moves),
                                              time.monotonic()).items():
            changed |= self._move_entry(index, path, lost.index_olds, lost.new,
                                        index_journal.KEEP)
        return changed

    def _patch_entries(self, moves: Mapping[str, index_journal.Move],
                       now: Mapping[str, str | None], on_disk: Mapping[str, str | None],
                       ) -> bool:
        """The index half of `flush_index` through `index_patch`: the moved entries (and
        the settling ones a person's git put back) spliced into the index file, read
        without `index.lock` and written only if it is unchanged under it, so a `git add`
        that ends between aoi's read and its write cannot be undone by it; under the
        marker a kill leaves behind
        (`index_lock`). False when this is left to libgit2: an index in a form
        `index_patch` leaves alone. Raises OSError when a git holds the index lock or
        wrote the index meanwhile (read without the lock, checked under it at the write)."""
        git_dir = Path(self.repo.path)
        if (git_dir / "index.lock").exists():
            done = index_lock.clear_if_stale(git_dir, self.aoi_dir)
            if done is not None and self.on_notice is not None:
                self.on_notice(done)
        changed = False
        with index_lock.writing(self.aoi_dir):
            index = index_patch.PatchedIndex.load(git_dir / "index", locked=False)
            if index is None:
                return False
            try:
                changed = self._move_lost_entries(index)
                for path, move in moves.items():
                    changed |= self._move_entry(index, path, move.index_olds, now[path],
                                                on_disk[path])
                if changed:
                    index.write()
            finally:
                index.close()
                self.index_lock_s += index.locked_s
        if changed:
            self.index_writes += 1
            self._person.wrote_index()
        return True

    def _move_files_only(self) -> None:
        """The work-tree half of `flush_index`: the entries stay pending."""
        if not self._pending:
            return
        with self._checkout_lock():
            head = self.head()
            moves = self._pending
            self._pending = {}
            self.resume_moves({path: dataclasses.replace(
                move, file_old=self._move_file(path, move.file_old, head.blob_id(path)))
                for path, move in moves.items()})

    def person_quiet_for(self) -> float:
        """Seconds since a person's git was last seen at work in the checkout (inf: never);
        see `person_commit.Watch.quiet_for`."""
        return self._person.quiet_for()

    def _write_index(self, index: pygit2.Index) -> None:
        """`index.write()`, marked so that a lock left by a kill is found (`index_lock`);
        the time it holds `index.lock` is added to `index_lock_s`."""
        git_dir = Path(self.repo.path)
        if (git_dir / "index.lock").exists():
            done = index_lock.clear_if_stale(git_dir, self.aoi_dir)
            if done is not None and self.on_notice is not None:
                self.on_notice(done)
        with index_lock.writing(self.aoi_dir):
            started = time.perf_counter()
            try:
                index.write()
            finally:
                self.index_lock_s += time.perf_counter() - started
                self.index_writes += 1
        self._person.wrote_index()

    def _move_file(self, path: str, old_blob: str | None, new_blob: str | None) -> str | None:
        """Bring the work-tree file from `old_blob` to `new_blob` unless a person changed it;
        what it holds now, or `index_journal.KEEP` when it is the person's."""
        if old_blob == index_journal.KEEP:
            return index_journal.KEEP
        full = self.root / path
        try:
            current: str | None = str(pygit2.hash(full.read_bytes()))
        except (FileNotFoundError, NotADirectoryError):
            current = None
        except (IsADirectoryError, PermissionError):
            return index_journal.KEEP
        if current == new_blob:
            return new_blob
        if current != old_blob and not self._committed_lately(path, current):
            return index_journal.KEEP  # a person's edit: spared
        if new_blob is None:
            full.unlink(missing_ok=True)
            _prune_empty_dirs(full.parent, self.root)
            return None
        blob = self.repo.get(new_blob)
        assert isinstance(blob, pygit2.Blob)
        full.parent.mkdir(parents=True, exist_ok=True)
        tmp = full.with_name(f".{full.name}.aoi-tmp")
        tmp.write_bytes(blob.data)
        os.replace(tmp, full)
        return new_blob

    def _committed_lately(self, path: str, blob: str | None,
                          depth: int = COMMITTED_LATELY_DEPTH) -> bool:
        """Whether `blob` is what `path` held in one of HEAD's last `depth` commits: a
        version another aoi process (the CLI) committed and wrote out, not a person's
        edit, so the work-tree file may be brought along."""
        if blob is None:
            return False
        commit = self.head_commit()
        for _ in range(depth):
            if commit is None:
                return False
            try:
                if str(commit.tree[path].id) == blob:
                    return True
            except KeyError:
                pass
            commit = commit.parents[0] if commit.parents else None
        return False

    def _move_entry(self, index: pygit2.Index | index_patch.PatchedIndex, path: str,
                    old_blobs: frozenset[str | None], new_blob: str | None,
                    file_blob: str | None) -> bool:
        """Move the index entry from one of `old_blobs` to `new_blob` unless a person staged
        their own; `file_blob`: what `_move_file` left in the work tree (KEEP: not known)."""
        try:
            entry_id: str | None = str(index[path].id)
        except KeyError:
            entry_id = None
        if entry_id not in old_blobs and entry_id != new_blob:
            return False  # the person staged something of their own here: leave it
        if new_blob is None:
            if entry_id is None:
                return False
            index.remove(path)
            return True
        on_disk = file_blob
        if on_disk == index_journal.KEEP:
            try:
                on_disk = str(pygit2.hash((self.root / path).read_bytes()))
            except OSError:
                on_disk = None
        if isinstance(index, index_patch.PatchedIndex):
            mode = FILEMODE_BLOB if entry_id is None else index[path].mode
            stat = None
            if on_disk == new_blob:
                with contextlib.suppress(OSError):
                    stat = os.stat(self.root / path)
            index.add_blob(path, new_blob, stat, int(mode))
        elif on_disk == new_blob:
            index.add(path)  # records stat data, so `git status` stays quick and clean
        else:
            index.add(pygit2.IndexEntry(path, pygit2.Oid(hex=new_blob),
                                       FILEMODE_BLOB))  # type: ignore[arg-type]
        return True

    def maintenance(self, loose_factor: int = 1, wait: bool = False) -> None:
        """`git gc --auto`: pack loose objects past git's `gc.auto` (pygit2 never does).

        `loose_factor`: only past this many times `gc.auto` loose objects (0 in the config
        turns it off, as in git). `wait`: in the foreground, else in the background."""
        self.commits_since_gc = 0
        args = ["gc", "--auto", "--quiet"]
        if loose_factor != 1:
            try:
                auto = self.repo.config.get_int("gc.auto")
            except (KeyError, ValueError, pygit2.GitError):
                auto = GIT_GC_AUTO_DEFAULT
            if auto <= 0:
                return
            args[0:0] = ["-c", f"gc.auto={auto * loose_factor}"]
        if wait:  # a failed gc leaves the objects loose: nothing to report at exit
            git("-c", "gc.autoDetach=false", *args, cwd=self.root, check=False)
            return
        git_detached(*args, cwd=self.root)


def index_blobs(index: pygit2.Index | index_patch.PatchedIndex,
                paths: Iterable[str]) -> dict[str, str | None]:
    """The blob id of each path's index entry (None: no entry)."""
    out: dict[str, str | None] = {}
    for path in paths:
        try:
            out[path] = str(index[path].id)
        except KeyError:
            out[path] = None
    return out


def _prune_empty_dirs(folder: Path, stop: Path) -> None:
    while folder != stop and folder.is_dir():
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
