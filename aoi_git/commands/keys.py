from __future__ import annotations

import click

from aoi_git.commands.cli_context import App
from aoi_git.errors import AoiError
from aoi_git.org import keys as org_keys
from aoi_git.store import signing


@click.group()
def keys() -> None:
    """Who may sign the organisation's commits: keys/allowed_signers.

    A host signs as host:<id> (its key: ~/.config/aoi/keys/host_ed25519, made by
    `aoi init`), a person with their own SSH key under their e-mail. A server's
    pre-receive hook accepts daemon and agent commits signed by a host key only.

    \b
    Examples:
      aoi keys list
      aoi keys add ana@example.com ~/.ssh/id_ed25519.pub
      aoi keys add host:build-2 "ssh-ed25519 AAAAC3Nza..."
    """


@keys.command("add")
@click.argument("who")
@click.argument("key", required=False)
@click.pass_obj
def add(app: App, who: str, key: str | None) -> None:
    """Register WHO's public KEY (a .pub file or its line) in one commit.

    WHO is host:<id>, an e-mail address or a human id of aoi.yaml (their e-mail).
    Without KEY: this host's key for this host, your git user.signingkey for you.
    The commit must be signed by a key the org lists already to pass a server.

    \b
    Examples:
      aoi keys add host:$(hostname)            # this host, e.g. after `aoi init` in a clone
      aoi keys add ceo ~/.ssh/id_ed25519.pub   # the CEO of aoi.yaml, by their e-mail
    """
    principal = org_keys.principal_of(app.org(), who)
    person_key = signing.pygit2_config(app.store.repo)("user.signingkey")
    public = (org_keys.read_key(key) if key is not None
              else org_keys.default_key(principal, person_key))
    oid = org_keys.add_key(app.store, principal, public, app.person)
    if oid is None:
        click.echo(f"{principal} {public.fingerprint} is listed already")
    else:
        click.echo(f"added {principal} {public.fingerprint} to {signing.ALLOWED_SIGNERS} "
                   f"(commit {oid[:10]})")


@keys.command("remove")
@click.argument("who")
@click.pass_obj
def remove(app: App, who: str) -> None:
    """Remove every key of WHO (host:<id>, an e-mail or a human id) in one commit.

    \b
    Example:
      aoi keys remove host:old-box     # a retired host can no longer sign
    """
    principal = org_keys.principal_of(app.org(), who)
    oid = org_keys.remove_key(app.store, principal, app.person)
    if oid is None:
        raise AoiError(f"{principal} has no key in {signing.ALLOWED_SIGNERS}")
    click.echo(f"removed {principal} from {signing.ALLOWED_SIGNERS} (commit {oid[:10]})")


@keys.command("list")
@click.pass_obj
def list_keys(app: App) -> None:
    """The keys the org lists: principals and fingerprints (* marks this host's).

    \b
    Example:
      aoi keys list
    """
    found = org_keys.listed(app.store.head())
    if not found:
        click.echo(f"no keys: {signing.ALLOWED_SIGNERS} lists none (aoi keys add)")
    for entry in found:
        mark = "*" if entry.this_host else " "
        click.echo(f"{mark} {','.join(entry.principals)}  {entry.fingerprint}")


@keys.command("host")
def host() -> None:
    """Print this host's principal and public key (made now if there is none), for
    someone who can sign to register it with `aoi keys add`.

    \b
    Example:
      aoi keys host        # host:build-2 ssh-ed25519 AAAAC3Nza...
    """
    signer, _ = signing.ensure_host_key()
    click.echo(f"{signing.host_principal()} {signer.public.openssh}")
