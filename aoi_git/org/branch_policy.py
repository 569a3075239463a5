"""Which changes of an agent's branch the organisation refuses before anyone reviews it.

An agent changes the org only through its result (aoi writes the files); its branch holds
the work product and nothing else. `refusals` is a pure function of the branch's changes
(`aoi_git.store.branch_changes`: every path, both sides of a rename, with modes) and
returns one `Refusal` per path it refuses, with the reason:

- a symlink or a gitlink (submodule entry) on either side: either can point a checkout,
  a merge or a tool outside the work product;
- a path with a component named `.git*` (`.gitattributes` holds the task merge driver,
  `.gitignore` could hide the org's files, `.gitmodules`, `.github/`, a nested `.git`);
- when the workspace is the org repository: `aoi.yaml` and everything under `tasks/`,
  `employees/`, `talents/`, `sops/`, `retros/`, `reviews/`, `schemas/`, `keys/` (who may
  sign) and `.aoi/`;
- a path matching one of `workspace.protected` in `aoi.yaml` (fnmatch globs, where `*`
  crosses `/`; a glob ending in `/` protects that folder).

Names are compared case-insensitively, so `AOI.yaml` or `Tasks/` on a case-insensitive
checkout is refused too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from aoi_git.store.branch_changes import MODE_GITLINK, MODE_SYMLINK, BranchCommit, PathChange
from aoi_git.store.trailers import parse_trailers

ORG_FOLDERS = ("tasks", "employees", "talents", "sops", "retros", "reviews", "schemas", "keys",
               ".aoi")
ORG_FILES = ("aoi.yaml",)
MAX_NAMED = 20  # refusals named in one feedback text; the rest are counted


@dataclass(frozen=True, slots=True)
class Refusal:
    path: str
    why: str

    def __str__(self) -> str:
        return f"{self.path} ({self.why})"


def _path_refusal(path: str, org_state: bool, protected: Sequence[str]) -> str | None:
    parts = path.split("/")
    lowered = [p.lower() for p in parts]
    if any(p.startswith(".git") for p in lowered):
        return "git's own files decide how the repository behaves"
    if org_state:
        if lowered[0] in ORG_FILES and len(parts) == 1:
            return "the org's configuration"
        if len(parts) > 1 and lowered[0] in ORG_FOLDERS:
            return f"org state under {parts[0]}/ changes only through a result"
    for glob in protected:
        if glob.endswith("/") and (path + "/").startswith(glob):
            return f"protected by workspace.protected {glob!r}"
        if fnmatchcase(path, glob):
            return f"protected by workspace.protected {glob!r}"
    return None


def refusals(changes: Iterable[PathChange], *, org_state: bool,
             protected: Sequence[str] = ()) -> list[Refusal]:
    """The refused paths of `changes`, in order, each once with its first reason.

    `org_state`: the workspace is the org repository, so the org's own files are refused;
    `protected`: the globs of `workspace.protected`."""
    out: dict[str, Refusal] = {}
    for change in changes:
        kind = None
        if MODE_SYMLINK in (change.old_mode, change.new_mode):
            kind = "a symlink"
        elif MODE_GITLINK in (change.old_mode, change.new_mode):
            kind = "a gitlink (submodule)"
        for path in change.paths:
            if path in out:
                continue
            why = f"{kind}: agents commit plain files only" if kind else \
                _path_refusal(path, org_state, protected)
            if why is not None:
                out[path] = Refusal(path, why)
    return list(out.values())


def trailer_refusals(commits: Iterable[BranchCommit],
                     made_by_aoi: Callable[[BranchCommit], bool]) -> list[Refusal]:
    """The branch's commits whose messages carry `Aoi-*` trailers but that aoi did not
    make (`made_by_aoi`: signed by a host the org lists): the audit trail reads those
    trailers, and a server refuses such a commit as a forgery, with every push after it."""
    out: list[Refusal] = []
    for commit in commits:
        if any(k.startswith("Aoi-") for k, _ in parse_trailers(commit.message)) and \
                not made_by_aoi(commit):
            out.append(Refusal(f"commit {commit.sha[:10]}",
                               "its message ends in Aoi-* trailers, which only aoi writes: "
                               "reword it"))
    return out


def feedback(refused: Sequence[Refusal]) -> str:
    """The text an agent reads when its branch is refused: every refused path, named."""
    named = "; ".join(str(r) for r in refused[:MAX_NAMED])
    more = f"; and {len(refused) - MAX_NAMED} more" if len(refused) > MAX_NAMED else ""
    text = ("refused: your branch changes paths agents may not change (the org changes "
            f"through your result only): {named}{more}. Revert those paths on your branch "
            "(a rename counts as both of its paths).")
    if any(r.path.startswith("commit ") for r in refused):
        text += " Reword the commits named (git rebase -i), keeping their changes."
    return text
