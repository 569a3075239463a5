"""`aoi init`: create an org repository, or wire an existing clone's hooks and merge driver."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

from aoi_git.errors import AoiError
from aoi_git.org.keys import HEADER
from aoi_git.resources import resource_dir
from aoi_git.store import signing, sshsig
from aoi_git.store.git import git
from aoi_git.store.org_store import Store


def is_org(path: Path) -> bool:
    return (path / "aoi.yaml").is_file() and (path / ".git").exists()


def wire_clone(path: Path) -> list[str]:
    """Install hooks, merge driver and aoi.python into a clone (clones inherit none)."""
    from aoi_git.store.clone_setup import install_hooks, install_merge_driver

    notes = install_hooks(path, resource_dir("hooks"))
    if install_merge_driver(path):
        notes.append(".gitattributes: added the aoi-task merge driver line")
    git("config", "--local", "aoi.python", sys.executable, cwd=path)
    notes += _host_key(path)
    return notes


def _host_key(path: Path) -> list[str]:
    """Make this host's signing key where there is none, point `git log --show-signature`
    at the org's allowed signers, and say so when the org does not list this host."""
    signer, made = signing.ensure_host_key()
    signing.configure_verification(path)
    notes = [f"made this host's signing key {signer.path}"] if made else []
    listed = path / signing.ALLOWED_SIGNERS
    if (path / "aoi.yaml").is_file() and not any(
            a.key == signer.public for a in sshsig.parse_allowed_signers(
                listed.read_text() if listed.is_file() else "")[0]):
        notes.append(f"this host's key is not in {signing.ALLOWED_SIGNERS}: register it "
                     f"with `aoi keys add {signing.host_principal()}`, signed by a key the "
                     "org lists, so a server accepts this daemon's commits")
    return notes


def _list_host_key(path: Path) -> None:
    signer, _ = signing.ensure_host_key()
    listed = path / signing.ALLOWED_SIGNERS
    listed.parent.mkdir(parents=True, exist_ok=True)
    listed.write_text(HEADER + sshsig.allowed_signer_line(signing.host_principal(), signer.public)
                      + "\n")


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
    _list_host_key(path)
    notes = wire_clone(path)
    git("add", "-A", cwd=path)
    store = Store(path)
    author, committer = store.signature(None)
    signing.commit_index(path, "aoi: found the organisation\n", author, committer,
                         store.signer_for(None))
    return [f"created an aoi org in {path}", *notes]
