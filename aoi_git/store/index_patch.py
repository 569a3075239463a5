"""The git index with a few entries changed in place, the rest copied byte for byte.

A one-off CLI commit changes one or two index entries, but reading and writing the index
through libgit2 parses and serialises every entry: 54-99 ms at 100k tasks. Entries are
sorted by path and each records its path's length, so an entry is found with one byte
search and changed, added or removed by splicing; the cache tree (`TREE` extension) has
the folders above a changed path marked invalid, as git and libgit2 do, and the checksum
is recomputed. Anything this does not know for sure (index version 4, a split or sparse
index, an extension it does not know, a path found twice) makes `load` return None, and
the caller uses libgit2 as before.

`load` takes the lock before it reads, so a person's git cannot write between the read
and the write (it would fail on `index.lock`, as with any git). `load(locked=False)` reads
without it and `write` takes the lock only to check that the index is still byte for byte
what was read, then writes: the lock is held for the write alone, not for the caller's
work on the entries, so a person's `git add` or `git commit` meets it far more rarely. An
index written meanwhile raises `IndexChanged` and nothing is written.
"""

from __future__ import annotations

import hashlib
import os
import struct
import time
from dataclasses import dataclass
from pathlib import Path

_FIXED = 62  # stat data (40), object id (20), flags (2): an entry before its path
_EXTENDED = 0x4000
_NAME_MASK = 0x0FFF
_KNOWN = {b"TREE", b"REUC", b"UNTR", b"FSMN"}  # kept (TREE updated); others: use libgit2
_DROPPABLE = {b"EOIE", b"IEOT"}  # offsets into the entries: optional, dropped when changed
_MODES = {0o100644, 0o100755, 0o120000, 0o160000}


class IndexChanged(OSError):
    """Another git wrote the index after an unlocked `load`: nothing was written."""


@dataclass(frozen=True)
class Entry:
    """An index entry's object id (hex) and mode, as `pygit2.IndexEntry` has them."""

    id: str
    mode: int


