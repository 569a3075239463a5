"""OpenSSH's signature format (SSHSIG, openssh-portable PROTOCOL.sshsig), in process.

What `ssh-keygen -Y sign` writes and `ssh-keygen -Y verify` (so `git verify-commit` with
`gpg.format ssh`) checks: an armored blob holding the public key, the namespace, the
hash algorithm and the key's signature over

    "SSHSIG" || string(namespace) || string("") || string(hash) || string(H(message))

Signing is ed25519 with sha512, the pair git and ssh-keygen use by default. Verification
takes ed25519, RSA (rsa-sha2-256/512) and ECDSA (nistp256/384/521) keys, the types people
sign their own commits with. The allowed-signers file is read as ssh-keygen(1) describes
it (`principals [options] keytype base64 [comment]`); certificate authorities are not.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

# cryptography is imported where a key is used: a commit of a person's that aoi does not
# sign, or a hook that checks no signature, does not wait for it.

MAGIC = b"SSHSIG"
VERSION = 1
NAMESPACE = "git"
ARMOR_BEGIN = "-----BEGIN SSH SIGNATURE-----"
ARMOR_END = "-----END SSH SIGNATURE-----"
ED25519 = "ssh-ed25519"
_LINE = 70  # ssh-keygen's armor width
_HASHES = {"sha512": hashlib.sha512, "sha256": hashlib.sha256}
_KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
              "ecdsa-sha2-nistp521")
_EC_HASH = {"ecdsa-sha2-nistp256": "SHA256", "ecdsa-sha2-nistp384": "SHA384",
            "ecdsa-sha2-nistp521": "SHA512"}


class SigFormatError(ValueError):
    """Bytes that are not an SSH signature (or not one this module can read)."""


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise SigFormatError("truncated SSH signature")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def uint32(self) -> int:
        value: int = struct.unpack(">I", self.take(4))[0]
        return value

    def string(self) -> bytes:
        return self.take(self.uint32())


@dataclass(frozen=True)
class PublicKey:
    """An SSH public key: its type and wire blob (what allowed-signers lines hold)."""

    key_type: str
    blob: bytes

    @classmethod
    def parse(cls, line: str) -> PublicKey:
        """`ssh-ed25519 AAAA... [comment]` (a `.pub` file's line)."""
        parts = line.split()
        if len(parts) < 2 or parts[0] not in _KEY_TYPES:
            raise SigFormatError(f"not an SSH public key: {line.strip()[:60]!r}")
        try:
            blob = base64.b64decode(parts[1], validate=True)
        except (binascii.Error, ValueError):
            raise SigFormatError(f"not an SSH public key: {parts[1][:40]!r}") from None
        if _Reader(blob).string().decode("ascii", "replace") != parts[0]:
            raise SigFormatError(f"the key's type is not {parts[0]}")
        return cls(parts[0], blob)

    @property
    def openssh(self) -> str:
        return f"{self.key_type} {base64.b64encode(self.blob).decode()}"

    @property
    def fingerprint(self) -> str:
        """`SHA256:...`, as `ssh-keygen -l` prints it."""
        digest = base64.b64encode(hashlib.sha256(self.blob).digest()).decode().rstrip("=")
        return f"SHA256:{digest}"

    def verify(self, signature: bytes, data: bytes) -> bool:
        """Whether `signature` (SSH wire form: string type, string sig) signs `data`."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

        key = _load_public(self.openssh)
        if key is None:
            return False
        sig = _Reader(signature)
        try:
            alg, raw = sig.string().decode("ascii", "replace"), sig.string()
        except SigFormatError:
            return False
        try:
            if isinstance(key, ed25519.Ed25519PublicKey) and alg == ED25519:
                key.verify(raw, data)
                return True
            if isinstance(key, rsa.RSAPublicKey) and alg in ("rsa-sha2-512", "rsa-sha2-256"):
                algo = hashes.SHA512() if alg == "rsa-sha2-512" else hashes.SHA256()
                key.verify(raw, data, padding.PKCS1v15(), algo)
                return True
            if isinstance(key, ec.EllipticCurvePublicKey) and alg == self.key_type:
                parts = _Reader(raw)
                r = int.from_bytes(parts.string(), "big")
                s = int.from_bytes(parts.string(), "big")
                key.verify(utils.encode_dss_signature(r, s), data,
                           ec.ECDSA(getattr(hashes, _EC_HASH[self.key_type])()))
                return True
        except (InvalidSignature, SigFormatError, ValueError):
            return False
        return False


@functools.lru_cache(maxsize=256)
def _load_public(openssh: str) -> PublicKeyTypes | None:
    """The key object of an OpenSSH public key line (a push checks many commits of a few
    keys: parsed once each)."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    try:
        return serialization.load_ssh_public_key(openssh.encode())
    except (ValueError, UnsupportedAlgorithm):
        return None


def signed_data(message: bytes, namespace: str = NAMESPACE, hash_alg: str = "sha512") -> bytes:
    """What the key signs for `message` under `namespace`."""
    digest = _HASHES[hash_alg](message).digest()
    return (MAGIC + _string(namespace.encode()) + _string(b"") + _string(hash_alg.encode())
            + _string(digest))


def ed25519_public(key: ed25519.Ed25519PrivateKey) -> PublicKey:
    from cryptography.hazmat.primitives import serialization

    raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    return PublicKey(ED25519, _string(ED25519.encode()) + _string(raw))


def sign(key: ed25519.Ed25519PrivateKey, message: bytes, namespace: str = NAMESPACE,
         public: PublicKey | None = None) -> str:
    """The armored SSH signature of `message` (as `ssh-keygen -Y sign -n NAMESPACE`)."""
    public = public or ed25519_public(key)
    raw = key.sign(signed_data(message, namespace))
    blob = (MAGIC + struct.pack(">I", VERSION) + _string(public.blob)
            + _string(namespace.encode()) + _string(b"") + _string(b"sha512")
            + _string(_string(ED25519.encode()) + _string(raw)))
    text = base64.b64encode(blob).decode()
    body = "\n".join(text[i:i + _LINE] for i in range(0, len(text), _LINE))
    return f"{ARMOR_BEGIN}\n{body}\n{ARMOR_END}\n"


@dataclass(frozen=True)
class Signature:
    """A parsed SSH signature."""

    public_key: PublicKey
    namespace: str
    hash_alg: str
    signature: bytes

    def verifies(self, message: bytes) -> bool:
        """Whether this signature by its own key signs `message` (the key is not judged)."""
        if self.hash_alg not in _HASHES:
            return False
        return self.public_key.verify(self.signature,
                                      signed_data(message, self.namespace, self.hash_alg))


def parse(armored: bytes | str) -> Signature:
    """The signature an armored `-----BEGIN SSH SIGNATURE-----` block holds."""
    text = armored.decode("ascii", "replace") if isinstance(armored, bytes) else armored
    lines = [ln.strip() for ln in text.strip().splitlines()]
    if not lines or lines[0] != ARMOR_BEGIN or lines[-1] != ARMOR_END:
        raise SigFormatError("not an SSH signature (no SSH SIGNATURE armor)")
    try:
        blob = base64.b64decode("".join(lines[1:-1]), validate=True)
    except (binascii.Error, ValueError):
        raise SigFormatError("an SSH signature that is not base64") from None
    r = _Reader(blob)
    if r.take(6) != MAGIC or r.uint32() != VERSION:
        raise SigFormatError("not an SSHSIG version 1 signature")
    key_blob = r.string()
    namespace = r.string().decode("utf-8", "replace")
    r.string()  # reserved
    hash_alg = r.string().decode("ascii", "replace")
    signature = r.string()
    key_type = _Reader(key_blob).string().decode("ascii", "replace")
    return Signature(PublicKey(key_type, key_blob), namespace, hash_alg, signature)


@dataclass(frozen=True)
class AllowedSigner:
    """One line of an allowed-signers file."""

    principals: tuple[str, ...]
    key: PublicKey
    namespaces: tuple[str, ...] | None  # None: any namespace
    line: int

    def allows(self, namespace: str) -> bool:
        return self.namespaces is None or namespace in self.namespaces


def _split_options(text: str) -> tuple[str, str]:
    """The options field at the start of `text` (quotes may hold spaces), and the rest."""
    quoted = False
    for i, ch in enumerate(text):
        if ch == '"':
            quoted = not quoted
        elif ch.isspace() and not quoted:
            return text[:i], text[i:].strip()
    return text, ""


def _options(field: str) -> dict[str, str]:
    out: dict[str, str] = {}
    part, quoted = "", False
    for ch in field + ",":
        if ch == '"':
            quoted = not quoted
            continue
        if ch == "," and not quoted:
            name, _, value = part.partition("=")
            out[name.strip().lower()] = value
            part = ""
            continue
        part += ch
    return out


def parse_allowed_signers(text: str) -> tuple[list[AllowedSigner], list[tuple[int, str]]]:
    """The usable lines of an allowed-signers file, and `(line, problem)` for the others."""
    signers: list[AllowedSigner] = []
    problems: list[tuple[int, str]] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        principals, rest = _split_options(line)
        options: dict[str, str] = {}
        if rest.split(" ", 1)[0] not in _KEY_TYPES:
            opts, rest = _split_options(rest)
            options = _options(opts)
        if "cert-authority" in options:
            problems.append((n, "cert-authority lines are not supported"))
            continue
        try:
            key = PublicKey.parse(rest)
        except SigFormatError as exc:
            problems.append((n, str(exc)))
            continue
        namespaces = (tuple(s.strip() for s in options["namespaces"].split(","))
                      if "namespaces" in options else None)
        signers.append(AllowedSigner(tuple(p for p in principals.split(",") if p), key,
                                     namespaces, n))
    return signers, problems


def allowed_signer_line(principal: str, key: PublicKey, comment: str = "") -> str:
    """The allowed-signers line that lets `principal` sign git objects with `key`."""
    return f'{principal} namespaces="{NAMESPACE}" {key.openssh}' + (
        f" {comment}" if comment else "")
