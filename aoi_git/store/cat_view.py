"""The files of HEAD read through one `git cat-file --batch` process, without pygit2.

A one-shot command about one task reads a blob or two and lists a folder; importing
pygit2 for that costs more than the whole read (~60 ms against a few). The commit is
resolved once, so every read is of the same commit, as with a `HeadView`.
"""

from __future__ import annotations

from pathlib import Path

from aoi_git.store.git import CatFile


class CatFileView:
    """Read-only access to the files of HEAD (`read`, `names`, as `HeadView` has them)."""

    def __init__(self, root: Path) -> None:
        self._cat = CatFile(root)
        self._tree: str | None = None
        head = self._cat.get("HEAD")
        if head is not None and head[0] == "commit":
            first = head[1].split(b"\n", 1)[0]
            if first.startswith(b"tree "):
                self._tree = first[5:].decode()

    def _get(self, path: str) -> tuple[str, bytes] | None:
        if self._tree is None:
            return None
        return self._cat.get(f"{self._tree}:{path}")

    def read(self, path: str) -> bytes | None:
        got = self._get(path)
        return got[1] if got is not None and got[0] == "blob" else None

    def names(self, path: str) -> list[str]:
        """Names of the entries of a folder (empty if missing or not a folder)."""
        got = self._get(path)
        if got is None or got[0] != "tree":
            return []
        raw, names, i = got[1], [], 0
        width = len(self._tree or "") // 2  # bytes of an object id (SHA-1 or SHA-256)
        while i < len(raw):
            space = raw.index(b" ", i)
            nul = raw.index(b"\0", space)
            names.append(raw[space + 1:nul].decode("utf-8", "surrogateescape"))
            i = nul + 1 + width
        return names

    def close(self) -> None:
        self._cat.close()
