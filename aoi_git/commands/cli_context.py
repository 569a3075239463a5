"""What every command needs: the org root, its store, the acting person.

Its imports are the ones every command pays for, so the store and the org are imported
when a command first asks for them."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aoi_git.domain.model import Actor
from aoi_git.store.git import find_org_root, git

if TYPE_CHECKING:
    from aoi_git.domain.task_rows import TaskRows
    from aoi_git.org.organisation import Org
    from aoi_git.org.task_lookup import Files, Found
    from aoi_git.store.org_store import Store


@dataclass
class App:
    cwd: Path

    @functools.cached_property
    def root(self) -> Path:
        return find_org_root(self.cwd)

    @functools.cached_property
    def store(self) -> Store:
        from aoi_git.store.org_store import Store

        return Store(self.root)

    def org(self) -> Org:
        from aoi_git.org.organisation import load_org

        org = load_org(self.store)
        self.store.save_cache()
        return org

    def open_rows(self) -> TaskRows:
        """The task rows at HEAD for a question about open tasks: read from the task
        cache without pygit2 or the org when the cache describes HEAD's `tasks/` (git
        names that tree), else those of the loaded org (which brings the cache along)."""
        from aoi_git.store.task_cache_file import read_index

        tree = git("rev-parse", "-q", "--verify", "HEAD:tasks", cwd=self.root,
                   check=False).strip()
        cache = self.root / ".aoi" / "cache"
        try:
            read = read_index(cache / "tasks.pickle", cache / "tasks.delta.pickle")
        except Exception:  # a corrupt cache: the org's load rebuilds it
            read = None
        if tree and read is not None and read.root_tree == tree:
            return read.rows
        return self.org().rows

    def task(self, prefix: str, view: Files | None = None) -> Found:
        """The task an id or a unique prefix names at HEAD (or in `view`), and the path of
        its file: its one file read where aoi saves it (see `task_lookup`), the org loaded
        only when that cannot tell (as `Org.task` answers, errors included)."""
        from aoi_git.org.task_lookup import Found, resolve

        if view is not None:
            found = resolve(view, prefix)
        else:  # git's cat-file: no pygit2 to import for one file
            from aoi_git.store.cat_view import CatFileView

            cat = CatFileView(self.root)
            try:
                found = resolve(cat, prefix)
            finally:
                cat.close()
        if found is not None:
            return found
        org = self.org()
        t = org.task(prefix)
        path = org.path_of(t.id)
        return Found(t, path, self.store.read(path) or b"")

    @functools.cached_property
    def person(self) -> Actor:
        """The acting person under their aoi.yaml id (`aoi_git.domain.people`)."""
        from aoi_git.org.people import acting_person

        name = git("config", "user.name", cwd=self.root, check=False).strip()
        return acting_person(self.store.head(), name, self.email)

    @functools.cached_property
    def email(self) -> str:
        """The acting person's git email (matched to aoi.yaml's `humans` for authority)."""
        return git("config", "user.email", cwd=self.root, check=False).strip()
