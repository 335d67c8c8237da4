"""Tickers served from each worker's copy while no newer quote has come."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest

from cfd.v1 import market_pb2
from edge import tickers
from edge.app import state_of
from edge.hub import Feed, FeedSpec, Frame, Hub
from edge.tickers import TickerReplies
from support import until
from unit.edge.edge_fakes import FakeMesh, RunningEdge, quote

TICKER = "/v1/instruments/BTCUSD/ticker"
PRICES = ("prices", "BTCUSD")


@pytest.fixture
async def client(edge: RunningEdge) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=edge.url, timeout=10) as http:
        yield http


def _feed(edge: RunningEdge) -> Feed:
    feed = state_of(edge.app).hub.feed(PRICES)
    assert feed is not None
    return feed


async def _bid(client: httpx.AsyncClient, path: str = TICKER) -> str:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    bid: str = response.json()["ticker"]["bid"]
    return bid


async def _follow_with_a_quote(
    client: httpx.AsyncClient, mesh: FakeMesh, edge: RunningEdge
) -> None:
    """Read once, so that the edge follows BTCUSD's quotes, and have its feed deliver one."""
    assert await _bid(client) == "100.00"
    await until(lambda: mesh.recorder.ticks.open_streams == 1)
    mesh.recorder.ticks.publish(quote("BTCUSD", "100.00", "100.10", 1))
    await until(lambda: _feed(edge).live)


async def _every_read_goes_upstream(client: httpx.AsyncClient, mesh: FakeMesh, bid: str) -> None:
    """Move the market's price with no quote to the edge: each read must still see it."""
    mesh.recorder.bid_ask["BTCUSD"] = (bid, bid + "1")
    calls = mesh.recorder.calls["GetTicker"]
    assert [await _bid(client) for _ in range(2)] == [bid] * 2
    assert mesh.recorder.calls["GetTicker"] == calls + 2


async def test_a_ticker_is_served_from_the_copy_while_no_newer_quote_comes(
    client: httpx.AsyncClient, mesh: FakeMesh, edge: RunningEdge
) -> None:
    await _follow_with_a_quote(client, mesh, edge)
    calls = mesh.recorder.calls["GetTicker"]
    assert [await _bid(client) for _ in range(4)] == ["100.00"] * 4
    assert mesh.recorder.calls["GetTicker"] == calls + 1


async def test_a_newer_quote_makes_the_next_read_fresh(
    client: httpx.AsyncClient, mesh: FakeMesh, edge: RunningEdge
) -> None:
    await _follow_with_a_quote(client, mesh, edge)
    assert await _bid(client) == "100.00"
    # The market service has the new price before the engine streams it to the edge.
    mesh.recorder.bid_ask["BTCUSD"] = ("101.00", "101.10")
    mesh.recorder.ticks.publish(quote("BTCUSD", "101.00", "101.10", 2))
    await until(lambda: (latest := _feed(edge).latest) is not None and "101.00" in latest.text)
    calls = mesh.recorder.calls["GetTicker"]
    assert await _bid(client) == "101.00"
    assert await _bid(client) == "101.00"
    assert mesh.recorder.calls["GetTicker"] == calls + 1


async def test_a_feed_that_is_down_sends_every_read_upstream(
    client: httpx.AsyncClient, mesh: FakeMesh, edge: RunningEdge
) -> None:
    await _follow_with_a_quote(client, mesh, edge)
    assert await _bid(client) == "100.00"
    mesh.recorder.ticks.end()
    await until(lambda: not _feed(edge).live)
    await _every_read_goes_upstream(client, mesh, "102.00")


async def test_a_quiet_feed_sends_every_read_upstream(
    client: httpx.AsyncClient, mesh: FakeMesh, edge: RunningEdge
) -> None:
    await _follow_with_a_quote(client, mesh, edge)
    assert await _bid(client) == "100.00"
    # As if the feed had delivered nothing for longer than it is trusted to stay quiet.
    _feed(edge).received_at -= tickers.QUOTE_RECENT_S + 1
    await _every_read_goes_upstream(client, mesh, "103.00")


async def test_an_error_is_not_kept(
    client: httpx.AsyncClient, mesh: FakeMesh, edge: RunningEdge
) -> None:
    await _follow_with_a_quote(client, mesh, edge)
    mesh.recorder.ticker_failures = 1
    failed = await client.get(TICKER)
    assert failed.status_code == 400
    assert "PRICE_UNAVAILABLE" in failed.text
    calls = mesh.recorder.calls["GetTicker"]
    assert [await _bid(client) for _ in range(2)] == ["100.00"] * 2
    assert mesh.recorder.calls["GetTicker"] == calls + 1
    unknown = await client.get("/v1/instruments/NOPE/ticker")
    assert unknown.status_code == 400
    assert state_of(edge.app).hub.feed(("prices", "NOPE")) is None


async def test_a_spot_markets_ticker_is_never_kept(
    client: httpx.AsyncClient, mesh: FakeMesh, edge: RunningEdge
) -> None:
    for _ in range(3):
        response = await client.get("/v1/instruments/BTC_USD/ticker")
        assert response.json()["ticker"]["last"] == "99.00"
    assert mesh.recorder.calls["GetTicker"] == 3
    assert state_of(edge.app).hub.feed(("prices", "BTC_USD")) is None


