"""The installed backends: the `aoi.backends` entry points, plus the two built in."""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

from aoi_git.runtime.backends.base import Backend

log = logging.getLogger("aoi.daemon")


def load_backends() -> dict[str, Backend]:
    """Backend kind -> backend; a plugin that fails to load is logged and left out."""
    out: dict[str, Backend] = {}
    for ep in entry_points(group="aoi.backends"):
        try:
            out[ep.name] = ep.load()()
        except Exception as exc:  # a broken third-party plugin must not stop the daemon
            log.warning("backend %s failed to load: %s", ep.name, exc)
    if "script" not in out:
        from aoi_git.runtime.backends.script import ScriptBackend

        out["script"] = ScriptBackend()
    if "claude" not in out:
        from aoi_git.runtime.backends.claude import ClaudeBackend

        out["claude"] = ClaudeBackend()
    return out
