"""One WebSocket connection with a fake socket: resumption of lagging events, slow consumers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

from starlette.websockets import WebSocket

from cfd.v1 import exchange_pb2
from edge.auth import JwksKeys
from edge.channels import Channels
from edge.descriptors import load
from edge.hub import FeedSpec, Frame, Hub
from edge.upstream import Upstreams
from edge.ws import RESUME_REQUIRED, Connection, WsLimits
from mesh.ratelimit import MemoryRateLimiter
from support import until


class FakeSocket:
    """Frames in from a queue; sends block while `reading` is clear (a client not reading)."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []
        self.reading = asyncio.Event()
        self.reading.set()
        self.closed: int | None = None

    async def accept(self) -> None:
        return None

    async def receive(self) -> dict[str, Any]:
        return await self.incoming.get()

    async def send_text(self, text: str) -> None:
        await self.reading.wait()
        self.sent.append(json.loads(text))

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        await self.reading.wait()
        self.closed = code

    def client_sends(self, frame: dict[str, Any]) -> None:
        self.incoming.put_nowait({"type": "websocket.receive", "text": json.dumps(frame)})


def connection(
    socket: FakeSocket, hub: Hub, tmp_path: Path, backlog: int, send_timeout: float
) -> Connection:
    upstreams = Upstreams({})
    limits = WsLimits(
        max_frame_bytes=4096,
        max_subscriptions=8,
        event_backlog=backlog,
        send_timeout_s=send_timeout,
        rate_limit=1000,
    )
    return Connection(
        cast(WebSocket, socket),
        hub,
        Channels(load(), upstreams, hub, "internal-token-0123456789"),
        JwksKeys(tmp_path / "jwks.json"),
        MemoryRateLimiter(),
        limits,
        "127.0.0.1",
    )


def event_spec(queue: asyncio.Queue[int]) -> FeedSpec:
    async def stream(_resume: int) -> AsyncIterator[int]:
        while True:
            yield await queue.get()

    return FeedSpec(
        ("events", "u1"),
        "cfd.v1.TradingService",
        stream,
        lambda n: [
            Frame(json.dumps({"channel": "events", "data": {"sequence": str(n)}}), sequence=n)
        ],
        sequenced=True,
    )


async def test_a_lagging_events_subscriber_is_told_where_to_resume(tmp_path: Path) -> None:
    socket, hub = FakeSocket(), Hub()
    conn = connection(socket, hub, tmp_path, backlog=3, send_timeout=30)
    running = asyncio.create_task(conn.run())
    queue: asyncio.Queue[int] = asyncio.Queue()
    subscription = hub.subscribe(event_spec(queue), conn, from_sequence=0)
    socket.reading.clear()
    for sequence in range(1, 8):
        queue.put_nowait(sequence)
    feed = hub.feed(("events", "u1"))
    await until(lambda: feed is not None and not feed.subscribers)
    assert subscription.feed is None
    socket.reading.set()
    await until(lambda: any(f.get("type") == "error" for f in socket.sent))
    delivered = [int(f["data"]["sequence"]) for f in socket.sent if "data" in f]
    error = next(f for f in socket.sent if f.get("type") == "error")
    assert error["error"]["reason"] == RESUME_REQUIRED
    resume = int(error["fromSequence"])
    # Nothing is lost: every event after `resume` was not delivered, everything up to it was.
    assert delivered == list(range(1, resume + 1))
    socket.incoming.put_nowait({"type": "websocket.disconnect"})
    await asyncio.wait_for(running, 5)
    await hub.close()


async def test_a_client_stuck_past_the_send_timeout_is_closed(tmp_path: Path) -> None:
    socket, hub = FakeSocket(), Hub()
    conn = connection(socket, hub, tmp_path, backlog=3, send_timeout=0.2)
    running = asyncio.create_task(conn.run())
    socket.reading.clear()
    socket.client_sends({"op": "ping"})
    await asyncio.wait_for(running, 5)
    assert conn.close_code == 1008
    await hub.close()


async def test_a_slow_book_subscriber_gets_the_whole_book_instead_of_lost_changes(
    tmp_path: Path,
) -> None:
    socket, hub = FakeSocket(), Hub()
    conn = connection(socket, hub, tmp_path, backlog=3, send_timeout=30)
    running = asyncio.create_task(conn.run())
    queue: asyncio.Queue[exchange_pb2.StreamOrderBookResponse] = asyncio.Queue()

    async def stream(_resume: int) -> AsyncIterator[exchange_pb2.StreamOrderBookResponse]:
        while True:
            yield await queue.get()

    upstreams = Upstreams({"cfd.v1.ExchangeService": "127.0.0.1:1"})  # never dialled
    built = Channels(load(), upstreams, hub, "internal-token-0123456789").book("BTC_USD")
    hub.subscribe(FeedSpec(built.key, built.target, stream, built.frames), conn)
    queue.put_nowait(exchange_pb2.StreamOrderBookResponse(market="BTC_USD", snapshot=True))
    await until(lambda: socket.sent)
    socket.reading.clear()
    for sequence, price in enumerate(("1.00", "2.00", "3.00"), start=1):
        level = exchange_pb2.BookLevel(price=price, quantity="5")
        queue.put_nowait(
            exchange_pb2.StreamOrderBookResponse(market="BTC_USD", sequence=sequence, bids=[level])
        )
    await until(lambda: queue.empty())
    socket.reading.set()
    await until(lambda: any(f["data"].get("sequence") == "3" for f in socket.sent))
    # Changes held back behind a slow send became one whole book: none is lost, none queued.
    assert len(socket.sent) <= 3
    assert socket.sent[-1]["data"] == {
        "market": "BTC_USD",
        "snapshot": True,
        "sequence": "3",
        "bids": [
            {"price": "3.00", "quantity": "5"},
            {"price": "2.00", "quantity": "5"},
            {"price": "1.00", "quantity": "5"},
        ],
    }
    socket.incoming.put_nowait({"type": "websocket.disconnect"})
    await asyncio.wait_for(running, 5)
    await hub.close()
    await upstreams.close()
