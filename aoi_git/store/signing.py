"""Signed commits: the keys aoi signs with, signing a commit in process, and reading who
signed one.

Every commit aoi makes carries git's SSH signature (`gpg.format ssh`, a `gpgsig` header
holding an SSHSIG of the commit object, namespace `git`), so `git verify-commit` and
`git log --show-signature` check it against the allowed-signers file, and a server's
`pre-receive` hook can tell who made a commit instead of trusting its trailers.

- The host key (`$XDG_CONFIG_HOME/aoi/keys/host_ed25519`, default `~/.config/aoi/keys/`):
  one ed25519 key per host (per user's home), made by `aoi init` where none exists, never
  inside a repository. It signs what the daemon and agents commit, and what aoi commits
  for a person who has no signing key of their own.
- A person's key: their git config (`gpg.format ssh` and `user.signingkey`, a key file),
  used for the commits aoi makes as that person (`aoi task new`, `aoi review`, ...) when
  it is an unencrypted ed25519 key; else the host key signs. Their own `git commit`s are
  signed by git itself.
- `keys/allowed_signers` in the org: who may sign (`host:<id>` principals for hosts, an
  e-mail address for a person), in ssh-keygen's ALLOWED SIGNERS format.
"""

from __future__ import annotations

import enum
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pygit2

from aoi_git.errors import AoiError
from aoi_git.store import sshsig
from aoi_git.store.git import git
from aoi_git.store.head_view import HeadView

if TYPE_CHECKING:  # (imported where a key is read: see sshsig)
    from cryptography.hazmat.primitives.asymmetric import ed25519

ALLOWED_SIGNERS = "keys/allowed_signers"
HOST_PREFIX = "host:"
HOST_KEY_NAME = "host_ed25519"
SIGNATURE_FIELD = "gpgsig"


def keys_dir() -> Path:
    """Where this host's private key lives (outside every repository)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "aoi" / "keys"


def host_key_path() -> Path:
    return keys_dir() / HOST_KEY_NAME


def host_id() -> str:
    """This host's name in `host:<id>` (`AOI_HOST_ID`, else the host name)."""
    return os.environ.get("AOI_HOST_ID") or socket.gethostname()


def host_principal(name: str | None = None) -> str:
    return HOST_PREFIX + (name or host_id())


@dataclass(frozen=True)
class Signer:
    """A private key aoi signs commits with."""

    key: ed25519.Ed25519PrivateKey
    public: sshsig.PublicKey
    path: Path

    def sign(self, payload: bytes) -> str:
        return sshsig.sign(self.key, payload, public=self.public)


_loaded: dict[Path, tuple[int, Signer | None]] = {}


def load_signer(path: Path) -> Signer | None:
    """The unencrypted ed25519 OpenSSH private key at `path` (None: missing or unusable)."""
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        return None
    cached = _loaded.get(path)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    signer: Signer | None = None
    try:
        key = serialization.load_ssh_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        key = None
    if isinstance(key, ed25519.Ed25519PrivateKey):
        signer = Signer(key, sshsig.ed25519_public(key), path)
    _loaded[path] = (mtime, signer)
    return signer


def host_signer() -> Signer | None:
    return load_signer(host_key_path())


def ensure_host_key() -> tuple[Signer, bool]:
    """This host's signer, made now (private key 0600 and `.pub`) when there is none;
    True when it was made."""
    path = host_key_path()
    found = load_signer(path)
    if found is not None:
        return found, False
    if path.exists():
        raise AoiError(f"{path} is not an unencrypted ed25519 OpenSSH key: move it away "
                       "and run `aoi init` again to make a new host key")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                            serialization.NoEncryption())
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    public = sshsig.ed25519_public(key)
    path.with_name(path.name + ".pub").write_text(f"{public.openssh} {host_principal()}\n")
    os.replace(tmp, path)
    signer = load_signer(path)
    assert signer is not None
    return signer, True


def person_signer(config: Callable[[str], str | None]) -> Signer | None:
    """The person's own key from their git config (`gpg.format ssh`, `user.signingkey` a
    key file; `x.pub` means its private half `x`), when aoi can sign with it in process."""
    if (config("gpg.format") or "").strip().lower() != "ssh":
        return None
    value = (config("user.signingkey") or "").strip()
    if not value or value.startswith("key::") or value.startswith("ssh-"):
        return None  # a literal public key: its private half is in an agent
    path = Path(os.path.expanduser(value))
    if path.suffix == ".pub":
        path = path.with_suffix("")
    return load_signer(path)


def pygit2_config(repo: pygit2.Repository) -> Callable[[str], str | None]:
    def get(name: str) -> str | None:
        try:
            value = repo.config[name]
        except (KeyError, pygit2.GitError, ValueError):
            return None
        return str(value)
    return get


