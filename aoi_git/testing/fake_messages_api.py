"""A scripted Anthropic Messages API on 127.0.0.1, for running the real Claude CLI offline.

Each POST /v1/messages is answered by the next *turn* of a script::

    script = [
        ToolUse("Write", {"file_path": "/tmp/x/hello.txt", "content": "hi"}),
        ToolUse("mcp__aoi__report_result", {"outcome": "completed", "summary": "wrote it"}),
        Text("All done."),
    ]
    with ScriptedMessagesAPI(script) as api:
        env = offline_env(api.base_url, home_dir)
        ...
    api.requests  # every request body, in order

A turn is a `Text`, a `ToolUse`, a list of those (one assistant message with several
blocks), an `ApiError`, or a callable that receives the request body and returns one
of those (to answer depending on what was sent). When the script has run out the server
answers `Text("done")` with stop reason `end_turn` and sets `exhausted`.

Streaming requests (`"stream": true`, what the CLI sends) get Server-Sent Events with
`event:` lines; other requests get the message as plain JSON. Every call reports the same
usage (`input_tokens`/`output_tokens`, default 100/20) so tests can check cost sums.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Union

__all__ = [
    "ApiError",
    "ScriptedMessagesAPI",
    "Text",
    "ToolUse",
    "Turn",
    "offline_env",
    "system_text",
    "tool_results",
]


@dataclass(frozen=True)
class Text:
    """A text block of the assistant's answer."""

    text: str


_tool_ids = itertools.count(1)


def _next_tool_id() -> str:
    return f"toolu_scripted_{next(_tool_ids):04d}"


@dataclass(frozen=True)
class ToolUse:
    """A tool call of the assistant; in-process MCP tools are named `mcp__<server>__<tool>`."""

    name: str
    input: Mapping[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=_next_tool_id)


@dataclass(frozen=True)
class ApiError:
    """Answer the request with an HTTP error status and an Anthropic-style error body."""

    status: int
    message: str = "scripted error"

    @property
    def error_type(self) -> str:
        return {
            400: "invalid_request_error",
            401: "authentication_error",
            403: "permission_error",
            404: "not_found_error",
            413: "request_too_large",
            429: "rate_limit_error",
            529: "overloaded_error",
        }.get(self.status, "api_error")


Block = Union[Text, ToolUse]  # noqa: UP007 - a runtime alias, kept readable
StaticTurn = Union[Text, ToolUse, ApiError, list[Block]]  # noqa: UP007
Turn = Union[StaticTurn, Callable[[dict[str, Any]], StaticTurn]]  # noqa: UP007


def system_text(request: Mapping[str, Any]) -> str:
    """The system prompt of a request as one string (it may be sent as text blocks)."""
    system = request.get("system")
    if system is None:
        return ""
    if isinstance(system, str):
        return system
    return "\n".join(str(b.get("text", "")) for b in system if isinstance(b, Mapping))


