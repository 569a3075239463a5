from __future__ import annotations

import json
import logging
import sys

import click

from aoi_git.commands.cli_context import App
from aoi_git.runtime.daemon import Daemon, DaemonOptions
from aoi_git.runtime.daemon_log import ForwardToLog, stderr_wanted
from aoi_git.store.clone_setup import SETUP_FIX, missing_setup


@click.command()
@click.option("--until-idle", is_flag=True,
              help="Exit 0 once nothing runs and nothing is dispatchable (now or by a retry).")
@click.option("--max-agents", type=click.IntRange(min=1),
              help="Override limits.max_agents (1 or more).")
@click.option("--grace", "grace_s", type=float,
              help="Seconds a warm stop (SIGTERM) waits for running agents.")
@click.option("-v", "--verbose", is_flag=True,
              help="Echo the log on stderr even on a terminal (it always is elsewhere).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary when it exits.")
@click.pass_obj
def daemon(app: App, until_idle: bool, max_agents: int | None, grace_s: float | None,
           verbose: bool, as_json: bool) -> None:
    """Watch the org and run agents on tasks, within the caps.

    It logs every event to .aoi/daemon.log (rotated at 10 MiB, 5 kept) and, when stderr
    is not a terminal (e.g. under systemd, to the journal), one line per event there.
    SIGTERM or Ctrl-C is a warm stop (finish running agents, up to the grace period);
    a second signal is a cold stop. SIGHUP reads aoi.yaml and the org again.

    \b
    Examples:
      aoi daemon                     # on a server, forever
      aoi daemon --until-idle        # run what is runnable, then exit
    """
    echo = sys.stderr if stderr_wanted(verbose) else None
    d = Daemon(app.root, DaemonOptions(max_agents=max_agents, until_idle=until_idle,
                                       grace_s=grace_s, echo=echo))
    missing = missing_setup(d.store.repo)
    if missing:  # the daemon works without them; a person's commits and merges do not
        click.echo(f"aoi daemon: this clone lacks {', '.join(missing)}: {SETUP_FIX}", err=True)
    forward = ForwardToLog(d.log_file)
    aoi_log = logging.getLogger("aoi")
    aoi_log.addHandler(forward)
    aoi_log.setLevel(logging.INFO)
    try:
        rc = d.run()
    finally:
        aoi_log.removeHandler(forward)
    if as_json:
        click.echo(json.dumps({"exit": rc, "ticks": d.ticks, "head": d.executor.known_head}))
    raise SystemExit(rc)