async def test_account_and_position_reads_are_never_kept(
    client: httpx.AsyncClient, mesh: FakeMesh, edge: RunningEdge
) -> None:
    await _follow_with_a_quote(client, mesh, edge)
    headers = {"authorization": f"Bearer {mesh.token()}"}
    for _ in range(3):
        assert (await client.get("/v1/account", headers=headers)).status_code == 200
        assert (await client.get("/v1/positions/p1", headers=headers)).status_code == 200
    assert mesh.recorder.calls["GetAccount"] == 3
    assert mesh.recorder.calls["GetPosition"] == 3


class Quotes:
    """A price feed driven by the test: each stream yields what `send` puts."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[str] = asyncio.Queue()

    def send(self, text: str) -> None:
        self._queue.put_nowait(text)

    def spec(self, symbol: str) -> FeedSpec:
        async def stream(_resume: int) -> AsyncIterator[str]:
            while True:
                yield await self._queue.get()

        def frames(item: Any) -> list[Frame]:
            return [Frame(str(item), slot=f"prices:{symbol}")]

        return FeedSpec(("prices", symbol), "cfd.v1.TradingService", stream, frames)


class Market:
    """GetTicker as the replies see it: counts calls, can be held or made to fail."""

    def __init__(self) -> None:
        self.calls = 0
        self.bid = "100.00"
        self.failing = False
        self.gate = asyncio.Event()
        self.gate.set()

    async def fetch(self) -> tuple[market_pb2.GetTickerResponse, bytes]:
        self.calls += 1
        bid = self.bid
        await self.gate.wait()
        if self.failing:
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.FAILED_PRECONDITION, grpc.aio.Metadata(), grpc.aio.Metadata()
            )
        ticker = market_pb2.Ticker(symbol="BTCUSD", bid=bid, ask=bid + "1", last=bid)
        return market_pb2.GetTickerResponse(ticker=ticker), bid.encode()


@pytest.fixture
async def hub() -> AsyncIterator[Hub]:
    running = Hub()
    yield running
    await running.close()


async def _following(hub: Hub, quotes: Quotes, market: Market, **options: Any) -> TickerReplies:
    """Return replies that follow BTCUSD, whose feed has delivered a quote."""
    replies = TickerReplies(hub, quotes.spec, **options)
    await replies.read("BTCUSD", market.fetch)
    assert replies.following("BTCUSD")
    quotes.send("q1")
    await until(lambda: (feed := hub.feed(PRICES)) is not None and feed.live)
    return replies


async def test_concurrent_reads_share_one_upstream_call(hub: Hub) -> None:
    quotes, market = Quotes(), Market()
    replies = await _following(hub, quotes, market)
    market.gate.clear()
    readers = [asyncio.create_task(replies.read("BTCUSD", market.fetch)) for _ in range(5)]
    # The readers were all scheduled before the call they started: all of them are waiting.
    await until(lambda: market.calls == 2)
    market.gate.set()
    assert await asyncio.gather(*readers) == [b"100.00"] * 5
    assert await replies.read("BTCUSD", market.fetch) == b"100.00"
    assert market.calls == 2


async def test_a_read_after_a_newer_quote_does_not_join_an_older_call(hub: Hub) -> None:
    quotes, market = Quotes(), Market()
    replies = await _following(hub, quotes, market)
    market.gate.clear()
    older = asyncio.create_task(replies.read("BTCUSD", market.fetch))
    await until(lambda: market.calls == 2)
    market.bid = "101.00"
    quotes.send("q2")
    await until(
        lambda: (
            (feed := hub.feed(PRICES)) is not None and feed.latest == Frame("q2", "prices:BTCUSD")
        )
    )
    newer = asyncio.create_task(replies.read("BTCUSD", market.fetch))
    await until(lambda: market.calls == 3)
    market.gate.set()
    assert (await older, await newer) == (b"100.00", b"101.00")
    assert await replies.read("BTCUSD", market.fetch) == b"101.00"
    assert market.calls == 3


async def test_an_error_reaches_every_waiter_and_is_not_kept(hub: Hub) -> None:
    quotes, market = Quotes(), Market()
    replies = await _following(hub, quotes, market)
    market.gate.clear()
    market.failing = True
    readers = [asyncio.create_task(replies.read("BTCUSD", market.fetch)) for _ in range(3)]
    await until(lambda: market.calls == 2)
    market.gate.set()
    outcomes = await asyncio.gather(*readers, return_exceptions=True)
    assert all(isinstance(o, grpc.aio.AioRpcError) for o in outcomes)
    market.failing = False
    assert await replies.read("BTCUSD", market.fetch) == b"100.00"
    assert market.calls == 3


async def test_the_copy_is_not_served_in_the_next_minute(hub: Hub) -> None:
    now = [600.0]
    quotes, market = Quotes(), Market()
    replies = await _following(hub, quotes, market, wall_clock=lambda: now[0])
    assert await replies.read("BTCUSD", market.fetch) == b"100.00"
    assert await replies.read("BTCUSD", market.fetch) == b"100.00"
    assert market.calls == 2
    now[0] += 60
    market.bid = "100.50"  # the 24 h window moved: figures change with no new quote
    assert await replies.read("BTCUSD", market.fetch) == b"100.50"
    assert await replies.read("BTCUSD", market.fetch) == b"100.50"
    assert market.calls == 3
