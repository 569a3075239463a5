"""Field-by-field merge of two edits of one task file: the git merge driver `aoi-task`.

Git calls `python -m aoi_git.store.task_merge %O %A %B %P` (see `aoi_git.store.clone_setup`)
whenever both sides of a merge, rebase or cherry-pick changed the same task file. Instead of text
conflict markers, the three YAML documents are merged key by key:

- a key changed on one side only takes that side (a removal counts as a change);
- changed on both sides to the same value: that value;
- `status` changed on both sides: the later state by `LIFECYCLE_ORDER`;
- lists (depends_on, labels, feedback, ...): base order without what either side
  removed, then ours' additions, then theirs' additions, without duplicates;
- `attempts`, `review_rounds` and the numbers in `cost`: the maximum;
- free text (`title`, `description`, `question`, `answer`) edited to two different
  texts: both are kept, with a line asking a person to choose;
- nested mappings (`result`, `budget`, ...): merged recursively with the same rules;
- any other scalar: the later writer.

The result is always a valid YAML mapping without conflict markers, so the daemon
can keep reading the file; the driver only gives up (a normal git conflict) when one
of the three versions is not a YAML mapping at all.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aoi_git.domain.model import LIFECYCLE_ORDER, Status
from aoi_git.errors import AoiError
from aoi_git.store import yamlio
from aoi_git.store.git import GitError, git
from aoi_git.store.task_merge_format import render_like

__all__ = [
    "ATTENTION_LINE",
    "MergeOutcome",
    "main",
    "merge_task_texts",
    "run_merge_driver",
]

ATTENTION_LINE = "[aoi merge: two edits of this field were kept; keep one and delete this line]"

FREE_TEXT_FIELDS = frozenset({"title", "description", "question", "answer"})
COUNTER_FIELDS = frozenset({"attempts", "review_rounds"})
MAX_NUMBER_MAPPINGS = frozenset({"cost"})


class _Missing:
    """The value of a key a document does not have."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<missing>"


MISSING = _Missing()


@dataclass(slots=True)
class MergeOutcome:
    """The merged file, and the fields a person should look at (both edits kept)."""

    text: bytes
    needs_attention: list[str] = field(default_factory=list)
    clean: bool = True


# --------------------------------------------------------------------------- YAML I/O


class _TaskDumper(yaml.CSafeDumper):
    """CSafeDumper that writes multi-line text as `|` blocks a person can edit."""


def _represent_str(dumper: yaml.representer.SafeRepresenter, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_TaskDumper.add_representer(str, _represent_str)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _parse(data: bytes | None, side: str) -> dict[Any, Any]:
    if data is None:
        return {}
    try:
        doc = yamlio.load(data)
    except yamlio.YamlError as exc:
        raise AoiError(f"the {side} version is not valid YAML: {_one_line(str(exc))}") from exc
    if doc is None and side == "base":
        return {}  # no common ancestor: git hands the driver an empty file
    if not isinstance(doc, dict):
        kind = "empty" if doc is None else type(doc).__name__
        raise AoiError(f"the {side} version is not a YAML mapping (it is {kind})")
    return doc


def _written_by_aoi(data: bytes, doc: Mapping[Any, Any]) -> bool:
    """Whether `data` is exactly what aoi writes for `doc` (no person's formatting)."""
    body = data.split(b"\n", 1)[1] if data.startswith(b"# yaml-language-server:") else data
    return body == yamlio.dump(dict(doc))


def _dump(doc: Mapping[Any, Any]) -> bytes:
    text = yaml.dump(
        dict(doc),
        Dumper=_TaskDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
    )
    return text.encode("utf-8")


# --------------------------------------------------------------------------- merging


def _same(a: Any, b: Any) -> bool:
    """Equality as YAML sees it: `true` is not `1`, mappings and lists compare deeply."""
    if a is MISSING or b is MISSING:
        return a is b
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping | list) or isinstance(b, Mapping | list):
        return False
    try:
        return bool(a == b)
    except Exception:  # pragma: no cover - exotic YAML types
        return False


def _contains(items: Sequence[Any], value: Any) -> bool:
    return any(_same(item, value) for item in items)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _status_rank(value: Any) -> int | None:
    try:
        return LIFECYCLE_ORDER[Status(value)]
    except (ValueError, TypeError):
        return None


def _join_texts(ours: str, theirs: str) -> str:
    return f"{ours.rstrip(chr(10))}\n\n{ATTENTION_LINE}\n\n{theirs}"


