"""One module per subcommand; each exposes a click command (or group).

`COMMANDS` names the module and attribute of each top-level command, so that `aoi X`
imports the module of X alone, and `aoi --version` none of them.
"""

from __future__ import annotations

import importlib

import click

COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("init", "init"),
    "validate": ("validate", "validate"),
    "task": ("task", "task"),
    "tree": ("graph", "tree"),
    "graph": ("graph", "graph"),
    "log": ("log", "log"),
    "hook": ("hook", "hook"),
    "daemon": ("daemon", "daemon"),
    "status": ("status", "status"),
    "answer": ("answer", "answer"),
    "board": ("board", "board"),
    "review": ("review", "review"),
    "demo": ("demo", "demo"),
    "market": ("market", "market_cmd"),
    "hire": ("hire", "hire"),
    "fire": ("fire", "fire"),
    "one-on-one": ("one_on_one", "one_on_one"),
    "retro": ("retro", "retro"),
    "stats": ("stats", "stats"),
    "keys": ("keys", "keys"),
    "completion": ("completion", "completion"),
}


def load(name: str) -> click.Command | None:
    """The command called `name`, its module imported now; None for an unknown name."""
    if name not in COMMANDS:
        return None
    module, attr = COMMANDS[name]
    command = getattr(importlib.import_module(f"aoi_git.commands.{module}"), attr)
    assert isinstance(command, click.Command)
    return command