class PatchedIndex:
    """The index of one work tree, held under `index.lock` from `load` to `write`/`close`
    (unlocked: from the check in `write` to the rename)."""

    def __init__(self, index_path: Path, lock_fd: int | None, data: bytes, version: int,
                 entries_end: int, extensions: list[tuple[bytes, bytes]],
                 skip_hash: bool) -> None:
        self.path = index_path
        self.lock = _lock_path(index_path)
        self._fd = lock_fd
        self._read = None if lock_fd is not None else data  # unlocked: checked at `write`
        self.locked_s = 0.0  # how long `index.lock` was held by this object
        self._locked_at = time.perf_counter()
        self._entries = bytearray(data[12:entries_end])
        self._count = struct.unpack(">I", data[8:12])[0]
        self._version = version
        self._extensions = extensions
        self._skip_hash = skip_hash
        self._changed: list[str] = []

    # ------------------------------------------------------------- reading
    @classmethod
    def load(cls, index_path: Path, locked: bool = True) -> PatchedIndex | None:
        """The index, locked (unless `locked=False`, see the module docstring); None when
        it is in a form only libgit2 should write (the lock is then released). Raises
        OSError when the lock is held (a git at work)."""
        lock = _lock_path(index_path)
        fd = _take(lock) if locked else None
        try:
            data = _read(index_path)
            found = _parse(data)
        except BaseException:
            _release(fd, lock)
            raise
        if found is None:
            _release(fd, lock)
            return None
        version, entries_end, extensions, skip_hash = found
        return cls(index_path, fd, data, version, entries_end, extensions, skip_hash)

    def _find(self, path: bytes) -> tuple[int, int] | None:
        """(start, end) of the entry (stage 0) for `path`; None if there is none."""
        buf, start = self._entries, 0
        while True:
            pos = buf.find(path + b"\0", start)
            if pos < 0:
                return None
            entry = self._entry_at(pos, path)
            if entry is not None:
                return entry
            start = pos + 1

    def _entry_at(self, name_pos: int, path: bytes) -> tuple[int, int] | None:
        """The entry whose path begins at `name_pos`, if one does (not a path's tail)."""
        for extra in ((0, 2) if self._version >= 3 else (0,)):
            head = name_pos - _FIXED - extra
            if head < 0:
                continue
            (flags,) = struct.unpack_from(">H", self._entries, head + 60)
            if bool(flags & _EXTENDED) != bool(extra):
                continue
            if (flags & _NAME_MASK) != min(len(path), _NAME_MASK) or (flags >> 12) & 3:
                continue
            if head > 0 and self._entries[head - 1] != 0:
                continue  # an entry ends with NUL padding
            mode = struct.unpack_from(">I", self._entries, head + 24)[0]
            if mode not in _MODES:
                continue
            return head, head + _entry_size(len(path), extra)
        return None

    def __getitem__(self, path: str) -> Entry:
        where = self._find(path.encode())
        if where is None:
            raise KeyError(path)
        start = where[0]
        mode = struct.unpack_from(">I", self._entries, start + 24)[0]
        return Entry(bytes(self._entries[start + 40:start + 60]).hex(), mode)

    # ------------------------------------------------------------- changing
    def add_blob(self, path: str, blob: str, stat: os.stat_result | None,
                 mode: int = 0o100644) -> None:
        """Point `path`'s entry at `blob` (stat data from `stat`, else zeros: git then
        looks at the file's content), adding the entry where it sorts if it is new."""
        raw = path.encode()
        values = (0, 0, 0, 0, 0, 0, mode, 0, 0, 0) if stat is None else (
            int(stat.st_ctime) & 0xFFFFFFFF, stat.st_ctime_ns % 1_000_000_000,
            int(stat.st_mtime) & 0xFFFFFFFF, stat.st_mtime_ns % 1_000_000_000,
            stat.st_dev & 0xFFFFFFFF, stat.st_ino & 0xFFFFFFFF, mode,
            stat.st_uid & 0xFFFFFFFF, stat.st_gid & 0xFFFFFFFF, stat.st_size & 0xFFFFFFFF)
        body = struct.pack(">10I20sH", *values, bytes.fromhex(blob), min(len(raw), _NAME_MASK))
        entry = body + raw + b"\0" * (_entry_size(len(raw), 0) - _FIXED - len(raw))
        where = self._find(raw)
        if where is not None:
            self._entries[where[0]:where[1]] = entry
        else:
            at = self._insertion_point(raw)
            self._entries[at:at] = entry
            self._count += 1
        self._changed.append(path)

    def remove(self, path: str) -> None:
        where = self._find(path.encode())
        if where is None:
            return
        del self._entries[where[0]:where[1]]
        self._count -= 1
        self._changed.append(path)

    def _insertion_point(self, raw: bytes) -> int:
        """Offset of the first entry whose path sorts after `raw` (entries walked from
        the first of its folder found, else from the start)."""
        folder = raw[:raw.rfind(b"/") + 1] if b"/" in raw else b""
        pos = self._first_in(folder) if folder else 0
        buf = self._entries
        while pos < len(buf):
            (flags,) = struct.unpack_from(">H", buf, pos + 60)
            extra = 2 if flags & _EXTENDED else 0
            name_at = pos + _FIXED + extra
            end = buf.index(b"\0", name_at)
            if bytes(buf[name_at:end]) > raw:
                return pos
            pos += _entry_size(end - name_at, extra)
        return pos

    def _first_in(self, folder: bytes) -> int:
        """Offset of an entry at or before the first one under `folder` (0 if unsure)."""
        start = 0
        while True:
            pos = self._entries.find(folder, start)
            if pos < 0:
                return 0
            # the path of the entry there may be longer than `folder`: find its NUL
            end = self._entries.find(b"\0", pos)
            if end > 0:
                entry = self._entry_at(pos, bytes(self._entries[pos:end]))
                if entry is not None:
                    return entry[0]
            start = pos + 1

    # ------------------------------------------------------------- writing
    def write(self) -> None:
        """Write the index (through `index.lock`, renamed over it) and release the lock.
        Unlocked: raises OSError when a git holds the lock, `IndexChanged` when one wrote
        the index since `load`."""
        out = bytearray(b"DIRC" + struct.pack(">II", self._version, self._count))
        out += self._entries
        for sig, payload in self._extensions:
            if sig in _DROPPABLE:
                continue
            if sig == b"TREE":
                payload = _invalidate(payload, self._changed)
            out += sig + struct.pack(">I", len(payload)) + payload
        out += b"\0" * 20 if self._skip_hash else hashlib.sha1(out).digest()
        if self._fd is None:
            assert self._read is not None, "written twice"
            self._fd = _take(self.lock)
            self._locked_at = time.perf_counter()
            if _read(self.path) != self._read:
                self.close()
                raise IndexChanged(f"{self.path} was written by another git meanwhile")
            self._read = None
        fd, self._fd = self._fd, None
        try:
            view = memoryview(out)
            while view:
                view = view[os.write(fd, view):]
        except BaseException:
            os.close(fd)
            os.unlink(self.lock)
            raise
        os.close(fd)
        os.replace(self.lock, self.path)
        self.locked_s += time.perf_counter() - self._locked_at

    def close(self) -> None:
        """Release the lock without writing (nothing changed, or a failure)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            os.unlink(self.lock)
            self.locked_s += time.perf_counter() - self._locked_at


def _lock_path(index_path: Path) -> Path:
    return index_path.with_name(index_path.name + ".lock")


def _take(lock: Path) -> int:
    """`index.lock`, made as git makes it (fails when it exists: a git at work)."""
    return os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)


def _release(fd: int | None, lock: Path) -> None:
    if fd is not None:
        os.close(fd)
        os.unlink(lock)


def _read(index_path: Path) -> bytes:
    try:
        return index_path.read_bytes()
    except FileNotFoundError:
        return b""


def _entry_size(name_len: int, extra: int) -> int:
    """Bytes of a v2/v3 entry: padded with 1-8 NULs to a multiple of 8."""
    return (_FIXED + extra + name_len + 8) & ~7


def _parse(data: bytes) -> tuple[int, int, list[tuple[bytes, bytes]], bool] | None:
    """(version, end of the entries, extensions, checksum skipped) of an index this module
    can patch, else None."""
    if len(data) < 32 or data[:4] != b"DIRC":
        return None
    version, count = struct.unpack(">II", data[4:12])
    if version not in (2, 3):
        return None
    body, trailer = data[:-20], data[-20:]
    skip_hash = trailer == b"\0" * 20
    if not skip_hash and hashlib.sha1(body).digest() != trailer:
        return None  # a damaged index: libgit2 says so in its words
    entries_end = _entries_end(body)
    if entries_end is None:
        return None
    extensions: list[tuple[bytes, bytes]] = []
    pos = entries_end
    while pos < len(body):
        sig = body[pos:pos + 4]
        (size,) = struct.unpack(">I", body[pos + 4:pos + 8])
        if sig not in _KNOWN and sig not in _DROPPABLE:
            return None
        extensions.append((sig, body[pos + 8:pos + 8 + size]))
        pos += 8 + size
    return version, entries_end, extensions, skip_hash


def _chains_to_end(body: bytes, pos: int) -> bool:
    """Whether extensions of known signatures start at `pos` and end where `body` does."""
    while pos < len(body):
        if pos + 8 > len(body) or body[pos:pos + 4] not in _KNOWN | _DROPPABLE:
            return False
        pos += 8 + struct.unpack(">I", body[pos + 4:pos + 8])[0]
    return pos == len(body)


def _entries_end(body: bytes) -> int | None:
    """Where the entries end and the extensions begin, found without walking 100k entries:
    the first place, after an entry's NUL padding, from which a chain of known extensions
    runs exactly to the checksum (None: there is more than this module knows).

    The extensions are a small tail of a big index, so they are looked for in a window at
    its end that grows until one of them starts right after what is an entry's end
    (`_entry_ends_at`: its flags name the path that fills it, its mode is a file's); a
    whole-body scan (searching ~10 MB once per signature: ~70 ms at 100k files) is left
    for an index that has no extensions or an odd one."""
    size, window = len(body), 1 << 16
    while True:
        lo = max(12, size - window)
        for at in _signatures_in(body, lo):
            if body[at - 1] == 0 and _entry_ends_at(body, at) and _chains_to_end(body, at):
                return at
        if lo == 12 or _entry_ends_at(body, size):
            break  # (the entries run to the end: no extensions)
        window *= 8
    for at in _signatures_in(body, 12):
        if body[at - 1] == 0 and _chains_to_end(body, at):
            return at
    if body[-1] == 0 or len(body) == 12:
        return len(body)  # no extensions
    return None


def _signatures_in(body: bytes, lo: int) -> list[int]:
    """Every place from `lo` on where a known extension's signature is, in order."""
    starts: list[int] = []
    for sig in _KNOWN | _DROPPABLE:
        at = body.find(sig, lo)
        while at >= 0:
            starts.append(at)
            at = body.find(sig, at + 1)
    return sorted(starts)


def _entry_ends_at(body: bytes, end: int) -> bool:
    """Whether an index entry (v2, or v3 with or without its extended flags) ends at
    `end`: NUL padding of 1-8 bytes, a path without NULs before it, and before that the
    fixed part, whose flags give that path's length and whose mode is a file's."""
    name_end = end
    while name_end > 12 and body[name_end - 1] == 0 and end - name_end < 8:
        name_end -= 1
    pad = end - name_end
    if not 1 <= pad <= 8 or body[name_end - 1] == 0:
        return False
    last_nul = body.rfind(b"\0", 12, name_end)
    for extra in (0, 2):
        length = (-(_FIXED + extra + pad)) % 8 or 8  # (path + fixed + pad: a multiple of 8)
        while length < _NAME_MASK:
            head = name_end - length - _FIXED - extra
            if head < 12 or name_end - length <= last_nul:
                break
            (flags,) = struct.unpack_from(">H", body, head + 60)
            if (flags & _NAME_MASK) == length and bool(flags & _EXTENDED) == bool(extra) \
                    and struct.unpack_from(">I", body, head + 24)[0] in _MODES:
                return True
            length += 8
    return False


def _invalidate(tree: bytes, paths: list[str]) -> bytes:
    """The `TREE` extension with every folder above one of `paths` marked invalid (entry
    count -1, no object id), as git's `cache_tree_invalidate_path` leaves it."""
    folders = {""}
    for path in paths:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            folders.add("/".join(parts[:i]))
    out = bytearray()
    pos = 0
    stack: list[tuple[str, int]] = []  # (folder path, subtrees still to read)
    while pos < len(tree):
        nul = tree.index(b"\0", pos)
        name = tree[pos:nul].decode("utf-8", "surrogateescape")
        lf = tree.index(b"\n", nul)
        count_s, sub_s = tree[nul + 1:lf].split(b" ")
        count, subtrees = int(count_s), int(sub_s)
        pos = lf + 1
        while stack and stack[-1][1] == 0:
            stack.pop()
        if stack:
            parent, left = stack[-1]
            stack[-1] = (parent, left - 1)
            full = f"{parent}/{name}" if parent else name
        else:
            full = name
        oid = b""
        if count >= 0:
            oid = tree[pos:pos + 20]
            pos += 20
        if full in folders and count >= 0:
            out += tree[nul - len(name.encode("utf-8", "surrogateescape")):nul] + b"\0"
            out += b"-1 %d\n" % subtrees
        else:
            out += tree[nul - len(name.encode("utf-8", "surrogateescape")):lf + 1] + oid
        stack.append((full, subtrees))
    return bytes(out)