def tool_results(request: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The `tool_result` blocks of a request's last user message, content flattened to text."""
    messages = request.get("messages") or []
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if not isinstance(content, list):
            return []
        out: list[dict[str, Any]] = []
        for block in content:
            if not isinstance(block, Mapping) or block.get("type") != "tool_result":
                continue
            inner = block.get("content")
            if isinstance(inner, list):
                text = "\n".join(
                    str(b.get("text", "")) for b in inner if isinstance(b, Mapping)
                )
            else:
                text = "" if inner is None else str(inner)
            out.append(
                {
                    "tool_use_id": block.get("tool_use_id"),
                    "is_error": bool(block.get("is_error", False)),
                    "text": text,
                }
            )
        return out
    return []


def offline_env(base_url: str, home: str) -> dict[str, str]:
    """Environment that makes the Claude CLI talk only to `base_url` and write only to `home`."""
    return {
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": "test-key",
        "HOME": home,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "CLAUDE_CODE_MAX_RETRIES": "0",
    }


class ScriptedMessagesAPI:
    """A threaded HTTP server answering the Messages API from a script; see the module doc."""

    def __init__(
        self,
        script: list[Turn] | None = None,
        *,
        input_tokens: int = 100,
        output_tokens: int = 20,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._script: list[Turn] = list(script or [])
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self._lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []
        self._headers: list[dict[str, str]] = []
        self._paths: list[str] = []
        self._exhausted = False
        self._message_ids = itertools.count(1)
        self._server = ThreadingHTTPServer((host, port), _make_handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> ScriptedMessagesAPI:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="scripted-messages-api",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> ScriptedMessagesAPI:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what was seen ------------------------------------------------------------

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Bodies of every POST /v1/messages so far (a copy of the list)."""
        with self._lock:
            return list(self._requests)

    @property
    def headers(self) -> list[dict[str, str]]:
        """HTTP headers (names lower-cased) of every POST /v1/messages, like `requests`."""
        with self._lock:
            return list(self._headers)

    @property
    def paths(self) -> list[str]:
        """`METHOD path` of every HTTP request so far, probes included."""
        with self._lock:
            return list(self._paths)

    @property
    def exhausted(self) -> bool:
        """True once a request arrived after the script had run out."""
        with self._lock:
            return self._exhausted

    @property
    def remaining(self) -> int:
        with self._lock:
            return len(self._script)

    def add(self, *turns: Turn) -> None:
        """Append turns to the script (e.g. from another thread while a run is going)."""
        with self._lock:
            self._script.extend(turns)

    # -- answering ----------------------------------------------------------------

    def _log_path(self, method: str, path: str) -> None:
        with self._lock:
            self._paths.append(f"{method} {path}")

    def _next_turn(self, request: dict[str, Any], headers: dict[str, str]) -> StaticTurn:
        with self._lock:
            self._requests.append(request)
            self._headers.append(headers)
            if self._script:
                turn: Turn = self._script.pop(0)
            else:
                self._exhausted = True
                turn = Text("done")
        if callable(turn):
            turn = turn(request)
        return turn

    def _message(self, request: Mapping[str, Any], blocks: list[Block]) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        for block in blocks:
            if isinstance(block, Text):
                content.append({"type": "text", "text": block.text})
            else:
                content.append(
                    {"type": "tool_use", "id": block.id, "name": block.name,
                     "input": dict(block.input)}
                )
        stop = "tool_use" if any(isinstance(b, ToolUse) for b in blocks) else "end_turn"
        with self._lock:
            msg_id = f"msg_scripted_{next(self._message_ids):04d}"
        return {
            "id": msg_id,
            "type": "message",
            "role": "assistant",
            "model": str(request.get("model") or "claude-scripted"),
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": self._usage(self.output_tokens),
        }

    def _usage(self, output_tokens: int) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }

    def _sse(self, message: dict[str, Any]) -> bytes:
        events: list[tuple[str, dict[str, Any]]] = []
        start = dict(message, content=[], stop_reason=None, usage=self._usage(1))
        events.append(("message_start", {"type": "message_start", "message": start}))
        for index, block in enumerate(message["content"]):
            if block["type"] == "text":
                first: dict[str, Any] = {"type": "text", "text": ""}
                delta: dict[str, Any] = {"type": "text_delta", "text": block["text"]}
            else:
                first = {"type": "tool_use", "id": block["id"], "name": block["name"],
                         "input": {}}
                delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
            events.append(("content_block_start",
                           {"type": "content_block_start", "index": index,
                            "content_block": first}))
            events.append(("content_block_delta",
                           {"type": "content_block_delta", "index": index, "delta": delta}))
            events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        events.append(("message_delta",
                       {"type": "message_delta",
                        "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                        "usage": message["usage"]}))
        events.append(("message_stop", {"type": "message_stop"}))
        return "".join(
            f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events
        ).encode()


def _blocks(turn: StaticTurn) -> list[Block]:
    if isinstance(turn, Text | ToolUse):
        return [turn]
    if isinstance(turn, list):
        if not turn:
            return [Text("")]
        for block in turn:
            if not isinstance(block, Text | ToolUse):
                raise TypeError(f"a turn list holds Text/ToolUse blocks, not {block!r}")
        return list(turn)
    raise TypeError(f"not a turn: {turn!r}")


def _make_handler(api: ScriptedMessagesAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "ScriptedMessagesAPI/1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            pass

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("request-id", "req_scripted")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
                self.wfile.flush()

        def _json(self, status: int, data: Any) -> None:
            self._send(status, json.dumps(data).encode(), "application/json")

        def _route(self) -> str:
            return self.path.split("?", 1)[0].rstrip("/")

        def do_HEAD(self) -> None:  # noqa: N802 - stdlib naming
            api._log_path("HEAD", self.path)
            self._send(200, b"", "text/plain")

        def do_GET(self) -> None:  # noqa: N802
            api._log_path("GET", self.path)
            route = self._route()
            if route in ("", "/v1", "/v1/models") or route.startswith("/v1/models/"):
                self._json(200, {"data": [], "has_more": False})
            else:
                self._json(404, {"type": "error",
                                 "error": {"type": "not_found_error", "message": route}})

        def do_POST(self) -> None:  # noqa: N802
            api._log_path("POST", self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            route = self._route()
            if route == "/v1/messages/count_tokens":
                self._json(200, {"input_tokens": api.input_tokens})
                return
            if route != "/v1/messages":
                self._json(404, {"type": "error",
                                 "error": {"type": "not_found_error", "message": route}})
                return
            try:
                request = json.loads(raw or b"{}")
            except json.JSONDecodeError as exc:
                self._json(400, {"type": "error", "error": {
                    "type": "invalid_request_error", "message": f"bad JSON: {exc}"}})
                return
            try:
                headers = {k.lower(): v for k, v in self.headers.items()}
                turn = api._next_turn(request, headers)
                if isinstance(turn, ApiError):
                    self._json(turn.status, {"type": "error", "error": {
                        "type": turn.error_type, "message": turn.message}})
                    return
                message = api._message(request, _blocks(turn))
            except Exception as exc:  # a broken script: tell the client, do not hang it
                self._json(500, {"type": "error", "error": {
                    "type": "api_error", "message": f"script failed: {exc!r}"}})
                return
            if request.get("stream"):
                self._send(200, api._sse(message), "text/event-stream")
            else:
                self._json(200, message)

        def _not_found(self) -> None:
            api._log_path(self.command, self.path)
            self._json(404, {"type": "error",
                             "error": {"type": "not_found_error", "message": self.path}})

        do_PUT = _not_found  # noqa: N815
        do_DELETE = _not_found  # noqa: N815
        do_PATCH = _not_found  # noqa: N815

    return Handler
