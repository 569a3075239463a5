"""Who a commit says made it. A person's commits carry their own git identity; an agent's
work is authored by its employee and committed by the daemon's host, and the daemon's own
commits are the host's, so `git log --author=qa` finds qa's work and no agent's commit
carries a person's name."""

from __future__ import annotations

import socket


def host_ident() -> tuple[str, str]:
    """(name, email) of this host's daemon."""
    host = socket.gethostname()
    return f"{host} (daemon)", f"{host}@aoi.invalid"


def actor_ident(kind: str, name: str) -> tuple[str, str]:
    """(name, email) of a non-person actor: `qa (agent)`, `<host> (daemon)`."""
    return f"{name} ({kind})", f"{name}@aoi.invalid"


def agent_git_env(employee: str) -> dict[str, str]:
    """The environment that makes the commits an agent makes itself (in its worktree)
    the employee's, committed by the host: never the person's from the user's config."""
    a_name, a_email = actor_ident("agent", employee)
    c_name, c_email = host_ident()
    return {"GIT_AUTHOR_NAME": a_name, "GIT_AUTHOR_EMAIL": a_email,
            "GIT_COMMITTER_NAME": c_name, "GIT_COMMITTER_EMAIL": c_email}
