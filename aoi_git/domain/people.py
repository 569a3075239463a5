"""Who a git identity is in the organisation: aoi.yaml's `humans`, matched by id, name or
e-mail, so one person appears under one name (their id) in every trailer, log and view,
whatever `user.name` each of their machines has. Pure."""

from __future__ import annotations

from collections.abc import Mapping

from aoi_git.domain.model import Actor, ActorKind, Human


def people_named(name: str, email: str, humans: Mapping[str, Human]) -> list[str]:
    """The ids of aoi.yaml's `humans` a git identity is: by id, name or email (the last
    two case-insensitive)."""
    name_l, email_l = name.strip().lower(), email.strip().lower()
    return [hid for hid, h in humans.items()
            if hid == name or (name_l and h.name.strip().lower() == name_l)
            or (email_l and h.email.strip().lower() == email_l)]


def person_id(name: str, email: str, humans: Mapping[str, Human]) -> str:
    """The one name of the person with this git identity: the id of the human whose
    e-mail it is, else of the one whose id or name it is; a person aoi.yaml does not list
    (or an identity that fits several) keeps their git name."""
    email_l = email.strip().lower()
    by_email = [hid for hid, h in humans.items()
                if email_l and h.email.strip().lower() == email_l]
    if len(by_email) == 1:
        return by_email[0]
    named = people_named(name, "", humans)
    if len(named) == 1:
        return named[0]
    return name.strip() or "unknown"


def person_actor(name: str, email: str, humans: Mapping[str, Human]) -> Actor:
    """The actor a person's commit records (`human:<id>`)."""
    return Actor(ActorKind.HUMAN, person_id(name, email, humans))
