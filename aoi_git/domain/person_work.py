"""Who may finish a person's work by hand: a work task assigned to a person (an id of
aoi.yaml's `humans`) moves `pending -> completed` (the lifecycle's row for a human, work
tasks only) when that person or the CEO makes the move. Pure: used by the one check of
every reader (`aoi_git.org.validate`) and by `aoi task done` (`aoi_git.org.person_work`).
"""

from __future__ import annotations

from aoi_git.domain.model import Actor, ActorKind, Kind, OrgConfig, Status, Task
from aoi_git.domain.people import people_named


def done_problem(old: Task | None, new: Task, actor: Actor, config: OrgConfig,
                 email: str = "") -> str | None:
    """Why `actor` may not move `old` to `new` when that completes a pending work task
    (None: they may, or it is another move)."""
    if old is None or old.status is not Status.PENDING or new.status is not Status.COMPLETED \
            or new.kind is not Kind.WORK or actor.kind is not ActorKind.HUMAN:
        return None
    who = old.assignee
    if who is None or who not in config.humans:
        return (f"{old.id} is assigned to {who or 'nobody'}, not to a person: only work "
                "assigned to a person of aoi.yaml `humans` is completed by hand")
    ids = people_named(actor.name, email, config.humans)
    if who in ids or config.ceo in ids:
        return None
    return (f"{old.id} is {who}'s work: {actor.name} is neither {who} nor the CEO "
            f"({config.ceo})")
