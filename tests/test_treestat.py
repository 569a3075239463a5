"""tree_snapshot: a run that changed nothing is told apart from any change, racy ones included."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from aoi_git.store import tree_snapshot


def tree(root: Path) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "src" / "a.py").write_text("a = 1\n")
    (root / "README").write_text("hello\n")
    (root / ".git").write_text("gitdir: elsewhere\n")
    return root


def same_size_rewrite(root: Path) -> None:  # within the same clock tick, most likely
    (root / "README").write_text("HELLO\n")


CHANGES: dict[str, Callable[[Path], None]] = {
    "rewrite, same size, same tick": same_size_rewrite,
    "new file": lambda r: (r / "src" / "b.py").write_text(""),
    "new empty folder": lambda r: (r / "build").mkdir(),
    "delete": lambda r: (r / "src" / "a.py").unlink(),
    "chmod": lambda r: (r / "README").chmod(0o755),
    "symlink": lambda r: (r / "link").symlink_to("README"),
    "replace by rename": lambda r: (r / "tmp").write_text("x") or os.replace(
        r / "tmp", r / "README"),
}


@pytest.mark.parametrize("change", list(CHANGES), ids=list(CHANGES))
def test_every_change_is_seen(tmp_path: Path, change: str) -> None:
    root = tree(tmp_path / "wt")
    snap = tree_snapshot.take(root, skip=frozenset({".git"}))
    assert snap is not None
    CHANGES[change](root)
    assert not tree_snapshot.unchanged(root, snap, skip=frozenset({".git"}))


def test_an_untouched_tree_and_skipped_names(tmp_path: Path) -> None:
    root = tree(tmp_path / "wt")
    snap = tree_snapshot.take(root, skip=frozenset({".git"}))
    assert snap is not None and "README" in snap.racy  # just written: hashed as well
    (root / "src" / "a.py").read_text()  # reading changes nothing
    (root / ".git").write_text("gitdir: moved\n")  # skipped
    assert tree_snapshot.unchanged(root, snap, skip=frozenset({".git"}))


def test_extra_files_outside_the_tree(tmp_path: Path) -> None:
    root = tree(tmp_path / "wt")
    index = tmp_path / "index"
    index.write_bytes(b"1234")
    snap = tree_snapshot.take(root, skip=frozenset({".git"}), extra=(index,))
    assert snap is not None
    assert tree_snapshot.unchanged(root, snap, skip=frozenset({".git"}), extra=(index,))
    index.write_bytes(b"5678")  # same size, same tick: caught by its hash
    assert not tree_snapshot.unchanged(root, snap, skip=frozenset({".git"}), extra=(index,))


def test_too_big_to_snapshot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tree(tmp_path / "wt")
    monkeypatch.setattr(tree_snapshot, "LIMIT", 2)
    assert tree_snapshot.take(root) is None
    monkeypatch.setattr(tree_snapshot, "LIMIT", 100)
    monkeypatch.setattr(tree_snapshot, "RACY_BYTES", 3)
    assert tree_snapshot.take(root) is None
