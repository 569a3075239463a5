"""The org's allowed signers (`keys/allowed_signers`): who may sign its commits.

A host is the principal `host:<id>`, a person their e-mail address (a human id of aoi.yaml
stands for its `email`). Adding or removing a key is one commit, which a server accepts
only when it is signed by a key the org lists already (see `aoi_git.org.signatures`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from aoi_git.domain.model import Actor
from aoi_git.errors import AoiError
from aoi_git.org.organisation import Org
from aoi_git.store import signing, sshsig
from aoi_git.store.head_view import HeadView
from aoi_git.store.org_store import Change, Store
from aoi_git.store.trailers import Message

_HOST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_EMAIL = re.compile(r"[^\s,@\"]+@[^\s,@\"]+")
HEADER = ("# Who may sign this organisation's commits (ssh-keygen ALLOWED SIGNERS); "
          "`aoi keys add` adds a host or a person.\n")


@dataclass(frozen=True)
class Listed:
    """One key of the list, for `aoi keys list`."""

    principals: tuple[str, ...]
    fingerprint: str
    this_host: bool


def principal_of(org: Org, who: str) -> str:
    """`host:<id>`, an e-mail address, or a human of aoi.yaml (their e-mail)."""
    if who.startswith(signing.HOST_PREFIX):
        if not _HOST_ID.fullmatch(who.removeprefix(signing.HOST_PREFIX)):
            raise AoiError(f"{who!r} is not host:<id> (letters, digits, '.', '_', '-')")
        return who
    if _EMAIL.fullmatch(who):
        return who
    human = org.config.humans.get(who)
    if human is None:
        raise AoiError(f"{who!r} is neither host:<id>, an e-mail address nor a human of "
                       "aoi.yaml")
    if not _EMAIL.fullmatch(human.email):
        raise AoiError(f"aoi.yaml gives {who} no e-mail: add humans.{who}.email, or name "
                       "the person by their e-mail")
    return human.email


def read_key(text: str) -> sshsig.PublicKey:
    """A public key from a `.pub` file's path or its line."""
    line = text
    if not text.lstrip().startswith(("ssh-", "ecdsa-")):
        path = Path(text).expanduser()
        try:
            line = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise AoiError(f"cannot read the public key {path}: {exc.strerror}") from None
    try:
        return sshsig.PublicKey.parse(line.strip().splitlines()[0] if line.strip() else "")
    except sshsig.SigFormatError as exc:
        raise AoiError(f"{exc} (give a .pub file or its `ssh-ed25519 AAAA...` line)") from None


def default_key(principal: str, person_key: str | None) -> sshsig.PublicKey:
    """The key `aoi keys add PRINCIPAL` means without KEY: this host's for this host's
    principal, the person's git `user.signingkey` for a person."""
    if principal.startswith(signing.HOST_PREFIX):
        if principal != signing.host_principal():
            raise AoiError(f"give the key of {principal}: the line of its "
                           f"~/.config/aoi/keys/{signing.HOST_KEY_NAME}.pub "
                           f"(this host is {signing.host_principal()})")
        signer, _ = signing.ensure_host_key()
        return signer.public
    if not person_key:
        raise AoiError(f"give the key of {principal}: a .pub file or its line (your git "
                       "config sets no user.signingkey)")
    value = person_key.removeprefix("key::")
    if value.startswith(("ssh-", "ecdsa-")):
        return read_key(value)
    path = Path(value).expanduser()
    return read_key(str(path if path.suffix == ".pub" else path.with_name(path.name + ".pub")))


def listed(view: HeadView) -> list[Listed]:
    me = signing.host_signer()
    return [Listed(a.principals, a.key.fingerprint, me is not None and a.key == me.public)
            for a in signing.allowed_signers(view)]


def add_key(store: Store, principal: str, key: sshsig.PublicKey, actor: Actor) -> str | None:
    """Commit `principal`'s key into the list; None when it is there already."""
    def build(view: HeadView) -> Change | None:
        text = (view.read(signing.ALLOWED_SIGNERS) or HEADER.encode()).decode("utf-8",
                                                                             "replace")
        signers, _ = sshsig.parse_allowed_signers(text)
        if any(principal in a.principals and a.key == key for a in signers):
            return None
        text = text if text.endswith("\n") or not text else text + "\n"
        text += sshsig.allowed_signer_line(principal, key) + "\n"
        msg = Message([], str(actor), subject=f"aoi: keys: add {principal} ({key.fingerprint})")
        return Change({signing.ALLOWED_SIGNERS: text.encode()}, msg.render())
    return store.transact(build, actor=str(actor))


def remove_key(store: Store, principal: str, actor: Actor) -> str | None:
    """Commit the list without `principal`'s lines; None when it has none."""
    def build(view: HeadView) -> Change | None:
        data = view.read(signing.ALLOWED_SIGNERS)
        if data is None:
            return None
        lines = data.decode("utf-8", "replace").splitlines(keepends=True)
        signers, _ = sshsig.parse_allowed_signers("".join(lines))
        drop = {a.line for a in signers if principal in a.principals}
        if not drop:
            return None
        kept = "".join(ln for n, ln in enumerate(lines, 1) if n not in drop)
        msg = Message([], str(actor), subject=f"aoi: keys: remove {principal}")
        return Change({signing.ALLOWED_SIGNERS: kept.encode()}, msg.render())
    return store.transact(build, actor=str(actor))
