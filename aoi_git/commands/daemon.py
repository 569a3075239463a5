from __future__ import annotations

import json
import logging
import sys

import click

from aoi_git.commands.cli_context import App
from aoi_git.runtime.daemon import Daemon, DaemonOptions


@click.command()
@click.option("--until-idle", is_flag=True,
              help="Exit 0 once nothing runs and nothing is dispatchable (now or by a retry).")
@click.option("--max-agents", type=click.IntRange(min=1),
              help="Override limits.max_agents (1 or more).")
@click.option("--grace", "grace_s", type=float,
              help="Seconds a warm stop (SIGTERM) waits for running agents.")
@click.option("--remote", metavar="URL",
              help="The shared remote of a multi-host org (overrides hosts.remote).")
@click.option("--host-id", metavar="ID",
              help="This host's id (default: $AOI_HOST_ID, else the host name).")
@click.option("-v", "--verbose", is_flag=True, help="Log to stderr as well as .aoi/daemon.log.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary when it exits.")
@click.pass_obj
def daemon(app: App, until_idle: bool, max_agents: int | None, grace_s: float | None,
           remote: str | None, host_id: str | None, verbose: bool, as_json: bool) -> None:
    """Watch the org and run agents on tasks, within the caps. Logs to .aoi/daemon.log.

    SIGTERM or Ctrl-C is a warm stop (finish running agents, up to the grace period);
    a second signal is a cold stop.

    \b
    Examples:
      aoi daemon                     # on a server, forever
      aoi daemon --until-idle        # run what is runnable, then exit
      aoi daemon --remote ssh://git@srv/acme.git --host-id eu-1   # one of many hosts
    """
    if verbose:
        logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
    d = Daemon(app.root, DaemonOptions(max_agents=max_agents, until_idle=until_idle,
                                       grace_s=grace_s, remote=remote, host_id=host_id))
    rc = d.run()
    if as_json:
        click.echo(json.dumps({"exit": rc, "ticks": d.ticks, "head": d.executor.known_head}))
    raise SystemExit(rc)
