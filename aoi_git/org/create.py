"""`aoi init`: create an org repository, or wire an existing clone's hooks and merge driver."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

from aoi_git.errors import AoiError
from aoi_git.resources import resource_dir
from aoi_git.store.git import git


def is_org(path: Path) -> bool:
    return (path / "aoi.yaml").is_file() and (path / ".git").exists()


def wire_clone(path: Path) -> list[str]:
    """Install hooks, merge driver and aoi.python into a clone (clones inherit none)."""
    from aoi_git.store.clone_setup import install_hooks, install_merge_driver

    notes = install_hooks(path, resource_dir("hooks"))
    if install_merge_driver(path):
        notes.append(".gitattributes: added the aoi-task merge driver line")
    git("config", "--local", "aoi.python", sys.executable, cwd=path)
    return notes


def _founder_is_ceo(cfg: Path, cwd: Path) -> None:
    """The person running `aoi init` is the CEO: their git name and email go into the
    template's `humans.ceo` (what the review authority matches a person by)."""
    person = git("config", "user.name", cwd=cwd, check=False).strip()
    email = git("config", "user.email", cwd=cwd, check=False).strip()
    text = cfg.read_text()
    block = "  ceo:\n    name: CEO\n    # email: ceo@example.com\n"
    if not person or block not in text:
        return
    lines = f"  ceo:\n    name: {json.dumps(person)}\n" + (
        f"    email: {json.dumps(email)}\n" if email else "    # email: ceo@example.com\n")
    cfg.write_text(text.replace(block, lines, 1))


def init_org(path: Path, *, name: str | None = None, template: Path | None = None) -> list[str]:
    path = path.resolve()
    if path.exists() and is_org(path):
        notes = wire_clone(path)
        return [f"{path} is already an aoi org: installed git hooks and merge driver", *notes]
    if path.exists() and any(path.iterdir()):
        raise AoiError(
            f"{path} is not empty and is not an aoi org (no aoi.yaml + .git): "
            "choose a new or empty folder"
        )
    path.mkdir(parents=True, exist_ok=True)
    src = template or resource_dir("org_template")
    shutil.copytree(src, path, dirs_exist_ok=True)
    shutil.copytree(resource_dir("schemas"), path / "schemas", dirs_exist_ok=True)
    for folder in ("tasks", "retros", "reviews", "sops"):
        (path / folder).mkdir(exist_ok=True)
    _founder_is_ceo(path / "aoi.yaml", path)
    if name:
        cfg = path / "aoi.yaml"
        text = cfg.read_text()
        text = re.sub(r"(?m)^name:.*$", f"name: {name}", text, count=1)
        cfg.write_text(text)
    git("init", "-q", "-b", "main", cwd=path)
    notes = wire_clone(path)
    git("add", "-A", cwd=path)
    env: dict[str, str] = {}
    if not git("config", "user.name", cwd=path, check=False).strip():
        env.update(GIT_AUTHOR_NAME="aoi", GIT_COMMITTER_NAME="aoi")
    if not git("config", "user.email", cwd=path, check=False).strip():
        env.update(GIT_AUTHOR_EMAIL="aoi@localhost", GIT_COMMITTER_EMAIL="aoi@localhost")
    git("commit", "-q", "--no-verify", "-m", "aoi: found the organisation", cwd=path,
        env={**env, "AOI_SKIP_HOOK": "1"} if env else None)
    return [f"created an aoi org in {path}", *notes]
