"""A scriptable local WebSocket server standing in for an exchange, and polling helpers."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

from websockets.asyncio.server import ServerConnection, serve

from market_svc.feeds.base import Feed
from market_svc.ticks import RawTick

Script = Callable[[ServerConnection], Awaitable[None]]


class FakeExchange:
    """Serve one script per incoming connection, in order; record what clients sent."""

    def __init__(self, scripts: Sequence[Script]) -> None:
        self._scripts = list(scripts)
        self.paths: list[str] = []
        self.received: list[object] = []
        self.port = 0

    @property
    def url(self) -> str:
        """Return the server's base URL."""
        return f"ws://127.0.0.1:{self.port}"

    async def _handle(self, ws: ServerConnection) -> None:
        self.paths.append(ws.request.path if ws.request is not None else "")
        if not self._scripts:
            await ws.close()
            return
        await self._scripts.pop(0)(ws)

    async def receive_json(self, ws: ServerConnection) -> object:
        """Receive one client message, record and return it."""
        message = json.loads(await ws.recv())
        self.received.append(message)
        return message


@asynccontextmanager
async def running(exchange: FakeExchange) -> AsyncIterator[FakeExchange]:
    """Run ``exchange`` on a free loopback port."""
    async with serve(exchange._handle, "127.0.0.1", 0) as server:
        exchange.port = next(iter(server.sockets)).getsockname()[1]
        yield exchange


@asynccontextmanager
async def feeding(feed: Feed) -> AsyncIterator[list[RawTick]]:
    """Run ``feed`` in the background and collect what it emits."""
    ticks: list[RawTick] = []
    task = asyncio.create_task(feed.run(ticks.append))
    try:
        yield ticks
    finally:
        task.cancel()
        # A feed that failed on its own raises here and fails the test.
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def hold_open(ws: ServerConnection) -> None:
    """Keep a connection open, sending nothing, until the client leaves."""
    await ws.wait_closed()
