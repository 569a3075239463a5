"""The person acting at a checkout, under the one name aoi.yaml gives them
(`aoi_git.domain.people`): read from `aoi.yaml` alone, so naming the actor never costs a
load of the organisation."""

from __future__ import annotations

from aoi_git.domain.model import BAD_VALUE, Actor, Human, OrgConfig
from aoi_git.domain.people import person_actor
from aoi_git.store import yamlio
from aoi_git.store.head_view import HeadView


def humans_at(view: HeadView) -> dict[str, Human]:
    """aoi.yaml's `humans` at `view`; none where the file is missing or broken (the
    person then keeps their git name, and `aoi validate` reports the file)."""
    data = view.read("aoi.yaml")
    if data is None:
        return {}
    try:
        raw = yamlio.load(data)
    except yamlio.YamlError:
        return {}
    try:
        return dict(OrgConfig.from_dict(raw if isinstance(raw, dict) else {}).humans)
    except BAD_VALUE:
        return {}


def acting_person(view: HeadView, name: str, email: str) -> Actor:
    """`human:<id>` for the git identity (`user.name`, `user.email`) of a checkout."""
    return person_actor(name, email, humans_at(view))
