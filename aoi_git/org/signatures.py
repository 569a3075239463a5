"""Who may sign what: the rule a server's `pre-receive` hook applies to each pushed commit.

A commit's `Aoi-Actor` trailer says who made it; its signature proves it. Judged against
the org's `keys/allowed_signers` as of the commit's parent (a push cannot authorize
itself):

- `daemon:` and `agent:` commits must be signed by a host key (a `host:<id>` principal);
- a person's commit (`human:`, or no trailer) signed by a person's key must be signed by
  a key listed for the commit's author e-mail; one not signed by its author (unsigned, or
  signed by a host on the person's behalf) passes only where aoi.yaml's
  `signing.require_person_signatures` is false (the default);
- a commit that changes `keys/` must be signed by a key listed before it;
- a signature that does not verify is refused whoever made the commit.

Where the parent lists no keys (the organisation's first commit, or an org from before
signed history), the commit's own list is trusted: whoever adds the first keys decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from aoi_git.domain.model import Actor, ActorKind
from aoi_git.store.signing import ALLOWED_SIGNERS, HOST_PREFIX, CommitSigner, SigStatus


@dataclass(frozen=True)
class SignedCommit:
    """What the rule needs to know of one commit."""

    actor: Actor
    author_email: str
    signer: CommitSigner
    changes_keys: bool


def _is_person_principal_of(principals: tuple[str, ...], email: str) -> bool:
    return any(not p.startswith(HOST_PREFIX) and email
               and fnmatchcase(email.lower(), p.lower()) for p in principals)


def signature_problem(commit: SignedCommit, require_person_signatures: bool) -> str | None:
    """Why the commit is refused (one line), None when its signature fits its actor."""
    signer, actor = commit.signer, commit.actor
    if signer.status is SigStatus.BAD:
        return f"Aoi-Actor {actor}: the signature does not verify (a forged or altered commit)"
    if commit.changes_keys and signer.status is not SigStatus.GOOD:
        return (f"changes {ALLOWED_SIGNERS} but is {signer.describe()}: keys are added "
                f"by a commit signed with a key the org lists already")
    if actor.kind in (ActorKind.DAEMON, ActorKind.AGENT):
        if signer.is_host:
            return None
        return (f"Aoi-Actor {actor} is {signer.describe()}: daemon and agent commits must "
                "be signed by a host key (a forged trailer?)")
    if signer.status is SigStatus.GOOD and not signer.is_host:
        if _is_person_principal_of(signer.principals, commit.author_email):
            return None
        return (f"Aoi-Actor {actor}: authored as {commit.author_email or '(no e-mail)'} but "
                f"{signer.describe()}")
    if require_person_signatures:
        return (f"Aoi-Actor {actor} is {signer.describe()}, not by a key of "
                f"{commit.author_email or 'its author'}: aoi.yaml "
                "signing.require_person_signatures is true")
    return None
