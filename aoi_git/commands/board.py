from __future__ import annotations

import socket

import click

from aoi_git.commands.cli_context import App
from aoi_git.errors import AoiError


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; any but loopback needs --token.")
@click.option("--port", default=8700, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port, printed).")
@click.option("--token", envvar="AOI_BOARD_TOKEN",
              help="Secret every request must carry (?token=, a cookie, or a Bearer header); "
                   "env AOI_BOARD_TOKEN.")
@click.pass_obj
def board(app: App, host: str, port: int, token: str | None) -> None:
    """Serve the org as a live web page: work, projects, people, what needs you, cost.

    It reads the branch of this checkout (with or without a daemon) and updates open pages
    within a second of a commit. Decisions made on it are commits by you, exactly as
    `aoi review` and `aoi answer` make them.

    \b
    Examples:
      aoi board                                   # http://127.0.0.1:8700/
      aoi board --port 0                          # any free port
      aoi board --host 0.0.0.0 --token "$(openssl rand -hex 16)"
    """
    from aoi_git.board.app import Access, create_app, is_loopback
    from aoi_git.board.state import BoardState

    if not is_loopback(host) and not token:
        raise AoiError(f"--host {host} is not loopback: give --token SECRET (or set "
                       "AOI_BOARD_TOKEN) so that only you can open the board")
    if token is not None and len(token) < 8:
        raise AoiError("--token must be at least 8 characters")
    import uvicorn

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        raise AoiError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    port = sock.getsockname()[1]
    state = BoardState(app.root, app.person, app.email)
    web = create_app(state, Access(host, port, token))
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    config = uvicorn.Config(web, log_level="warning", lifespan="on",
                            timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)

    startup = server.startup

    async def announce(sockets: list[socket.socket] | None = None) -> None:
        await startup(sockets=sockets)
        click.echo(f"board of {app.root.name} at {url}", color=False)

    server.startup = announce  # type: ignore[method-assign]
    server.run(sockets=[sock])