class _Merger:
    def __init__(self, *, ours_is_later: bool) -> None:
        self.ours_is_later = ours_is_later
        self.needs_attention: list[str] = []

    def merge_mapping(
        self,
        base: Mapping[Any, Any],
        ours: Mapping[Any, Any],
        theirs: Mapping[Any, Any],
        path: tuple[str, ...],
    ) -> dict[Any, Any]:
        keys = list(ours) + [k for k in theirs if k not in ours]
        out: dict[Any, Any] = {}
        for key in keys:
            value = self.merge_value(
                base.get(key, MISSING),
                ours.get(key, MISSING),
                theirs.get(key, MISSING),
                (*path, str(key)),
            )
            if value is not MISSING:
                out[key] = value
        return out

    def merge_value(self, base: Any, ours: Any, theirs: Any, path: tuple[str, ...]) -> Any:
        if _same(ours, theirs):
            return ours
        if _same(ours, base):
            return theirs
        if _same(theirs, base):
            return ours
        # Both sides changed the key, to different values.
        if ours is MISSING:
            return theirs  # an edit beats a removal: nothing anyone wrote is lost
        if theirs is MISSING:
            return ours
        if isinstance(ours, Mapping) and isinstance(theirs, Mapping):
            sub_base = base if isinstance(base, Mapping) else {}
            return self.merge_mapping(sub_base, ours, theirs, path)
        if isinstance(ours, list) and isinstance(theirs, list):
            return _merge_lists(base if isinstance(base, list) else [], ours, theirs)
        name = path[-1]
        top_level = len(path) == 1
        if top_level and name == "status":
            ours_rank, theirs_rank = _status_rank(ours), _status_rank(theirs)
            if ours_rank is not None and theirs_rank is not None:
                return ours if ours_rank > theirs_rank else theirs
        if top_level and name in COUNTER_FIELDS and _is_number(ours) and _is_number(theirs):
            return max(ours, theirs)
        in_max_mapping = len(path) > 1 and path[0] in MAX_NUMBER_MAPPINGS
        if in_max_mapping and _is_number(ours) and _is_number(theirs):
            return max(ours, theirs)
        if top_level and name in FREE_TEXT_FIELDS:
            if isinstance(ours, str) and isinstance(theirs, str) and ours and theirs:
                self.needs_attention.append(".".join(path))
                return _join_texts(ours, theirs)
            if isinstance(ours, str) and ours and not theirs:
                return ours  # one side cleared the text, the other rewrote it: keep the text
            if isinstance(theirs, str) and theirs and not ours:
                return theirs
        return ours if self.ours_is_later else theirs


def _merge_lists(base: list[Any], ours: list[Any], theirs: list[Any]) -> list[Any]:
    """Base order minus what either side removed, then ours' additions, then theirs'."""
    out = [item for item in base if _contains(ours, item) and _contains(theirs, item)]
    for side in (ours, theirs):
        for item in side:
            if not _contains(base, item) and not _contains(out, item):
                out.append(item)
    return out


def merge_task_texts(
    base: bytes | None, ours: bytes, theirs: bytes, *, ours_is_later: bool
) -> MergeOutcome:
    """Merge two edits of one task file field by field (see the module docstring).

    `base` is the common ancestor (None or empty when there is none); `ours_is_later`
    decides plain scalars both sides changed. Raises `AoiError` when a version is not
    a YAML mapping.
    """
    base_doc = _parse(base, "base")
    ours_doc = _parse(ours, "ours")
    theirs_doc = _parse(theirs, "theirs")
    merger = _Merger(ours_is_later=ours_is_later)
    merged = merger.merge_mapping(base_doc, ours_doc, theirs_doc, ())
    # written in the shape of the side a person formatted (ours, unless only theirs was)
    shaped_text, shaped_doc = ((theirs, theirs_doc) if _written_by_aoi(ours, ours_doc)
                               and not _written_by_aoi(theirs, theirs_doc)
                               else (ours, ours_doc))
    text = render_like(shaped_text, shaped_doc, merged, _same) if shaped_text.strip() else None
    return MergeOutcome(
        text=text if text is not None else _dump(merged),
        needs_attention=list(merger.needs_attention),
        clean=not merger.needs_attention,
    )


# --------------------------------------------------------------------------- git driver


