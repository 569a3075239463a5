"""The board's web application (Starlette): pages, the live feed, and a person's actions.

Bound to loopback it answers only requests addressed to loopback (no other site can reach
it through a browser by DNS rebinding); bound elsewhere every request needs the token.
Every form carries a secret made at start, so a page of another site cannot post a
decision. It serves its own static files and the org's records, never a path it is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

from aoi_git.board import views
from aoi_git.board.html import page
from aoi_git.board.live import Feed
from aoi_git.board.read import BoardData, Filters
from aoi_git.board.state import BoardState
from aoi_git.errors import AoiError
from aoi_git.org import person_actions

STATIC = Path(__file__).parent / "static"
COOKIE = "aoi_board_token"
INBOX_DIFFS = 20
_LOCAL_PATH = re.compile(r"/[A-Za-z0-9/_.?=&-]*")


@dataclass(frozen=True)
class Access:
    host: str
    port: int
    token: str | None  # required on every request when set

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def create_app(state: BoardState, access: Access) -> Guarded:
    feed = Feed(state)
    csrf = secrets.token_urlsafe(24)

    def render(request: Request, build: Callable[[BoardData], views.View],
               status: int = 200) -> Response:
        def run(data: BoardData) -> tuple[str, int]:
            view = build(data)
            if request.headers.get("x-board-part") == "main":
                return view.body, len(state.asks(data))
            n = len(state.asks(data))
            return page(view.title, view.body, org=data.org.config.name, commit=data.commit,
                        here=view.here, inbox=n), n

        text, inbox = state.locked(run)
        response = HTMLResponse(text, status_code=status)
        response.headers["x-board-inbox"] = str(inbox)
        response.headers["cache-control"] = "no-store"
        return response

    async def off_loop(request: Request, build: Callable[[BoardData], views.View],
                       status: int = 200) -> Response:
        return await state.call(render, request, build, status)

    async def work(request: Request) -> Response:
        q = request.query_params
        f = Filters(q.get("project", ""), q.get("label", ""), q.get("employee", ""))
        offset = _int(q.get("offset"))
        return await off_loop(request, lambda d: views.work(d, f, offset))

    async def task(request: Request) -> Response:
        tid = request.path_params["task_id"]
        return await off_loop(request, lambda d: _task_view(d, tid))

    def _task_view(data: BoardData, tid: str, error: str = "") -> views.View:
        t = data.tasks.get(tid)
        if t is None:
            raise LookupError(tid)
        return views.task_page(data, t, state.diff(data, tid), state.trail(data, tid), csrf,
                               error)

    async def projects(request: Request) -> Response:
        offset = _int(request.query_params.get("offset"))
        return await off_loop(request, lambda d: views.projects(d, offset))

    async def project(request: Request) -> Response:
        tid = request.path_params["task_id"]

        def build(d: BoardData) -> views.View:
            if tid not in d.tasks:
                raise LookupError(tid)
            return views.project(d, d.tasks[tid])
        return await off_loop(request, build)

    async def people(request: Request) -> Response:
        daemon = state.daemon()
        return await off_loop(request, lambda d: views.people(d, daemon, time.time()))

    async def inbox(request: Request) -> Response:
        def build(d: BoardData) -> views.View:
            asks = state.asks(d)
            diffs = {a.task.id: state.diff(d, a.task.id)
                     for a in asks[:INBOX_DIFFS] if a.kind == "review"}
            return views.inbox(asks, diffs, csrf)
        return await off_loop(request, build)

    async def cost(request: Request) -> Response:
        def build(d: BoardData) -> views.View:
            c = state.costs(d)
            return views.cost(d, c.today_usd, c.days)
        return await off_loop(request, build)

    async def act(request: Request) -> Response:
        tid = request.path_params["task_id"]
        what = request.path_params["action"]
        form = await request.form()
        if not hmac.compare_digest(str(form.get("csrf", "")), csrf):
            return PlainTextResponse("this form is stale or not the board's: reload the page",
                                     status_code=403)

        def decide(d: BoardData) -> None:
            if what == "review":
                decision = str(form.get("decision", ""))
                if decision not in ("accept", "reject"):
                    raise AoiError("choose accept or reject")
                person_actions.review(state.store, d.org, tid, decision == "accept",
                                      str(form.get("message", "")), state.person, state.email)
            else:
                person_actions.answer(state.store, d.org, tid, str(form.get("text", "")),
                                      state.person)

        try:
            await state.call(state.locked, decide)
        except AoiError as exc:
            message = str(exc)
            return await off_loop(request, lambda d: _task_view(d, tid, message), 400)
        back = str(form.get("back", ""))
        if not _LOCAL_PATH.fullmatch(back) or back.startswith("//"):
            back = f"/task/{tid}"  # only a page of the board itself
        return RedirectResponse(back, status_code=303)

    async def events(request: Request) -> Response:
        since = request.query_params.get("since", "")
        return StreamingResponse(feed.stream(since), media_type="text/event-stream",
                                 headers={"cache-control": "no-store",
                                          "x-accel-buffering": "no"})

    async def not_found(request: Request, exc: Exception) -> Response:
        return PlainTextResponse(f"not found: {request.url.path}", status_code=404)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await state.call(state.locked, lambda d: None)  # load before serving
        watcher = asyncio.create_task(feed.watch())
        try:
            yield
        finally:
            watcher.cancel()

    routes = [
        Route("/", work),
        Route("/task/{task_id}", task),
        Route("/task/{task_id}/{action:str}", act, methods=["POST"]),
        Route("/projects", projects),
        Route("/project/{task_id}", project),
        Route("/people", people),
        Route("/inbox", inbox),
        Route("/cost", cost),
        Route("/events", events),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={LookupError: not_found, 404: not_found})
    return Guarded(app, access)


class Guarded:
    """The app behind the address check, the token and the POST routes (an ASGI app)."""

    def __init__(self, app: Starlette, access: Access) -> None:
        self.app = app
        self.access = access
        self.guard = _guard(access)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refused = self.guard(request)
        if refused is None and request.method == "POST" and \
                request.url.path.rsplit("/", 1)[-1] not in ("review", "answer"):
            refused = PlainTextResponse("not found", status_code=404)
        if refused is not None:
            await refused(scope, receive, send)
            return
        given = request.query_params.get("token") if self.access.token else None

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("x-content-type-options", "nosniff")
                headers.setdefault("referrer-policy", "no-referrer")
                if given:
                    headers.append("set-cookie", f"{COOKIE}={given}; HttpOnly; "
                                   "SameSite=Strict; Path=/")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _guard(access: Access) -> Callable[[Request], Response | None]:
    allowed_hosts = {f"{h}:{access.port}" for h in ("127.0.0.1", "localhost", "[::1]")}
    if access.host not in ("127.0.0.1", "localhost", "::1"):
        allowed_hosts.add(f"{access.host}:{access.port}")

    def guard(request: Request) -> Response | None:
        if access.loopback and request.headers.get("host", "") not in allowed_hosts:
            return PlainTextResponse("the board answers only at its own address",
                                     status_code=421)
        if access.token is None:
            return None
        given = (request.query_params.get("token") or request.cookies.get(COOKIE)
                 or request.headers.get("authorization", "").removeprefix("Bearer "))
        if not given or not hmac.compare_digest(given, access.token):
            return PlainTextResponse("this board needs its token: open the address "
                                     "`aoi board` printed (…/?token=…)", status_code=401)
        return None

    return guard


def _int(text: str | None) -> int:
    try:
        return max(0, int(text or 0))
    except ValueError:
        return 0
