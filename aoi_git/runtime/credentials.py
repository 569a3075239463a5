"""Whether the Claude CLI that the claude backend runs has credentials: an API key or
token in the environment, a cloud provider switched on, or a Claude login of the user
(the CLI's `.credentials.json`). Checked by the daemon at start, so that an org whose
employees need Claude but has no way in says so at once instead of burning attempts.

A login is `$CLAUDE_CONFIG_DIR/.credentials.json`, else `~/.claude/.credentials.json`,
holding `claudeAiOauth.accessToken` (what `claude login` writes on Linux).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from aoi_git.domain.model import Employee, Task

# variables any one of which lets the CLI reach a model (a key, a token, a provider)
ENV_SOURCES = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN",
               "CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX", "CLAUDE_CODE_USE_FOUNDRY")
MAX_CREDENTIALS_BYTES = 1 << 20
FIX = ("set ANTHROPIC_API_KEY (or CLAUDE_CODE_OAUTH_TOKEN, from `claude setup-token`) in "
       "the daemon's environment and restart it, or log in with `claude login` as the user "
       "the daemon runs as")


@dataclass(frozen=True)
class Found:
    """Where credentials were found (None: nowhere) and a fingerprint of them, which
    changes when they do (a new login, another key)."""

    source: str | None
    fingerprint: str


def login_file(env: Mapping[str, str]) -> Path:
    config = env.get("CLAUDE_CONFIG_DIR")
    if config:
        return Path(config) / ".credentials.json"
    return Path(env.get("HOME") or os.path.expanduser("~")) / ".claude" / ".credentials.json"


def _logged_in(path: Path) -> str | None:
    """The fingerprint of a usable login in `path` (its mtime and size), or None."""
    try:
        st = path.stat()
        if st.st_size > MAX_CREDENTIALS_BYTES:
            return None
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return None
    oauth = data.get("claudeAiOauth") if isinstance(data, dict) else None
    if isinstance(oauth, dict) and isinstance(oauth.get("accessToken"), str) \
            and oauth["accessToken"].strip():
        return f"{st.st_mtime_ns}:{st.st_size}"
    return None


def find(env: Mapping[str, str]) -> Found:
    for name in ENV_SOURCES:
        value = env.get(name, "").strip()
        if value:
            return Found(name, f"{name}:{hash(value)}")
    path = login_file(env)
    stamp = _logged_in(path)
    if stamp is not None:
        return Found(str(path), f"{path}:{stamp}")
    return Found(None, "")


def needing_claude(employees: Iterable[Employee], env: Mapping[str, str]) -> list[str]:
    """The active employees on the claude backend that have no credentials: none of
    their own (`backend.env`) and none in `env`."""
    base = find(env)
    out = []
    for e in employees:
        if e.backend.kind != "claude" or not e.is_active:
            continue
        own = e.backend.options.get("env")
        if base.source is None and not (isinstance(own, Mapping) and find(
                {str(k): str(v) for k, v in own.items()}).source):
            out.append(e.id)
    return sorted(out)


def missing_message(employee_ids: list[str], env: Mapping[str, str]) -> str:
    """One line: who needs Claude, what is missing, and the fix."""
    who = ", ".join(employee_ids[:8]) + (" ..." if len(employee_ids) > 8 else "")
    return (f"employees {who} run on Claude, but there is no Claude API key or login "
            f"(no {', '.join(ENV_SOURCES[:3])}, no login in {login_file(env)})")


def work_for(employee_ids: Iterable[str], employees: Mapping[str, Employee],
             tasks: Iterable[Task]) -> list[str]:
    """The open tasks among `tasks` that would go to one of `employee_ids` (assigned to
    it or its role, or waiting for its review)."""
    names = set(employee_ids)
    names |= {f"role:{employees[e].role}" for e in names if e in employees}
    return [t.id for t in tasks if not t.is_terminal and (
        t.assignee in names or t.bookkeeping.routed_to in names or t.reviewer in names)]
