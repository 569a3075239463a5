"""What every command needs: the org root, its store, the acting person."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from aoi_git.domain.model import Actor
from aoi_git.org.organisation import Org, load_org
from aoi_git.org.people import acting_person
from aoi_git.store.git import find_org_root, git
from aoi_git.store.org_store import Store


@dataclass
class App:
    cwd: Path

    @functools.cached_property
    def root(self) -> Path:
        return find_org_root(self.cwd)

    @functools.cached_property
    def store(self) -> Store:
        return Store(self.root)

    def org(self) -> Org:
        org = load_org(self.store)
        self.store.save_cache()
        return org

    @functools.cached_property
    def person(self) -> Actor:
        """The acting person under their aoi.yaml id (`aoi_git.domain.people`)."""
        name = git("config", "user.name", cwd=self.root, check=False).strip()
        return acting_person(self.store.head(), name, self.email)

    @functools.cached_property
    def email(self) -> str:
        """The acting person's git email (matched to aoi.yaml's `humans` for authority)."""
        return git("config", "user.email", cwd=self.root, check=False).strip()