def _git(*args: str) -> str | None:
    """git's output in the merge's work tree (where git runs the driver), None on failure."""
    try:
        out = git(*args, cwd=".", timeout=30)
    except GitError:
        return None
    return out.strip() or None


def _commit(rev: str) -> str | None:
    return _git("rev-parse", "-q", "--verify", f"{rev}^{{commit}}")


def _theirs_commit() -> str | None:
    """The commit being merged in. Git writes MERGE_HEAD & co. only after the merge,
    so while the driver runs the answer usually comes from the environment git sets up
    (GITHEAD_<sha> during `git merge`) or from the sequencer's state (`git rebase`)."""
    for ref in ("MERGE_HEAD", "REBASE_HEAD", "CHERRY_PICK_HEAD"):
        sha = _commit(ref)
        if sha:
            return sha
    for name in sorted(os.environ):
        if name.startswith("GITHEAD_"):
            sha = _commit(name[len("GITHEAD_") :])
            if sha:
                return sha
    git_dir = _git("rev-parse", "--git-dir")
    if git_dir is None:
        return None
    done = Path(git_dir, "rebase-merge", "done")
    try:
        lines = [ln for ln in done.read_text().splitlines() if ln.strip() and ln[0] != "#"]
    except OSError:
        lines = []
    if lines:
        for word in lines[-1].split()[1:]:
            if len(word) >= 7 and all(c in "0123456789abcdef" for c in word.lower()):
                sha = _commit(word)
                if sha:
                    return sha
    try:
        original = Path(git_dir, "rebase-apply", "original-commit").read_text().strip()
    except OSError:
        original = ""
    return _commit(original) if original else None


def _written_at(commit: str, file_path: str) -> int | None:
    """When `file_path` was last written on the side ending at `commit`.

    Author time, which rebase and cherry-pick keep, where committer time would make
    every commit replayed by `git pull --rebase` look newest."""
    stamp = _git("log", "-1", "--format=%at", commit, "--", file_path) or _git(
        "log", "-1", "--format=%at", commit
    )
    try:
        return int(stamp) if stamp else None
    except ValueError:
        return None


def _ours_is_later(file_path: str) -> bool:
    ours = _commit("HEAD")
    theirs = _theirs_commit()
    if ours is None or theirs is None:
        return False
    ours_time, theirs_time = _written_at(ours, file_path), _written_at(theirs, file_path)
    if ours_time is None or theirs_time is None:
        return False
    return ours_time > theirs_time


def _leave_text_conflict(base_path: str, ours_path: str, theirs_path: str) -> None:
    """Fallback: the usual line-based merge with conflict markers, as git would do."""
    # If git cannot run, ours stays in place; git still reports the path as conflicted.
    with contextlib.suppress(GitError):
        git("merge-file", "-L", "ours", "-L", "base", "-L", "theirs",
            ours_path, base_path, theirs_path, cwd=".", check=False, timeout=30)


def run_merge_driver(base_path: str, ours_path: str, theirs_path: str, file_path: str) -> int:
    """The `aoi-task` merge driver: merge the blobs git put in the three temp files.

    Writes the result into `ours_path` and returns 0, also when a free-text field
    kept both edits (marked in the text). Returns 1, with one line on stderr, when a
    version cannot be parsed: the file is then left as an ordinary text conflict.
    """
    try:
        base = Path(base_path).read_bytes()
        ours = Path(ours_path).read_bytes()
        theirs = Path(theirs_path).read_bytes()
        outcome = merge_task_texts(
            base or None, ours, theirs, ours_is_later=_ours_is_later(file_path)
        )
        Path(ours_path).write_bytes(outcome.text)
    except Exception as exc:  # any failure must become a plain conflict
        reason = str(exc) if isinstance(exc, AoiError) else f"{type(exc).__name__}: {exc}"
        print(
            f"aoi merge: {file_path}: {_one_line(reason)}; left as a conflict to resolve by hand",
            file=sys.stderr,
        )
        _leave_text_conflict(base_path, ours_path, theirs_path)
        return 1
    if outcome.needs_attention:
        fields = ", ".join(outcome.needs_attention)
        print(
            f"aoi merge: {file_path}: both edits of {fields} were kept; keep one of each",
            file=sys.stderr,
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 4:
        print("usage: python -m aoi_git.store.task_merge BASE OURS THEIRS PATH", file=sys.stderr)
        return 2
    return run_merge_driver(*args)


if __name__ == "__main__":
    sys.exit(main())
