"""Read-only views of one commit's files, with the bytes of big blobs kept in memory."""

from __future__ import annotations

from pathlib import Path

import pygit2

# Contents of big blobs by id (content-addressed: right for any repository). An employee's
# journal only grows and is read 3-4 times per task (context, the result's append, the
# retrospective, a review); inflating a 140 KB blob each time cost ~10 ms per task.
BIG_BLOB = 16 * 1024
_BIG_BLOBS: dict[bytes, bytes] = {}
_BIG_BLOBS_MAX_BYTES = 32 * 1024 * 1024
_big_blobs_bytes = 0


def remember_blob(oid: pygit2.Oid, data: bytes) -> None:
    """Keep a big blob's bytes (the oldest go first past _BIG_BLOBS_MAX_BYTES)."""
    global _big_blobs_bytes
    if len(data) < BIG_BLOB or oid.raw in _BIG_BLOBS:
        return
    _BIG_BLOBS[oid.raw] = data
    _big_blobs_bytes += len(data)
    while _big_blobs_bytes > _BIG_BLOBS_MAX_BYTES and _BIG_BLOBS:
        _big_blobs_bytes -= len(_BIG_BLOBS.pop(next(iter(_BIG_BLOBS))))


class HeadView:
    """Read-only access to the files of one commit, for building a change."""

    def __init__(self, repo: pygit2.Repository, commit: pygit2.Commit | None) -> None:
        self.repo = repo
        self.commit = commit

    @property
    def oid(self) -> str | None:
        return str(self.commit.id) if self.commit is not None else None

    @property
    def workdir(self) -> Path | None:
        """The work tree of the repository this view reads (None if it is bare)."""
        return Path(self.repo.workdir) if self.repo.workdir else None

    def read(self, path: str) -> bytes | None:
        if self.commit is None:
            return None
        try:
            entry = self.commit.tree[path]
        except KeyError:
            return None
        known = _BIG_BLOBS.get(entry.id.raw)
        if known is not None:
            return known
        obj = self.repo[entry.id]
        if not isinstance(obj, pygit2.Blob):
            return None
        data = obj.data
        remember_blob(entry.id, data)
        return data

    def blob_id(self, path: str) -> str | None:
        if self.commit is None:
            return None
        try:
            return str(self.commit.tree[path].id)
        except KeyError:
            return None

    def exists(self, path: str) -> bool:
        return self.blob_id(path) is not None

    def names(self, path: str) -> list[str]:
        """Names of the entries of a folder (empty if missing or not a folder)."""
        if self.commit is None:
            return []
        try:
            entry = self.commit.tree[path]
        except KeyError:
            return []
        tree = self.repo[entry.id]
        if not isinstance(tree, pygit2.Tree):
            return []
        return [e.name for e in tree if e.name is not None]