# --------------------------------------------------------------------------- writing
def create_commit(repo: pygit2.Repository, author: pygit2.Signature,
                  committer: pygit2.Signature, message: str, tree: pygit2.Oid,
                  parents: Sequence[pygit2.Oid], signer: Signer | None) -> pygit2.Oid:
    """Write a commit object (no ref moves), signed by `signer` unless None."""
    if signer is None:
        return repo.create_commit(None, author, committer, message, tree, list(parents))
    # (pygit2's stubs say Oid; it returns the commit object's text)
    content = str(repo.create_commit_string(author, committer, message, tree, list(parents)))
    return repo.create_commit_with_signature(
        content, signer.sign(content.encode("utf-8")).rstrip("\n"))


def commit_index(path: Path, message: str, author: pygit2.Signature,
                 committer: pygit2.Signature, signer: Signer | None) -> str:
    """Commit the index of the checkout at `path` on its branch, signed, as `git commit`
    would (the tree written by git itself, which reads every index format); the new id."""
    tree = git("write-tree", cwd=path).strip()
    repo = pygit2.Repository(str(path))
    parents = [] if repo.head_is_unborn else [pygit2.Oid(hex=str(repo.head.target))]
    oid = create_commit(repo, author, committer, message, pygit2.Oid(hex=tree), parents,
                        signer)
    summary = message.split("\n", 1)[0]
    old = str(parents[0]) if parents else "0" * 40
    git("update-ref", "-m", f"commit: {summary}", "HEAD", str(oid), old, cwd=path)
    return str(oid)


# --------------------------------------------------------------------------- reading
class SigStatus(enum.Enum):
    UNSIGNED = "unsigned"
    BAD = "bad"  # not an SSH signature, or not one of this commit
    UNKNOWN = "unknown"  # a good signature by a key not allowed to sign git objects
    GOOD = "good"


@dataclass(frozen=True)
class CommitSigner:
    """Who signed a commit, judged against an allowed-signers list."""

    status: SigStatus
    principals: tuple[str, ...] = ()
    fingerprint: str = ""

    @property
    def is_host(self) -> bool:
        return self.status is SigStatus.GOOD and any(
            p.startswith(HOST_PREFIX) for p in self.principals)

    def describe(self) -> str:
        if self.status is SigStatus.GOOD:
            return f"signed by {', '.join(self.principals)}"
        if self.status is SigStatus.UNKNOWN:
            return f"signed by a key not in {ALLOWED_SIGNERS} ({self.fingerprint})"
        return "not signed" if self.status is SigStatus.UNSIGNED else "badly signed"


def listing(signer: Signer) -> sshsig.AllowedSigner:
    """`signer` as this host's line of an allowed-signers list."""
    return sshsig.AllowedSigner((host_principal(),), signer.public, (sshsig.NAMESPACE,), 0)


def allowed_signers(view: HeadView) -> list[sshsig.AllowedSigner]:
    """The allowed signers of the org at `view` (empty when it lists none)."""
    data = view.read(ALLOWED_SIGNERS)
    if data is None:
        return []
    return sshsig.parse_allowed_signers(data.decode("utf-8", "replace"))[0]


def commit_signer(repo: pygit2.Repository, sha: str,
                  allowed: Sequence[sshsig.AllowedSigner]) -> CommitSigner:
    """Who signed commit `sha`, among `allowed`."""
    commit = repo.get(sha)
    assert isinstance(commit, pygit2.Commit)
    signature, payload = commit.gpg_signature
    return signer_of(signature, payload, allowed)


def signer_of(signature: bytes | None, payload: bytes,
              allowed: Sequence[sshsig.AllowedSigner]) -> CommitSigner:
    """Who made `signature` of the commit text `payload`, among `allowed`."""
    if not signature:
        return CommitSigner(SigStatus.UNSIGNED)
    try:
        sig = sshsig.parse(signature)
    except sshsig.SigFormatError:
        return CommitSigner(SigStatus.BAD)
    if sig.namespace != sshsig.NAMESPACE or not sig.verifies(payload):
        return CommitSigner(SigStatus.BAD)
    principals = tuple(p for a in allowed if a.key == sig.public_key
                       and a.allows(sshsig.NAMESPACE) for p in a.principals)
    if not principals:
        return CommitSigner(SigStatus.UNKNOWN, fingerprint=sig.public_key.fingerprint)
    return CommitSigner(SigStatus.GOOD, principals, sig.public_key.fingerprint)


def configure_verification(path: Path) -> None:
    """Point the checkout's `git log --show-signature` / `git verify-commit` at the org's
    allowed-signers file."""
    git("config", "--local", "gpg.ssh.allowedSignersFile",
        str(Path(path).resolve() / ALLOWED_SIGNERS), cwd=path)
