"""The live feed: the branch ref watched, each move sent to open pages as a server-sent
event. Whoever moved it (the daemon, a person's commit, a pull) the page hears of it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import asdict

import anyio.to_thread

from aoi_git.board.state import BoardState

POLL_S = 0.1  # a ref read costs microseconds; a page hears of a commit within this
KEEPALIVE_S = 15.0


class Feed:
    def __init__(self, state: BoardState) -> None:
        self.state = state
        self.commit: str | None = None
        self._queues: set[asyncio.Queue[str]] = set()

    async def watch(self) -> None:
        """Poll the branch tip forever; on a move, reload the board and tell every page."""
        self.commit = await anyio.to_thread.run_sync(self.state.tip)
        while True:
            await asyncio.sleep(POLL_S)
            try:
                tip = await anyio.to_thread.run_sync(self.state.tip)
                if tip == self.commit:
                    continue
                old, self.commit = self.commit, tip
                message = await self.state.call(self._message, old, tip)
            except Exception as exc:  # a broken ref or repository: say so, keep watching
                message = _event("problem", {"error": str(exc).splitlines()[0][:300]})
            for q in list(self._queues):
                with contextlib.suppress(asyncio.QueueFull):
                    q.put_nowait(message)

    def _message(self, old: str | None, new: str | None) -> str:
        moves = self.state.transitions(old, new)
        counts = self.state.locked(lambda d: {s.value: n for s, n in d.counts.items()})
        return _event("commit", {"commit": new, "counts": counts,
                                 "transitions": [asdict(m) for m in moves]})

    async def stream(self, since: str) -> AsyncIterator[str]:
        q: asyncio.Queue[str] = asyncio.Queue(maxsize=100)
        self._queues.add(q)
        try:
            yield ": connected\n\n"
            if since != (self.commit or ""):  # it moved between the page and this stream
                yield _event("commit", {"commit": self.commit, "transitions": []})
            while True:
                try:
                    yield await asyncio.wait_for(q.get(), KEEPALIVE_S)
                except TimeoutError:
                    yield ": keep-alive\n\n"
        finally:
            self._queues.discard(q)


def _event(name: str, data: object) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"
